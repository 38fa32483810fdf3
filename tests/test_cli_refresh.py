"""Token refresh (SECURITY.md LC-01…LC-04): the real `kt` process against a real `kt-devserver`.

The subprocess tests talk to the devserver through `CountingProxy`, a transparent HTTP relay that
records every request, so a test can say exactly which requests one `kt` command made (the
database only shows refreshes that succeeded). Refreshes are also counted where the server keeps
them: one row in `refresh_tokens` per issued refresh token, `spent_at` set once it was used.

The in-process tests at the end drive `kt_login.refresh.SessionKeeper` and the
`kt_login.authenticate.Authenticator` that uses it (against the devserver, or
`httpx2.MockTransport` where a transport failure must be injected).
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import http.client
import json
import os
import select
import sqlite3
import stat
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx2
import pytest

from kt_devserver.credentials import hash_secret as _hash_secret
from kt_login.api import Account, ApiClient, make_http_client, session_from_reply
from kt_login.authenticate import Authenticator, Credential
from kt_login.cli import main
from kt_login.cli.app import App
from kt_login.config import DEFAULT, Setting
from kt_login.errors import NetworkError, NotLoggedIn, StoreError
from kt_login.refresh import SessionKeeper
from kt_login.session import Session
from kt_login.store import FileStore, SessionStore
from tests.fixtures.devserver import DevServer, start_devserver
from tests.kt_process import ALICE, base_env, kt, kt_at_once, password_login

PROFILE = "default"
REFRESH = "/v1/auth/refresh"
WHOAMI = "/v1/auth/whoami"


# --------------------------------------------------------------------------- a recording relay


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    authorization: str | None
    refresh_token: str | None  # the token a refresh POST presented


class _Relay(BaseHTTPRequestHandler):
    server: CountingProxy
    protocol_version = "HTTP/1.0"  # one request per connection: nothing to keep track of
    _HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "host"})

    def _relay(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.record(self.command, self.path, self.headers.get("Authorization"), body)
        hold = self.server.hold_refresh
        if hold is not None and self.command == "POST" and self.path == REFRESH:
            hold()
        upstream = http.client.HTTPConnection(self.server.upstream, timeout=30)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in self._HOP}
            if body:
                headers["Content-Length"] = str(len(body))
            upstream.request(self.command, self.path, body=body or None, headers=headers)
            reply = upstream.getresponse()
            data = reply.read()
            reply_headers = reply.getheaders()
        finally:
            upstream.close()
        self.send_response_only(reply.status)
        for name, value in reply_headers:
            if name.lower() not in self._HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = _relay

    def log_message(self, format: str, *args: object) -> None:
        pass


class CountingProxy(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream_url: str) -> None:
        super().__init__(("127.0.0.1", 0), _Relay)
        self.upstream = urlsplit(upstream_url).netloc
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self._seen: list[Seen] = []
        self._guard = threading.Lock()
        # Called (in the relay thread) before a refresh POST is forwarded; may block.
        self.hold_refresh: Callable[[], None] | None = None
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()

    def record(self, method: str, path: str, authorization: str | None, body: bytes) -> None:
        token = None
        if path == REFRESH:
            with contextlib.suppress(ValueError, AttributeError):
                token = json.loads(body).get("refresh_token")
        with self._guard:
            self._seen.append(Seen(method, path, authorization, token))

    def mark(self) -> int:
        with self._guard:
            return len(self._seen)

    def since(self, mark: int) -> list[Seen]:
        with self._guard:
            return self._seen[mark:]

    def close(self) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=10)


# --------------------------------------------------------------------------- a barrier


class OpenWatch:
    """Linux inotify: report every open of a file in the watched directories, by name."""

    IN_OPEN = 0x20

    def __init__(self, directories: list[Path], on_open: Callable[[str], None]) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self._fd = libc.inotify_init1(os.O_CLOEXEC)
        if self._fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        for directory in directories:
            if libc.inotify_add_watch(self._fd, os.fsencode(directory), self.IN_OPEN) < 0:
                os.close(self._fd)
                raise OSError(ctypes.get_errno(), f"inotify_add_watch {directory} failed")
        self._on_open = on_open
        self._stop_r, self._stop_w = os.pipe()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            ready, _, _ = select.select([self._fd, self._stop_r], [], [])
            if self._stop_r in ready:
                return
            data = os.read(self._fd, 1 << 16)
            offset = 0
            while offset < len(data):
                _, mask, _, length = struct.unpack_from("iIII", data, offset)
                name = data[offset + 16 : offset + 16 + length].rstrip(b"\0")
                offset += 16 + length
                if mask & self.IN_OPEN:
                    self._on_open(os.fsdecode(name))

    def close(self) -> None:
        os.write(self._stop_w, b"x")
        self._thread.join(timeout=10)
        for fd in (self._fd, self._stop_r, self._stop_w):
            os.close(fd)


class RefreshBarrier:
    """Make the race certain: hold the first refresh POST at the proxy while the store still
    holds the stale session, and let it through only when

      * a second refresh POST arrives: nothing serialised the refreshes (the test then fails), or
      * some other kt process tries the lock file while the POST is held: it is waiting on the
        lock, holding the stale session (nothing can have been saved yet).

    Without a lock the lock file is never opened, so only the first case can release the POST;
    and as every process then reads the unchanged, stale session, a second refresh is certain.
    With a lock, at least two processes (in practice most of the ten) race for the refresh.
    """

    def __init__(self, profile: str) -> None:
        self._session_file = f"{profile}.json"
        self._lock_file = f"{profile}.lock"
        self._cond = threading.Condition()
        self.session_reads = 0
        self.reads_at_release = 0
        self.lock_tries_while_held = 0
        self.refresh_posts = 0
        self.released_by: str | None = None

    def __repr__(self) -> str:
        return (
            f"RefreshBarrier(released_by={self.released_by!r}, refresh_posts="
            f"{self.refresh_posts}, lock_tries_while_held={self.lock_tries_while_held}, "
            f"session_reads_at_release={self.reads_at_release})"
        )

    def saw_open(self, name: str) -> None:
        with self._cond:
            if name == self._session_file:
                self.session_reads += 1
            elif name == self._lock_file and self.refresh_posts and self.released_by is None:
                self.lock_tries_while_held += 1
            self._check()

    def hold_refresh(self) -> None:
        with self._cond:
            self.refresh_posts += 1
            self._check()
            # generous, and below kt's 15 s read timeout so a stuck barrier fails cleanly
            if not self._cond.wait_for(lambda: self.released_by is not None, timeout=12):
                self._release("timeout")

    def _check(self) -> None:
        if self.released_by is not None:
            return
        if self.refresh_posts >= 2:
            self._release("a second refresh")
        # 2: the refresher's own open of the lock file may be reported a little late
        elif self.refresh_posts == 1 and self.lock_tries_while_held >= 2:
            self._release("another process waits on the lock")

    def _release(self, why: str) -> None:
        self.released_by = why
        self.reads_at_release = self.session_reads
        self._cond.notify_all()


@contextlib.contextmanager
def refresh_barrier(proxy: CountingProxy, config: Path) -> Iterator[RefreshBarrier | None]:
    """A RefreshBarrier on `proxy` for the session under `config`; None where there is no
    inotify (the test then still runs, with an ordinary, likely but not certain, race)."""
    barrier = RefreshBarrier(PROFILE)
    locks = config / "locks"
    os.makedirs(locks, mode=0o700, exist_ok=True)
    try:
        watch = OpenWatch([config / "credentials", locks], barrier.saw_open)
    except (OSError, AttributeError):
        yield None
        return
    proxy.hold_refresh = barrier.hold_refresh
    try:
        yield barrier
    finally:
        proxy.hold_refresh = None
        watch.close()


# --------------------------------------------------------------------------- fixtures, helpers


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    # Every test logs in its own session and counts only that session's rows: one server will do.
    started = start_devserver(tmp_path_factory.mktemp("devserver"))
    yield started
    started.stop()


@pytest.fixture(scope="module")
def proxy(server: DevServer) -> Iterator[CountingProxy]:
    relay = CountingProxy(server.url)
    yield relay
    relay.close()


@pytest.fixture
def env(tmp_path: Path, proxy: CountingProxy) -> dict[str, str]:
    return base_env(tmp_path, KEEPTRUSTS_API_URL=proxy.url)


def login(env: dict[str, str]) -> Session:
    r = password_login(env, ALICE, "--insecure-storage")
    assert r.code == 0, r.stderr
    return stored(env)


def config_dir(env: dict[str, str]) -> Path:
    return Path(env["KEEPTRUSTS_CONFIG_DIR"])


def session_file(env: dict[str, str]) -> Path:
    return FileStore(config_dir(env)).path(PROFILE)


def stored(env: dict[str, str]) -> Session:
    session = FileStore(config_dir(env)).load(PROFILE)
    assert session is not None
    return session


def rewrite(env: dict[str, str], session: Session, **changes: Any) -> None:
    """Save `session` with `changes` the way kt does (atomic, 0600)."""
    FileStore(config_dir(env)).save(PROFILE, dataclasses.replace(session, **changes))
    assert stat.S_IMODE(session_file(env).stat().st_mode) == 0o600


def hash_secret(token: str | None) -> str:
    """The hash the server keeps for `token`."""
    assert token
    return _hash_secret(token)


def refresh_rows(server: DevServer, session_id: str | None) -> dict[str, float | None]:
    """token hash → spent_at for every refresh token the server issued in this session family."""
    assert session_id
    with contextlib.closing(sqlite3.connect(f"file:{server.db_path}?mode=ro", uri=True)) as db:
        rows = db.execute(
            "SELECT token_hash, spent_at FROM refresh_tokens WHERE session_id = ?", (session_id,)
        ).fetchall()
    return {h: spent for h, spent in rows}


def family_revoked(server: DevServer, session_id: str | None) -> bool:
    with contextlib.closing(sqlite3.connect(f"file:{server.db_path}?mode=ro", uri=True)) as db:
        (revoked_at,) = db.execute(
            "SELECT revoked_at FROM sessions WHERE id = ?", (session_id,)
        ).fetchone()
    return revoked_at is not None


def refreshes(seen: list[Seen]) -> list[Seen]:
    return [s for s in seen if s.method == "POST" and s.path == REFRESH]


# --------------------------------------------------------------------------- LC-02: single flight


def test_ten_concurrent_whoami_on_a_nearly_expired_session_make_exactly_one_refresh(
    env, server, proxy
):
    before = login(env)
    rows = refresh_rows(server, before.session_id)
    assert rows == {hash_secret(before.refresh_token): None}
    rewrite(env, before, expires_at=time.time() + 5)  # inside the 60 s window for every process

    mark = proxy.mark()
    with refresh_barrier(proxy, config_dir(env)) as barrier:
        results = kt_at_once([(["auth", "whoami", "--json"], env)] * 10)

    for r in results:
        assert r.code == 0, r.stderr
        assert r.json()["user"]["email"] == ALICE[0]
    seen = proxy.since(mark)
    # the server saw exactly one refresh, presenting the token from the login
    assert [s.refresh_token for s in refreshes(seen)] == [before.refresh_token]
    after = stored(env)
    assert after.refresh_token and after.refresh_token != before.refresh_token
    assert after.access_token != before.access_token
    assert after.expires_at is not None and after.expires_at > time.time() + 600
    rows = refresh_rows(server, before.session_id)
    assert len(rows) == 2  # the login's token and its one successor
    assert rows[hash_secret(before.refresh_token)] is not None  # spent once
    assert rows[hash_secret(after.refresh_token)] is None  # the stored one is the live one
    assert not family_revoked(server, before.session_id)
    if barrier is not None:  # the race did happen: another process waited with the stale session
        assert barrier.released_by == "another process waits on the lock", barrier
    # every process used the rotated access token (the refresher, and the nine that re-read)
    whoamis = [s for s in seen if s.path == WHOAMI]
    assert len(whoamis) == 10
    assert {s.authorization for s in whoamis} == {f"Bearer {after.access_token}"}

    # no reuse detection fired: the session goes on working, without another refresh
    mark = proxy.mark()
    follow = kt("auth", "whoami", "--json", env=env)
    assert follow.code == 0, follow.stderr
    assert follow.json()["user"]["email"] == ALICE[0]
    assert refreshes(proxy.since(mark)) == []
    assert len(refresh_rows(server, before.session_id)) == 2


def test_ten_concurrent_whoami_refused_with_401_make_exactly_one_refresh(env, server, proxy):
    """The same race on the reactive path: the server says the access token expired (e.g. the
    clocks disagree) while the client thinks it is good for another 15 minutes."""
    before = login(env)
    with contextlib.closing(sqlite3.connect(server.db_path)) as db, db:
        db.execute(
            "UPDATE access_tokens SET expires_at = 0 WHERE token_hash = ?",
            (hash_secret(before.access_token),),
        )

    mark = proxy.mark()
    with refresh_barrier(proxy, config_dir(env)) as barrier:
        results = kt_at_once([(["auth", "whoami", "--json"], env)] * 10)

    for r in results:
        assert r.code == 0, r.stderr
        assert r.json()["user"]["email"] == ALICE[0]
    seen = proxy.since(mark)
    assert [s.refresh_token for s in refreshes(seen)] == [before.refresh_token]
    after = stored(env)
    rows = refresh_rows(server, before.session_id)
    assert len(rows) == 2 and rows[hash_secret(after.refresh_token)] is None
    assert not family_revoked(server, before.session_id)
    if barrier is not None:
        assert barrier.released_by == "another process waits on the lock", barrier
    tokens = [s.authorization for s in seen if s.path == WHOAMI]
    refused = tokens.count(f"Bearer {before.access_token}")
    assert refused >= (2 if barrier is not None else 1)  # at least two went the 401 way
    # each process: at most one 401, then (or straight away) the rotated token, once
    assert tokens.count(f"Bearer {after.access_token}") == 10
    assert len(tokens) == 10 + refused


# --------------------------------------------------------------------------- LC-01: proactive


def test_proactive_refresh_only_inside_the_window(env, server, proxy):
    session = login(env)
    sid = session.session_id
    # (seconds since it was obtained, seconds left, refresh expected); window = max(60 s, 10%)
    cases = [
        (0, 900, False),  # fresh
        (100, 900, False),  # lifetime 1000 s: window 100 s, 900 s left
        (1000, 150, False),  # lifetime 1150 s: window 115 s, 150 s left
        (1900, 100, True),  # lifetime 2000 s: window 200 s, 100 s left (the 10% rule alone)
        (10, 50, True),  # lifetime 60 s: window 60 s, 50 s left (the 60 s floor)
    ]
    issued = 1
    for age, left, expected in cases:
        current = stored(env)
        now = time.time()
        rewrite(env, current, obtained_at=now - age, expires_at=now + left)
        mark = proxy.mark()
        r = kt("auth", "whoami", "--json", env=env)
        assert r.code == 0, r.stderr
        seen = proxy.since(mark)
        made = refreshes(seen)
        assert [x.refresh_token for x in made] == ([current.refresh_token] if expected else []), (
            age,
            left,
        )
        issued += expected
        assert len(refresh_rows(server, sid)) == issued, (age, left)
        latest = stored(env)
        if expected:
            assert latest.refresh_token != current.refresh_token
            assert seen[-1].authorization == f"Bearer {latest.access_token}"
        else:
            assert latest.refresh_token == current.refresh_token
            assert latest.expires_at == pytest.approx(now + left)
    assert not family_revoked(server, sid)

    # kt made the lock under <config>/locks/ (created by kt here, owner-only), and nowhere else
    cfg = config_dir(env)
    locks = cfg / "locks"
    assert (locks / f"{PROFILE}.lock").is_file()
    assert stat.S_IMODE(locks.stat().st_mode) == 0o700
    assert stat.S_IMODE((locks / f"{PROFILE}.lock").stat().st_mode) & 0o077 == 0
    leftovers = {p.relative_to(cfg).as_posix() for p in cfg.rglob("*") if p.is_file()} - {
        f"credentials/{PROFILE}.json",
        "sessions.json",
    }
    assert all(name.startswith("locks/") and name.endswith(".lock") for name in leftovers)


# --------------------------------------------------------------------------- LC-04: invalid_grant


def assert_logged_out(env: dict[str, str]) -> None:
    assert not session_file(env).exists()
    st = kt("auth", "status", "--json", env=env)
    assert st.code == 3
    assert st.json()["logged_in"] is False


def test_replayed_refresh_token_is_refused_session_cleared_exit_3(env, server, proxy):
    old = login(env)
    rewrite(env, old, expires_at=time.time() + 5)
    assert kt("auth", "whoami", env=env).code == 0  # spends the login's refresh token
    rotated = stored(env)
    assert rotated.refresh_token != old.refresh_token
    assert refresh_rows(server, old.session_id)[hash_secret(old.refresh_token)] is not None

    # put the old copy back (e.g. a restored backup) and make it due for a refresh
    rewrite(env, old, expires_at=time.time() + 5)
    mark = proxy.mark()
    r = kt("auth", "whoami", "--json", env=env)

    assert r.code == 3, r.stderr
    err = r.error()
    assert err["code"].startswith("auth.") and err["exit_code"] == 3
    assert "kt auth login" in err.get("hint", "")
    assert r.stdout == ""
    # exactly one refresh POST with the replayed token, then nothing: no retry, no whoami
    seen = proxy.since(mark)
    assert [(s.method, s.path, s.refresh_token) for s in seen] == [
        ("POST", REFRESH, old.refresh_token)
    ]
    assert family_revoked(server, old.session_id)  # the server's reuse detection
    assert len(refresh_rows(server, old.session_id)) == 2
    assert_logged_out(env)


def test_session_revoked_on_the_server_is_cleared_exit_3(env, server, proxy):
    session = login(env)
    out = httpx2.post(
        server.url + "/v1/auth/logout",
        headers={"Authorization": f"Bearer {session.access_token}"},
        json={"refresh_token": session.refresh_token},
    )
    assert out.status_code == 200 and out.json() == {"revoked": True}

    mark = proxy.mark()
    r = kt("auth", "whoami", "--json", env=env)

    assert r.code == 3, r.stderr
    err = r.error()
    assert err["code"].startswith("auth.") and err["exit_code"] == 3
    # the access token is refused, one refresh is tried and refused, and that is all
    seen = proxy.since(mark)
    assert [(s.method, s.path) for s in seen] == [("GET", WHOAMI), ("POST", REFRESH)]
    assert seen[0].authorization == f"Bearer {session.access_token}"
    assert seen[1].refresh_token == session.refresh_token
    assert len(refresh_rows(server, session.session_id)) == 1
    assert_logged_out(env)


# --------------------------------------------------------------------------- in process: LC-03


class SaveFails(FileStore):
    """A file store whose writes fail (disk full, keyring locked…); reads and deletes work."""

    def save(self, profile: str, session: Session) -> None:
        raise StoreError("cannot write the session: No space left on device")


def api_login(api: ApiClient) -> Session:
    reply = api.request("POST", "/v1/auth/login", body={"email": ALICE[0], "password": ALICE[1]})
    return session_from_reply(reply, api_url=api.api_url, method="password", now=time.time())


def test_rotated_token_that_cannot_be_saved_stops_with_relogin_hint(tmp_path, server, proxy):
    cfg = tmp_path / "config"
    with make_http_client() as http:
        api = ApiClient(proxy.url, http)
        session = api_login(api)
        FileStore(cfg).save(PROFILE, session)
        keeper = SessionKeeper(
            session=dataclasses.replace(session, expires_at=time.time() + 5),
            profile=PROFILE,
            config_dir=cfg,
            store=SaveFails(cfg),
            api=api,
        )
        mark = proxy.mark()
        with pytest.raises(StoreError) as info:
            keeper.current()
        assert "could not be saved" in info.value.message
        assert "kt auth login" in (info.value.hint or "")
        assert str(session.refresh_token) not in str(info.value) + (info.value.hint or "")
        # the refresh itself went through, once; nothing was tried with the spent token
        assert [s.refresh_token for s in refreshes(proxy.since(mark))] == [session.refresh_token]
        rows = refresh_rows(server, session.session_id)
        assert len(rows) == 2 and rows[hash_secret(session.refresh_token)] is not None
        assert not family_revoked(server, session.session_id)

        # asked again, the keeper must not present the spent refresh token a second time
        with pytest.raises(StoreError):
            keeper.current()
        assert len(refreshes(proxy.since(mark))) == 1
        assert not family_revoked(server, session.session_id)
    assert (cfg / "locks" / f"{PROFILE}.lock").is_file()


def test_whoami_with_unsaveable_rotation_exits_nonzero_in_process(
    tmp_path, server, proxy, capsys, monkeypatch
):
    """The same through the CLI: `kt auth whoami` stops (exit 1), asks for a new login, and
    never uses the access token it could not save."""
    cfg = tmp_path / "config"
    with make_http_client() as http:
        session = api_login(ApiClient(proxy.url, http))
    due = dataclasses.replace(session, expires_at=time.time() + 5)
    FileStore(cfg).save(PROFILE, due)

    def failing_save(self: FileStore, profile: str, new: Session) -> None:
        raise StoreError("cannot write the session: No space left on device")

    app = App(
        env={"KEEPTRUSTS_CONFIG_DIR": str(cfg), "KEEPTRUSTS_API_URL": proxy.url},
        interactive=lambda: False,
    )
    monkeypatch.setattr(FileStore, "save", failing_save)
    mark = proxy.mark()
    code = main(["auth", "whoami", "--json"], obj=app)
    seen = proxy.since(mark)
    captured = capsys.readouterr()
    assert code == 1
    assert captured.out == ""
    err = json.loads(captured.err.strip().splitlines()[-1])["error"]
    assert err["code"] == "kt.store_error" and "kt auth login" in err["hint"]
    assert [(s.method, s.path, s.refresh_token) for s in seen] == [
        ("POST", REFRESH, session.refresh_token)
    ]
    rows = refresh_rows(server, session.session_id)
    assert len(rows) == 2 and rows[hash_secret(session.refresh_token)] is not None
    assert FileStore(cfg).load(PROFILE) == due  # nothing half-written


# --------------------------------------------------------------------------- MockTransport cases

API = "https://api.example"


def session_reply(access: str, refresh: str, expires_in: int | None = 900) -> dict[str, object]:
    reply: dict[str, object] = {
        "access_token": access,
        "refresh_token": refresh,
        "token_type": "Bearer",
        "refresh_expires_in": 86400,
        "session_id": "ses_test",
        "user": {"id": "usr_a", "email": ALICE[0], "name": "Alice Admin"},
        "organization": {"id": "org_a", "name": "Acme"},
        "role": "admin",
        "scopes": ["tokens:read"],
        "mfa_authenticated": False,
    }
    if expires_in is not None:
        reply["expires_in"] = expires_in
    return reply


WHOAMI_REPLY = {
    "user": {"id": "usr_a", "email": ALICE[0], "name": "Alice Admin"},
    "organization": {"id": "org_a", "name": "Acme"},
    "role": "admin",
    "scopes": ["tokens:read"],
    "mfa_authenticated": False,
    "auth_method": "session",
    "token": None,
    "expires_at": None,
}


class FakeApi:
    """A scripted API: `refresh_outcomes` are used in turn for each refresh POST."""

    def __init__(self, refresh_outcomes: list[object], *, accept_refreshed: bool = True) -> None:
        self.refresh_outcomes = list(refresh_outcomes)
        self.accept_refreshed = accept_refreshed
        self.live_tokens: set[str] = set()
        self.requests: list[tuple[str, str, str | None]] = []  # method, path, token presented

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        path = request.url.path
        if path == REFRESH:
            token = json.loads(request.content)["refresh_token"]
            self.requests.append((request.method, path, token))
            outcome = self.refresh_outcomes.pop(0)
            if isinstance(outcome, Exception):
                raise outcome
            assert isinstance(outcome, dict)
            if self.accept_refreshed:
                self.live_tokens.add(str(outcome["access_token"]))
            return httpx2.Response(200, json=outcome)
        bearer = request.headers.get("Authorization", "").removeprefix("Bearer ")
        self.requests.append((request.method, path, bearer))
        if bearer not in self.live_tokens:
            return httpx2.Response(
                401,
                json={
                    "error": {"code": "auth.token_expired", "message": "The access token expired"}
                },
            )
        return httpx2.Response(200, json=WHOAMI_REPLY)

    def refresh_posts(self) -> list[str | None]:
        return [token for _, path, token in self.requests if path == REFRESH]


def old_session(expires_at: float | None) -> Session:
    now = time.time()
    return dataclasses.replace(
        session_from_reply(
            session_reply("kta_old", "ktr_old"), api_url=API, method="password", now=now - 850
        ),
        expires_at=expires_at,
    )


def authenticator(cfg: Path, http: httpx2.Client) -> Authenticator:
    """The profile's credential the way `kt` finds and refreshes it, for the API at API."""
    return Authenticator(
        profile=PROFILE, api_url=Setting(API, DEFAULT), store=SessionStore(cfg), http=http
    )


