# -*- test-case-name: tests.console.test_sessions -*-
"""
The console's sessions: expiry on an injected clock, CSRF tokens,
cookies.
"""

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from suto_server.console.sessions import (
    IDLE,
    LIFETIME,
    MOST_SESSIONS,
    Sessions,
    cleared_cookie,
    session_cookie,
)


class SessionsTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.sessions = Sessions(self.clock)

    def test_find(self):
        """
        A session is found by its id, and by nothing else.
        """
        session_id, session = self.sessions.start("root")
        self.assertIs(self.sessions.find(session_id), session)
        self.assertIsNone(self.sessions.find("other"))
        self.assertIsNone(self.sessions.find(None))

    def test_idle(self):
        """
        A session used within the idle time lives on; one left idle that
        long is gone.
        """
        session_id, _ = self.sessions.start("root")
        self.clock.advance(IDLE - 1)
        self.assertIsNotNone(self.sessions.find(session_id))
        self.clock.advance(IDLE - 1)
        self.assertIsNotNone(self.sessions.find(session_id))
        self.clock.advance(IDLE)
        self.assertIsNone(self.sessions.find(session_id))

    def test_lifetime(self):
        """
        However busy, a session ends after its lifetime.
        """
        session_id, _ = self.sessions.start("root")
        for _ in range(int(LIFETIME // 600)):
            self.clock.advance(600)
            found = self.sessions.find(session_id)
        self.assertIsNone(found)

    def test_end(self):
        session_id, _ = self.sessions.start("root")
        self.sessions.end(session_id)
        self.assertIsNone(self.sessions.find(session_id))

    def test_bounded(self):
        """
        Past L{MOST_SESSIONS}, the oldest session ends.
        """
        first, _ = self.sessions.start("root")
        for _ in range(MOST_SESSIONS):
            self.sessions.start("root")
        self.assertEqual(len(self.sessions), MOST_SESSIONS)
        self.assertIsNone(self.sessions.find(first))

    def test_csrf(self):
        """
        A session accepts its own CSRF token only.
        """
        _, session = self.sessions.start("root")
        _, other = self.sessions.start("root")
        self.assertTrue(session.accepts(session.csrf))
        self.assertFalse(session.accepts(other.csrf))
        self.assertFalse(session.accepts(None))
        self.assertFalse(session.accepts("é"))

    def test_ids_not_kept(self):
        """
        The table keeps no session id as given.
        """
        session_id, _ = self.sessions.start("root")
        self.assertNotIn(session_id.encode(), b"".join(self.sessions._sessions))


class CookieTests(SynchronousTestCase):
    def test_flags(self):
        """
        The cookie is HttpOnly and SameSite=Strict always, Secure on TLS.
        """
        self.assertEqual(
            session_cookie("abc", False),
            b"suto_console=abc; Path=/; HttpOnly; SameSite=Strict",
        )
        self.assertTrue(session_cookie("abc", True).endswith(b"; Secure"))
        self.assertTrue(cleared_cookie(True).endswith(b"; Max-Age=0"))
