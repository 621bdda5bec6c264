"""The PIPE explorer: static files the dev node serves beside its JSON-RPC endpoint.

The page needs no build step and makes no external request: it reads the node it came from
over JSON-RPC, so any node that serves these files has one. It follows the node's WebSocket
subscriptions (``stream.js``), or polls it (``source.js``: only what changed, every 500 ms) when
the WebSocket is refused or ``?poll`` asks; the views only see the events of the source at work.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

STATIC = Path(__file__).parent / "static"


def add_routes(app: web.Application) -> None:
    """Serve the page's assets under ``/explorer/``."""
    app.router.add_static("/explorer/", STATIC)


async def page(request: web.Request) -> web.FileResponse:
    """The page itself, answered to a browser's ``GET /``."""
    return web.FileResponse(STATIC / "index.html")