def whoami(credential: Credential) -> Account:
    return credential.call(lambda api, auth: api.whoami(auth))


def reset() -> httpx2.ConnectError:
    return httpx2.ConnectError("[Errno 104] Connection reset by peer")


def test_transport_failure_during_refresh_is_retried_once(tmp_path):
    cfg = tmp_path / "config"
    fake = FakeApi([reset(), session_reply("kta_new", "ktr_new")])
    FileStore(cfg).save(PROFILE, old_session(time.time() + 5))
    with make_http_client(httpx2.MockTransport(fake)) as http:
        account = whoami(authenticator(cfg, http).credential())
    assert account.email == ALICE[0]
    # the same refresh token twice (no reply arrived the first time), then the new access token
    assert fake.requests == [
        ("POST", REFRESH, "ktr_old"),
        ("POST", REFRESH, "ktr_old"),
        ("GET", WHOAMI, "kta_new"),
    ]
    saved = FileStore(cfg).load(PROFILE)
    assert saved is not None and saved.refresh_token == "ktr_new"


def test_rotated_tokens_are_saved_before_the_new_access_token_is_used(tmp_path, monkeypatch):
    cfg = tmp_path / "config"
    fake = FakeApi([session_reply("kta_new", "ktr_new")])
    save = FileStore.save

    def recording_save(self: FileStore, profile: str, session: Session) -> None:
        fake.requests.append(("SAVE", profile, session.refresh_token))
        save(self, profile, session)

    FileStore(cfg).save(PROFILE, old_session(time.time() + 5))
    monkeypatch.setattr(FileStore, "save", recording_save)
    with make_http_client(httpx2.MockTransport(fake)) as http:
        whoami(authenticator(cfg, http).credential())
    assert fake.requests == [
        ("POST", REFRESH, "ktr_old"),
        ("SAVE", PROFILE, "ktr_new"),
        ("GET", WHOAMI, "kta_new"),
    ]


