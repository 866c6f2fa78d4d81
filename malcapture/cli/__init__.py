"""The command line: parse options, call one function of the library, print, map errors to exit codes.

group.py: a bare `malcapture` is `login`, and a service's name in the wrong place is pointed to;
options.py: every option, typed, and which of them a service offers; commands.py: the commands of each
service, built from its Service value, and status and demo; actions.py: what they do, and the one
place where the library's errors become messages and exit codes. Heavy modules (asyncio, aiohttp,
ruamel.yaml) are imported inside the commands, so `--help` stays fast and the login opens the browser
before asyncio and aiohttp load.
"""

from malcapture.cli.commands import app, main
from malcapture.cli.options import offered

__all__ = ["app", "main", "offered"]
