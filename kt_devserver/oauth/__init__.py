"""kt-devserver's OAuth 2.0 / OpenID Connect authorization server, on authlib's grants.

`routes.register(app)` adds it to the application; routes.py lists the paths.
"""
