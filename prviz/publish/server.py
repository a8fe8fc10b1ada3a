"""A tiny read-only web server for the local dashboard folder.

It exists so that a person can open the dashboard at ``http://127.0.0.1:8765/`` instead of a
``file://`` path, without exposing anything: it binds loopback addresses only, answers GET and
HEAD only (every other method gets 405), never lists a directory (403), never serves a file
outside the folder (``..`` segments and symlinks leading out are refused), and sends security
headers that forbid the page any network connection.
"""

from __future__ import annotations

import http.server
import ipaddress
import logging
import os
import socket
import urllib.parse
from collections.abc import Callable
from functools import partial
from http import HTTPStatus
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

DEFAULT_PORT = 8765
ALLOWED_METHODS = ("GET", "HEAD")

TEXTUAL_TYPES = ("application/json", "application/javascript", "image/svg+xml")

#: Headers sent with every response (files and errors alike).
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
        "img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "no-cache",
}


class DashboardRequestHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files from one folder, read-only; see the module docstring for the rules."""

    server_version = "prviz-dashboard"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    def __getattr__(self, name: str) -> Callable[[], None]:
        # BaseHTTPRequestHandler dispatches to ``do_<METHOD>`` and answers 501 when it is
        # missing; every method but GET/HEAD is a known verb we refuse, so answer 405.
        if name.startswith("do_"):
            return self._method_not_allowed
        raise AttributeError(name)

    def _method_not_allowed(self) -> None:
        self.close_connection = True
        self.send_error(HTTPStatus.METHOD_NOT_ALLOWED, "Only GET and HEAD are allowed")

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        if code == HTTPStatus.METHOD_NOT_ALLOWED:
            self._extra_headers = {"Allow": ", ".join(ALLOWED_METHODS)}
        super().send_error(code, message, explain)

    def end_headers(self) -> None:
        for name, value in SECURITY_HEADERS.items():
            self.send_header(name, value)
        for name, value in getattr(self, "_extra_headers", {}).items():
            self.send_header(name, value)
        self._extra_headers = {}
        super().end_headers()

    def send_head(self) -> Any:
        raw_path = urllib.parse.urlsplit(self.path).path
        decoded = urllib.parse.unquote(raw_path)
        if "\x00" in decoded:
            self.send_error(HTTPStatus.BAD_REQUEST, "Bad path")
            return None
        segments = decoded.replace("\\", "/").split("/")
        if ".." in segments:
            self.send_error(HTTPStatus.FORBIDDEN, "Path traversal refused")
            return None
        local = Path(self.translate_path(self.path))
        root = Path(self.directory).resolve()
        try:
            resolved = local.resolve()
            inside = resolved == root or root in resolved.parents
            listing = resolved.is_dir() and not (resolved / "index.html").is_file()
        except (OSError, ValueError):  # e.g. a name too long for the file system
            self.send_error(HTTPStatus.NOT_FOUND, "File not found")
            return None
        if not inside:
            self.send_error(HTTPStatus.FORBIDDEN, "Outside the dashboard folder")
            return None
        if listing:
            self.send_error(HTTPStatus.FORBIDDEN, "Directory listing is disabled")
            return None
        return super().send_head()

    def version_string(self) -> str:
        return self.server_version

    def guess_type(self, path: str | os.PathLike[str]) -> str:
        content_type = super().guess_type(path)
        if content_type.startswith("text/") or content_type in TEXTUAL_TYPES:
            return f"{content_type}; charset=utf-8"
        return content_type

    def list_directory(self, path: str | os.PathLike[str]) -> None:
        self.send_error(HTTPStatus.FORBIDDEN, "Directory listing is disabled")
        return None

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s - %s", self.address_string(), format % args)

    def log_error(self, format: str, *args: Any) -> None:
        logger.info("%s - %s", self.address_string(), format % args)


class _DashboardServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver prints the traceback to stderr; send it to logging instead.
        logger.exception("Error while serving a request from %s", client_address[0])


class _DashboardServer6(_DashboardServer):
    address_family = socket.AF_INET6


def loopback_host(host: str) -> str:
    """``host`` as a loopback IP literal; ``ValueError`` for anything that is not loopback.

    ``localhost`` means 127.0.0.1. Other names are refused rather than resolved, so a hosts file
    cannot turn the server into a public one.
    """
    if host.strip().lower() == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host.strip().strip("[]"))
    except ValueError:
        raise ValueError(
            f"refusing to bind {host!r}: the dashboard server binds loopback addresses only "
            "(127.0.0.1, ::1 or localhost)"
        ) from None
    if not address.is_loopback:
        raise ValueError(
            f"refusing to bind {host!r}: it is not a loopback address; the dashboard is served "
            "to this machine only (use 127.0.0.1)"
        )
    return str(address)


def make_server(
    directory: Path, port: int = 0, host: str = "127.0.0.1"
) -> tuple[http.server.ThreadingHTTPServer, str]:
    """Build (but do not start) the server for ``directory``; returns ``(server, url)``.

    ``port=0`` picks a free port (the URL has the real one). Run it with ``serve_forever()`` in a
    thread, and stop it with ``shutdown()`` then ``server_close()``.
    """
    ip = loopback_host(host)
    root = Path(directory)
    if not root.is_dir():
        raise FileNotFoundError(f"dashboard folder {str(root)!r} does not exist")
    handler = partial(DashboardRequestHandler, directory=str(root.resolve()))
    server_cls = _DashboardServer6 if ":" in ip else _DashboardServer
    server = server_cls((ip, port), handler)
    bound_port = server.server_address[1]
    url_host = f"[{ip}]" if ":" in ip else ip
    return server, f"http://{url_host}:{bound_port}/"


def serve(directory: Path, port: int = DEFAULT_PORT, host: str = "127.0.0.1") -> None:
    """Serve ``directory`` read-only on ``host:port`` until interrupted (Ctrl-C)."""
    server, url = make_server(directory, port=port, host=host)
    logger.info("Serving the prviz dashboard from %s at %s (read-only)", directory, url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        logger.info("Stopping the dashboard server")
    finally:
        server.server_close()
