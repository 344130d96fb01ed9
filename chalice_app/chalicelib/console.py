"""The web console's static files (chalicelib/console/), served by the API itself: no build step, no CDN.

They live under chalicelib/ so `chalice package` ships them in the Lambda zip. The page asks the user for the
API key, so neither it nor its assets need one. The Content-Security-Policy allows only this origin's own
script and styles: even a headline that slipped into the page as markup could not run.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from chalice.app import Response

from .errors import not_found

CONSOLE_DIR = Path(__file__).resolve().parent / "console"
PAGE = "index.html"
CONTENT_TYPES = {"index.html": "text/html; charset=utf-8", "console.css": "text/css; charset=utf-8",
                 "console.js": "text/javascript; charset=utf-8"}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                               "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@cache
def _read(name: str) -> str:
    return (CONSOLE_DIR / name).read_text(encoding="utf-8")


def asset(name: str) -> Response:
    """One of the console's files; any other name is a 404 (the name never reaches the file system)."""
    if name not in CONTENT_TYPES:
        raise not_found(f"no console file {name[:80]!r}; the console serves {', '.join(CONTENT_TYPES)}")
    return Response(body=_read(name), status_code=200, headers={"Content-Type": CONTENT_TYPES[name],
                                                                **SECURITY_HEADERS})
