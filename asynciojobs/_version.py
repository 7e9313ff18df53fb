"""The distribution's version, in one place for both packages (read by pyproject.toml)."""

__version__ = "0.1.0"