def test_two_transport_failures_during_refresh_exit_5_after_exactly_two_posts(tmp_path, capsys):
    cfg = tmp_path / "config"
    fake = FakeApi([reset(), reset(), reset()])
    session = old_session(time.time() + 5)
    FileStore(cfg).save(PROFILE, session)
    with make_http_client(httpx2.MockTransport(fake)) as http, pytest.raises(NetworkError) as info:
        whoami(authenticator(cfg, http).credential())
    assert info.value.exit_code == 5
    assert fake.refresh_posts() == ["ktr_old", "ktr_old"]
    assert FileStore(cfg).load(PROFILE) == session  # kept: the token may still be good

    # the same through the CLI
    fake = FakeApi([reset(), reset(), reset()])
    app = App(
        env={"KEEPTRUSTS_CONFIG_DIR": str(cfg), "KEEPTRUSTS_API_URL": API},
        transport=httpx2.MockTransport(fake),
        interactive=lambda: False,
    )
    code = main(["auth", "whoami", "--json"], obj=app)
    err = json.loads(capsys.readouterr().err.strip().splitlines()[-1])["error"]
    assert code == 5 and err["code"] == "kt.network"
    assert fake.requests == [("POST", REFRESH, "ktr_old"), ("POST", REFRESH, "ktr_old")]
    assert FileStore(cfg).load(PROFILE) == session


