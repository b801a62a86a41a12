"""Build the slide decks: slides/src/*.md -> self-contained reveal.js HTML (no network to view).

A deck is Markdown with slides separated by a line `---`. The first slide's `# Title` makes it a
title slide. In a slide:
- `![caption](figure:NAME)` draws figure NAME from slides/figures.py (embedded as a PNG);
- `{{table:NAME}}` inserts a table from `TABLES` (the seed's published numbers, the profiles);
- a line starting with `Note:` (outside code) begins the speaker notes (reveal's speaker view, S).

Each slide becomes a reveal.js `<section>`; reveal.js and its notes plugin are read from the copy
vendored in slides/vendor/reveal.js/ (never the network) and inlined with slides/theme.css.

Usage: python slides/build.py [--out build/slides] [deck names...]
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import re
import string
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import markdown
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # course_utils, when run from a checkout without install
sys.path.insert(0, str(HERE))

from figures import FIGURES, plt  # noqa: E402 (figures.py picks the Agg backend first)

from course_utils import config, experiments  # noqa: E402

SOURCES = HERE / "src"
SEPARATOR = re.compile(r"^---[ \t]*$")
FENCE = re.compile(r"^(```|~~~)")
FIGURE = re.compile(r'src="figure:([a-z0-9_]+)"')
TABLE = re.compile(r"\{\{table:([a-z0-9_]+)\}\}")
EXTERNAL = re.compile(
    r'<(?:img|script|link|iframe|video|audio|source)\b[^>]*\b(?:src|href)="(?:https?:)?//', re.I
)
# In CSS, the page may load nothing: no @import, no url() but data: URLs.
CSS_FETCH = re.compile(r"@import\b|url\(\s*(?![\s'\"]*data:)", re.I)
STYLES = re.compile(r"<style>(.*?)</style>|\bstyle=\"([^\"]*)\"", re.S | re.I)
VENDOR = HERE / "vendor" / "reveal.js"
THEME = HERE / "theme.css"  # the course's look, over reveal's white theme
REVEAL_CSS = ("dist/reset.css", "dist/reveal.css", "dist/theme/white.css")
REVEAL_JS = ("dist/reveal.js", "plugin/notes/notes.js")
IMPORT_LINE = re.compile(r"^[ \t]*@import\b[^;\n]*;[ \t]*\n?", re.M)
# reveal.js settings: 1280×720 slides, the URL's #/N is slide N (as the slide number shows), no
# animation; S opens the speaker view (notes plugin), ?print-pdf lays out one page per slide.
REVEAL_CONFIG = """{
  width: 1280, height: 720, margin: 0, center: false, display: "flex",
  hash: true, hashOneBasedIndex: true, history: false, slideNumber: "c/t",
  transition: "none", backgroundTransition: "none", pdfMaxPagesPerSlide: 1,
  plugins: [RevealNotes]
}"""


def _profiles() -> pd.DataFrame:
    rows = {
        name: {
            "image size": f"{p.image_size} px",
            "images": p.max_samples or "all",
            "epochs": p.epochs,
            "batch": p.batch_size,
            "for": p.purpose,
        }
        for name, p in config.PROFILES.items()
    }
    return pd.DataFrame(rows).T


TABLES: dict[str, Callable[[], pd.DataFrame]] = {
    "seed_ham10000": lambda: experiments.SEED_HAM10000,
    "seed_xray": lambda: experiments.SEED_XRAY,
    "references": lambda: experiments.REFERENCES.set_index("task"),
    "profiles": _profiles,
}


PAGE = string.Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$title</title>
<style>
$css</style>
</head>
<body>
<div class="reveal" data-slides="$count">
<div class="slides">
$slides
</div>
</div>
<script>
$script
Reveal.initialize($config);
</script>
</body>
</html>
""")


class BuildError(ValueError):
    """A deck that cannot be built; the message says which deck and what to fix."""


def _outside_code(lines: list[str]) -> list[bool]:
    """For each line: is it outside a fenced code block (where `---` and `Note:` mean nothing)?"""
    flags, fenced = [], False
    for line in lines:
        if FENCE.match(line):
            fenced = not fenced
            flags.append(False)
        else:
            flags.append(not fenced)
    return flags


def split_slides(text: str) -> list[str]:
    """The slides of a deck source, in order (blank ones dropped)."""
    lines = text.splitlines()
    slides, current = [], []
    for line, outside in zip(lines, _outside_code(lines), strict=True):
        if outside and SEPARATOR.match(line):
            slides.append("\n".join(current))
            current = []
        else:
            current.append(line)
    slides.append("\n".join(current))
    return [slide.strip() for slide in slides if slide.strip()]


def split_notes(slide: str) -> tuple[str, str]:
    """(body, speaker notes): the notes start at a line `Note:` outside code."""
    lines = slide.splitlines()
    for i, (line, outside) in enumerate(zip(lines, _outside_code(lines), strict=True)):
        if outside and line.startswith("Note:"):
            notes = [line[len("Note:") :], *lines[i + 1 :]]
            return "\n".join(lines[:i]), "\n".join(notes)
    return slide, ""


def _png(name: str, cache: dict[str, str]) -> str:
    if name not in cache:
        if name not in FIGURES:
            raise BuildError(f"Unknown figure {name!r}. Known: {', '.join(sorted(FIGURES))}.")
        figure = FIGURES[name]()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=110)
        plt.close(figure)
        cache[name] = base64.b64encode(buffer.getvalue()).decode()
    return cache[name]


