"""The grants the token endpoint serves, one module each (authlib's grant classes)."""
