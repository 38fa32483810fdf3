"""What ships: the wheel carries every module and data file (kt_devserver's templates included), the
sdist carries the sources without local caches, and CI checks the installed wheel for real
(scripts/check-wheel, run by .ci/run: clean venv, commands, browser e2e against the install)."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import kt_login
from tests.kt_process import REPO

PACKAGES = ("kt_login", "kt_devserver", "callback_server")


def tracked(*paths: str) -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "-z", *paths], cwd=REPO, capture_output=True, check=True
    ).stdout.decode()
    return [p for p in out.split("\0") if p and (REPO / p).is_file()]


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(REPO)],
        cwd=out,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


@pytest.fixture(scope="module")
def wheel_names(dist: Path) -> set[str]:
    (wheel,) = dist.glob("*.whl")
    return set(zipfile.ZipFile(wheel).namelist())


@pytest.fixture(scope="module")
def sdist_names(dist: Path) -> set[str]:
    (sdist,) = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as tar:
        return {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}


@pytest.mark.timeout(300)
def test_wheel_has_every_module_and_data_file(wheel_names):
    missing = [p for p in tracked(*PACKAGES) if p not in wheel_names]
    assert not missing, missing
    assert any(p.startswith("kt_devserver/templates/") for p in wheel_names)


def test_wheel_has_only_the_packages(wheel_names):
    tops = {n.split("/", 1)[0] for n in wheel_names}
    version = kt_login.__version__
    assert tops == {*PACKAGES, f"kt_login-{version}.dist-info"}, tops


def test_wheel_entry_points(dist, wheel_names):
    (wheel,) = dist.glob("*.whl")
    name = f"kt_login-{kt_login.__version__}.dist-info/entry_points.txt"
    entry_points = zipfile.ZipFile(wheel).read(name).decode()
    assert "kt = kt_login.cli:entry" in entry_points
    assert "kt-devserver = kt_devserver.__main__:main" in entry_points
    assert "kt_login/__main__.py" in wheel_names and "kt_devserver/__main__.py" in wheel_names


def test_sdist_has_sources_not_caches(sdist_names):
    wanted = tracked(*PACKAGES, "tests", "e2e", "docs", "scripts", "README.md")
    missing = [p for p in wanted if p not in sdist_names]
    assert not missing, missing
    assert "pyproject.toml" in sdist_names
    junk = {n.split("/", 1)[0] for n in sdist_names} & {".hypothesis", ".demo", ".venv", "dist"}
    assert not junk, junk


def test_templates_live_with_the_package_that_renders_them():
    assert not tracked("templates")
    templates = tracked("kt_devserver/templates")
    assert templates and all(p.endswith(".html") for p in templates)


def test_ci_checks_the_installed_wheel():
    script = REPO / "scripts" / "check-wheel"
    assert script.is_file() and os.access(script, os.X_OK)
    subprocess.run(["bash", "-n", str(script)], check=True)
    text = script.read_text(encoding="utf-8")
    for needle in ("-m build", "-m venv", "e2e/test_browser_login.py", "kt completion bash"):
        assert needle in text, needle
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert "scripts/check-wheel" in [line.strip() for line in ci]
