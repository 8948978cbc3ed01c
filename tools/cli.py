"""What every command in tools/ does around its `main`: a reader that closes the pipe early
(`python -m tools.plan ... | head`) ends the command quietly instead of with a traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable


def run(main: Callable[[], int]) -> None:
    try:
        sys.exit(main())
    except BrokenPipeError:
        sys.stderr.close()  # Python's own "Exception ignored" note at exit would follow otherwise
        sys.exit(1)
