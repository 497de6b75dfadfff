# -*- test-case-name: tests.console.test_listing -*-
"""
A listing shown a page at a time: the endpoints (searched and sorted),
the audit log and the alerts.

The endpoints come from the clients report the admin API serves
(L{suto_server.rules.registry.clients_report}): one pass over the
store's profiles, which the report needs whole anyway to tell each
profile's state, then a search, a sort and one page of rows drawn.  With
10,000 profiles the page takes 100 to 140 ms of the console's 200 ms
target (C{bench/console_render.py} measures it), most of it reading the
profiles, which a store query that sorted and paged would not save: the
state of each row needs the live sessions, which only the daemon has.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from suto_server.console.guard import ConsoleError

#: The sort keys of the endpoints listing.
ENDPOINT_SORTS = ("user", "location", "state", "last_rotation", "key_age")


@dataclass(frozen=True)
class ListingPage:
    """
    One page of a listing: its rows, its number (from 1) and how many
    pages there are (at least 1).
    """

    rows: list
    number: int
    count: int


@dataclass(frozen=True)
class Listing:
    """
    Rows in the order shown, and the query arguments that chose them.
    """

    rows: list
    query: dict

    @property
    def total(self) -> int:
        return len(self.rows)

    def page(self, number: int, size: int) -> ListingPage:
        """
        @return: page C{number} of C{size} rows; the last page when
            C{number} is past it.
        """
        count = max(1, math.ceil(len(self.rows) / size))
        number = min(number, count)
        start = (number - 1) * size
        return ListingPage(self.rows[start : start + size], number, count)


def _matches(row: dict, needle: str) -> bool:
    return any(
        needle in (row[field] or "").lower()
        for field in ("user", "address", "location")
    )


def endpoints_listing(rows: list, search: str | None, sort: str, order: str) -> Listing:
    """
    @param rows: the clients report's rows.
    @param search: a part of the user name, address or location name
        (any case), or L{None} for every row.
    @param sort: one of L{ENDPOINT_SORTS}; rows without that value (never
        rotated, no location) come last whatever the order.
    @param order: C{asc} or C{desc}.
    @raise ConsoleError: an unknown sort key or order.
    """
    if sort not in ENDPOINT_SORTS:
        raise ConsoleError(400, "'sort' must be one of " + ", ".join(ENDPOINT_SORTS))
    if order not in ("asc", "desc"):
        raise ConsoleError(400, "'order' must be asc or desc")
    if search:
        needle = search.lower()
        rows = [row for row in rows if _matches(row, needle)]
    present = [row for row in rows if row[sort] is not None]
    absent = [row for row in rows if row[sort] is None]
    present.sort(key=lambda row: (row[sort], row["user"]), reverse=order == "desc")
    return Listing(present + absent, {"q": search, "sort": sort, "order": order})
