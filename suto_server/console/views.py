# -*- test-case-name: tests.console.test_site -*-
"""
How a console page is drawn: the layout every page shares (a template
file, C{templates/layout.xml}) around the page's own content, built with
C{twisted.web.template}'s tags, so every value is escaped by the template
engine and no HTML is ever put together from strings.

Also the pieces the pages use: a table, the pagination links, a form
with its CSRF field, a labelled input, and a bar chart drawn with CSS
classes (the policy forbids inline styles).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import urlencode

from twisted.python.filepath import FilePath
from twisted.web.template import Element, XMLFile, flattenString, renderer, tags

from suto_server.console.guard import CSRF_FIELD

#: The pages the navigation lists, in order: path and name.
NAVIGATION = (
    ("/", "Overview"),
    ("/endpoints", "Endpoints"),
    ("/windows", "Enrollment windows"),
    ("/blacklist", "Blacklist"),
    ("/alerts", "Alerts"),
    ("/audit", "Audit log"),
    ("/live", "Live"),
)

#: htmx's settings: no inline indicator style (the policy would refuse
#: it), no evaluated code, no script tags in swapped content.
HTMX_CONFIG = json.dumps(
    {"includeIndicatorStyles": False, "allowEval": False, "allowScriptTags": False}
)

_TEMPLATES = FilePath(__file__).sibling("templates")


@dataclass(frozen=True)
class Redirect:
    """A page's answer that sends the browser to C{location} (303)."""

    location: bytes


@dataclass(frozen=True)
class Page:
    """
    What a console page shows: its title, the navigation entry it is
    (a path of L{NAVIGATION}, or L{None}) and its content (tags).
    """

    title: str
    content: object
    section: str | None = None


class Layout(Element):
    """
    A L{Page} inside the console's header, navigation and main landmark;
    the sign-out form is there when an operator is signed in.
    """

    loader = XMLFile(_TEMPLATES.child("layout.xml"))

    def __init__(self, page: Page, session=None) -> None:
        super().__init__()
        self._page = page
        self._session = session

    @renderer
    def page(self, request, tag):
        session = self._session
        return tag.fillSlots(
            title=self._page.title,
            operator="" if session is None else session.operator,
            csrf="" if session is None else session.csrf,
        )

    @renderer
    def htmx_config(self, request, tag):
        return tag(content=HTMX_CONFIG)

    @renderer
    def navigation(self, request, tag):
        if self._session is None:
            return ""
        for path, name in NAVIGATION:
            link = tags.a(name, href=path)
            if path == self._page.section:
                link(**{"aria-current": "page"})
            tag(tags.li(link))
        return tag

    @renderer
    def signout(self, request, tag):
        return "" if self._session is None else tag

    @renderer
    def content(self, request, tag):
        return self._page.content


def render_page(page: Page, session=None):
    """
    @return: a L{Deferred} firing with the whole document, as bytes.
    """
    return flattenString(None, Layout(page, session)).addCallback(
        lambda body: b"<!DOCTYPE html>\n" + body
    )


def render_fragment(content):
    """
    @return: a L{Deferred} firing with C{content} alone, as bytes (what
        the live view swaps in).
    """
    return flattenString(None, content)


def table(caption: str, headings, rows, numeric=()):
    """
    @param headings: the column names.
    @param rows: each a sequence of cells (text or tags).
    @param numeric: the indexes of right-aligned columns.
    @return: a table whose header cells are C{scope="col"}.
    """
    head = tags.tr(
        *(
            tags.th(name, scope="col", **({"class": "num"} if i in numeric else {}))
            for i, name in enumerate(headings)
        )
    )
    body = [
        tags.tr(
            *(
                tags.td(cell, **({"class": "num"} if i in numeric else {}))
                for i, cell in enumerate(row)
            )
        )
        for row in rows
    ]
    if not body:
        body = [tags.tr(tags.td("Nothing to show.", colspan=str(len(headings))))]
    return tags.table(tags.caption(caption), tags.thead(head), tags.tbody(*body))


def link(path: str, text: str, **query):
    """
    @return: a link to C{path} with the query arguments that are not
        L{None}.
    """
    shown = {name: value for name, value in query.items() if value is not None}
    return tags.a(text, href=path + ("?" + urlencode(shown) if shown else ""))


def pagination(path: str, page: int, pages: int, query: dict):
    """
    @return: the previous and next links of a listing on C{page} of
        C{pages} (numbered from 1), keeping its C{query}.
    """
    parts = []
    if page > 1:
        parts.append(link(path, "Previous page", **query, page=page - 1))
    parts.append(tags.span(f"Page {page} of {pages}"))
    if page < pages:
        parts.append(link(path, "Next page", **query, page=page + 1))
    return tags.nav(*parts, **{"class": "pages", "aria-label": "Pages"})


def post_form(action: str, session, *fields, **attributes):
    """
    @return: a POST form to C{action} carrying C{session}'s CSRF token.
    """
    return tags.form(
        tags.input(type="hidden", name=CSRF_FIELD, value=session.csrf),
        *fields,
        method="post",
        action=action,
        **attributes,
    )


def labelled(text: str, name: str, **attributes):
    """
    @return: an input named C{name} inside its label.
    """
    return tags.label(text, tags.input(name=name, id=f"field-{name}", **attributes))


def bars(label: str, counts):
    """
    @return: a bar chart of C{counts}, one bar per bucket scaled to the
        largest, an image whose accessible name is C{label}.
    """
    most = max(counts, default=0) or 1
    return tags.div(
        *(
            tags.span(title=str(count), **{"class": f"h{round(10 * count / most)}"})
            for count in counts
        ),
        role="img",
        **{"class": "bars", "aria-label": label},
    )
