"""
Tests for L{suto_server.audit.paging}: how a page of a listing is read
and answered.
"""

from twisted.trial.unittest import SynchronousTestCase

from suto_server.audit.paging import (
    LISTING_PAGE,
    MOST_PAGES,
    page_answer,
    page_filters,
    parsed_page,
)


class PageTests(SynchronousTestCase):
    """
    L{page_filters} reads one record past the page, which
    L{page_answer} turns into C{more} and leaves out.
    """

    def test_filters(self):
        """
        Page 1 reads the newest L{LISTING_PAGE} records and one more; page
        C{n} passes over the C{n - 1} pages before it.
        """
        self.assertEqual(page_filters(1), {"newest": LISTING_PAGE + 1, "skip": 0})
        self.assertEqual(
            page_filters(3), {"newest": LISTING_PAGE + 1, "skip": 2 * LISTING_PAGE}
        )

    def test_answer_with_more(self):
        """
        A read of more than a page answers the page, oldest first, and
        C{more}.
        """
        read = list(range(LISTING_PAGE + 1, 0, -1))
        answer = page_answer("events", read, 2, lambda n: {"n": n})
        self.assertEqual((answer["page"], answer["more"]), (2, True))
        self.assertEqual(len(answer["events"]), LISTING_PAGE)
        self.assertEqual(answer["events"][0], {"n": 2})
        self.assertEqual(answer["events"][-1], {"n": LISTING_PAGE + 1})

    def test_answer_last(self):
        """
        A read of a page or less is the last page.
        """
        self.assertEqual(
            page_answer("alerts", [3, 2, 1], 1, str),
            {"alerts": ["1", "2", "3"], "page": 1, "more": False},
        )

    def test_parsed(self):
        """
        A page number is ASCII digits from 1 to L{MOST_PAGES}; anything
        else is L{None}.
        """
        self.assertEqual(parsed_page("1"), 1)
        self.assertEqual(parsed_page(str(MOST_PAGES)), MOST_PAGES)
        for text in ["", "0", "-1", "+2", " 2", "1.0", "\u00b2", "\u0663",
                     str(MOST_PAGES + 1), "9" * 5000]:
            self.assertIsNone(parsed_page(text), text)
