"""Real-browser tests: every slide deck, and the course itself in JupyterLab, in headless Chromium.

They drive Debian's `chromium` (/usr/bin/chromium, or COURSE_CHROMIUM=/path) through Playwright
from PyPI, else Playwright's own Chromium where `playwright install chromium` put one;
`.ci/ensure-browser` (run by `make test`) installs one of them where it can. Without either they
skip, except under CI=true, where they fail: CI must run them. Screenshots are kept in
build/screenshots/ as artifacts. COURSE_SKIP_BROWSER=1 skips them outright; CI never sets it.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "build" / "screenshots"
CHROMIUM = os.environ.get("COURSE_CHROMIUM", "/usr/bin/chromium")
# Without the network flags Chromium keeps calling Google's hosts, which a closed network refuses.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
EXPLORER_NOTEBOOK = "07_activation_visualisation.ipynb"

if os.environ.get("COURSE_SKIP_BROWSER") == "1":
    pytest.skip("COURSE_SKIP_BROWSER=1", allow_module_level=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        if Path(CHROMIUM).is_file():
            options = {"executable_path": CHROMIUM}
        elif Path(playwright.chromium.executable_path).is_file():
            # Playwright's own, the full build (channel "chromium"), not only its headless shell.
            options = {"executable_path": None, "channel": "chromium"}
        else:
            message = (
                f"No Chromium at {CHROMIUM} and none of Playwright's. Install Debian's "
                "(`sudo apt-get install chromium`) or Playwright's (`.venv/bin/python -m "
                "playwright install chromium`), or set COURSE_CHROMIUM=/path."
            )
            if os.environ.get("CI") == "true":
                pytest.fail(f"{message} CI=true: the browser tests are mandatory.")
            pytest.skip(message)
        chromium = playwright.chromium.launch(args=FLAGS, **options)
        yield chromium
        chromium.close()


def test_every_deck_opens_navigates_and_fits(browser, built_slides: list[Path]):
    (SCREENSHOTS / "slides").mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1280, "height": 720})
    errors: list[str] = []
    page.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )
    page.on("pageerror", lambda error: errors.append(str(error)))
    problems = []
    for deck in built_slides:
        page.goto(deck.as_uri())
        expected = int(page.locator("main.deck").get_attribute("data-slides"))
        count = page.evaluate("window.courseDeck.count")
        assert count == expected == page.locator("section.slide").count(), deck.name
        assert page.locator("section.slide.current").count() == 1
        for index in range(count):
            page.evaluate(f"window.courseDeck.show({index})")
            overflow = page.evaluate(
                "(() => { const s = document.querySelector('.slide.current');"
                " return s.scrollHeight - s.clientHeight; })()"
            )
            if overflow > 2:
                problems.append(f"{deck.name} slide {index + 1} overflows by {overflow} px")
        page.keyboard.press("Home")
        page.keyboard.press("ArrowRight")
        assert page.evaluate("window.courseDeck.current()") == 1 and page.url.endswith("#2")
        page.keyboard.press("End")
        assert page.evaluate("window.courseDeck.current()") == count - 1
        page.keyboard.press("Home")
        page.screenshot(path=SCREENSHOTS / "slides" / f"{deck.stem}.png")
    page.close()
    assert not errors, errors
    assert not problems, problems


def test_the_presenter_window_shows_notes_and_follows_the_projected_deck(browser, built_slides):
    page = browser.new_page(viewport={"width": 1280, "height": 720})
    page.goto(built_slides[0].as_uri())
    assert not page.locator(".slide.current aside.notes").is_visible()  # the room sees no notes
    with page.expect_popup() as opened:
        page.keyboard.press("p")
    presenter = opened.value
    presenter.wait_for_function("window.courseDeck && window.courseDeck.current() === 0")
    assert presenter.locator(".slide.current aside.notes").is_visible()
    page.keyboard.press("ArrowRight")
    presenter.wait_for_function("window.courseDeck.current() === 1", timeout=5_000)
    presenter.keyboard.press("ArrowRight")  # the presenter can drive the projected deck too
    page.wait_for_function("window.courseDeck.current() === 2", timeout=5_000)
    presenter.locator(".slide.current aside.notes").click()  # reading the notes turns no page
    page.keyboard.press("Control+n")  # a browser shortcut is left to the browser
    assert presenter.evaluate("window.courseDeck.current()") == 2
    assert not page.locator(".slide.current aside.notes").is_visible()
    presenter.screenshot(path=SCREENSHOTS / "slides" / "presenter_view.png")
    page.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """JupyterLab on 127.0.0.1 over a copy of one notebook, in the smoke profile; its base URL."""
    root = tmp_path_factory.mktemp("lab")
    shutil.copy(ROOT / "notebooks" / EXPLORER_NOTEBOOK, root)
    settings = root / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)  # no "get Jupyter news?" prompt over the notebook
    (settings / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
    token, port = secrets.token_hex(16), _free_port()
    env = dict(
        os.environ,
        COURSE_PROFILE="smoke",
        COURSE_DATA_DIR=str(root / "data"),
        COURSE_RESULTS_DIR=str(root / "results"),
        JUPYTERLAB_SETTINGS_DIR=str(root / "settings"),
        JUPYTER_RUNTIME_DIR=str(root / "runtime"),
    )
    env.pop("MPLBACKEND", None)  # the notebook's own inline figures
    command = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: run cells, read the model
    ] + (["--allow-root"] if getattr(os, "geteuid", lambda: -1)() == 0 else [])  # fmt: skip
    log = (root / "server.log").open("w")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not start:\n{(root / 'server.log').read_text()}")
                time.sleep(0.5)
        yield f"{base}/lab/tree/{EXPLORER_NOTEBOOK}?token={token}&reset"
    finally:
        server.terminate()
        server.wait(30)
        log.close()


NOTEBOOK = "window.jupyterapp.shell.currentWidget"
ALL_RAN = f"""(() => {{
    const nb = {NOTEBOOK};
    const code = Array.from(nb.content.model.cells).filter(c => c.type === 'code');
    return code.every(c => c.executionCount !== null)
        && nb.sessionContext.session.kernel.status === 'idle';
}})()"""
ERRORS = f"""(() => {{
    const errors = [];
    Array.from({NOTEBOOK}.content.model.cells).forEach((cell, i) => {{
        if (cell.type !== 'code') return;
        for (let j = 0; j < cell.outputs.length; j++) {{
            const output = cell.outputs.get(j).toJSON();
            if (output.output_type === 'error')
                errors.push(`cell ${{i}}: ${{output.ename}}: ${{output.evalue}}`);
        }}
    }});
    return errors;
}})()"""


def test_the_activation_explorer_runs_and_renders_in_jupyterlab(browser, jupyterlab: str):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(jupyterlab)
    page.wait_for_function(
        f"window.jupyterapp && {NOTEBOOK} && {NOTEBOOK}.sessionContext"
        f" && {NOTEBOOK}.sessionContext.session && {NOTEBOOK}.sessionContext.session.kernel",
        timeout=90_000,
    )
    page.evaluate(
        f"{NOTEBOOK}.sessionContext.ready.then("
        "() => window.jupyterapp.commands.execute('notebook:run-all-cells'))"
    )
    page.wait_for_function(ALL_RAN, timeout=300_000, polling=1000)
    assert page.evaluate(ERRORS) == []

    # Scroll to the explorer's cell, then find the widget in the DOM.
    index = page.evaluate(
        f"Array.from({NOTEBOOK}.content.model.cells)"
        ".findIndex(c => c.sharedModel.getSource().startsWith('activation_explorer('))"
    )
    assert index > 0
    page.evaluate(
        f"(() => {{ const nb = {NOTEBOOK}.content; nb.activeCellIndex = {index};"
        f" return nb.scrollToItem({index}, 'start'); }})()"
    )
    cell = page.locator(".jp-Notebook .jp-Cell").nth(index)
    widget = cell.locator(".jupyter-widgets.widget-vbox").first
    widget.wait_for(state="visible", timeout=30_000)
    sliders = widget.locator(".widget-hslider")
    assert sliders.count() == 2 and widget.locator(".widget-dropdown select").count() == 1
    assert [sliders.nth(i).locator(".widget-label").inner_text() for i in range(2)] == [
        "image",
        "channel",
    ]
    image = widget.locator(".widget-output img").first
    image.wait_for(state="visible", timeout=30_000)
    before = image.get_attribute("src")

    # Live: moving the channel slider asks the kernel to redraw the map.
    sliders.nth(1).locator(".noUi-handle").focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_function(
        "([cell, before]) => { const img = document.querySelectorAll('.jp-Notebook .jp-Cell')[cell]"
        ".querySelector('.widget-output img'); return img && img.src !== before; }",
        arg=[index, before],
        timeout=30_000,
    )
    assert widget.locator(".widget-readout").nth(1).inner_text() == "1"
    widget.screenshot(path=SCREENSHOTS / "jupyterlab_activation_explorer.png")
    page.screenshot(path=SCREENSHOTS / "jupyterlab_notebook_07.png")
    page.close()
