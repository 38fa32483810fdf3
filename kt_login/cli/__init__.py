"""The `kt` command line: click commands only; errors become exit codes here and nowhere else."""

from __future__ import annotations

import os
import sys

import click

from .._version import __version__
from ..errors import EXIT_INTERRUPTED, EXIT_USAGE, KtError
from ..output import Console, help_width
from ..text import clean
from .lazy import Lazy, LazyGroup

# Every command is declared here: its name, where it lives ("module:attribute") and its short
# help, the first sentence of its docstring, which `kt … --help` lists without importing it.
# Adding a command is one `Lazy(...)` line in its group; tests/test_cli_lazy.py fails, printing
# the line to write, when a declared short help is not the command's own.


@click.group(
    cls=LazyGroup,
    lazy_subcommands={
        "completion": Lazy(
            "kt_login.cli.completion:completion",
            "Print the shell-completion script for SHELL (bash, zsh or fish).",
        ),
    },
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, prog_name="kt")
def cli() -> None:
    """kt: the Keeptrusts command line."""


@cli.group(
    cls=LazyGroup,
    lazy_subcommands={
        "login": Lazy(
            "kt_login.cli.login:login", "Sign in; the session is kept for later commands."
        ),
        "logout": Lazy(
            "kt_login.cli.logout:logout",
            "Revoke the active profile's session on the server and remove it from this machine.",
        ),
        "whoami": Lazy(
            "kt_login.cli.whoami:whoami",
            "Show the current user, organization, role and scopes, as the server sees them.",
        ),
        "status": Lazy(
            "kt_login.cli.status:status",
            "Show the active profile, API URL, account, expiry and credential source.",
        ),
        "print-access-token": Lazy(
            "kt_login.cli.print_token:print_access_token",
            "Print an access token for the profile, refreshed if needed, alone on stdout.",
        ),
        "refresh": Lazy(
            "kt_login.cli.refresh_cmd:refresh",
            "Refresh the profile's session now, whatever its expiry.",
        ),
        "doctor": Lazy(
            "kt_login.cli.doctor:doctor",
            "Check what signing in needs here, and say how to fix what is wrong.",
        ),
        "switch": Lazy(
            "kt_login.cli.switch:switch",
            "Make PROFILE the active profile (`profile` in config.toml) for every later command.",
        ),
    },
)
def auth() -> None:
    """Sign in, see who you are, manage sessions and scoped API tokens.

    Credentials: KEEPTRUSTS_API_TOKEN, when set, is used instead of any stored session and sent
    only to the configured API URL (KEEPTRUSTS_API_URL, --api-url, the profile's, or
    https://api.keeptrusts.com).
    """


@auth.group(
    cls=LazyGroup,
    lazy_subcommands={
        "create": Lazy("kt_login.cli.token:create", "Create a token."),
        "list": Lazy(
            "kt_login.cli.token:list_tokens",
            "List active tokens (with --all, revoked and expired ones too), never their secrets.",
        ),
        "revoke": Lazy(
            "kt_login.cli.token:revoke",
            "Revoke a token: every request made with it fails from now on.",
        ),
        "rotate": Lazy(
            "kt_login.cli.token:rotate",
            "Replace a token in one step: the old one is revoked and a new one with the same "
            "name, scopes and lifetime is issued (or --expires-in-days).",
        ),
        "exchange": Lazy(
            "kt_login.cli.token:exchange",
            "Turn the signed-in session into a short-lived token for an agent, with fewer scopes.",
        ),
    },
)
def token() -> None:
    """Create, list, revoke and rotate scoped API tokens; exchange the session for an agent's."""


@auth.group(
    cls=LazyGroup,
    lazy_subcommands={
        "challenge": Lazy(
            "kt_login.cli.mfa:challenge",
            "Complete an MFA challenge; the new session has mfa_authenticated: true.",
        ),
    },
)
def mfa() -> None:
    """Multi-factor authentication."""


