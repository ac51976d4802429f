"""``streamer panel``: open the control panel of a running host in the browser, signed in.

The token travels in the URL's fragment (``#token=…``), which browsers never send to a server nor
write to its logs; the panel moves it to session storage and clears the address bar.
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.parse
import webbrowser
from typing import Any

from streamer.control.api import TOKEN_ENV


def panel_url(host: str, port: int, token: str) -> str:
    base = f"http://{'[' + host + ']' if ':' in host else host}:{port}/"
    return base + (f"#token={urllib.parse.quote(token, safe='')}" if token else "")


def cmd_panel(args: argparse.Namespace) -> int:
    from streamer.cli import _settings

    settings = _settings(args.config)
    port = args.port or settings.control.port
    token = args.token or os.environ.get(TOKEN_ENV, "")
    url = panel_url(settings.control.host, port, token)
    if not token:
        print(f"no token given: the panel will ask for it (set {TOKEN_ENV} or pass --token)", file=sys.stderr)
    if args.print or not webbrowser.open(url):
        print(url)
    else:
        print(f"opened the control panel at http://{settings.control.host}:{port}/", file=sys.stderr)
    return 0


def add_commands(sub: Any, avatar_sub: Any) -> None:
    p = sub.add_parser("panel", help="open the control panel of a running host in the browser",
                       description="Open the control panel of a running `streamer run` in the browser, signed in "
                                   f"with the token (from --token or {TOKEN_ENV}).",
                       epilog="example: STREAMER_CONTROL_TOKEN=s3cret streamer panel -c config/default.toml")
    p.add_argument("-c", "--config", metavar="FILE",
                   help="the profile the host runs with (for its control port), e.g. -c my.toml")
    p.add_argument("--token", help=f"the control token (default: ${TOKEN_ENV}), e.g. --token s3cret")
    p.add_argument("--port", type=int, help="the control port if not the profile's, e.g. --port 9000")
    p.add_argument("--print", action="store_true", help="print the signed-in URL instead of opening a browser")
    p.set_defaults(func=cmd_panel)
