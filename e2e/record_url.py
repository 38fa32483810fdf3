"""A stand-in for a desktop browser launcher: `BROWSER="python e2e/record_url.py %s"`.

It hands the URL kt asked to open to the test (a FIFO named by KT_E2E_URL_FIFO), which then
drives a real Chromium through Playwright, like a person would.
"""

import os
import sys

with open(os.environ["KT_E2E_URL_FIFO"], "w") as fifo:
    fifo.write(sys.argv[1] + "\n")
