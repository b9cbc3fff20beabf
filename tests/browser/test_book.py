"""The built book (book/_build/html) in headless Chromium, served from 127.0.0.1.

For the index and every page of the table of contents: take a full-page screenshot into
screenshots/book/, check that every figure (<img>) loads, that every saved widget view renders
(static sliders), that math is typeset by the locally served MathJax, and that no request leaves the
site. Chapter 01 must show its "scale" slider with the saved plot.
"""

from __future__ import annotations

import functools
import http.server
import re
import threading

import pytest
import yaml

from .support import BOOK_BUILD, BOOK_HTML, REPO, RequestLog, free_port

WIDGET_VIEW = 'script[type="application/vnd.jupyter.widget-view+json"]'


def toc_pages() -> list[str]:
    """Pages of the book as built: the filtered TOC `make book` wrote, else the full one."""
    built = BOOK_BUILD / "_toc.yml"
    toc = yaml.safe_load((built if built.is_file() else REPO / "book" / "_toc.yml").read_text())
    pages = [toc["root"]]
    for part in toc.get("parts", []):
        for chapter in part.get("chapters", []):
            if "glob" in chapter:  # e.g. notebooks/[0-9][0-9]_*: the chapters on disk, in order
                pages += sorted(
                    p.relative_to(REPO).with_suffix("").as_posix()
                    for p in REPO.glob(chapter["glob"] + ".md")
                )
            else:
                pages.append(chapter["file"])
    return ["index"] + [re.sub(r"\.(ipynb|md)$", "", p) for p in pages]


def api_pages() -> list[str]:
    """The generated API pages (one per module), when the book has been built."""
    root = BOOK_HTML / "book" / "_autoapi"
    return sorted(
        p.relative_to(BOOK_HTML).with_suffix("").as_posix() for p in root.rglob("index.html")
    )


PAGES = toc_pages() + api_pages()


@pytest.fixture(scope="module")
def site():
    if not (BOOK_HTML / "index.html").is_file():
        pytest.fail(f"{BOOK_HTML}/index.html is missing: run `make book` first")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    port = free_port()
    handler = functools.partial(Quiet, directory=str(BOOK_HTML))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("page_name", PAGES)
def test_page_renders_offline(browser, site, screenshots, page_name):
    html_file = BOOK_HTML / f"{page_name}.html"
    assert html_file.is_file(), f"{html_file} was not built"
    source = html_file.read_text(encoding="utf-8")

    log = RequestLog((site,))
    failed: list[str] = []
    page = browser.new_page()
    try:
        log.attach(page)
        page.on(
            "response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None
        )
        page.goto(site + f"{page_name}.html", wait_until="load")
        page.wait_for_load_state("networkidle")

        # Math typeset by the local MathJax (pages whose source has math).
        if 'class="math' in source:
            page.wait_for_selector("mjx-container", timeout=30_000)

        # Saved widget views: each <script type=...widget-view+json> becomes a rendered widget.
        n_views = page.locator(WIDGET_VIEW).count()
        if n_views:
            page.wait_for_function(
                "n => document.querySelectorAll('.jupyter-widgets.widget-container, "
                ".jupyter-widgets-view, .widget-inline-hbox, .widget-vbox, .widget-hbox').length >= n",
                arg=n_views,
                timeout=30_000,
            )
            controls = page.locator(
                ".widget-slider, .widget-dropdown, .widget-toggle-buttons"
            ).count()
            assert controls > 0, f"{page_name}: saved widgets but no slider or drop-down rendered"
            errors = page.locator(".jupyter-widgets-error-widget, .widget-error").count()
            assert errors == 0, f"{page_name}: {errors} widget(s) failed to render"

        # Every figure loads: all <img> in the article, saved widget outputs included.
        page.wait_for_function(
            "() => [...document.querySelectorAll('main img')].every(i => i.complete)",
            timeout=30_000,
        )
        broken = page.evaluate(
            "() => [...document.querySelectorAll('main img')]"
            ".filter(i => !(i.naturalWidth > 0)).map(i => i.src.slice(0, 80))"
        )
        assert not broken, f"{page_name}: images that did not load: {broken}"
        # A figure that reached the page as its text repr instead of a picture.
        figure_reprs = re.findall(r"&lt;Figure size \d+x\d+ with \d+ Axes&gt;", source)
        assert not figure_reprs, f"{page_name}: figures shown as text, not images: {figure_reprs}"
        n_img_source = len(re.findall(r"<img\b", source))
        n_img = page.locator("main img").count()
        assert n_img >= n_img_source, (
            f"{page_name}: {n_img} <img> shown, {n_img_source} in the page"
        )

        out = screenshots / "book" / (page_name.replace("/", "__") + ".png")
        out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(out), full_page=True)

        report = {
            "requests": len(log.urls),
            "img": n_img,
            "widget_views": n_views,
            "sliders": page.locator(".widget-slider").count(),
            "math": page.locator("mjx-container").count(),
        }
        print(f"\n{page_name}: {report} -> {out}")
        assert log.outside == [], f"{page_name}: requests left the site: {log.outside}"
        assert all(log.is_local(u) for u in log.urls)
        failed = [f for f in failed if not f.endswith("/favicon.ico")]
        assert failed == [], f"{page_name}: local requests failed: {failed}"
    finally:
        page.close()


@pytest.mark.skipif(
    "notebooks/01_decompose_a_scale" not in PAGES, reason="chapter 01 not in the built book yet"
)
def test_decompose_chapter_has_static_scale_slider_and_plot(browser, site):
    page = browser.new_page()
    log = RequestLog((site,))
    try:
        log.attach(page)
        page.goto(site + "notebooks/01_decompose_a_scale.html", wait_until="networkidle")
        slider = page.locator(
            ".widget-slider",
            has=page.locator(".widget-label", has_text=re.compile(r"^\s*scale\s*$")),
        )
        slider.first.wait_for(timeout=30_000)
        assert slider.first.locator(".noUi-handle, .slider-handle, input[type=range]").count() >= 1
        # The saved explorer shows its readout and its plot (an <img> inside the widget area).
        widget_imgs = page.locator(".jupyter-widgets img, .widget-output img")
        widget_imgs.first.wait_for(timeout=30_000)
        assert page.evaluate(
            "() => [...document.querySelectorAll('.jupyter-widgets img, .widget-output img')]"
            ".some(i => i.naturalWidth > 0)"
        )
        readout = " ".join(page.locator(".widget-html-content").all_inner_texts())
        assert re.search(r"multiplier", readout, re.I), (
            f"no readout with the multiplier: {readout!r}"
        )
        assert log.outside == []
    finally:
        page.close()
