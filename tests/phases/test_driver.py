"""
Tests for L{suto_server.phases.driver}: how a driver carries out its
machine's actions, around a recording machine and connection.
"""

from twisted.cred.error import UnauthorizedLogin
from twisted.internet import defer
from twisted.trial.unittest import SynchronousTestCase

from suto_server.core.machine import Close, Send
from suto_server.cred.hashpool import HashPoolBusy
from suto_server.machines.classic import Verify
from suto_server.phases.driver import Driver, VerifyingDriver


class RecordingConnection:
    """The connection a driver works on, recording what it is asked."""

    def __init__(self):
        self.calls = []
        self.lost = False

    def send(self, message):
        self.calls.append(("send", message))

    def close(self):
        self.calls.append(("close",))


class RecordingMachine:
    """A machine that records its inputs and answers with C{next}."""

    def __init__(self):
        self.inputs = []
        self.next = []

    def _answer(self, *call):
        self.inputs.append(call)
        actions, self.next = self.next, []
        return actions

    def receive(self, message):
        return self._answer("receive", message)

    def verified(self, ok):
        return self._answer("verified", ok)

    def unavailable(self, reason):
        return self._answer("unavailable", reason)


class Portal:
    """A portal whose every login ends with C{result}."""

    def __init__(self, result):
        self.result = result
        self.logins = []

    def login(self, credentials, mind, interface):
        self.logins.append(credentials)
        return self.result


class DriverTests(SynchronousTestCase):
    def test_send_and_close(self):
        """
        L{Send} writes its message on the connection and L{Close} closes
        it, in the order the machine gave them.
        """
        connection, machine = RecordingConnection(), RecordingMachine()
        machine.next = [Send("hello"), Close()]
        Driver(connection, machine, "alice").receive("message")
        self.assertEqual(machine.inputs, [("receive", "message")])
        self.assertEqual(connection.calls, [("send", "hello"), ("close",)])

    def test_unknown_action(self):
        """
        An action the driver has no method for is an error at once, not
        a silent drop.
        """
        driver = Driver(RecordingConnection(), RecordingMachine(), "alice")
        self.assertRaises(KeyError, driver.perform, [Verify("$6$salt", "response")])


class VerifyingDriverTests(SynchronousTestCase):
    def verify(self, result, lost=False):
        connection, machine = RecordingConnection(), RecordingMachine()
        connection.lost = lost
        portal = Portal(result)
        driver = VerifyingDriver(connection, machine, "alice", portal)
        driver.perform([Verify("$6$salt", "response")])
        [credentials] = portal.logins
        self.assertEqual(credentials.username, "alice")
        return machine.inputs

    def test_verified(self):
        """A login that succeeds is reported as verified."""
        self.assertEqual(self.verify(defer.succeed("avatar")), [("verified", True)])

    def test_refused(self):
        """A wrong response is reported as not verified."""
        self.assertEqual(
            self.verify(defer.fail(UnauthorizedLogin())), [("verified", False)]
        )

    def test_busy(self):
        """A saturated hash pool makes the check unavailable."""
        self.assertEqual(
            self.verify(defer.fail(HashPoolBusy())),
            [("unavailable", "hash pool saturated")],
        )

    def test_broken(self):
        """
        Any other failure is logged and makes the check unavailable.
        """
        self.assertEqual(
            self.verify(defer.fail(RuntimeError("boom"))),
            [("unavailable", "internal error")],
        )
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_lost(self):
        """
        An answer that arrives after the peer went away reaches nothing.
        """
        self.assertEqual(self.verify(defer.succeed("avatar"), lost=True), [])
        self.assertEqual(self.verify(defer.fail(UnauthorizedLogin()), lost=True), [])
