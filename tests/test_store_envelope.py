"""Sessions too large for the keyring (issue 13 item 6, docs/security.md ST-09): the key in the
keyring, the session sealed (AES-256-GCM) in a 0600 file bound to its profile; never plaintext."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

import keyring.core
import pytest
from keyring.backends import fail

from kt_login.errors import KtError, StoreError, StoreUnavailable
from kt_login.store import ENVELOPE_KIND, KEYRING_SERVICE, UNAVAILABLE_HINT, SessionStore
from tests.fake_keyrings import MemoryKeyring, SizeLimitedKeyring
from tests.sample_sessions import ACCESS, REFRESH, make_big_oidc_session, make_session

LIMIT = 2048
USER = "profile:work"


@pytest.fixture(autouse=True)
def _no_default_keyring(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing here may reach a real keyring: each test hands its backend in."""
    monkeypatch.setattr(keyring.core, "_keyring_backend", fail.Keyring())
    monkeypatch.delenv("KEEPTRUSTS_KEYRING_MAX_BYTES", raising=False)


def store_over(tmp_path: Path, backend: MemoryKeyring, **kw: object) -> SessionStore:
    return SessionStore(tmp_path, keyring_backend=backend, **kw)  # type: ignore[arg-type]


def sealed_file(tmp_path: Path, profile: str = "work") -> Path:
    return tmp_path / "envelopes" / f"{profile}.json"


def everything_written(tmp_path: Path, backend: MemoryKeyring) -> str:
    """Every byte kt left on disk and in the keyring."""
    on_disk = [p.read_bytes().decode("latin-1") for p in tmp_path.rglob("*") if p.is_file()]
    return "\n".join(on_disk + list(backend.items.values()))


def test_a_session_the_keyring_refuses_is_sealed_and_reads_back(tmp_path: Path) -> None:
    backend = SizeLimitedKeyring(LIMIT)
    sessions = store_over(tmp_path, backend)
    big = make_big_oidc_session()
    where = sessions.choose_for_login("work", insecure_storage=False, credential_store_setting="")
    where.save("work", big)

    assert backend.refused == 1  # the keyring said "too big" once; kt did not ask again
    assert where.kind == ENVELOPE_KIND == "keyring (envelope)"
    found, at = SessionStore(tmp_path, keyring_backend=backend).find("work")
    assert found == big and at is not None and at.kind == "keyring (envelope)"
    item = backend.items[(KEYRING_SERVICE, USER)]
    assert len(item) < 100 and json.loads(item)["kt_envelope"] == 1
    path = sealed_file(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    written = everything_written(tmp_path, backend)
    assert ACCESS not in written and REFRESH not in written and "ada@example.com" not in written
    assert not (tmp_path / "credentials").exists()  # no plaintext copy, ever
    assert json.loads((tmp_path / "sessions.json").read_text())["profiles"] == {"work": "keyring"}


def test_a_session_that_fits_stays_whole_in_the_keyring(tmp_path: Path) -> None:
    backend = SizeLimitedKeyring(LIMIT)
    sessions = store_over(tmp_path, backend)
    sessions.save("work", make_big_oidc_session(), into=sessions.in_keyring)
    assert sealed_file(tmp_path).exists()

    small = make_session()
    where = sessions.find("work")[1]
    assert where is not None
    where.save("work", small)  # e.g. a refresh that brought a smaller token
    assert where.kind == "keyring"
    assert not sealed_file(tmp_path).exists()
    assert backend.items[(KEYRING_SERVICE, USER)] == small.to_json()
    assert sessions.find("work")[0] == small


def test_a_refresh_of_a_sealed_session_keeps_its_key_and_rewrites_the_file(tmp_path: Path) -> None:
    backend = SizeLimitedKeyring(LIMIT)
    sessions = store_over(tmp_path, backend)
    sessions.save("work", make_big_oidc_session(), into=sessions.in_keyring)
    item = backend.items[(KEYRING_SERVICE, USER)]
    before = sealed_file(tmp_path).read_bytes()

    session, where = sessions.find("work")
    assert session is not None and where is not None
    fresh = make_big_oidc_session(refresh_token="ktr_rotated-2")
    where.save("work", fresh)
    assert backend.items[(KEYRING_SERVICE, USER)] == item  # one atomic file write, no key write
    assert sealed_file(tmp_path).read_bytes() != before  # a fresh nonce
    assert sessions.find("work")[0] == fresh


def test_the_configured_limit_seals_without_sending_the_session(tmp_path: Path) -> None:
    backend = MemoryKeyring()
    sessions = store_over(tmp_path, backend, keyring_max_bytes=512)
    session = make_session()
    assert len(session.to_json()) > 512
    sessions.save("work", session, into=sessions.in_keyring)
    assert all(len(v) <= 512 for v in backend.items.values())
    assert sessions.find("work")[0] == session
    assert sessions.find("work")[1].kind == "keyring (envelope)"  # type: ignore[union-attr]


def test_the_environment_sets_the_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEEPTRUSTS_KEYRING_MAX_BYTES", "400")
    backend = MemoryKeyring()
    sessions = store_over(tmp_path, backend)
    sessions.save("work", make_session(), into=sessions.in_keyring)
    assert sealed_file(tmp_path).exists()


class _WinVaultStandIn(MemoryKeyring):
    """Claims to be Windows Credential Manager (2560-byte blobs, UTF-16)."""


_WinVaultStandIn.__module__ = "keyring.backends.Windows"
_WinVaultStandIn.__qualname__ = "WinVaultKeyring"


def test_a_backend_with_a_known_limit_is_never_sent_a_larger_session(tmp_path: Path) -> None:
    backend = _WinVaultStandIn()
    sessions = store_over(tmp_path, backend)
    big = make_session(access_token=ACCESS + "x" * 1300)  # 1300 characters: 2600 bytes in UTF-16
    sessions.save("work", big, into=sessions.in_keyring)
    assert all(ACCESS not in v for v in backend.items.values())
    assert sessions.find("work")[0] == big


def test_a_tampered_file_is_a_store_error_with_the_login_hint(tmp_path: Path) -> None:
    backend = SizeLimitedKeyring(LIMIT)
    sessions = store_over(tmp_path, backend)
    sessions.save("work", make_big_oidc_session(), into=sessions.in_keyring)
    path = sealed_file(tmp_path)
    doc = json.loads(path.read_text())
    ciphertext = doc["ciphertext"]
    doc["ciphertext"] = ciphertext[:40] + ("A" if ciphertext[40] != "A" else "B") + ciphertext[41:]
    path.write_text(json.dumps(doc))

    with pytest.raises(StoreError) as caught:
        sessions.find("work")
    assert "does not open with its key" in caught.value.message
    assert str(path) in caught.value.message
    assert caught.value.hint == "run: kt auth login --profile work"


@pytest.mark.parametrize(
    "damage",
    ["truncated", "not-json", "wrong-nonce"],
)
def test_a_damaged_file_is_a_store_error(tmp_path: Path, damage: str) -> None:
    backend = SizeLimitedKeyring(LIMIT)
    sessions = store_over(tmp_path, backend)
    sessions.save("work", make_big_oidc_session(), into=sessions.in_keyring)
    path = sealed_file(tmp_path)
    doc = json.loads(path.read_text())
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:50])
    elif damage == "not-json":
        path.write_text("\x00" * 20)
    else:
        doc["nonce"] = "AAAA"
        path.write_text(json.dumps(doc))
    with pytest.raises(StoreError) as caught:
        sessions.find("work")
    assert "damaged" in caught.value.message
    assert caught.value.hint == "run: kt auth login --profile work"


