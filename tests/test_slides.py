"""The slide decks: one per notebook, built offline into self-contained reveal.js HTML."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "slides" / "src").glob("*.md"))
VENDOR = ROOT / "slides" / "vendor" / "reveal.js"


@pytest.fixture
def built(built_slides: list[Path]) -> Path:
    return built_slides[0].parent


def test_every_notebook_has_a_deck():
    notebooks = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9]*.ipynb"))
    assert [s.stem for s in SOURCES] == notebooks


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_a_deck_is_one_offline_page_with_every_slide(built: Path, source: Path, slide_builder):
    page = (built / f"{source.stem}.html").read_text(encoding="utf-8")
    slides = slide_builder.split_slides(source.read_text(encoding="utf-8"))
    assert 4 <= len(slides) <= 12
    assert len(re.findall(r'<section class="slide', page)) == len(slides)
    assert f'<div class="reveal" data-slides="{len(slides)}">' in page
    # reveal.js, its notes plugin (the speaker view) and both stylesheets are inlined.
    assert "Reveal.initialize(" in page and "plugins: [RevealNotes]" in page
    assert "hashOneBasedIndex: true" in page and "width: 1280, height: 720" in page
    # Nothing is fetched at view time: no src/href to another host, CSS and script inline, and
    # reveal's theme without its @import (a font next to the theme, absent here).
    markup = re.sub(r"<script>.*?</script>", "", page, flags=re.S)  # reveal's own templates
    assert all(value.startswith("data:") for value in re.findall(r'\bsrc="([^"]*)"', markup))
    assert "<link" not in page and "@import" not in page and "source-sans-pro" not in page
    assert "<style>" in page and "<script>" in page and 'src="figure:' not in markup
    assert "{{table:" not in markup
    assert "data:image/png;base64," in page or "<table" in page  # a figure or a table from code


def test_reveal_js_is_vendored_small_with_its_licence_and_version():
    files = [p for p in VENDOR.rglob("*") if p.is_file()]
    names = {p.relative_to(VENDOR).as_posix() for p in files}
    assert names == {
        "LICENSE",
        "VERSION",
        "dist/reset.css",
        "dist/reveal.css",
        "dist/reveal.js",
        "dist/theme/white.css",
        "plugin/notes/notes.js",
    }
    assert sum(p.stat().st_size for p in files) < 400_000
    assert (VENDOR / "LICENSE").read_text().startswith("Copyright (C) 2011-2024 Hakim El Hattab")
    assert "Permission is hereby granted, free of charge" in (VENDOR / "LICENSE").read_text()
    version = re.match(r"reveal\.js (5\.\d+\.\d+) \(MIT", (VENDOR / "VERSION").read_text())
    assert version and f'"{version.group(1)}"' in (VENDOR / "dist" / "reveal.js").read_text()
    # The speaker view is inside notes.js (no speaker-view.html to fetch next to the page).
    assert "speaker-controls-notes" in (VENDOR / "plugin" / "notes" / "notes.js").read_text()


def test_figures_are_drawn_from_code_and_embedded(built: Path):
    page = (built / "00_setup.html").read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") >= 2
    assert "Note:" not in page and '<aside class="notes">' in page
    assert '<section class="slide title" data-slide="1">' in page  # no id: the URL says #/N
    assert ">workshop<" in page and "128 px" in page  # the profiles table comes from config
    index = (built / "index.html").read_text(encoding="utf-8")
    assert all(f'href="{s.stem}.html"' in index for s in SOURCES)


def test_seed_tables_are_cited_with_their_numbers(built: Path):
    pages = "".join(p.read_text(encoding="utf-8") for p in built.glob("[0-9]*.html"))
    assert pages.count("Patel") >= 5
    xray = (built / "06_chest_xray_transfer.html").read_text(encoding="utf-8")
    assert "<table" in xray and "0.94" in xray and "0.93" in xray  # ImageNet vs HAM10000 weights
    for deck in ("04_baselines", "05_freeze_strategies"):  # the HAM10000 table, drawn from code
        assert "seed_ham10000" in (ROOT / "slides" / "src" / f"{deck}.md").read_text()


def test_an_unknown_figure_or_table_fails_clearly_and_writes_nothing(
    tmp_path, monkeypatch, slide_builder
):
    src = tmp_path / "src"
    src.mkdir()
    (src / "99_bad.md").write_text("# Bad\n\n---\n\n## A\n\n![x](figure:no_such_figure)\n")
    monkeypatch.setattr(slide_builder, "SOURCES", src)
    with pytest.raises(
        slide_builder.BuildError, match=r"99_bad.md: Unknown figure 'no_such_figure'.*"
    ):
        slide_builder.build_all(tmp_path / "out")
    assert not list((tmp_path / "out").glob("*.html*"))
    (src / "99_bad.md").write_text("# Bad\n\n---\n\n{{table:nope}}\n")
    with pytest.raises(slide_builder.BuildError, match="Unknown table 'nope'. Known: "):
        slide_builder.build_all(tmp_path / "out")


def test_a_deck_needs_a_title_and_may_not_embed_network_resources(
    tmp_path, monkeypatch, slide_builder
):
    src = tmp_path / "src"
    src.mkdir()
    monkeypatch.setattr(slide_builder, "SOURCES", src)
    (src / "98_untitled.md").write_text("## No title\n")
    with pytest.raises(slide_builder.BuildError, match="first slide must start with '# Title'"):
        slide_builder.build_all(tmp_path / "out")
    for slide in (
        "![x](https://cdn.example.org/x.png)",
        '<div style="background: url(https://cdn.example.org/x.png)">x</div>',
        "<style>@import url(//fonts.example.org/css?family=Lato);</style>",
    ):
        (src / "98_untitled.md").write_text(f"# T\n\n---\n\n{slide}\n")
        with pytest.raises(slide_builder.BuildError, match="must work offline"):
            slide_builder.build_all(tmp_path / "out")
    assert not list((tmp_path / "out").glob("*.html*"))


def test_the_vendored_theme_loses_its_web_fonts_and_the_course_css_may_load_nothing(
    tmp_path, monkeypatch, slide_builder
):
    src, vendor = tmp_path / "src", tmp_path / "vendor"
    src.mkdir()
    (src / "96_deck.md").write_text("# T\n\n---\n\n## A\n")
    shutil.copytree(VENDOR, vendor)
    theme = vendor / "dist" / "theme" / "white.css"
    web_font = "@import url(https://fonts.googleapis.com/css?family=Lato:400,700);\n"
    theme.write_text(web_font + theme.read_text())
    monkeypatch.setattr(slide_builder, "SOURCES", src)
    monkeypatch.setattr(slide_builder, "VENDOR", vendor)
    [page] = slide_builder.build_all(tmp_path / "out")
    assert "googleapis" not in page.read_text() and "@import" not in page.read_text()
    course_css = tmp_path / "theme.css"
    course_css.write_text("@font-face { font-family: X; src: url(https://example.org/x.woff); }")
    monkeypatch.setattr(slide_builder, "THEME", course_css)
    with pytest.raises(slide_builder.BuildError, match="must work offline"):
        slide_builder.build_all(tmp_path / "out")
    (vendor / "dist" / "reveal.js").unlink()
    with pytest.raises(slide_builder.BuildError, match="reveal.js is missing"):
        slide_builder.build_all(tmp_path / "out")


def test_make_slides_names_unknown_decks(tmp_path, slide_builder):
    with pytest.raises(slide_builder.BuildError, match="No deck \\['42_nothing'\\]"):
        slide_builder.build_all(tmp_path, ["42_nothing"])


def test_code_blocks_keep_their_dashes_and_notes_and_titles_are_escaped_once(
    tmp_path, monkeypatch, slide_builder
):
    src = tmp_path / "src"
    src.mkdir()
    (src / "97_code.md").write_text(
        "# R&D <deck>\n\n---\n\n## Code\n\n```yaml\na: 1\n---\nNote: not a note\n```\n\n"
        "Note: the real note\n\n---\n\n## Last\n"
    )
    monkeypatch.setattr(slide_builder, "SOURCES", src)
    [page] = slide_builder.build_all(tmp_path / "out")
    html = page.read_text()
    assert html.count('<section class="slide') == 3
    assert "---\nNote: not a note" in html  # inside the code block, on the slide
    assert '<aside class="notes"><p>the real note</p></aside>' in html
    index = (tmp_path / "out" / "index.html").read_text()
    assert "R&amp;D &lt;deck&gt;</a> (3 slides)" in index
    assert not list((tmp_path / "out").glob("*.partial"))


def test_builds_are_reproducible(tmp_path, slide_builder):
    deck = "03_imagenet_pretraining"  # draws "random" first-layer filters
    first = slide_builder.build_all(tmp_path / "a", [deck])[0].read_bytes()
    assert slide_builder.build_all(tmp_path / "b", [deck])[0].read_bytes() == first
