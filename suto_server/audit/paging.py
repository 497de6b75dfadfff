# -*- test-case-name: tests.audit.test_paging -*-
"""
Pages of the audit log and of the alerts, as C{GET /v1/audit}, C{GET
/v1/alerts} and C{GET /v1/history} answer them and C{suto-admin audit},
C{alerts} and C{history} print them.

A listing reads at most L{LISTING_PAGE} records, the newest by default:
the audit log grows without end (every authentication is a record), so
a listing that read it whole would hold the daemon's memory and the
store's connection for as long as the log is large.  Page 2 is the
L{LISTING_PAGE} records before those, and so on.  Each page is read as
the store's newest C{LISTING_PAGE + 1} past the pages before it, so
one read also tells whether an older page exists (C{more}) without
counting the log.  A page lists its records oldest first, as the
listings always have, so the newest record is the last line printed.

The pages are counted from the newest record when each is read: records
written between two reads shift the pages back, so a record may show on
two neighbouring pages, never on none (C{since} pins the oldest end for
a listing that must not move).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

#: The records of one page of a listing of the audit log or the alerts.
LISTING_PAGE = 1000

#: The highest page asked for: past it the records skipped would be more
#: than any store holds in practice.
MOST_PAGES = 10**6


def page_filters(number: int) -> dict:
    """
    @param number: the page, from 1 (the newest records).
    @return: the C{newest} and C{skip} of
        L{suto_server.store.interfaces.IAuditStore.audit_events_matching}
        that read that page and the first record of the next.
    """
    return {"newest": LISTING_PAGE + 1, "skip": (number - 1) * LISTING_PAGE}


def page_answer(
    name: str, read: Sequence, number: int, to_json: Callable[[object], dict]
) -> dict:
    """
    @param read: what the filters of L{page_filters} read, newest first.
    @return: the answer listing page C{number} under C{name}, oldest
        first, each record made by C{to_json}, with the page's C{number}
        and C{more}, whether an older page holds records.
    """
    shown = read[:LISTING_PAGE]
    return {
        name: [to_json(record) for record in reversed(shown)],
        "page": number,
        "more": len(read) > LISTING_PAGE,
    }



def parsed_page(text: str) -> int | None:
    """
    @return: the page number C{text} writes in ASCII digits, from 1 to
        L{MOST_PAGES}, or L{None} when it writes none.
    """
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(MOST_PAGES)):
        return None
    number = int(text)
    return number if 1 <= number <= MOST_PAGES else None
