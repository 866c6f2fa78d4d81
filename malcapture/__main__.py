"""`malcapture` and `python -m malcapture`: start looking for the browser, load the CLI, run it.

The lookup (about 50 ms on a Linux desktop, see browser.find_browsers) runs while Typer loads,
instead of after it, so the browser opens that much sooner (`make bench`).
"""

from __future__ import annotations

import gc
import os
import sys

from malcapture import browser


def main() -> None:
    # No collector passes while the modules load, before the browser opens (a few ms): the event loop
    # turns it back on (interrupts.run), and gc.freeze() below spares the last one.
    gc.disable()
    if browser.likely_to_open(sys.argv[1:], os.environ):
        browser.find_browsers()
    from malcapture.cli import main as cli

    try:
        cli()
    finally:
        # Everything is written and flushed: spare the exit Python's last garbage collection over
        # every object Typer, ruamel.yaml and aiohttp made (about 60 ms).
        gc.freeze()


if __name__ == "__main__":
    main()
