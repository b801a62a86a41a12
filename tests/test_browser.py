"""Real-browser tests: every slide deck (reveal.js: navigation, overview, speaker view, print to
PDF), and the course itself in JupyterLab, in headless Chromium.

They drive Debian's `chromium` (/usr/bin/chromium, or COURSE_CHROMIUM=/path) through Playwright
from PyPI, else Playwright's own Chromium where `playwright install chromium` put one;
`.ci/ensure-browser` (run by `make test`) installs one of them where it can. Without either they
skip, except under CI=true, where they fail: CI must run them. Screenshots are kept in
build/screenshots/ as artifacts. COURSE_SKIP_BROWSER=1 skips them outright; CI never sets it.
"""

from __future__ import annotations

import json
import os
import re
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


SLIDE_HEIGHT = 720  # reveal.js's configured slide size (slides/build.py), scaled to the window
READY = "window.Reveal && Reveal.isReady()"
OVERFLOW = """(() => { const s = Reveal.getCurrentSlide();
    return [s.scrollHeight - Reveal.getConfig().height, s.scrollWidth - Reveal.getConfig().width];
})()"""


def _watch(page, errors: list[str]) -> None:
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))


def _notes(page) -> str:
    """The current slide's speaker notes in the deck's DOM (reveal hides them from the room)."""
    return page.evaluate(
        "(() => { const n = Reveal.getCurrentSlide().querySelector('aside.notes');"
        " return n ? n.textContent.trim() : ''; })()"
    )


def test_every_deck_opens_navigates_and_fits(browser, built_slides: list[Path]):
    (SCREENSHOTS / "slides").mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    errors: list[str] = []
    _watch(page, errors)
    requests: list[str] = []
    context.on("request", lambda request: requests.append(request.url))
    problems = []
    for deck in built_slides:
        page.goto(deck.as_uri())
        page.wait_for_function(READY)
        expected = int(page.locator(".reveal").get_attribute("data-slides"))
        count = page.evaluate("Reveal.getTotalSlides()")
        assert count == expected == page.locator(".reveal .slides > section").count(), deck.name
        assert page.evaluate("Reveal.getConfig().height") == SLIDE_HEIGHT
        assert page.evaluate("Reveal.getIndices().h") == 0
        assert not page.locator("aside.notes").first.is_visible()  # the room sees no notes
        for index in range(count):
            page.evaluate(f"Reveal.slide({index})")
            tall, wide = page.evaluate(OVERFLOW)
            if tall > 2 or wide > 2:
                problems.append(f"{deck.name} slide {index + 1} overflows by {tall}/{wide} px")
            if index == 2:  # a figure or table slide in most decks
                page.screenshot(path=SCREENSHOTS / "slides" / f"{deck.stem}_3.png")
        page.keyboard.press("Home")
        page.keyboard.press("ArrowRight")
        assert page.evaluate("Reveal.getIndices().h") == 1
        page.wait_for_function("location.hash === '#/2'")  # #/N is slide N, as numbered
        assert page.locator(".slide-number").inner_text().split() == ["2", "/", str(count)]
        page.keyboard.press("End")
        assert page.evaluate("Reveal.getIndices().h") == count - 1
        page.keyboard.press("Escape")
        assert page.evaluate("Reveal.isOverview()")
        page.keyboard.press("Escape")
        assert not page.evaluate("Reveal.isOverview()")
        page.keyboard.press("Home")
        page.screenshot(path=SCREENSHOTS / "slides" / f"{deck.stem}.png")
    page.goto(f"{built_slides[3].as_uri()}#/3")  # a link to slide 3 opens slide 3
    page.wait_for_function(READY)
    assert page.evaluate("Reveal.getIndices().h") == 2
    page.keyboard.press("o")
    page.wait_for_function("Reveal.isOverview()")
    page.screenshot(path=SCREENSHOTS / "slides" / "overview.png")
    context.close()
    assert not errors, errors
    assert not problems, problems
    assert all(url.startswith(("file:", "data:")) for url in requests), set(requests)


