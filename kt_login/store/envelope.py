"""Sessions too large for the keyring (issue 13 item 6): sealed with AES-256-GCM in a 0600 file,
<config_dir>/envelopes/<profile>.json, whose random 256-bit key is the profile's keyring item.

The file alone is useless (the key is in the keyring), the key alone holds no token, and the
associated data binds the file to its profile: one copied over another profile's does not open.
There is no plaintext fallback here. This module knows nothing of the keyring or the index: the
facade (session_store.py) hands it the key. `cryptography` (AES-GCM) is imported only to seal or
open, so importing the store stays light.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from pathlib import Path

from ..config import check_profile_name
from ..errors import StoreError
from ..session import Session, relogin_hint
from ..trusted_files import read_file
from .private_files import (
    atomic_write,
    check_private_dir,
    check_private_entry,
    delete_private_file,
    make_config_dir,
    make_private_dir,
    profile_files,
)

ENVELOPES_DIR = "envelopes"
# A sealed session is base64 of at most the file store's 1 MiB session, plus a little.
MAX_ENVELOPE_BYTES = 2 << 20
KEY_BYTES = 32
NONCE_BYTES = 12
FORMAT = 1
ALGORITHM = "A256GCM"
# The keyring item of a sealed session: {"kt_envelope": 1, "key": "<base64url>"}.
_KEY_FIELD = "kt_envelope"


def new_key() -> bytes:
    """A fresh random 256-bit key (os.urandom)."""
    return os.urandom(KEY_BYTES)


def key_item(key: bytes) -> str:
    """What the keyring holds for a sealed session: the key, and nothing of the session."""
    return json.dumps({_KEY_FIELD: FORMAT, "key": _b64(key)}, separators=(",", ":"))


def key_from_item(text: str) -> bytes | None:
    """The key when `text` is the item of a sealed session, else None (e.g. a session kept whole
    in the keyring). A sealed item that is damaged is a StoreError."""
    if _KEY_FIELD not in text[:32]:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or _KEY_FIELD not in data:
        return None
    key = _unb64(data.get("key"))
    if data.get(_KEY_FIELD) != FORMAT or key is None or len(key) != KEY_BYTES:
        raise StoreError("the key of the sealed session in the OS keyring is damaged")
    return key


def associated_data(profile: str) -> bytes:
    """What each sealed file is bound to: the format and the profile it was written for."""
    return f"kt-envelope:{FORMAT}:{ALGORITHM}:profile:{profile}".encode()


class EnvelopeFiles:
    """The sealed sessions' files. Knows nothing of the keyring or the index."""

    def __init__(self, config_dir: Path) -> None:
        self.config_dir = Path(config_dir)
        self.directory = self.config_dir / ENVELOPES_DIR

    def path(self, profile: str) -> Path:
        return self.directory / f"{check_profile_name(profile)}.json"

    def exists(self, profile: str) -> bool:
        """Whether the profile has a sealed file, without reading it; something kt must not use
        there (a link, another user's file, one others may read) is a StoreError with its fix."""
        path = self.path(profile)
        return check_private_dir(self.directory) and check_private_entry(path, secret=True)

    def seal(self, profile: str, session: Session, key: bytes) -> None:
        """Write the session encrypted under `key` (a fresh nonce each time), atomically."""
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        path = self.path(profile)
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(key).encrypt(nonce, session.to_json().encode(), associated_data(profile))
        body = {"alg": ALGORITHM, "ciphertext": _b64(sealed), "kt_envelope": FORMAT}
        body["nonce"] = _b64(nonce)
        make_config_dir(self.config_dir)
        make_private_dir(self.directory)
        atomic_write(path, json.dumps(body, sort_keys=True).encode() + b"\n")

    def open(self, profile: str, key: bytes) -> Session | None:
        """The session sealed for `profile` under `key`; None when there is no file. A file that
        does not open (changed, from another profile, sealed under another key) is a StoreError
        with the login that replaces it."""
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        path = self.path(profile)
        if not check_private_dir(self.directory):
            return None
        data = read_file(path, limit=MAX_ENVELOPE_BYTES, error=StoreError, secret=True)
        if data is None:
            return None
        nonce, sealed = _parse(data)
        if nonce is None or sealed is None:
            raise StoreError(
                f"the sealed session of profile {profile!r} in {path} is damaged",
                hint=relogin_hint(profile),
            )
        try:
            plain = AESGCM(key).decrypt(nonce, sealed, associated_data(profile))
        except InvalidTag:
            raise StoreError(
                f"the sealed session of profile {profile!r} in {path} does not open with its key "
                "in the OS keyring (it was changed, or it belongs to another profile)",
                hint=relogin_hint(profile),
            ) from None
        return Session.from_json(plain, profile=profile)

    def delete(self, profile: str) -> bool:
        """Delete the file (and leftovers of an interrupted save); True if there was one."""
        return delete_private_file(self.path(profile))

    def profiles(self) -> set[str]:
        """Profiles with a sealed file here (valid names only)."""
        return profile_files(self.directory)


def _parse(data: bytes) -> tuple[bytes | None, bytes | None]:
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None, None
    if not isinstance(doc, dict) or doc.get("kt_envelope") != FORMAT or doc.get("alg") != ALGORITHM:
        return None, None
    nonce, sealed = _unb64(doc.get("nonce")), _unb64(doc.get("ciphertext"))
    if nonce is None or len(nonce) != NONCE_BYTES:
        return None, None
    return nonce, sealed


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: object) -> bytes | None:
    if not isinstance(text, str) or not text.isascii():
        return None
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
