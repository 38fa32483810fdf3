"""The pages the listener answers a browser with, the built-in ones, and their one style sheet.

The built-in pages look like kt-devserver's (its `templates/as_base.html` takes `PAGE_STYLE` from
here: one home for the look) and stay static: no script, no image, no link, nothing fetched, and
no query value in them. Their style is one inline `<style>` element that the listener's
Content-Security-Policy allows by its hash (`CONTENT_SECURITY_POLICY`): no 'unsafe-inline', so
nothing else on a page could ever be styled, scripted or loaded.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

# Typography, colours and the card layout of the sign-in pages (kt-devserver's as well).
PAGE_STYLE = """
  body { font-family: system-ui, sans-serif; background: #f4f5f7; color: #1d2330; margin: 0; }
  main { max-width: 26rem; margin: 4rem auto; background: #fff; padding: 2rem;
         border-radius: 8px; box-shadow: 0 1px 4px rgba(0, 0, 0, .12); }
  h1 { font-size: 1.35rem; margin-top: 0; }
  .error { color: #a4161a; background: #fdecea; padding: .6rem; border-radius: 4px; }
  .muted { color: #5b6475; font-size: .9rem; }
  code { background: #eef0f4; padding: 0 .25rem; border-radius: 3px; }
"""


def _hash_source(text: str) -> str:
    """A CSP hash-source for an inline element's exact text (CSP Level 3 §2.3.1)."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


# Sent with every response: nothing may be loaded, run, framed or submitted, and the only style
# is PAGE_STYLE's element. default-src does not cover base-uri, form-action and frame-ancestors.
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src {_hash_source(PAGE_STYLE)}; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)


def _page(title: str, *paragraphs: str, error: bool = False) -> str:
    first = '<p class="error">' if error else "<p>"
    body = "".join(f"{first if i == 0 else '<p>'}{p}</p>\n" for i, p in enumerate(paragraphs))
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="referrer" content="no-referrer">\n'
        f"<title>{title}</title>\n<style>{PAGE_STYLE}</style>\n</head>\n<body>\n<main>\n"
        f"<h1>{title}</h1>\n{body}"
        '<p class="muted">Sent by the sign-in listener of the program you are signing in to,'
        " on this computer.</p>\n</main>\n</body>\n</html>\n"
    )


@dataclass(frozen=True)
class Pages:
    """The HTML sent for a valid response (`success` or `error`), for a request to the callback
    path that is not one (`invalid`), for a one-time sign-in link fetched a second time (`used`,
    see `CallbackServer.one_time_link`), and for any other path (`not_found`).

    Sent as they are, with `CONTENT_SECURITY_POLICY`: keep them static, with no script, style
    sheet, image or link (an inline style other than `<style>` + PAGE_STYLE + `</style>` is
    blocked), and never put a query value into one.
    """

    success: str = _page(
        "Sign-in received",
        "You can close this tab and return to the terminal, which is finishing the sign-in.",
    )
    error: str = _page(
        "Sign-in not completed",
        "The sign-in service did not sign you in. Return to the terminal to see why and what to do"
        " next.",
        "You can close this tab.",
        error=True,
    )
    invalid: str = _page(
        "Not a valid sign-in response",
        "This page does not belong to the sign-in in progress: the link is out of date, was already"
        " used, or was not meant for this terminal.",
        "If you are signing in, return to the terminal and use the link it shows there.",
        error=True,
    )
    used: str = _page(
        "This sign-in link was already used",
        "This link works once, and it had already been opened, perhaps by someone else on this"
        " computer. The sign-in was stopped so that nobody else can finish it.",
        "Return to the terminal and start the sign-in again.",
        error=True,
    )
    not_found: str = _page(
        "Nothing here",
        "This address belongs to a sign-in listener that waits for one sign-in response; there"
        " is no page here.",
        "If you are signing in, return to the terminal and use the link it shows there.",
    )


DEFAULT_PAGES = Pages()
