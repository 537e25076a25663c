"""nascli: a command-line experiment runner for neural architecture search."""

__version__ = "0.1.0"
