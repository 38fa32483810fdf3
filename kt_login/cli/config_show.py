"""`kt config show`: the effective settings and where each one comes from."""

from __future__ import annotations

import click

from ..config import CONFIG_FILE
from ..errors import KtError
from ..store import FileStore, KeyringStore
from .app import Invocation, common_options
from .examples import examples


@examples(
    "kt config show",
    "kt config show --profile work --json",
)
@click.command("show")
@common_options
def show(inv: Invocation) -> None:
    """Show profile, API URL, credential store, config dir, and the issuer and client id of
    browser and device sign-ins, each with its source (flag, environment, config file,
    session, default).

    With a stored session, session_stored_in says where it is: keyring, keyring (envelope) for
    one too large for the keyring, or file (plaintext)."""
    run_show(inv)


def run_show(inv: Invocation) -> None:
    try:
        session, where = inv.find_session()
    except KtError:
        session, where = None, None
    settings = inv.settings_for(session)
    doc = {
        **settings.as_dict(),
        "config_file": str(settings.dir / CONFIG_FILE),
        "api_token": {
            "value": "set (hidden)" if inv.env_token else "not set",
            "source": "environment" if inv.env_token else "default",
        },
    }
    if where is not None:
        # where the profile's session is, e.g. "keyring (envelope)": too big for the keyring
        doc["session_stored_in"] = {"value": where.kind, "source": "session"}
    lines = [
        f"{name:17} {_worded(name, entry['value'])}  ({entry['source']})"
        for name, entry in doc.items()
        if isinstance(entry, dict)
    ]
    lines.append(f"{'config_file':17} {doc['config_file']}")
    inv.console.result(doc, lines)


# The credential_store setting in the words `kt auth status` uses for where a session is.
_STORE_WORDS = {"keyring": KeyringStore.kind, "file": FileStore.kind}


def _worded(name: str, value: str) -> str:
    return _STORE_WORDS.get(value, value) if name == "credential_store" else value