def test_print_pdf_lays_out_one_page_per_slide(browser, built_slides: list[Path]):
    page = browser.new_page(viewport={"width": 1280, "height": 720})
    errors: list[str] = []
    _watch(page, errors)
    for deck in built_slides:
        page.goto(f"{deck.as_uri()}?print-pdf")
        page.wait_for_selector(".reveal .slides .pdf-page", state="attached")  # all at once
        count = int(page.locator(".reveal").get_attribute("data-slides"))
        assert page.evaluate("document.documentElement.classList.contains('reveal-print')")
        sizes = page.evaluate(
            "Array.from(document.querySelectorAll('.reveal .slides .pdf-page'), p =>"
            " [p.offsetWidth, p.offsetHeight])"
        )
        # One 1280×720 page a slide (reveal makes each a pixel shorter: no blank page after it).
        assert len(sizes) == count and all(
            w == 1280 and SLIDE_HEIGHT - 2 <= h <= SLIDE_HEIGHT for w, h in sizes
        ), (deck.name, sizes)
    pdf = page.pdf(prefer_css_page_size=True, print_background=True)  # the last deck
    assert len(re.findall(rb"/Type\s*/Page\b(?!s)", pdf)) == count
    page.close()
    assert not errors, errors


def _speaker_view(speaker) -> tuple[str, list[int]]:
    """The notes the speaker view shows ("" when hidden) and the slides in its two previews."""
    notes = speaker.evaluate(
        "(() => { const n = document.querySelector('.speaker-controls-notes');"
        " return n.classList.contains('hidden') ? ''"
        " : n.querySelector('.value').textContent.trim(); })()"
    )
    previews = []
    for selector in ("#current-slide iframe", "#upcoming-slide iframe"):
        frame = speaker.query_selector(selector)
        frame = frame and frame.content_frame()
        previews.append(
            frame.evaluate("window.Reveal && Reveal.isReady() ? Reveal.getIndices().h : -1")
            if frame
            else -1
        )
    return notes, previews


def _speaker_view_shows(speaker, notes: str, current: int, last: int) -> None:
    """Wait until the speaker view shows these notes, this slide and the next one (reveal's
    speaker view debounces its updates by a few hundred milliseconds)."""
    want = (notes, [current, min(current + 1, last)])
    deadline = time.monotonic() + 10
    while (seen := _speaker_view(speaker)) != want and time.monotonic() < deadline:
        time.sleep(0.2)
    assert seen == want


def test_the_speaker_view_shows_notes_and_follows_the_deck(browser, built_slides):
    context = browser.new_context(viewport={"width": 1280, "height": 720})
    page = context.new_page()
    errors: list[str] = []
    _watch(page, errors)
    page.goto(built_slides[0].as_uri())  # deck 00: notes on slides 1, 3 and 5, none on 2 and 4
    page.wait_for_function(READY)
    last = page.evaluate("Reveal.getTotalSlides()") - 1
    first = _notes(page)
    assert first
    with context.expect_page() as opened:
        page.keyboard.press("s")  # reveal's notes plugin writes its speaker view into a window
    speaker = opened.value
    _watch(speaker, errors)
    _speaker_view_shows(speaker, first, 0, last)  # the notes, the current and the next slide
    assert speaker.locator(".speaker-controls-time .timer").is_visible()

    page.keyboard.press("ArrowRight")  # the projected deck moves on: so does the speaker view
    _speaker_view_shows(speaker, "", 1, last)  # a slide without notes shows none
    page.keyboard.press("ArrowRight")
    third = _notes(page)
    assert page.evaluate("Reveal.getIndices().h") == 2 and third and third != first
    _speaker_view_shows(speaker, third, 2, last)

    speaker.keyboard.press("ArrowRight")  # and the speaker view can drive the projected deck
    page.wait_for_function("Reveal.getIndices().h === 3", timeout=10_000)
    _speaker_view_shows(speaker, _notes(page), 3, last)
    page.keyboard.press("ArrowRight")
    _speaker_view_shows(speaker, _notes(page), 4, last)
    speaker.set_viewport_size({"width": 1100, "height": 700})
    speaker.screenshot(path=SCREENSHOTS / "slides" / "speaker_view.png")
    context.close()
    assert not errors, errors


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
