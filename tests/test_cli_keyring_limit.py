"""The keyring's size limit as a setting (issue 13 item 6): `keyring_max_bytes` in config.toml
(`kt config set keyring_max_bytes N`), beside KEEPTRUSTS_KEYRING_MAX_BYTES, which wins. The real
`kt` against kt-devserver and the real Secret Service (which takes any size: the limit is kt's)."""

from __future__ import annotations

import uuid
from pathlib import Path

from kt_login.config import resolve
from tests.fixtures.devserver import DevServer
from tests.kt_process import ALICE, base_env, kt, password_login


def test_the_configured_limit_seals_a_session_and_says_where_it_comes_from(
    tmp_path: Path, devserver: DevServer, secret_service: dict[str, str]
):
    env = base_env(
        tmp_path,
        KEEPTRUSTS_API_URL=devserver.url,
        KEEPTRUSTS_PROFILE=f"cfg-{uuid.uuid4().hex[:12]}",
        **secret_service,
    )
    shown = kt("config", "show", "--json", env=env).json()
    assert shown["keyring_max_bytes"] == {"value": "0", "source": "default"}

    r = kt("config", "set", "keyring_max_bytes", "256", env=env)
    assert r.code == 0, r.stderr
    assert (
        'keyring_max_bytes = "256"'
        in (Path(env["KEEPTRUSTS_CONFIG_DIR"]) / "config.toml").read_text()
    )
    shown = kt("config", "show", "--json", env=env).json()
    assert shown["keyring_max_bytes"] == {"value": "256", "source": "config file"}

    login = password_login(env, ALICE)
    assert login.code == 0, login.stderr
    assert "Session stored in: keyring (envelope)." in login.stdout
    try:
        status = kt("auth", "status", "--json", env=env)
        assert status.json()["credential_source"] == "keyring (envelope)"
        doctor = kt("auth", "doctor", "--json", env=env)
        (check,) = [c for c in doctor.json()["checks"] if "sealed" in (c.get("detail") or "")]
        assert (
            "sessions over 256 bytes (keyring_max_bytes in config.toml) are sealed"
            in (check["detail"])
        )
        # the environment wins over the file
        both = {**env, "KEEPTRUSTS_KEYRING_MAX_BYTES": "128"}
        shown = kt("config", "show", "--json", env=both).json()
        assert shown["keyring_max_bytes"] == {"value": "128", "source": "environment"}
    finally:
        assert kt("auth", "logout", env=env).code == 0


def test_a_limit_that_is_not_a_size_is_refused(tmp_path: Path):
    env = base_env(tmp_path)
    for bad in ("-1", "2k", "1e3", "99999999999999"):
        r = kt("config", "set", "keyring_max_bytes", "--", bad, env=env)
        assert r.code == 2, (bad, r.stderr)
        assert "keyring_max_bytes must be a number of bytes" in r.stderr
        assert "Traceback" not in r.stderr
    assert not (Path(env["KEEPTRUSTS_CONFIG_DIR"]) / "config.toml").exists()
    # a profile has no such key: the store is one for every profile
    r = kt("config", "set", "keyring_max_bytes", "256", "--profile", "work", env=env)
    assert r.code == 2 and "keyring_max_bytes is not a profile's setting" in r.stderr

    cfg = Path(env["KEEPTRUSTS_CONFIG_DIR"])
    cfg.mkdir(mode=0o700, parents=True)
    (cfg / "config.toml").write_text('keyring_max_bytes = "lots"\n')
    (cfg / "config.toml").chmod(0o600)
    r = kt("auth", "status", env=env)
    assert r.code != 0 and "Traceback" not in r.stderr
    assert "keyring_max_bytes must be a number of bytes" in r.stderr
    assert kt("config", "unset", "keyring_max_bytes", env=env).code == 0
    assert resolve(env).keyring_max_bytes.value == "0"
