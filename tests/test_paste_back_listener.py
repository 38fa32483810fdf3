"""The listener's side of paste-back (issue 13 item 1): a pasted answer is judged by the same
rule as a callback (`judge`: same state, single-valued parameters) and the first answer wins,
pasted or called back; a second is never taken."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from urllib.parse import urlencode

import pytest

from callback_server import CallbackError, CallbackServer
from callback_server._result import pasted_query

STATE = "st4te-Xq9vR2mP7kL1nB8cZ3wD5f"
URI = "http://127.0.0.1:5000/callback"


def test_the_forms_a_paste_may_take():
    whole = f"{URI}?code=abc&state={STATE}&iss=https%3A%2F%2Fas.test"
    assert pasted_query(f"  {whole}\n", redirect_uri=URI) == whole.split("?", 1)[1]
    assert pasted_query(f"abc#{STATE}", redirect_uri=URI) == urlencode(
        {"code": "abc", "state": STATE}
    )
    assert pasted_query(f"abc  {STATE}", redirect_uri=URI) == urlencode(
        {"code": "abc", "state": STATE}
    )


@pytest.mark.parametrize(
    ("pasted", "why"),
    [
        ("abc", "a code alone"),
        ("", "nothing"),
        ("x" * 9000, "nothing"),
        (f"http://127.0.0.1:5001/callback?code=abc&state={STATE}", "not this sign-in's redirect"),
        (f"https://127.0.0.1:5000/callback?code=abc&state={STATE}", "not this sign-in's redirect"),
        (f"http://127.0.0.1:5000/other?code=abc&state={STATE}", "not this sign-in's redirect"),
        ("<script>alert(1)</script>", "paste the whole address"),
    ],
)
def test_what_is_refused_before_judging(pasted, why):
    with pytest.raises(CallbackError, match=why) as caught:
        pasted_query(pasted, redirect_uri=URI)
    assert "abc" not in str(caught.value) and "script" not in str(caught.value)


def _get(url: str) -> int:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(url, headers={"Sec-Fetch-Mode": "navigate"})
    try:
        with opener.open(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        exc.close()
        return exc.code


async def test_a_paste_with_the_right_state_ends_the_wait_and_no_callback_counts_after():
    async with CallbackServer(state=STATE, timeout=30) as server:
        uri = server.redirect_uri
        assert server.offer_pasted(f"{uri}?code=c1&state=wrong") is not None  # refused
        assert server.offer_pasted(f"{uri}?code=c1&code=c2&state={STATE}") is not None  # twice
        assert server.offer_pasted(f"{uri}?code=c1&state={STATE}&iss=https://as.test") is None
        # The browser's callback, late: refused, and so is a second paste (no replay).
        status = await asyncio.to_thread(_get, f"{uri}?code=c2&state={STATE}")
        assert status == 400
        assert "already has its answer" in (server.offer_pasted(f"c2#{STATE}") or "")
        result = await server.wait()
    assert (result.code, result.iss) == ("c1", "https://as.test")


async def test_a_paste_after_the_callback_won_is_refused():
    async with CallbackServer(state=STATE, timeout=30) as server:
        uri = server.redirect_uri
        assert await asyncio.to_thread(_get, f"{uri}?code=c1&state={STATE}") == 200
        assert "already has its answer" in (
            server.offer_pasted(f"{uri}?code=c1&state={STATE}") or ""
        )
        result = await server.wait()
    assert result.code == "c1"
