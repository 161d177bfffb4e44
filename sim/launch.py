"""The ``aifactory`` console script: signals handled from the first instruction.

Importing the command line (numpy, pandas, plotly, pydantic, SimPy) takes a second or more; a
Ctrl-C or SIGTERM in that time must end the program like one during a command (the line
``interrupted``, exit 130 or 143), not with a traceback or a silent kill. So the handler is
installed here, before :mod:`sim.cli` is imported, and the import itself is inside the guard.
"""

from __future__ import annotations

import signal

from sim.interrupt import EXIT_SIGINT, EXIT_SIGTERM, Terminated, interrupted, raise_terminated

__all__ = ["main"]


def main() -> int:
    try:
        signal.signal(signal.SIGTERM, raise_terminated)
        from sim.cli import main as cli_main

        return cli_main()
    except KeyboardInterrupt:
        return interrupted(EXIT_SIGINT)
    except Terminated:
        return interrupted(EXIT_SIGTERM)
