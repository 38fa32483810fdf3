"""Logging to stderr with nothing secret in it.

aiohttp's access log is off (AppRunner(access_log=None)). Its protocol errors are logged with an
exception whose text quotes the raw request bytes (headers such as Authorization, body data), so
for aiohttp's records only the exception type is kept. Our own log calls never format request data.
"""

from __future__ import annotations

import logging
import sys


class WithholdAiohttpExceptionDetails(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("aiohttp") and record.exc_info:
            message = record.getMessage()
            exc_type = type(record.exc_info[1]).__name__
            record.msg = "%s (%s; details withheld: they may quote request bytes)"
            record.args = (message, exc_type)
            record.exc_info = None
            record.exc_text = None
            record.stack_info = None
        return True


def configure(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("kt-devserver: %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(WithholdAiohttpExceptionDetails())
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)
    # authlib's debug records quote issued tokens; keep them off whatever the root level.
    logging.getLogger("authlib").setLevel(max(level, logging.WARNING))
