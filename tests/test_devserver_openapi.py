"""docs/openapi.yaml parses, and agrees with the kt_devserver app: same routes, resolvable $refs,
every error code the server can send, and the objects' required keys are exactly what it sends."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient, TestServer

from kt_devserver import demo
from kt_devserver.app import create_app

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docs" / "openapi.yaml").read_text(encoding="utf-8"))


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if "$ref" in node else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


def test_is_openapi_3_1(spec):
    assert spec["openapi"] == "3.1.0"


def test_every_ref_resolves(spec):
    for ref in _refs(spec):
        assert ref.startswith("#/")
        node: Any = spec
        for part in ref[2:].split("/"):
            node = node[part]


def test_paths_match_the_app_routes(spec):
    app = create_app()
    served = {
        (route.method.lower(), re.sub(r"\{token_id\}", "{id}", route.resource.canonical))
        for route in app.router.routes()
        if route.method != "HEAD" and route.resource is not None
    }
    documented = {
        (method, path)
        for path, item in spec["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    }
    assert documented == served


def test_error_codes_cover_the_contract_and_the_server(spec):
    documented = set(spec["components"]["schemas"]["ErrorCode"]["enum"])
    contract = set(
        re.findall(r"`(auth\.[a-z_]+)`", (ROOT / "docs" / "api-contract.md").read_text())
    )
    source = "\n".join(p.read_text() for p in (ROOT / "kt_devserver").glob("*.py"))
    sent = set(re.findall(r'"(auth\.[a-z_]+)"', source))
    assert contract <= documented
    assert sent <= documented


def _required(spec: dict[str, Any], name: str) -> set[str]:
    return set(spec["components"]["schemas"][name]["required"])


async def test_replies_have_exactly_the_documented_keys(spec):
    async with TestClient(TestServer(create_app())) as client:
        response = await client.post(
            "/v1/auth/login", json={"email": demo.ALICE_EMAIL, "password": demo.ALICE_PASSWORD}
        )
        session = await response.json()
        assert set(session) == _required(spec, "Session")
        auth = {"Authorization": f"Bearer {session['access_token']}"}
        me = await (await client.get("/v1/auth/whoami", headers=auth)).json()
        assert set(me) == _required(spec, "WhoAmI")
        created = await client.post(
            "/v1/auth/tokens", json={"name": "x", "scopes": ["tokens:read"]}, headers=auth
        )
        assert set((await created.json())["token"]) == _required(spec, "TokenInfo")
        error = await (await client.get("/nope")).json()
        assert set(error) == _required(spec, "Error")
