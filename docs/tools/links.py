#!/usr/bin/env python3
"""`make docs`' last step: no broken link in the built site.

Every href and src of every page that stays on the site must name a file the build wrote,
and its #fragment an id on that page. The API reference (api.html) draws its anchors in the
browser, so a link into it is checked against openapi.yaml instead: #operation/<operationId>
and #tag/<tag> must name one the spec declares. Links off the site are not fetched (CI reaches
no network but the package registries); they are listed, so a reviewer sees them.

Usage: links.py BOOK_DIR OPENAPI_YAML
"""
import re
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


def spec_anchors(openapi):
    text = Path(openapi).read_text()
    anchors = {f"operation/{m}" for m in re.findall(r"^\s+operationId:\s*(\S+)", text, re.M)}
    tags = re.search(r"^tags:\n((?:[ -].*\n)+)", text, re.M)
    if tags:
        anchors |= {f"tag/{m.strip(chr(34))}" for m in re.findall(r"-\s+name:\s*(.+)", tags.group(1))}
    return anchors


def main(book, openapi):
    book = Path(book).resolve()
    pages = {}
    for path in book.rglob("*.html"):
        if path.name == "api.html":
            continue
        parser = Page()
        parser.feed(path.read_text(errors="replace"))
        pages[path] = parser
    api = spec_anchors(openapi)
    broken, outside = [], set()
    for path, parser in sorted(pages.items()):
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
            if target.name == "api.html":
                if fragment not in api:
                    broken.append(f"{where} (openapi.yaml has no {fragment})")
            elif target in pages and fragment not in pages[target].ids:
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
