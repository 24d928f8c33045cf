"""``python -m csv2sr`` and the ``csv2sr`` console script.

SIGINT and SIGTERM are caught first, before the commands (and their libraries) are
imported, so that a Ctrl-C even at start-up ends without a traceback (exit 130/143).
"""

import sys

from csv2sr.errors import Interrupted, catch_interrupts


def run() -> None:
    """Entry point: catch the signals, then run the command line."""
    catch_interrupts()
    try:
        from csv2sr.cli import main  # noqa: PLC0415  (after the signals are caught)

        main()
    except Interrupted as exc:  # before the command line took over
        sys.stderr.write(exc.message + "\n")
        sys.exit(exc.exit_status)


if __name__ == "__main__":
    run()
