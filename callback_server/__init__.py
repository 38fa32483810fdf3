"""A loopback receiver for one OAuth 2.0 authorization response (RFC 8252 §7.3, §8.3).

A native app that signs in through the system browser starts a listener on the loopback interface,
sends its address as `redirect_uri` in the authorization request, and waits for the browser to be
redirected back with `code` (or `error`) and `state`::

    from callback_server import receive

    result = receive(state, on_ready=lambda redirect_uri: open_browser(build_url(redirect_uri)))
    if result.error is not None:
        ...  # the authorization server said no; result.error_description is untrusted text
    ...      # compare result.iss with the issuer (RFC 9207), then exchange result.code

To keep the authorization request (state, nonce, PKCE challenge) off the browser's command line,
which any local user can read, let `receive` build it and open the one-time link it gets instead::

    result = receive(state, authorization_url=build_url, on_ready=open_browser)

or, inside an event loop::

    async with CallbackServer(state=state) as server:
        open_browser(build_url(server.redirect_uri))
        result = await server.wait()

What it guarantees:

- It listens on `127.0.0.1` (on `::1` only when IPv4 loopback is unavailable), never on another
  interface, with an OS-chosen port unless `port` is given, and without SO_REUSEPORT. A fixed
  `port` gets SO_REUSEADDR on Linux and macOS, so that the last sign-in's connections in
  TIME-WAIT do not block it; a second live listener on it is still refused (SO_EXCLUSIVEADDRUSE on
  Windows). An OS-chosen port has neither.
  `redirect_uri` uses the same literal: `http://127.0.0.1:PORT/callback` or `http://[::1]:PORT/...`.
  `host="::1"` listens on ::1 only (an error where there is no IPv6 loopback). `host="localhost"`
  (for providers that refuse IP literals) listens on the same port on both 127.0.0.1 and ::1,
  each bound to its literal as above, never on the name; where there is no IPv6 loopback, on
  127.0.0.1 alone (logged at debug level). Its redirect_uri is `http://localhost:PORT/callback`.
- Only `GET` on exactly `path` with `Host` the redirect_uri's (`127.0.0.1:PORT`, `[::1]:PORT` or
  `localhost:PORT`, on every family) counts; fetch()/subresource requests
  (`Sec-Fetch-Mode` other than `navigate`) are refused. A response completes the wait only if its
  `state` matches (constant-time) and `code`, `state`, `iss`, `error` each appear at most once,
  with exactly one of `code`/`error`. Anything else gets a static page and the wait goes on, so a
  stale tab cannot end the sign-in. The first valid response wins; there is never a second result.
- Pages are static: the built-in ones echo no query value and have no scripts or links (pages of
  your own, `Pages(success=..., error=..., invalid=..., used=..., not_found=...)` passed as
  `pages=`, must not either). They share one look, `PAGE_STYLE` (kt-devserver's pages use it
  too), in an inline `<style>` element allowed by its hash alone.
  Every response carries `Content-Security-Policy: default-src 'none'; style-src
  'sha256-<PAGE_STYLE's hash>'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`
  (`CONTENT_SECURITY_POLICY`: no script, nothing fetched, no other style),
  `Referrer-Policy: no-referrer`, `Cache-Control: no-store` and `X-Content-Type-Options: nosniff`.
- A one-time link (`one_time_link(url)`: `http://127.0.0.1:PORT/<256 random bits>`, with the
  redirect_uri's host) answers
  its first GET with a 302 to `url` and every later GET with the `used` page; a second fetch ends
  the wait with `LinkReused` (someone else opened the link), unless a valid callback came first.
- Nothing about requests is logged: no access log, and aiohttp's parse errors lose their details.
- `wait()` closes the listener before it returns or raises: on success, on the timeout
  (`CallbackTimeout`), on cancellation and on Ctrl-C. `receive()` raises KeyboardInterrupt after
  closing, and lets exceptions from `on_ready` through after closing.
- Bind failures raise `CallbackError` with a one-line message naming the port (`PortInUse` when
  a fixed port is taken: it never falls back to another port).

`parse_redirect()` applies the same checks to a redirect URL a person pasted (for flows where the
browser runs on another machine). `CallbackServer.offer_pasted(text)` (and `receive`'s
`accept_pasted`) takes such a pasted answer while the listener waits: the whole redirected URL, or
`CODE#STATE` from a provider's "copy this code" page; same state check, first answer wins, pasted
or called back, and a second is never taken. `parse_pasted()` judges one without a listener (the
redirect went to a provider's own "copy this code" page); an address that is not the
`redirect_uri` it is checked against raises `NotThisRedirect`, so a caller with more than one
pending request can try the next.

It needs aiohttp and nothing else; importing it is cheap: aiohttp is loaded when a server starts.
"""

from ._pages import CONTENT_SECURITY_POLICY, PAGE_STYLE, Pages
from ._result import (
    CallbackError,
    CallbackResult,
    CallbackTimeout,
    LinkReused,
    NotThisRedirect,
    PortInUse,
    parse_pasted,
    parse_redirect,
)
from ._server import CallbackServer, receive

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "PAGE_STYLE",
    "CallbackError",
    "CallbackResult",
    "CallbackServer",
    "CallbackTimeout",
    "LinkReused",
    "NotThisRedirect",
    "Pages",
    "PortInUse",
    "parse_pasted",
    "parse_redirect",
    "receive",
]
