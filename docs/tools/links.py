#!/usr/bin/env python3
"""`make docs`' last step: no broken link in the built site.

Every href and src of every page that stays on the site must name a file the build wrote,
and its #fragment an id on that page — the API reference (api.html, pre-rendered by Redoc)
included: a link to #operation/<operationId> or #tag/<Tag> must name one it renders. The
reference's own links are Redoc's, not ours, and are not checked. Links off the site are not
fetched (CI reaches no network but the package registries); they are listed, so a reviewer
sees them.

Usage: links.py BOOK_DIR
"""
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

# Where the site is served (book.toml's site-url): /docs/ on the local stack.
SITE_URL = "/docs/"


class Page(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids, self.links = set(), []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in ("id", "name"):
            if attrs.get(name) and (name == "id" or tag == "a"):
                self.ids.add(attrs[name])
        for name in ("href", "src"):
            if attrs.get(name) is not None:
                self.links.append((tag, attrs[name], self.getpos()[0]))


def main(book):
    book = Path(book).resolve()
    pages = {}
    for path in book.rglob("*.html"):
        parser = Page()
        parser.feed(path.read_text(errors="replace"))
        pages[path] = parser
    broken, outside = [], set()
    for path, parser in sorted(pages.items()):
        if path.name == "api.html":
            continue
        for tag, link, line in parser.links:
            parts = urlsplit(link)
            if parts.scheme or link.startswith("//"):
                if parts.scheme in ("http", "https"):
                    outside.add(link)
                continue
            if not parts.path and not parts.fragment:
                continue
            if parts.path.startswith(SITE_URL):  # absolute, under the site's own address
                target = (book / unquote(parts.path[len(SITE_URL):])).resolve()
            elif parts.path:
                target = (path.parent / unquote(parts.path)).resolve()
            else:
                target = path
            if target.is_dir():
                target = target / "index.html"
            where = f"{path.relative_to(book)}:{line}: {link}"
            if not target.is_relative_to(book):
                broken.append(f"{where} (outside the site)")
                continue
            if not target.exists():
                broken.append(f"{where} (no such file)")
                continue
            fragment = unquote(parts.fragment)
            if not fragment:
                continue
            if target in pages and fragment not in pages[target].ids:
                broken.append(f"{where} (no #{fragment} on that page)")
    for link in sorted(outside):
        print(f"links: off the site, not fetched: {link}")
    if broken:
        print("links: broken links in the site:", *broken, sep="\n  ", file=sys.stderr)
        return 1
    print(f"links: {sum(len(p.links) for p in pages.values())} links in {len(pages)} pages, none broken")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
