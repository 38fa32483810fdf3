"""kt-login: sign people and machines in to the Keeptrusts API from a terminal."""

__version__ = "0.1.0"
