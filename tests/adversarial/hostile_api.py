"""A hostile Keeptrusts API for the real `kt` process: `http.server` on 127.0.0.1:0 in a thread.

Honest by default (password login, whoami, logout, token rotation as kt-devserver answers them);
a test replaces any route's reply — with raw JSON text (NaN, Infinity, hostile strings), or an
endless chunked body generated lazily — and reads back every request it received. A huge reply
records how many bytes were written before kt hung up.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SESSION: dict[str, Any] = {
    "access_token": "kta_hostile_access",
    "refresh_token": "ktr_hostile_refresh",
    "token_type": "Bearer",
    "expires_in": 900,
    "refresh_expires_in": 86400,
    "session_id": "ses_1",
    "user": {"id": "usr_1", "email": "eve@hostile.test"},
    "organization": {"name": "Hostile"},
    "role": "admin",
    "scopes": ["tokens:read", "tokens:write"],
    "mfa_authenticated": False,
}
WHOAMI: dict[str, Any] = {
    "user": {"id": "usr_1", "email": "eve@hostile.test", "name": "Eve"},
    "organization": {"name": "Hostile"},
    "role": "admin",
    "scopes": ["tokens:read"],
    "mfa_authenticated": False,
    "auth_method": "password",
}


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Reply:
    status: int = 200
    body: str | bytes = b"{}"  # str: JSON text as written (NaN and all)
    headers: dict[str, str] = field(default_factory=dict)
    endless: int | None = None  # instead of `body`: this many bytes, chunked, made lazily


def json_reply(doc: Any, status: int = 200) -> Reply:
    return Reply(status, json.dumps(doc))


def mfa_required(mfa_token: str, status: int = 401) -> Reply:
    error = {"code": "auth.mfa_required", "message": "MFA required", "mfa_token": mfa_token}
    return json_reply({"error": error}, status)


Route = Reply | Callable[[Seen], Reply]


class HostileAPI:
    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Route] = {}
        self.requests: list[Seen] = []
        self.sent = 0  # bytes of an endless body written before the client hung up
        self.hung_up = threading.Event()
        self.reset()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                seen = Seen(self.command, self.path, dict(self.headers), self.rfile.read(length))
                api.requests.append(seen)
                route = api.routes.get((self.command, self.path), Reply(404, b"{}"))
                api._answer(self, route(seen) if callable(route) else route)

            do_GET = do_POST = do_DELETE = _any

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def reset(self) -> None:
        self.routes = {
            ("POST", "/v1/auth/login"): json_reply(SESSION),
            ("POST", "/v1/auth/refresh"): json_reply(SESSION),
            ("POST", "/v1/auth/mfa/challenge"): json_reply({**SESSION, "mfa_authenticated": True}),
            ("GET", "/v1/auth/whoami"): json_reply(WHOAMI),
            ("POST", "/v1/auth/logout"): json_reply({}),
        }
        self.requests = []
        self.sent = 0
        self.hung_up.clear()

    def start(self) -> HostileAPI:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def calls(self) -> list[str]:
        return [f"{r.method} {r.path}" for r in self.requests]

    def _answer(self, handler: BaseHTTPRequestHandler, reply: Reply) -> None:
        handler.send_response(reply.status)
        handler.send_header("Content-Type", "application/json")
        for name, value in reply.headers.items():
            handler.send_header(name, value)
        if reply.endless is None:
            body = reply.body.encode() if isinstance(reply.body, str) else reply.body
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
            return
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        chunk = b'{"access_token": "' + b"a" * (64 * 1024 - 18)
        framed = b"%x\r\n%s\r\n" % (len(chunk), chunk)
        try:
            while self.sent < reply.endless:
                handler.wfile.write(framed)
                self.sent += len(chunk)
            handler.wfile.write(b"0\r\n\r\n")
        except OSError:  # BrokenPipe / ConnectionReset: kt gave up on the reply
            self.hung_up.set()
        handler.close_connection = True
