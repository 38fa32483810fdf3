"""The version of kt-login (its one home; hatch reads it from here)."""

__version__ = "0.1.0"
