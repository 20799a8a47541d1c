"""The Textual UI: the only part of canarytui that imports textual.

Textual draws a screen's changes at most ``TEXTUAL_FPS`` times a second (60 by default),
read once, when it is first imported: a key's frame waited up to 1/60 s for its turn. At
``FRAME_RATE`` it waits half as long; the frames drawn stay as many (data repaints are
coalesced at 10 a second), and so does the CPU (measured: ``benches/ui_release.py
--own-core``, key p95 during a 1,000-host release 29-36 ms at 60, 17-25 ms at 120). A
``TEXTUAL_FPS`` the operator set is kept; the variable is not left behind for the
commands and hooks canarytui starts.
"""

from __future__ import annotations

import os
import sys

FRAME_RATE = 120  # frames a second at most


def _frame_rate() -> None:
    if "textual.constants" in sys.modules or "TEXTUAL_FPS" in os.environ:
        return  # too late to change (Textual read it), or the operator's choice
    os.environ["TEXTUAL_FPS"] = str(FRAME_RATE)
    try:
        import textual.constants  # noqa: F401  (reads TEXTUAL_FPS, once)
    finally:
        del os.environ["TEXTUAL_FPS"]


_frame_rate()