def test_unknown_expiry_refreshes_once_on_401_then_retries_once(tmp_path, capsys):
    cfg = tmp_path / "config"
    fake = FakeApi([session_reply("kta_new", "ktr_new")])
    FileStore(cfg).save(PROFILE, old_session(None))
    app = App(
        env={"KEEPTRUSTS_CONFIG_DIR": str(cfg), "KEEPTRUSTS_API_URL": API},
        transport=httpx2.MockTransport(fake),
        interactive=lambda: False,
    )
    code = main(["auth", "whoami", "--json"], obj=app)
    out = capsys.readouterr()
    assert code == 0, out.err
    assert json.loads(out.out)["user"]["email"] == ALICE[0]
    assert fake.requests == [
        ("GET", WHOAMI, "kta_old"),
        ("POST", REFRESH, "ktr_old"),
        ("GET", WHOAMI, "kta_new"),
    ]
    saved = FileStore(cfg).load(PROFILE)
    assert saved is not None and saved.refresh_token == "ktr_new"
    assert saved.expires_at is not None  # the refresh reply said when


def test_unknown_expiry_second_401_is_not_a_loop(tmp_path, capsys):
    cfg = tmp_path / "config"
    # the refreshed access token is refused too: one refresh, one retry, then stop
    fake = FakeApi([session_reply("kta_new", "ktr_new", expires_in=None)], accept_refreshed=False)
    FileStore(cfg).save(PROFILE, old_session(None))
    app = App(
        env={"KEEPTRUSTS_CONFIG_DIR": str(cfg), "KEEPTRUSTS_API_URL": API},
        transport=httpx2.MockTransport(fake),
        interactive=lambda: False,
    )
    code = main(["auth", "whoami", "--json"], obj=app)
    capsys.readouterr()
    assert code == 3
    assert fake.requests == [
        ("GET", WHOAMI, "kta_old"),
        ("POST", REFRESH, "ktr_old"),
        ("GET", WHOAMI, "kta_new"),
    ]


def test_invalid_grant_from_the_refresh_endpoint_clears_after_one_post(tmp_path):
    """LC-04 with a stub that always refuses: exactly one POST, store cleared, NotLoggedIn."""
    cfg = tmp_path / "config"
    posts: list[str] = []

    def refuse(request: httpx2.Request) -> httpx2.Response:
        posts.append(request.url.path)
        return httpx2.Response(
            401, json={"error": {"code": "auth.invalid_grant", "message": "Unknown refresh token"}}
        )

    session = old_session(time.time() + 5)
    FileStore(cfg).save(PROFILE, session)
    with make_http_client(httpx2.MockTransport(refuse)) as http:
        keeper = SessionKeeper(
            session=session,
            profile=PROFILE,
            config_dir=cfg,
            store=FileStore(cfg),
            api=ApiClient(API, http),
        )
        with pytest.raises(NotLoggedIn) as info:
            keeper.current()
    assert info.value.exit_code == 3
    assert posts == [REFRESH]
    assert FileStore(cfg).load(PROFILE) is None
    assert not os.path.exists(FileStore(cfg).path(PROFILE))
