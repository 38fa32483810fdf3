#!/usr/bin/env bash
# What the keyring tests need (tests/fixtures/secret_service.py): a D-Bus daemon and GNOME
# Keyring's Secret Service. Debian/Ubuntu, run as root; idempotent.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
if ! command -v gnome-keyring-daemon >/dev/null || ! command -v dbus-daemon >/dev/null; then
  apt-get update -qq
  apt-get install -y -qq gnome-keyring dbus >/dev/null
fi
gnome-keyring-daemon --version
dbus-daemon --version | head -n 1
