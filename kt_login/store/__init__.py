"""Where sessions live: the OS keyring by default, a 0600 file only when the user opts in.

`SessionStore` is the way in; the backends (`keyring_store`, `file_store`), the sessions index
(`index`) and the locks (`locks`) are its parts. Importing this package imports neither
`keyring` nor `filelock`.
"""

from .file_store import FileStore
from .keyring_store import KEYRING_SERVICE, UNAVAILABLE_HINT, KeyringStore, keyring_timeout
from .locks import refresh_lock
from .session_store import CredentialStore, Location, SessionStore

__all__ = [
    "KEYRING_SERVICE",
    "UNAVAILABLE_HINT",
    "CredentialStore",
    "FileStore",
    "KeyringStore",
    "Location",
    "SessionStore",
    "keyring_timeout",
    "refresh_lock",
]
