"""kt-login: sign people and machines in to the Keeptrusts API from a terminal."""

from ._version import __version__

__all__ = ["__version__"]
