"""
Tests for L{suto_server.core.shown}: text from elsewhere shown on one line
of bounded length.
"""

from twisted.trial.unittest import SynchronousTestCase

from suto_server.core.shown import ELLIPSIS, printable, replaced, shortened


class ReplacedTests(SynchronousTestCase):
    def test_unprintable(self):
        """
        Line breaks, escapes and other control characters each become
        C{?}, so the text stays on one line.
        """
        self.assertEqual(replaced("a\r\nb\x1b[31m\x00\u2028"), "a??b?[31m??")

    def test_printable_kept(self):
        """
        Printable text, spaces and letters beyond ASCII included, is kept
        as it is.
        """
        self.assertEqual(replaced("CN=Zoë Ünal, O=IT"), "CN=Zoë Ünal, O=IT")


class ShortenedTests(SynchronousTestCase):
    def test_within(self):
        """
        Text of at most C{most} characters is kept whole.
        """
        self.assertEqual(shortened("x" * 10, 10), "x" * 10)

    def test_cut(self):
        """
        Longer text keeps its start and ends with the mark, C{most}
        characters in all.
        """
        shown = shortened("abcdefghijk", 10)
        self.assertEqual(shown, "abcdefg" + ELLIPSIS)
        self.assertEqual(len(shown), 10)


class PrintableTests(SynchronousTestCase):
    def test_replaced_then_cut(self):
        """
        Unprintable characters are replaced and the result cut to C{most}
        characters, the mark included.
        """
        self.assertEqual(printable("GET /\n" + "a" * 30, 12), "GET /?aaa" + ELLIPSIS)
