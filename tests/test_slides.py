"""The slide decks: one per notebook, built offline into self-contained HTML."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "slides" / "src").glob("*.md"))


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
    assert f'data-slides="{len(slides)}"' in page
    # Nothing is fetched at view time: no src/href to another host, CSS and script inline.
    assert all(value.startswith("data:") for value in re.findall(r'\bsrc="([^"]*)"', page))
    assert "<link" not in page
    assert "<style>" in page and "<script>" in page and "figure:" not in page
    assert "{{table:" not in page
    assert "data:image/png;base64," in page or "<table" in page  # a figure or a table from code


def test_figures_are_drawn_from_code_and_embedded(built: Path):
    page = (built / "00_setup.html").read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") >= 2
    assert "Note:" not in page and '<aside class="notes">' in page
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
    (src / "98_untitled.md").write_text("# T\n\n---\n\n![x](https://cdn.example.org/x.png)\n")
    with pytest.raises(slide_builder.BuildError, match="must work offline"):
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
