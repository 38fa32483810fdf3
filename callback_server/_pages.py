"""The three pages the listener answers a browser with, and the built-in ones."""

from __future__ import annotations

from dataclasses import dataclass

# Sent with every response (the pages below are static, with nothing to load or run).
CONTENT_SECURITY_POLICY = "default-src 'none'"


def _page(title: str, *paragraphs: str) -> str:
    body = "".join(f"<p>{p}</p>\n" for p in paragraphs)
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title}</title>\n</head>\n<body>\n<h1>{title}</h1>\n{body}</body>\n</html>\n"
    )


@dataclass(frozen=True)
class Pages:
    """The HTML sent for a valid response (`success` or `error`), for anything else (`invalid`),
    and for a one-time sign-in link fetched a second time (`used`, see
    `CallbackServer.one_time_link`).

    Sent as they are, with `Content-Security-Policy: default-src 'none'`: keep them static, with no
    script, style sheet, image or link, and never put a query value into one.
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
    )
    invalid: str = _page(
        "Not a valid sign-in response",
        "This page does not belong to the sign-in in progress: the link is out of date, was already"
        " used, or was not meant for this terminal.",
        "If you are signing in, return to the terminal and use the link it shows there.",
    )
    used: str = _page(
        "This sign-in link was already used",
        "This link works once, and it had already been opened, perhaps by someone else on this"
        " computer. The sign-in was stopped so that nobody else can finish it.",
        "Return to the terminal and start the sign-in again.",
    )
    not_found: str = _page(
        "Nothing here",
        "This address belongs to a sign-in listener that waits for one sign-in response; there"
        " is no page here.",
        "If you are signing in, return to the terminal and use the link it shows there.",
    )


DEFAULT_PAGES = Pages()
