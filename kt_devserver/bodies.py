"""Reading and checking JSON request bodies; every failure is a contract error, never a 500."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from kt_devserver.errors import ApiError, invalid_request

MAX_BODY_BYTES = 64 * 1024

Body = dict[str, Any]


async def read_object(request: web.Request, *, required: bool = True) -> Body:
    """The body as a JSON object; `{}` when there is none and none is required."""
    if not request.body_exists:
        if required:
            raise invalid_request("A JSON object body is required.")
        return {}
    if request.content_type != "application/json":
        raise ApiError(415, "auth.unsupported_media_type", "The body must be application/json.")
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise ApiError(413, "auth.payload_too_large", "The request body is larger than 64 KiB.")
    raw = await request.read()  # aiohttp enforces client_max_size (413) for chunked bodies too
    if not raw and not required:
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise invalid_request("The body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise invalid_request("The body must be a JSON object.")
    return data


def string(body: Body, field: str, *, max_length: int = 1024) -> str:
    value = body.get(field)
    if not isinstance(value, str) or not value:
        raise invalid_request(f"Field {field!r} must be a non-empty string.")
    if len(value) > max_length:
        raise invalid_request(f"Field {field!r} is longer than {max_length} characters.")
    return value


def optional_string(body: Body, field: str, *, max_length: int = 1024) -> str | None:
    if body.get(field) is None:
        return None
    return string(body, field, max_length=max_length)


def optional_int(body: Body, field: str, *, default: int, low: int, high: int) -> int:
    value = body.get(field)
    if value is None:
        return default
    # bool is an int subclass; `true` is not a number of days.
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise invalid_request(f"Field {field!r} must be an integer from {low} to {high}.")
    return value


def string_list(body: Body, field: str) -> list[str]:
    value = body.get(field)
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise invalid_request(f"Field {field!r} must be a non-empty list of strings.")
    return value
