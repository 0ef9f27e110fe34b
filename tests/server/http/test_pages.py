"""The web app's pages and files (server/http/pages.py) on a real Tornado server (port 0): security
headers, content types, plain-text 404s, no way out of the web root, and only on the live
station."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
import tornado.web
from tornado.httpclient import AsyncHTTPClient, HTTPResponse
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port

from server.accounts.accounts import Accounts, load_secret
from server.assembly.database import open_async_storage
from server.http.app import make_app
from server.http.handler import AppContext
from server.http.pages import WEB_ROOT, page_routes
from tests.kits.live_app import TZ, LiveApp, live_app

INDEX = b"<!doctype html><title>driver</title><script type=module src=/static/js/app.js></script>"
ADMIN = b"<!doctype html><title>operator</title>"
SECRET = b"outside the web root"


def assert_security_headers(response: HTTPResponse) -> None:
    csp = response.headers["Content-Security-Policy"]
    directives = {d.split()[0]: d.split()[1:] for d in csp.split("; ")}
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["script-src"] == ["'self'"] and directives["default-src"] == ["'none'"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["X-Frame-Options"] == "DENY"


async def raw_get(port: int, path: str) -> tuple[int, bytes]:
    """A GET with the path sent exactly as written (no client normalises `..` or `%2e`)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
    reply = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    head, _, body = reply.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


class Site:
    """A web root of its own beside a file that must never be served."""

    def __init__(self, port: int, root: Path) -> None:
        self.port = port
        self.root = root
        self.http = AsyncHTTPClient()

    async def get(self, path: str, method: str = "GET") -> HTTPResponse:
        return await self.http.fetch(
            f"http://127.0.0.1:{self.port}{path}",
            method=method,
            raise_error=False,
            follow_redirects=False,
        )


@pytest_asyncio.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    (tmp_path / "secret.txt").write_bytes(SECRET)
    root = tmp_path / "web"
    (root / "js").mkdir(parents=True)
    (root / "index.html").write_bytes(INDEX)
    (root / "admin.html").write_bytes(ADMIN)
    (root / "js" / "app.js").write_bytes(b"export const ready = 1;\n")
    sock, port = bind_unused_port()
    server = HTTPServer(tornado.web.Application(page_routes(root=root)))
    server.add_sockets([sock])
    yield Site(port, root)
    server.stop()
    await server.close_all_connections()


@pytest_asyncio.fixture
async def live(tmp_path: Path) -> AsyncIterator[LiveApp]:
    async with live_app(tmp_path) as app:
        yield app


@pytest.mark.asyncio
async def test_the_two_pages_with_security_headers(site: Site) -> None:
    for path, body in (("/", INDEX), ("/admin", ADMIN)):
        response = await site.get(path)
        assert (response.code, response.body) == (200, body), path
        assert response.headers["Content-Type"] == "text/html; charset=UTF-8"
        assert response.headers["Cache-Control"] == "no-cache"
        assert_security_headers(response)
        head = await site.get(path, "HEAD")
        assert (head.code, head.body) == (200, b"")
        assert_security_headers(head)
    response = await site.get("/admin/")
    assert (response.code, response.headers["Location"]) == (301, "/admin")


@pytest.mark.asyncio
async def test_a_missing_page_or_file_is_a_plain_text_404_with_the_headers(site: Site) -> None:
    (site.root / "index.html").unlink()
    for path, method in (("/", "GET"), ("/", "HEAD"), ("/static/js/nope.js", "GET")):
        response = await site.get(path, method)
        assert response.code == 404, (path, method)
        assert response.headers["Content-Type"] == "text/plain; charset=UTF-8"
        assert_security_headers(response)
        if method == "GET":
            assert response.body.startswith(b"404: ") and b"<" not in response.body


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "path",
    [
        "/static/../secret.txt",
        "/static/%2e%2e/secret.txt",
        "/static/%2E%2E/secret.txt",
        "/static/js/../../secret.txt",
        "/static/js/%2e%2e/%2e%2e/secret.txt",
        "/static/..%2fsecret.txt",
        "/static/%2e%2e%2fsecret.txt",
        "/static/..%5csecret.txt",
        "/static//secret.txt",
        "/static/%2f..%2fsecret.txt",
    ],
)
async def test_nothing_outside_the_web_root_is_served(site: Site, path: str) -> None:
    code, body = await raw_get(site.port, path)
    assert code in (400, 403, 404), (path, code)
    assert SECRET not in body


@pytest.mark.asyncio
async def test_the_live_station_serves_the_packages_files(live: LiveApp) -> None:
    for path, content_type in (
        ("/static/js/dom.js", "text/javascript; charset=UTF-8"),
        ("/static/css/app.css", "text/css"),
    ):
        response = await live.fetch("GET", path)
        assert response.code == 200, path
        assert response.body == (WEB_ROOT / path.removeprefix("/static/")).read_bytes()
        assert response.headers["Content-Type"] == content_type
        assert response.headers["Cache-Control"] == "no-cache"
        assert_security_headers(response)
        # Revalidated by ETag: an unchanged file costs a 304 and no body.
        again = await live.fetch("GET", path, headers={"If-None-Match": response.headers["Etag"]})
        assert (again.code, again.body) == (304, b"")
    # The package's own code, one folder up from the web root, is never served.
    for path in ("/static/../app.py", "/static/%2e%2e/app.py", "/static/%2e%2e/pages.py"):
        code, body = await raw_get(live.port, path)
        assert code in (400, 403, 404) and b"import" not in body, path
    response = await live.fetch("GET", "/static/js/")  # a folder is not a file
    assert response.code == 403 and b"<" not in response.body


@pytest.mark.asyncio
async def test_without_the_live_station_no_pages_are_served(tmp_path: Path) -> None:
    storage = await open_async_storage(tmp_path / "station.db")
    accounts = Accounts(storage, load_secret(tmp_path))
    sock, port = bind_unused_port()
    server = HTTPServer(make_app(AppContext(accounts, storage, TZ)))  # no hub
    server.add_sockets([sock])
    try:
        http = AsyncHTTPClient()
        for path in ("/", "/admin", "/static/js/dom.js"):
            response = await http.fetch(f"http://127.0.0.1:{port}{path}", raise_error=False)
            assert response.code == 404, path
            assert b'"error": "not_found"' in response.body  # the API's JSON, not a file
    finally:
        server.stop()
        await server.close_all_connections()
        await storage.close()
