"""JupyterLab on 127.0.0.1, as a learner would use it: double-click the decompose chapter (a MyST
``.md`` file) in the file browser, check that it opens as a notebook (jupytext's viewer, made the
default for Markdown by the settings override ``make lab`` installs), run it, move the "scale" slider
with the keyboard, and check that the readout and the plot change.

The chapters are copied to a temporary folder first, so running them never touches the sources.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from .support import NOTEBOOKS, RequestLog, free_port

NOTEBOOK = "01_decompose_a_scale.md"
# Written by `make lab` / `make test-browser` (mk/lab_overrides.json): JupyterLab's app-level overrides.
LAB_OVERRIDES = Path(sys.prefix) / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
RUN_ALL_TIMEOUT_MS = 300_000

SNAPSHOT_JS = """() => {
  const nb = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook')
          || document.querySelector('.jp-Notebook');
  return {
    readout: [...nb.querySelectorAll('.widget-html-content')].map(e => e.innerText),
    imgs: [...nb.querySelectorAll('.jp-OutputArea img, .jupyter-widgets img')].map(i => i.src),
  };
}"""


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    if not (NOTEBOOKS / NOTEBOOK).is_file():
        pytest.fail(f"{NOTEBOOKS / NOTEBOOK} is missing")
    viewers = {}
    if LAB_OVERRIDES.is_file():
        viewers = (
            json.loads(LAB_OVERRIDES.read_text())
            .get("@jupyterlab/docmanager-extension:plugin", {})
            .get("defaultViewers", {})
        )
    if viewers.get("markdown") != "Jupytext Notebook":
        pytest.fail(
            f"{LAB_OVERRIDES} does not make Jupytext Notebook the Markdown viewer: run `make lab`"
        )
    root = tmp_path_factory.mktemp("lab")
    work = root / "notebooks"
    shutil.copytree(NOTEBOOKS, work, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    settings = root / "settings"
    # Render every cell (no virtual scrolling), so the widgets are in the DOM once run.
    tracker = settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    tracker.parent.mkdir(parents=True)
    tracker.write_text(json.dumps({"windowingMode": "none"}))
    # No "official Jupyter news?" toast over the screenshots.
    notification = (
        settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    )
    notification.parent.mkdir(parents=True)
    notification.write_text(json.dumps({"fetchNews": "false"}))
    env = dict(
        os.environ,
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(root / "workspaces"),
        JUPYTER_RUNTIME_DIR=str(root / "runtime"),
        MPLBACKEND="module://matplotlib_inline.backend_inline",
    )
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        "--allow-root",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.token=",
        "--ServerApp.password=",
        f"--ServerApp.root_dir={work}",
        "--LabApp.expose_app_in_browser=True",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    log = open(root / "jupyterlab.log", "w")
    proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(url + "api/status", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail(
                    "JupyterLab did not start:\n" + (root / "jupyterlab.log").read_text()[-3000:]
                )
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_scale_slider_moves_readout_and_plot(browser, lab, screenshots):
    page = browser.new_page()
    requests = RequestLog((lab,))
    requests.attach(page)
    out = screenshots / "lab"
    out.mkdir(parents=True, exist_ok=True)
    try:
        page.goto(lab + "lab", wait_until="domcontentloaded")
        page.wait_for_function(
            "() => window.jupyterapp && window.jupyterapp.shell", timeout=120_000
        )
        # The settings (with the venv's overrides.json) load after the app is restored: wait until
        # the default viewer of a .md file is jupytext's notebook, as a double-click will use it.
        viewer_js = """() => { const f = window.jupyterapp.docRegistry.defaultWidgetFactory('chapter.md');
                              return f ? f.name : null; }"""
        try:
            page.wait_for_function(f"() => ({viewer_js})() === 'Jupytext Notebook'", timeout=60_000)
        except Exception:
            pytest.fail(
                f"default viewer for .md is {page.evaluate(viewer_js)!r}, not Jupytext Notebook"
            )
        # Double-click the chapter in the file browser, as a learner would.
        item = page.locator(".jp-DirListing-item", has_text=NOTEBOOK).first
        item.wait_for(timeout=60_000)
        page.screenshot(path=str(out / "01_file_browser.png"), full_page=False)
        item.dblclick()
        page.wait_for_function(
            """name => { const w = window.jupyterapp.shell.currentWidget;
                return w && w.context && w.context.path.endsWith(name) && w.sessionContext; }""",
            arg=NOTEBOOK,
            timeout=120_000,
        )
        opened = page.evaluate(
            """() => { const w = window.jupyterapp.shell.currentWidget;
                return { classes: w.node.className, path: w.context.path,
                         notebook: !!w.node.querySelector('.jp-Notebook'),
                         editor: w.node.classList.contains('jp-FileEditor')
                                 || !!w.node.querySelector('.jp-FileEditor') }; }"""
        )
        print(f"\nopened {opened['path']}: {opened['classes']}")
        assert "jp-NotebookPanel" in opened["classes"] and opened["notebook"], opened
        assert not opened["editor"], f"{NOTEBOOK} opened in the text editor, not as a notebook"
        page.wait_for_selector(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell", timeout=60_000)
        status = page.evaluate(
            """async () => {
                const w = window.jupyterapp.shell.currentWidget;
                await w.context.ready;
                await w.sessionContext.ready;
                return w.sessionContext.session ? w.sessionContext.session.kernel.name : null;
            }"""
        )
        assert status, "no kernel started for the notebook"

        page.set_default_timeout(RUN_ALL_TIMEOUT_MS)
        ok = page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
        assert ok is not False, "Run All stopped on an error"
        errors = page.locator('.jp-Notebook [data-mime-type="application/vnd.jupyter.error"]')
        assert errors.count() == 0, "a cell raised:\n" + "\n".join(errors.all_inner_texts())[:3000]
        page.set_default_timeout(30_000)

        label = page.locator(".widget-label", has_text=re.compile(r"^\s*scale\s*$"))
        slider = page.locator(".widget-slider", has=label).first
        slider.wait_for(timeout=60_000)
        handle = slider.locator(".noUi-handle").first
        handle.scroll_into_view_if_needed()
        # Wait until the explorer has drawn its readout and its plot.
        page.wait_for_function(
            f"() => {{ const s = ({SNAPSHOT_JS})(); return s.readout.some(t => t.trim()) && s.imgs.length > 0; }}",
            timeout=60_000,
        )
        time.sleep(1.0)  # let a redraw in flight land before the "before" snapshot
        before = page.evaluate(SNAPSHOT_JS)
        value_before = slider.locator(".widget-readout").inner_text()
        page.screenshot(path=str(out / "01_before.png"), full_page=False)

        handle.focus()
        page.keyboard.press("ArrowRight")
        page.wait_for_function(
            f"""before => {{
                const s = ({SNAPSHOT_JS})();
                const changed = (a, b) => JSON.stringify(a) !== JSON.stringify(b);
                return changed(s.readout, before.readout) && changed(s.imgs, before.imgs)
                       && s.imgs.length > 0;
            }}""",
            arg=before,
            timeout=60_000,
        )
        after = page.evaluate(SNAPSHOT_JS)
        value_after = slider.locator(".widget-readout").inner_text()
        handle.scroll_into_view_if_needed()
        page.screenshot(path=str(out / "01_after.png"), full_page=False)

        changed_readout = [
            b for a, b in zip(before["readout"], after["readout"], strict=False) if a != b
        ]
        print(f"\nslider {value_before!r} -> {value_after!r}; readout now {changed_readout[:2]!r}")
        assert value_after != value_before
        assert requests.outside == [], (
            f"JupyterLab page requested outside hosts: {requests.outside}"
        )
    finally:
        page.close()