def test_a_file_whose_key_is_gone_is_an_error_not_a_missing_session(tmp_path: Path) -> None:
    backend = SizeLimitedKeyring(LIMIT)
    sessions = store_over(tmp_path, backend)
    sessions.save("work", make_big_oidc_session(), into=sessions.in_keyring)
    del backend.items[(KEYRING_SERVICE, USER)]  # e.g. the keyring was reset
    with pytest.raises(StoreError) as caught:
        sessions.find("work")
    assert "its key is no longer in the OS keyring" in caught.value.message
    assert caught.value.hint == "run: kt auth login --profile work"
    # A login may replace it, and a logout clears it.
    assert sessions.choose_for_login("work", insecure_storage=False, credential_store_setting="")
    assert sessions.forget("work") is True
    assert not sealed_file(tmp_path).exists()
    assert sessions.find("work") == (None, None)


def test_a_key_whose_file_is_gone_is_an_error(tmp_path: Path) -> None:
    backend = SizeLimitedKeyring(LIMIT)
    sessions = store_over(tmp_path, backend)
    sessions.save("work", make_big_oidc_session(), into=sessions.in_keyring)
    sealed_file(tmp_path).unlink()
    with pytest.raises(StoreError, match="is missing"):
        sessions.find("work")


def test_a_file_copied_to_another_profile_does_not_open_even_under_its_key(tmp_path: Path) -> None:
    backend = SizeLimitedKeyring(LIMIT)
    sessions = store_over(tmp_path, backend)
    sessions.save("work", make_big_oidc_session(), into=sessions.in_keyring)
    sessions.save(
        "home", make_big_oidc_session(user_email="bob@example.com"), into=sessions.in_keyring
    )
    # Profile swap, key and file both: only the associated data tells them apart.
    backend.items[(KEYRING_SERVICE, "profile:home")] = backend.items[(KEYRING_SERVICE, USER)]
    shutil.copy(sealed_file(tmp_path, "work"), sealed_file(tmp_path, "home"))
    with pytest.raises(StoreError, match="belongs to another profile"):
        sessions.find("home")
    assert sessions.find("work")[0] == make_big_oidc_session()