def _table(match: re.Match) -> str:
    name = match.group(1)
    if name not in TABLES:
        raise BuildError(f"Unknown table {name!r}. Known: {', '.join(sorted(TABLES))}.")
    table = TABLES[name]()
    return table.to_html(float_format=lambda v: f"{v:.2f}", border=0) + "\n"


def render_slide(source: str, number: int, figure_cache: dict[str, str]) -> str:
    """One slide as an HTML <section>."""
    body, notes = split_notes(source)
    body = TABLE.sub(_table, body)
    content = markdown.markdown(body, extensions=["tables", "fenced_code", "sane_lists"])
    content = FIGURE.sub(
        lambda m: f'src="data:image/png;base64,{_png(m.group(1), figure_cache)}"', content
    )
    kind = "slide title" if body.lstrip().startswith("# ") else "slide"
    aside = (
        f'<aside class="notes">{markdown.markdown(notes.strip())}</aside>' if notes.strip() else ""
    )
    # No id: reveal.js would put it in the URL instead of the slide number.
    return f'<section class="{kind}" data-slide="{number}">\n{content}\n{aside}\n</section>'


def _vendored(name: str) -> str:
    path = VENDOR / name
    if not path.is_file():
        raise BuildError(f"{path} is missing: slides/README.md says how to vendor reveal.js.")
    return path.read_text(encoding="utf-8")


def _css() -> str:
    """reveal.js's CSS without its @import lines (its theme's web font), then the course's."""
    parts = [IMPORT_LINE.sub("", _vendored(name)) for name in REVEAL_CSS]
    css = "\n".join([*parts, THEME.read_text(encoding="utf-8")])
    if "</style" in css.lower():
        raise BuildError("the CSS contains '</style'; it cannot be inlined.")
    return css


def _script() -> str:
    script = "\n".join(_vendored(name) for name in REVEAL_JS)
    if "</script" in script.lower():
        raise BuildError("the script contains '</script'; it cannot be inlined.")
    return script


def _loads_from_elsewhere(page: str) -> bool:
    """Would the page fetch anything (an element's src/href to a host, a CSS @import or url())?"""
    if EXTERNAL.search(page):
        return True
    return any(CSS_FETCH.search(block or attribute) for block, attribute in STYLES.findall(page))


def build_deck(source: Path, figure_cache: dict[str, str] | None = None) -> tuple[str, str, int]:
    """A whole deck as one self-contained HTML page: (page, title, number of slides)."""
    slides = split_slides(source.read_text(encoding="utf-8"))
    if not slides or not slides[0].startswith("# "):
        raise BuildError(f"{source.name}: the first slide must start with '# Title'.")
    title = slides[0].splitlines()[0][2:].strip()
    cache = {} if figure_cache is None else figure_cache
    try:
        sections = [render_slide(s, i, cache) for i, s in enumerate(slides, 1)]
    except BuildError as error:
        raise BuildError(f"{source.name}: {error}") from None
    page = PAGE.substitute(
        title=html.escape(title),
        css=_css(),
        count=len(sections),
        slides="\n".join(sections),
        script=_script(),
        config=REVEAL_CONFIG,
    )
    if _loads_from_elsewhere(page):
        raise BuildError(
            f"{source.name}: embeds a resource from the network; decks must work offline."
        )
    return page, title, len(sections)


def _index(decks: Iterable[tuple[str, str, int]]) -> str:
    items = "\n".join(
        f'<li><a href="{name}.html">{html.escape(title)}</a> ({count} slides)</li>'
        for name, title, count in decks
    )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head><meta charset="utf-8">'
        '<title>Course slides</title></head>\n<body style="font-family: sans-serif">\n'
        f'<h1>Transfer learning for medical images: slides</h1>\n<ol start="0">\n{items}\n</ol>\n'
        "<p>reveal.js decks: arrow keys or space to move, <kbd>S</kbd> speaker view (notes, next"
        " slide, timer), <kbd>Esc</kbd> or <kbd>O</kbd> overview, <kbd>F</kbd> fullscreen,"
        " <kbd>B</kbd> blackout, <kbd>?</kbd> all keys. PDF: open a deck with"
        " <code>?print-pdf</code> after its name, then print to PDF.</p>\n"
        "</body>\n</html>\n"
    )


def build_all(out: Path, names: list[str] | None = None) -> list[Path]:
    """Build the decks (all, or those named) and an index page into `out`; return the pages."""
    sources = sorted(SOURCES.glob("*.md"))
    if names:
        unknown = set(names) - {s.stem for s in sources}
        if unknown:
            raise BuildError(
                f"No deck {sorted(unknown)}. Decks: {', '.join(s.stem for s in sources)}."
            )
        sources = [s for s in sources if s.stem in names]
    out.mkdir(parents=True, exist_ok=True)
    cache: dict[str, str] = {}
    pages, listed = [], []
    for source in sources:
        page, title, count = build_deck(source, cache)
        pages.append(_write(out / f"{source.stem}.html", page))
        listed.append((source.stem, title, count))
    if not names:  # the index lists every deck, so only a full build writes it
        _write(out / "index.html", _index(listed))
    return pages


def _write(target: Path, text: str) -> Path:
    """Write whole or not at all: a reader never sees half a page."""
    partial = target.with_name(target.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(target)
    return target


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("decks", nargs="*", help="deck names (default: all)")
    parser.add_argument("--out", type=Path, default=HERE.parent / "build" / "slides")
    args = parser.parse_args(argv)
    try:
        pages = build_all(args.out, args.decks)
    except BuildError as error:
        sys.exit(f"make slides: {error}")
    for page in pages:
        print(f"{page} ({page.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
