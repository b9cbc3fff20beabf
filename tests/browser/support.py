"""Helpers shared by the browser tests (no playwright import here)."""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Overridable so the checks can run against a scratch build / scratch notebooks.
BOOK_BUILD = Path(os.environ.get("FXQ_BOOK_BUILD", REPO / "book" / "_build"))
BOOK_HTML = BOOK_BUILD / "html"
NOTEBOOKS = Path(os.environ.get("FXQ_NOTEBOOKS", REPO / "notebooks"))
SCREENSHOTS = REPO / "screenshots"

# Flags for Debian's chromium in a container, headless, with no background traffic of its own.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chromium_path() -> str:
    path = os.environ.get("FXQ_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.fail(
            f"chromium not found at {path}: apt-get install -y chromium (make test-browser does)"
        )
    return path


class RequestLog:
    """Every request a page makes; outside ones are recorded and aborted, so a test never hangs on them."""

    def __init__(self, allowed_prefixes: tuple[str, ...]):
        self.allowed = allowed_prefixes + ("data:", "blob:", "about:")
        self.urls: list[str] = []
        self.outside: list[str] = []

    def is_local(self, url: str) -> bool:
        return url.startswith(self.allowed)

    def attach(self, page) -> None:
        page.on("request", lambda request: self.urls.append(request.url))

        def route(route):
            url = route.request.url
            if self.is_local(url):
                route.continue_()
            else:
                self.outside.append(url)
                route.abort()

        page.route("**/*", route)
