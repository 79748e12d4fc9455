"""`scalesearch report`'s report.html opens offline: no reference to anything outside the file
(no URL, no protocol-relative //host, no relative path, no @import, no url() outside), and every
figure is embedded as a PNG."""

import base64
import re
from html.parser import HTMLParser

from tests.conftest import scalesearch

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# Attributes whose value the browser fetches or follows.
LINKING = {"src", "href", "srcset", "poster", "data", "action", "formaction", "background",
           "cite", "longdesc", "manifest", "codebase", "archive", "icon", "xlink:href", "ping",
           "lowsrc", "dynsrc", "profile", "usemap"}


class Page(HTMLParser):
    """Every tag with its attributes, the text of <style> elements and of style attributes."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, {k.lower(): v or "" for k, v in attrs}))
        self._in_style = tag == "style"
        self.styles += [v for k, v in attrs if k.lower() == "style" and v]

    handle_startendtag = handle_starttag

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.styles.append(data)


def outside_references(page: Page) -> list[str]:
    """What in `page` would load or link something outside the file."""
    found = []
    for tag, attrs in page.tags:
        for name, value in attrs.items():
            value = value.strip()
            if name in LINKING and not (value.startswith("data:") or value.startswith("#")):
                found.append(f"<{tag} {name}={value[:80]!r}>")
            if name.startswith("on"):
                found.append(f"<{tag} {name}> (script)")
        if tag in ("script", "link", "iframe", "object", "embed", "base", "frame", "applet"):
            found.append(f"<{tag}>")
        if tag == "meta" and attrs.get("http-equiv", "").lower() == "refresh":
            found.append("<meta http-equiv=refresh>")
    for css in page.styles:
        if "@import" in css:
            found.append("@import in CSS")
        for target in re.findall(r"url\(\s*['\"]?([^'\")]*)", css):
            if not (target.startswith("data:") or target.startswith("#")):
                found.append(f"url({target[:80]}) in CSS")
    return found


def test_report_html_has_no_outside_reference_and_embeds_its_figures(finished_study):
    out = scalesearch("report", "tiny", "--results-dir", finished_study.parent, timeout=240)
    assert out.returncode == 0, out.stderr
    text = (finished_study / "report.html").read_text(encoding="utf-8")
    assert not re.search(r"https?://", text, re.IGNORECASE)
    assert not re.search(r"""(?:=|\(|url\s*\()\s*["']?//""", text)  # protocol-relative //host
    page = Page()
    page.feed(text)
    page.close()
    assert outside_references(page) == []

    images = [attrs for tag, attrs in page.tags if tag == "img"]
    drawn = sorted((finished_study / "plots").glob("*.png"))
    assert drawn and len(images) == len(drawn)  # every figure drawn is in the page
    embedded = set()
    for attrs in images:
        head, _, data = attrs["src"].partition(",")
        assert head == "data:image/png;base64", head
        png = base64.b64decode(data, validate=True)
        assert png.startswith(PNG_MAGIC)
        embedded.add(png)
        assert attrs.get("alt")
    assert embedded == {p.read_bytes() for p in drawn}  # the very files, one each


def test_the_check_finds_outside_references():
    """The checker itself: each kind of outside reference is found, and nothing in a page with
    only embedded data and in-page anchors."""
    bad = ['<img src="plots/frontier.png">', '<img src="//cdn.example/x.png">',
           '<link rel="stylesheet" href="s.css">', '<script src="x.js"></script>',
           '<a href="https://example.org">x</a>', '<style>@import "x.css";</style>',
           '<style>body{background:url(bg.png)}</style>', '<div style="background:url(x)">',
           '<img srcset="a.png 2x" src="data:image/png;base64,AA==">',
           '<iframe src="data:text/html,x"></iframe>']
    for html in bad:
        page = Page()
        page.feed(html)
        assert outside_references(page), html
    page = Page()
    page.feed('<style>p{color:red}</style><a href="#figures">x</a>'
              '<img src="data:image/png;base64,AA==" alt="x">')
    assert outside_references(page) == []
