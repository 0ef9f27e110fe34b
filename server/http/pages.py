"""The station's web app: the driver app at `/`, the operator dashboard at `/admin`, and their
files under `/static/`, served from the package (server/web) with no build step.

Every page and file carries the same security headers: a Content-Security-Policy that allows
scripts, styles and connections only from the station itself (no inline script, no inline
style, no frames), and no MIME sniffing or referrer leaks. Files are revalidated by ETag on each
load, so an upgraded station is never served stale scripts and an unchanged one costs a 304.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tornado.web

WEB_ROOT = Path(__file__).parent.parent / "web"


def security_headers(handler: tornado.web.RequestHandler) -> None:
    host = handler.request.host
    # 'self' covers http(s) of this origin; ws/wss of the same host are named, since older
    # browsers do not count them as 'self'.
    handler.set_header(
        "Content-Security-Policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src 'self' ws://{host} wss://{host}; font-src 'self'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    )
    handler.set_header("X-Content-Type-Options", "nosniff")
    handler.set_header("Referrer-Policy", "no-referrer")
    handler.set_header("X-Frame-Options", "DENY")


class PageHandler(tornado.web.RequestHandler):
    """One of the app's two HTML pages; the app's views live in its scripts."""

    def initialize(self, page: Path) -> None:
        self.page = page

    def set_default_headers(self) -> None:
        security_headers(self)
        self.set_header("Cache-Control", "no-cache")

    def get(self) -> None:
        try:
            body = self.page.read_bytes()
        except FileNotFoundError:  # a station installed without this page: say so, not a 500
            raise tornado.web.HTTPError(404) from None
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.finish(body)

    def head(self) -> None:
        if not self.page.is_file():
            raise tornado.web.HTTPError(404)
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.finish()

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        self.finish(f"{status_code}: {self._reason}\n")


class AssetHandler(tornado.web.StaticFileHandler):
    """The app's scripts, styles and images."""

    def set_default_headers(self) -> None:
        security_headers(self)

    def set_extra_headers(self, path: str) -> None:
        self.set_header("Cache-Control", "no-cache")

    def get_content_type(self) -> str:
        if self.absolute_path is not None and self.absolute_path.endswith(".js"):
            return "text/javascript; charset=UTF-8"  # JS modules need a JavaScript type
        return super().get_content_type()

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        self.finish(f"{status_code}: no such file\n")


def page_routes(root: Path = WEB_ROOT) -> list[Any]:
    """The pages and files under `root` (the package's server/web; another folder in tests)."""
    return [
        (r"/", PageHandler, {"page": root / "index.html"}),
        (r"/admin", PageHandler, {"page": root / "admin.html"}),
        (r"/admin/", tornado.web.RedirectHandler, {"url": "/admin"}),
        (r"/static/(.*)", AssetHandler, {"path": str(root)}),
    ]
