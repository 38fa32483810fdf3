"""Scope names, and which scopes each role holds."""

from __future__ import annotations

from collections.abc import Iterable

CONFIGURATIONS_READ = "configurations:read"
CONFIGURATIONS_WRITE = "configurations:write"
GATEWAYS_READ = "gateways:read"
GATEWAYS_WRITE = "gateways:write"
TOKENS_READ = "tokens:read"
TOKENS_WRITE = "tokens:write"

ALL_SCOPES: tuple[str, ...] = (
    CONFIGURATIONS_READ,
    CONFIGURATIONS_WRITE,
    GATEWAYS_READ,
    GATEWAYS_WRITE,
    TOKENS_READ,
    TOKENS_WRITE,
)

ROLE_SCOPES: dict[str, frozenset[str]] = {
    "admin": frozenset(ALL_SCOPES),
    "member": frozenset(ALL_SCOPES) - {GATEWAYS_WRITE},
}


def ordered(scopes: Iterable[str]) -> list[str]:
    """Known scopes in their canonical order, without duplicates."""
    wanted = set(scopes)
    return [scope for scope in ALL_SCOPES if scope in wanted]


def for_role(role: str) -> frozenset[str]:
    return ROLE_SCOPES.get(role, frozenset())
