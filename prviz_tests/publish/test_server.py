"""Tests for the loopback-only, read-only dashboard server."""

from __future__ import annotations

import http.client
import logging
import os
import socket
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


@pytest.mark.parametrize(
    "host",
    ["0.0.0.0", "::", "[::]", " 0.0.0.0 ", "192.168.1.10", "10.0.0.1", "fd00::2", "fe80::1%lo",
     "::ffff:10.0.0.1", "127.1", "2130706433", "example.com", "localhost.",
     "ip6-localhost", "", *{socket.gethostname()} - {"localhost"}],
)  # fmt: skip
def test_refuses_non_loopback_hosts(tmp_path: Path, host: str) -> None:
    """Wildcards, LAN and link-local IPs, IPv4-mapped and shorthand forms, and every name but
    `localhost` are refused; names are never resolved (this machine's own hostname resolves to
    127.0.0.1 here, and is refused all the same: a hosts file must not decide the exposure)."""
    with pytest.raises(ValueError, match="refusing to bind"):
        make_server(tmp_path, port=0, host=host)


def test_loopback_names() -> None:
    assert loopback_host("localhost") == "127.0.0.1"
    assert loopback_host("127.0.0.2") == "127.0.0.2"
    assert loopback_host("::1") == "::1"


def _own_addresses() -> list[str]:
    """This machine's non-loopback addresses (the source address of a route out; no packet)."""
    found = []
    for family, probe in ((socket.AF_INET, "198.51.100.1"), (socket.AF_INET6, "2001:db8::1")):
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as sock:
                sock.connect((probe, 9))
                address = sock.getsockname()[0]
        except OSError:
            continue
        if not address.startswith(("127.", "::1")):
            found.append(address)
    return found


def test_the_running_server_is_unreachable_on_this_machines_other_addresses(
    site: tuple[str, int, Path],
) -> None:
    """Not only is the bind address checked: the socket really listens on loopback only."""
    addresses = _own_addresses()
    if not addresses:
        pytest.skip("this machine has no non-loopback address to try")
    port = site[1]
    for address in addresses:
        with pytest.raises(OSError):  # ConnectionRefusedError: nothing listens there
            socket.create_connection((address, port), timeout=2).close()
    with socket.create_connection(("127.0.0.1", port), timeout=2):
        pass  # while loopback answers


def test_the_ipv6_loopback_is_served_on_its_own_address(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text(PAGE, encoding="utf-8")
    try:
        server, url = make_server(tmp_path, port=0, host="[::1]")
    except OSError:
        pytest.skip("no IPv6 loopback here")
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        host, port = server.socket.getsockname()[:2]
        assert host == "::1" and url == f"http://[::1]:{port}/"
        response, body = _request(("::1", port, tmp_path), "GET", "/")
        assert response.status == 200 and body.decode("utf-8") == PAGE
        response, _ = _request(("::1", port, tmp_path), "POST", "/", body=b"x")
        assert response.status == 405
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


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


@pytest.mark.parametrize(
    "method",
    ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT", "PROPFIND", "MKCOL", "COPY",
     "MOVE", "LOCK", "get", "Head", "BREW"],
)  # fmt: skip
@pytest.mark.parametrize("path", ["/index.html", "/new.html", "/assets/", "/../secret.txt"])
def test_other_methods_are_not_allowed(site: tuple[str, int, Path], method: str, path: str) -> None:
    """Every method but GET and HEAD (exact case) gets 405 with `Allow`, on any path, and changes
    nothing: no file is written, replaced or deleted, and no file's content is sent back."""
    before = _files(site[2])
    response, body = _request(site, method, path, body=b"x=1")
    assert response.status == 405, method
    assert response.getheader("Allow") == "GET, HEAD", method
    assert response.getheader("X-Content-Type-Options") == "nosniff", method
    assert PAGE.encode() not in body and b"top secret" not in body and b"hello" not in body
    assert _files(site[2]) == before


def _files(folder: Path) -> list[tuple[str, bytes]]:
    return sorted(
        (str(p.relative_to(folder)), p.read_bytes()) for p in folder.rglob("*") if p.is_file()
    )


def test_head_sends_headers_only(site: tuple[str, int, Path]) -> None:
    response, body = _request(site, "HEAD", "/")
    assert response.status == 200 and body == b""
    assert response.getheader("Content-Length") == str(len(PAGE.encode("utf-8")))
    assert response.getheader("Content-Security-Policy", "").startswith("default-src 'none'")
    response, body = _request(site, "HEAD", "/../secret.txt")
    assert response.status == 403 and body == b""


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
