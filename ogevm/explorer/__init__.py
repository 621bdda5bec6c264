"""The PIPE explorer: static files the dev node serves beside its JSON-RPC endpoint.

The page needs no build step and makes no external request: it reads the node it came from
over JSON-RPC, so any node that serves these files has one. It polls (``source.js``: only what
changed, every 500 ms); its views only see the events of that source, so a source fed by the
node's WebSocket subscriptions can replace it.
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