def test_logout_removes_the_key_and_the_file(tmp_path: Path) -> None:
    backend = SizeLimitedKeyring(LIMIT)
    sessions = store_over(tmp_path, backend)
    sessions.save("work", make_big_oidc_session(), into=sessions.in_keyring)
    sessions.save("other", make_big_oidc_session(), into=sessions.in_keyring)
    assert sessions.known_profiles() == ["other", "work"]

    assert sessions.forget("work") is True
    assert (KEYRING_SERVICE, USER) not in backend.items
    assert not sealed_file(tmp_path).exists()
    where = sessions.find("other")[1]
    assert where is not None and where.delete("other") is True  # e.g. a session that ended
    assert backend.items == {}
    assert list((tmp_path / "envelopes").iterdir()) == []
    assert sessions.forget("work") is False


def test_an_orphaned_file_is_still_listed_for_logout_all(tmp_path: Path) -> None:
    backend = SizeLimitedKeyring(LIMIT)
    sessions = store_over(tmp_path, backend)
    sessions.save("work", make_big_oidc_session(), into=sessions.in_keyring)
    (tmp_path / "sessions.json").unlink()
    assert sessions.known_profiles() == ["work"]


def test_a_keyring_that_refuses_even_the_key_fails_closed(tmp_path: Path) -> None:
    backend = SizeLimitedKeyring(20)
    sessions = store_over(tmp_path, backend)
    with pytest.raises(StoreUnavailable, match="for its size") as caught:
        sessions.save("work", make_big_oidc_session(), into=sessions.in_keyring)
    assert caught.value.hint == UNAVAILABLE_HINT  # a keyring that cannot be used: no plaintext
    assert backend.items == {}
    assert everything_written(tmp_path, backend).count("CANARY") == 0
    assert not sealed_file(tmp_path).exists()


def test_an_unusable_keyring_with_a_sealed_file_cannot_tell(tmp_path: Path) -> None:
    backend = SizeLimitedKeyring(LIMIT)
    sessions = store_over(tmp_path, backend)
    sessions.save("work", make_big_oidc_session(), into=sessions.in_keyring)
    (tmp_path / "sessions.json").unlink()
    headless = SessionStore(tmp_path, keyring_backend=fail.Keyring())
    with pytest.raises(StoreUnavailable):
        headless.find("work")


def test_moving_a_sealed_session_to_the_file_removes_the_sealed_copy(tmp_path: Path) -> None:
    backend = SizeLimitedKeyring(LIMIT)
    sessions = store_over(tmp_path, backend)
    sessions.save("work", make_big_oidc_session(), into=sessions.in_keyring)
    sessions.save("work", make_session(), into=sessions.in_file)
    assert not sealed_file(tmp_path).exists() and backend.items == {}


def test_a_sealed_file_others_may_read_is_refused(tmp_path: Path) -> None:
    backend = SizeLimitedKeyring(LIMIT)
    sessions = store_over(tmp_path, backend)
    sessions.save("work", make_big_oidc_session(), into=sessions.in_keyring)
    path = sealed_file(tmp_path)
    os.chmod(path, 0o644)
    with pytest.raises(StoreError) as caught:
        sessions.find("work")
    assert caught.value.hint == f"run: chmod 600 {path}"
    # A login that would replace it is refused before anything is sent, with the same fix.
    with pytest.raises(KtError, match="mode 0644"):
        sessions.choose_for_login("work", insecure_storage=False, credential_store_setting="")


def test_a_symlink_in_place_of_the_sealed_file_is_refused(tmp_path: Path) -> None:
    backend = SizeLimitedKeyring(LIMIT)
    sessions = store_over(tmp_path, backend)
    sessions.save("work", make_big_oidc_session(), into=sessions.in_keyring)
    path = sealed_file(tmp_path)
    target = tmp_path / "elsewhere.json"
    path.rename(target)
    path.symlink_to(target)
    with pytest.raises(StoreError, match="symbolic link"):
        sessions.find("work")


def test_the_secret_service_round_trip_with_a_configured_small_limit(
    tmp_path: Path, secret_service: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from keyring.backends import SecretService

    for name, value in secret_service.items():
        monkeypatch.setenv(name, value)
    real = SecretService.Keyring()
    sessions = SessionStore(tmp_path, keyring_backend=real, keyring_max_bytes=300)
    profile = f"env-{os.getpid()}"
    big = make_big_oidc_session()
    try:
        sessions.save(profile, big, into=sessions.in_keyring)
        item = real.get_password(KEYRING_SERVICE, f"profile:{profile}")
        assert item is not None and len(item) < 300 and "CANARY" not in item
        found, where = SessionStore(tmp_path, keyring_backend=real).find(profile)
        assert found == big and where is not None and where.kind == "keyring (envelope)"
    finally:
        sessions.forget(profile)
    assert real.get_password(KEYRING_SERVICE, f"profile:{profile}") is None
    assert not sealed_file(tmp_path, profile).exists()
