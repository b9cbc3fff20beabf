"""Browser checks (issue 6): JupyterLab sliders and the built book, in headless Chromium.

Not part of the default ``pytest tests`` run: nothing in this folder is even collected unless
``FXQ_BROWSER=1`` (``make test-browser`` sets it, installs ``playwright`` and Debian's ``chromium``).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from .support import CHROMIUM_ARGS, SCREENSHOTS, chromium_path

if os.environ.get("FXQ_BROWSER") != "1":
    # Not collected (doctests included), so the default run never imports playwright.
    collect_ignore_glob = ["*.py"]


@pytest.fixture(scope="session")
def screenshots() -> Path:
    SCREENSHOTS.mkdir(exist_ok=True)
    return SCREENSHOTS


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium (Debian's) with a fresh user-data dir for the whole session."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw, tempfile.TemporaryDirectory(prefix="fxq-chromium-") as profile:
        context = pw.chromium.launch_persistent_context(
            profile,
            executable_path=chromium_path(),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
            service_workers="block",
        )
        try:
            yield context
        finally:
            context.close()
