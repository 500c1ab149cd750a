"""Checks of the built book's HTML (``book/_build/html``), run by ``make book`` after the build.

A page fails when its text names the project's tracker (the word issue and a number: readers cannot see
it, so a page gives the reason instead), when it links to a local file or anchor that the
build does not hold, or when its article shows a figure (an image) or a table without a
caption, or two with the same caption (a reader cannot tell them apart: one figure with a
panel each, or a caption each). Sphinx's own pages (search, index of terms) are not checked.

    python -m srnn.book.check book/_build/html
"""
from __future__ import annotations

import re
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

TRACKER = re.compile(r"\bissues?\s+#?\d+\b", re.IGNORECASE)
SKIPPED = {"search.html", "genindex.html", "py-modindex.html"}
EXTERNAL = ("http:", "https:", "mailto:", "data:", "javascript:", "tel:", "//")


class _Page(HTMLParser):
    """One page's visible text, links, anchors, and its article's figures and tables."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.text, self.links, self.ids, self.problems = [], [], set(), []
        self.skip = 0               # inside <script> or <style>
        self.article = 0            # depth inside <article>
        self.figures = []           # open <figure>s: has it a <figcaption> yet?
        self.tables = []            # open <table>s: [has a <caption>, its id]
        self.captions = []          # the text of each caption in the article, in order
        self.caption = None         # the text of the caption being read, if any

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if attrs.get("name"):
            self.ids.add(attrs["name"])
        if tag in ("script", "style"):
            self.skip += 1
        for key in ("href", "src"):
            if attrs.get(key) is not None and tag in ("a", "img", "link", "script", "source", "audio", "video"):
                self.links.append(attrs[key])
        if tag == "article":
            self.article += 1
        if not self.article:
            return
        if tag == "figure":
            self.figures.append(False)
        elif tag == "figcaption" and self.figures:
            self.figures[-1] = True
            self.caption = []
        elif tag == "table":
            self.tables.append([False, attrs.get("id", "")])
        elif tag == "caption" and self.tables:
            self.tables[-1][0] = True
            self.caption = []
        elif tag == "img" and not self.figures:
            self.problems.append(f"an image without a caption ({attrs.get('src', '?')})")

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self.skip:
            self.skip -= 1
        elif tag == "article" and self.article:
            self.article -= 1
        elif tag in ("figcaption", "caption") and self.caption is not None:
            self.captions.append(" ".join("".join(self.caption).split()).rstrip("#").strip())
            self.caption = None
        elif tag == "figure" and self.article and self.figures:
            if not self.figures.pop():
                self.problems.append("a figure without a caption")
        elif tag == "table" and self.article and self.tables:
            captioned, name = self.tables.pop()
            if not captioned:
                self.problems.append(f"a table without a caption{f' (#{name})' if name else ''}")

    def handle_data(self, data):
        if not self.skip:
            self.text.append(data)
            if self.caption is not None:
                self.caption.append(data)


def read_page(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8", errors="replace"))
    page.close()
    return page


def check_book(html: str | Path) -> list[str]:
    """Every problem of the built book under ``html``, one line each naming the page."""
    html = Path(html)
    if not (html / "index.html").is_file():
        return [f"{html} holds no built book (no index.html): build it first"]
    pages = {p: read_page(p) for p in sorted(html.rglob("*.html"))
             if p.name not in SKIPPED and "_static" not in p.relative_to(html).parts
             and "_sources" not in p.relative_to(html).parts}
    problems = []
    for path, page in pages.items():
        name = path.relative_to(html)
        text = " ".join("".join(page.text).split())
        for found in sorted(set(m.group(0) for m in TRACKER.finditer(text))):
            at = text.find(found)
            problems.append(f"{name}: names the tracker ({found!r} in '...{text[max(0, at - 60):at + 40]}...'): "
                            "say the reason instead")
        for link in page.links:
            if not link or link.startswith(EXTERNAL):
                continue
            parts = urlsplit(link)
            if parts.scheme:
                continue
            target = (path.parent / unquote(parts.path)).resolve() if parts.path else path
            if parts.path and not target.exists():
                problems.append(f"{name}: a broken link to {link} (no such file in the build)")
            elif parts.fragment and target.suffix == ".html" and target.is_file():
                anchors = (pages.get(target) or pages.get(path.parent / parts.path) or read_page(target)).ids
                if unquote(parts.fragment) not in anchors:
                    problems.append(f"{name}: a link to a missing anchor {link}")
        problems += [f"{name}: {problem}" for problem in page.problems]
        problems += [f"{name}: {page.captions.count(c)} figures or tables share the caption '{c}'"
                     for c in dict.fromkeys(page.captions) if page.captions.count(c) > 1]
    return problems


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    html = Path(argv[0] if argv else "book/_build/html")
    problems = check_book(html)
    for line in problems:
        print(line, file=sys.stderr)
    print(f"{html}: {len(problems)} problem(s)" if problems else f"{html}: every page passed the checks "
          "(no tracker words, no broken local link, every figure and table captioned, no caption twice)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
