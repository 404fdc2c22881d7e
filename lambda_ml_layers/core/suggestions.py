"""The "Perhaps you meant ...?" hint every unknown-name message ends with, worded once."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable


def perhaps_you_meant(name: str, known: Iterable[str], show: Callable[[str], str] = repr) -> str:
    """' Perhaps you meant <closest>?' (leading space, ready to append), or '' when no known
    name is close. `show` spells the suggestion as the message spells names (quoted, [section])."""
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" Perhaps you meant {show(close[0])}?" if close else ""
