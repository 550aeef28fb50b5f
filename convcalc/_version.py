"""The package version, defined once: pyproject.toml reads it at build time, `convcalc --version` prints it."""

__version__ = "0.1.0"
