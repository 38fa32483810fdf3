"""kt-devserver: a local Keeptrusts-compatible API server for demos, tests and offline work.

The first-party JSON API it serves is described in docs/api-contract.md and docs/openapi.yaml.
Build an app in-process with `kt_devserver.app.create_app`; run it with the `kt-devserver` command.
"""