@cli.group(
    "config",
    cls=LazyGroup,
    lazy_subcommands={
        "show": Lazy(
            "kt_login.cli.config_show:show",
            "Show profile, API URL, credential store, config dir, and the issuer and client id "
            "of browser and device sign-ins, each with its source (flag, environment, config "
            "file, session, default).",
        ),
        "get": Lazy(
            "kt_login.cli.config_edit:get", "Print KEY's value in config.toml, alone on stdout."
        ),
        "set": Lazy("kt_login.cli.config_edit:set_", "Set KEY to VALUE in config.toml."),
        "unset": Lazy("kt_login.cli.config_edit:unset", "Remove KEY from config.toml."),
    },
)
def config_group() -> None:
    """Inspect and change kt's configuration (config.toml)."""


def main(argv: list[str] | None = None, *, obj: object = None) -> int:
    """Run `kt`; returns the exit code (0 ok, 1 error, 2 usage, 3 login required, 4 MFA
    required, 5 network, 6 server error, 7 validation failed, 130 interrupted)."""
    args = common_options_last(sys.argv[1:] if argv is None else argv)
    json_mode = "--json" in args
    console = Console(json_mode=json_mode)
    debug = "--debug" in args or _debug()
    if debug:
        from ..debuglog import enable  # only with --debug: `logging` costs kt --help ~15 ms

        enable()
    try:
        cli.main(args, prog_name="kt", standalone_mode=False, obj=obj, terminal_width=help_width())
    except KtError as exc:
        console.error(exc.as_json(), clean(exc.message), exc.hint and clean(exc.hint))
        return exc.exit_code
    except click.exceptions.Abort:
        console.error(
            {"error": {"code": "kt.interrupted", "message": "interrupted", "exit_code": 130}},
            "interrupted",
        )
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        console.error(
            {"error": {"code": "kt.interrupted", "message": "interrupted", "exit_code": 130}},
            "interrupted",
        )
        return EXIT_INTERRUPTED
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        if json_mode:
            doc = {
                "error": {
                    "code": "kt.usage",
                    "message": exc.format_message(),
                    "exit_code": exc.exit_code,
                }
            }
            console.error(doc, exc.format_message())
        else:
            exc.show()
        return exc.exit_code if exc.exit_code else EXIT_USAGE
    except Exception as exc:  # noqa: BLE001 - last line of defence: one line, no traceback
        console.error(
            {"error": {"code": "kt.internal", "message": type(exc).__name__, "exit_code": 1}},
            f"unexpected {type(exc).__name__}; please report it (run with --debug for details)",
        )
        if debug:
            raise
        return 1
    return 0


_COMMON_WITH_VALUE = ("--profile", "--api-url")
_COMMON_FLAGS = ("--json", "--debug")


def common_options_last(args: list[str]) -> list[str]:
    """The command line with the options every command takes (--profile, --api-url, --json,
    --debug) moved from before the verbs to the end, where click reads them: `kt --profile work
    auth whoami` is `kt auth whoami --profile work` (issue 12). Nothing moves past `--` or the
    first option of the command's own."""
    moved: list[str] = []
    kept: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in _COMMON_FLAGS:
            moved.append(arg)
            i += 1
        elif arg in _COMMON_WITH_VALUE and i + 1 < len(args):
            moved += args[i : i + 2]
            i += 2
        elif arg.partition("=")[0] in _COMMON_WITH_VALUE and "=" in arg:
            moved.append(arg)
            i += 1
        elif arg.startswith("-"):
            break  # "--", --help, --version, or an option of the command's: click reads on
        else:
            kept.append(arg)
            i += 1
    return [*kept, *args[i:], *moved] if moved else list(args)


def _debug() -> bool:
    return os.environ.get("KT_DEBUG") == "1"


def entry() -> None:
    code = main()
    # Python's own shutdown (clearing ~700 modules, collecting garbage) cost a browser sign-in,
    # which has loaded aiohttp, joserfc and cryptography, more than its work after the
    # callback (issue 16). By now kt has closed what it opened and joined what it started:
    # flush what was written and leave.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a reader that went away (`kt … | head`), a closed stream
            pass
    if "logging" in sys.modules:  # --debug's handler
        sys.modules["logging"].shutdown()
    os._exit(code)
