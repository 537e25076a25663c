"""Command bodies: each takes a validated config and returns data for the CLI to print."""
