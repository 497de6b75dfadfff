# -*- test-case-name: tests.store.postgres.test_notices -*-
"""
Tests for L{suto_server.store.postgres.notices}' listener on a real
server: what one wait for notices returns.
"""

import threading

from twisted.trial.unittest import SynchronousTestCase

from suto_server.store.postgres import PostgresStore
from tests.support.postgres import new_location


class NoticeListenerTests(SynchronousTestCase):
    """
    L{suto_server.store.postgres.notices.NoticeListener.receive}.
    """

    def setUp(self):
        self.store = PostgresStore.open(new_location(self))
        self.addCleanup(self.store.close)
        self.listener = self.store.notice_listener()
        self.addCleanup(self.listener.close)
        self.listener.listen()

    def test_nothing_sent(self):
        """
        A wait with nothing sent returns no notice once its time is up.
        """
        self.assertEqual(self.listener.receive(0), [])

    def test_in_order(self):
        """
        Notices sent before the waits are returned oldest first, each
        once.
        """
        self.store.announce("first")
        self.store.announce("second")
        heard = []
        while len(heard) < 2:
            heard += self.listener.receive(10)
        self.assertEqual(heard, ["first", "second"])
        self.assertEqual(self.listener.receive(0), [])

    def test_sent_while_waiting(self):
        """
        A notice sent while the listener waits ends the wait with it.
        """
        sender = self.store.sibling()
        self.addCleanup(sender.close)
        thread = threading.Thread(target=sender.announce, args=("late",))
        thread.start()
        self.addCleanup(thread.join)
        heard = []
        while not heard:
            heard = self.listener.receive(30)
        self.assertEqual(heard, ["late"])
