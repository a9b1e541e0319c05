"""The version, in a module of its own so that the core never imports the package root."""

__version__ = "0.1.0"
