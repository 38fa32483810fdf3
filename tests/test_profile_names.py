"""One rule for profile names (config.check_profile_name), used by the settings and the store:
a name becomes a file name and a keyring username, so only a strict full match passes."""

from __future__ import annotations

from pathlib import Path

import pytest

from kt_login import config
from kt_login.cli import main
from kt_login.cli.app import App
from kt_login.errors import UsageError

REFUSED = ["work\n", "work\r\n", "work\n\n", "\nwork", "../x", "", ".x", "-x", "a b", "a" * 65, "é"]


@pytest.mark.parametrize("name", REFUSED)
def test_check_profile_name_refuses(name: str) -> None:
    assert not config.is_profile_name(name)
    with pytest.raises(UsageError, match="invalid profile name") as info:
        config.check_profile_name(name)
    assert "\n" not in info.value.message
    assert info.value.exit_code == 2


@pytest.mark.parametrize("name", ["default", "a", "work-2", "ci_bot", "x.y", "A" * 64, "9lives"])
def test_check_profile_name_accepts(name: str) -> None:
    assert config.is_profile_name(name)
    assert config.check_profile_name(name) == name


@pytest.mark.parametrize("source", ["flag", "environment", "config file"])
def test_a_profile_name_ending_in_a_newline_is_a_one_line_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], source: str
) -> None:
    env = {"KEEPTRUSTS_CONFIG_DIR": str(tmp_path)}
    args = ["auth", "status"]
    if source == "flag":
        args += ["--profile", "work\n"]
    elif source == "environment":
        env["KEEPTRUSTS_PROFILE"] = "work\n"
    else:
        (tmp_path / "config.toml").write_text('profile = "work\\n"\n')
    code = main(args, obj=App(env=env, interactive=lambda: False))
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert captured.err.splitlines() == [
        "Error: invalid profile name 'work\\n': use 1-64 letters, digits, '-', '_' or '.', "
        "starting with a letter or digit"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == (
        ["config.toml"] if source == "config file" else []
    )
