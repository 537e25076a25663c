"""Experiment trackers (`tracking=`): mirror a run into the tools users already look at."""
