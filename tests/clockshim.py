"""A `date` for the shell scripts whose every reading is one second later than the one before.

It stands for the worst case of a whole-second clock: a second boundary falling between any two
readings. A script that waits N seconds must still sleep N real seconds under it.
"""

from __future__ import annotations

import shlex
import stat
from pathlib import Path

START = 1_800_000_000


def jumping_clock(directory: Path) -> Path:
    """A directory holding only the shim, to put first on PATH; readings come from a counter file."""
    directory.mkdir(parents=True, exist_ok=True)
    counter = directory / "readings"
    counter.write_text("0\n")
    shim = directory / "date"
    quoted = shlex.quote(str(counter))
    shim.write_text(f"#!/bin/sh\nn=$(cat {quoted})\necho $((n + 1)) >{quoted}\necho $(({START} + n))\n")
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return directory


def readings(directory: Path) -> int:
    return int((directory / "readings").read_text())
