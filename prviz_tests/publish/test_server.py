"""Tests for the loopback-only, read-only dashboard server."""

from __future__ import annotations

import http.client
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from prviz.publish.server import loopback_host, make_server

PAGE = "<!DOCTYPE html><title>prviz</title><p>dashboard</p>"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int, Path]]:
    """A served folder ``site/`` inside a temp dir that also holds a file outside it."""
    tmp_path = tmp_path_factory.mktemp("served")
    root = tmp_path / "site"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text(PAGE, encoding="utf-8")
    (root / "assets" / "note.txt").write_text("hello", encoding="utf-8")
    (tmp_path / "secret.txt").write_text("top secret", encoding="utf-8")
    server, url = make_server(root, port=0)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        assert url == f"http://127.0.0.1:{port}/" and host == "127.0.0.1"
        yield host, port, tmp_path
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert not thread.is_alive()


def _request(
    site: tuple[str, int, Path], method: str, path: str, body: bytes | None = None
) -> tuple[http.client.HTTPResponse, bytes]:
    host, port, _ = site
    conn = http.client.HTTPConnection(host, port, timeout=5)
    try:
        conn.request(method, path, body=body)
        response = conn.getresponse()
        return response, response.read()
    finally:
        conn.close()


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "example.com", ""])
def test_refuses_non_loopback_hosts(tmp_path: Path, host: str) -> None:
    with pytest.raises(ValueError, match="refusing to bind"):
        make_server(tmp_path, port=0, host=host)


def test_loopback_names() -> None:
    assert loopback_host("localhost") == "127.0.0.1"
    assert loopback_host("127.0.0.2") == "127.0.0.2"
    assert loopback_host("::1") == "::1"


def test_missing_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        make_server(tmp_path / "nope")


def test_get_serves_the_dashboard_with_security_headers(site: tuple[str, int, Path]) -> None:
    for path in ("/", "/index.html", "/index.html?day=2025-01-02"):
        response, body = _request(site, "GET", path)
        assert response.status == 200, path
        assert body.decode("utf-8") == PAGE
        assert response.getheader("Content-Type") == "text/html; charset=utf-8"
        assert response.getheader("Server") == "prviz-dashboard"
    assert response.getheader("X-Content-Type-Options") == "nosniff"
    csp = response.getheader("Content-Security-Policy", "")
    assert "default-src 'none'" in csp and "script-src 'unsafe-inline'" in csp
    assert "connect-src" not in csp  # falls back to default-src 'none': no connections
    assert response.getheader("X-Frame-Options") == "DENY"
    assert response.getheader("Referrer-Policy") == "no-referrer"

    response, body = _request(site, "HEAD", "/index.html")
    assert response.status == 200 and body == b""
    assert response.getheader("Content-Length") == str(len(PAGE.encode("utf-8")))


def test_other_methods_are_not_allowed(site: tuple[str, int, Path]) -> None:
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "PROPFIND"):
        response, _ = _request(site, method, "/index.html", body=b"x=1")
        assert response.status == 405, method
        assert response.getheader("Allow") == "GET, HEAD", method
        assert response.getheader("X-Content-Type-Options") == "nosniff", method
    assert (site[2] / "site" / "index.html").read_text(encoding="utf-8") == PAGE


@pytest.mark.parametrize(
    "path",
    ["/../secret.txt", "/assets/../../secret.txt", "/%2e%2e/secret.txt", "/..%2fsecret.txt",
     "/..\\secret.txt"],
)  # fmt: skip
def test_path_traversal_is_refused(site: tuple[str, int, Path], path: str) -> None:
    response, body = _request(site, "GET", path)
    assert response.status in (403, 404)
    assert b"top secret" not in body


@pytest.mark.parametrize("path", ["/%00", "/index.html%00.txt", "/" + "a" * 5000])
def test_odd_paths_get_a_clean_error(
    site: tuple[str, int, Path], path: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="prviz.publish.server"):
        response, _ = _request(site, "GET", path)
    assert response.status in (400, 404, 414)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_symlink_out_of_the_folder_is_refused(site: tuple[str, int, Path]) -> None:
    root = site[2] / "site"
    os.symlink(site[2] / "secret.txt", root / "link.txt")
    response, body = _request(site, "GET", "/link.txt")
    assert response.status == 403 and b"top secret" not in body


def test_directory_listing_is_refused(site: tuple[str, int, Path]) -> None:
    response, body = _request(site, "GET", "/assets/")
    assert response.status == 403
    assert b"note.txt" not in body
    response, _ = _request(site, "GET", "/assets/note.txt")
    assert response.status == 200


def test_logging_goes_through_logging_not_stderr(
    site: tuple[str, int, Path], caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="prviz.publish.server"):
        _request(site, "GET", "/index.html")
        _request(site, "GET", "/missing.html")
    messages = [r.getMessage() for r in caplog.records]
    assert any("GET /index.html" in m for m in messages)
    assert any("404" in m for m in messages)
    assert capsys.readouterr().err == ""
