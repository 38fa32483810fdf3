"""Where sessions live: the OS keyring by default, a 0600 file only when the user opts in.

`SessionStore` is the way in; the backends (`keyring_store`, `file_store`, and `envelope` for
sessions too large for the keyring: sealed in a file, the key in the keyring), the sessions index
(`index`) and the locks (`locks`) are its parts. Importing this package imports neither
`keyring`, `filelock` nor `cryptography`.
"""

from .file_store import FileStore
from .keyring_store import (
    KEYRING_SERVICE,
    UNAVAILABLE_HINT,
    KeyringStore,
    keyring_max_bytes,
    keyring_timeout,
)
from .locks import refresh_lock
from .session_store import ENVELOPE_KIND, CredentialStore, Location, SessionStore

__all__ = [
    "ENVELOPE_KIND",
    "KEYRING_SERVICE",
    "UNAVAILABLE_HINT",
    "CredentialStore",
    "FileStore",
    "KeyringStore",
    "Location",
    "SessionStore",
    "keyring_max_bytes",
    "keyring_timeout",
    "refresh_lock",
]
