"""`--clipboard`: the device sign-in's user code put on the clipboard, and what kt says about it
(issue 12). The ways (OSC 52, the platform's tool) are kt_login.clipboard's; this decides which
apply here and says which worked, or why none did."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..clipboard import TOOL_NAMES, copy_with, osc52, platform_tool
from .app import Invocation


@dataclass(frozen=True)
class Copied:
    how: list[str] = field(default_factory=list)  # "xclip", "OSC 52", ... in the order tried
    why_not: list[str] = field(default_factory=list)

    def line(self) -> str:
        tools = [h for h in self.how if h != "OSC 52"]
        if tools and "OSC 52" in self.how:
            return (
                f"Copied the code to the clipboard with {tools[0]} (and sent it to your"
                " terminal with OSC 52)."
            )
        if tools:
            return f"Copied the code to the clipboard with {tools[0]}."
        if self.how:
            return (
                "Sent the code to your terminal's clipboard with OSC 52 (a terminal that does not"
                " allow OSC 52 ignores it)."
            )
        return "Could not copy the code to the clipboard: " + "; ".join(self.why_not) + "."

    def document(self) -> dict[str, Any]:
        return {"copied": bool(self.how), "how": self.how, "why_not": self.why_not}


def copy_user_code(inv: Invocation, user_code: str) -> Copied:
    """OSC 52 when kt's output is a terminal, and the platform's tool when one reaches the
    person's clipboard from here. Only the user code: it is no secret, unlike the device code."""
    how: list[str] = []
    why_not: list[str] = []
    out = inv.console.out
    isatty = getattr(out, "isatty", None)
    if isatty is not None and isatty():
        out.write(osc52(user_code))
        out.flush()
        how.append("OSC 52")
    else:
        why_not.append("kt's output is not a terminal (for OSC 52)")
    tool = platform_tool(inv.app.env)
    if tool is None:
        why_not.append(f"no clipboard tool here reaches your clipboard ({', '.join(TOOL_NAMES)})")
    else:
        failed = copy_with(tool, user_code, inv.app.env)
        if failed is None:
            how.insert(0, tool.name)
        else:
            why_not.append(failed)
    return Copied(how, why_not)
