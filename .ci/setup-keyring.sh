#!/usr/bin/env bash
# What the keyring tests need (tests/fixtures/secret_service.py): a D-Bus daemon and GNOME
# Keyring's Secret Service. scripts/setup keeps the list of what the tests need and installs it
# (as root, or it prints the apt-get command); this runs it and shows the versions. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup
gnome-keyring-daemon --version
dbus-daemon --version | head -n 1
