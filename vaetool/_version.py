"""The package version (one place; the package root re-exports it as ``vaetool.__version__``)."""

__version__ = "0.1.0"
