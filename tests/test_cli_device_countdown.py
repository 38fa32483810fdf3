"""The device sign-in's countdown on a narrow terminal (issue 12, defect 3): each rewrite fits
the width, so it stays one line, and it is cleared before anything else is printed. The real
`kt` on a 40-column pseudo-terminal against kt-devserver, whose code expires in 3 s."""

from __future__ import annotations

import re

from tests.kt_process import base_env
from tests.terminal import Terminal

COLUMNS = 40
CLEAR = "\r\x1b[K"


def test_the_countdown_fits_40_columns_and_the_expiry_error_starts_on_its_own_line(
    tmp_path, devserver_factory
):
    server = devserver_factory("--device-code-ttl", "3", "--device-interval", "1")
    env = base_env(tmp_path, KEEPTRUSTS_API_URL=server.url)
    term = Terminal(
        ["auth", "login", "--device", "--no-qr", "--insecure-storage"], env, columns=COLUMNS
    )
    term.expect("Waiting", times=2)
    assert term.finish() == 3, term.seen
    seen = term.seen
    ticks = [part for part in re.split(r"\r\x1b\[K", seen) if re.search(r"\d:\d\d", part)]
    assert len(ticks) >= 2
    for tick in ticks:
        status = tick.split("\n")[0].split("\r")[0]
        assert len(status) < COLUMNS, repr(status)  # never wraps, so \r rewrites it in place
    before_error = seen[: seen.index("Error:")]
    assert before_error.endswith((CLEAR, "\n")), repr(before_error[-60:])
    assert "expired" in seen[seen.index("Error:") :]
