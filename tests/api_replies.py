"""Talking to kt-devserver's JSON API over HTTP in tests: sign in, and read an error reply the way
docs/api-contract.md shapes it."""

from __future__ import annotations

from typing import Any

import httpx2


def login(http: httpx2.Client, email: str, password: str) -> httpx2.Response:
    """POST /v1/auth/login with an email and password; the reply as it came."""
    return http.post("/v1/auth/login", json={"email": email, "password": password})


def error_of(response: httpx2.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """The `error` object of a JSON error reply, checked: the status, JSON, nothing beside
    `error`, an `auth.` code (exactly `code` when given) and a message."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert list(body) == ["error"], body
    assert body["error"]["code"].startswith("auth."), body
    assert code is None or body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return dict(body["error"])
