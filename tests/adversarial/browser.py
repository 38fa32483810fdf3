"""A stand-in browser for `BROWSER="python tests/adversarial/browser.py %s"`.

It records every call (so a test can prove the opener was never called, AZ-08), then, in a
detached child so kt's `webbrowser.open` returns at once, GETs the URL following redirects: the
hostile authorization server answers /authorize with a 302 to kt's real loopback listener.
"""

import os
import sys
import urllib.request

url = sys.argv[1]
with open(os.environ["KT_ADV_OPENER_LOG"], "a", encoding="utf-8") as log:
    log.write(url + "\n")
if "KEEPTRUSTS_API_TOKEN" in os.environ:  # HY-07: the launcher must not inherit it
    with open(os.environ["KT_ADV_OPENER_LOG"] + ".env-token", "a", encoding="utf-8") as log:
        log.write(url + "\n")
if os.fork() == 0:  # the child plays the browser; the parent returns to kt at once
    os.setsid()
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    try:
        urllib.request.urlopen(url, timeout=30).read()
    except Exception:  # noqa: BLE001 - kt may refuse the callback; that is the point
        pass
    os._exit(0)
