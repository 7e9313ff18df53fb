"""The distribution's version, in one place for both packages (read by pyproject.toml)."""

#: one number for nepi-ng and its companions ``apssh`` and ``asynciojobs`` (packaging/):
#: above apssh 0.27 and asynciojobs 0.21, so that scripts comparing versions keep working
__version__ = "1.0.0"
