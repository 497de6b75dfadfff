"""
Tests for L{suto_server.core.logformat}: JSON lines for journald, text on a
terminal.
"""

import io
import json
import sys

from twisted.logger import Logger
from twisted.python.reflect import namedAny
from twisted.trial.unittest import SynchronousTestCase

from suto_server.core import logformat


class _Terminal(io.StringIO):
    """
    A stream that says it is a terminal.
    """

    def isatty(self) -> bool:
        return True


def _log_to(stream):
    """
    Log one event, with a newline inside a field, through the observer
    made for C{stream}.
    """
    log = Logger(namespace="suto.test", observer=logformat.observer(stream))
    log.info("granted {user} from {where}", user="alice", where="jack\n17")


class ObserverTests(SynchronousTestCase):
    def test_json_lines(self):
        """
        When the stream is not a terminal (journald), each event is one
        line of JSON with its fields, without the default record
        separator, even when a field holds a newline.
        """
        stream = io.StringIO()
        _log_to(stream)
        output = stream.getvalue()
        self.assertEqual(output.count("\n"), 1)
        self.assertNotIn("\x1e", output)
        event = json.loads(output)
        self.assertEqual(event["user"], "alice")
        self.assertEqual(event["where"], "jack\n17")
        self.assertEqual(event["log_namespace"], "suto.test")
        self.assertEqual(event["log_level"]["name"], "info")
        self.assertEqual(event["log_format"], "granted {user} from {where}")

    def test_text_on_terminal(self):
        """
        On a terminal the event is written as text a person reads.
        """
        stream = _Terminal()
        _log_to(stream)
        output = stream.getvalue()
        self.assertIn("[suto.test#info] granted alice from jack\n\t17\n", output)
        self.assertFalse(output.startswith("{"))

    def test_standard_output(self):
        """
        Called without a stream, as twistd calls a C{--logger} factory, the
        observer writes to standard output as it is at that moment.
        """
        stream = io.StringIO()
        self.patch(sys, "stdout", stream)
        Logger(namespace="suto.test", observer=logformat.observer()).info("up")
        self.assertEqual(json.loads(stream.getvalue())["log_format"], "up")

    def test_named(self):
        """
        The name the systemd units give twistd's C{--logger} resolves to
        this factory.
        """
        self.assertIs(
            namedAny("suto_server.core.logformat.observer"), logformat.observer
        )
