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
from suto_server.store.errors import StoreError


class RecordingConnection:
    """The connection a driver works on, recording what it is asked."""

    def __init__(self):
        self.calls = []
        self.lost = False

    def send(self, message):
        self.calls.append(("send", message))

    def close(self):
        self.calls.append(("close",))

    def undecided(self, log, failure, what, **fields):
        self.calls.append(("undecided", failure.type, what, fields))


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


class StepTests(SynchronousTestCase):
    """
    L{Driver.run} and L{Driver.run_logged}: a step that fails is logged,
    and answered busy only by the first.
    """

    def setUp(self):
        self.connection, self.machine = RecordingConnection(), RecordingMachine()
        self.driver = Driver(self.connection, self.machine, "alice")
        self.waiting = defer.Deferred()

    async def step(self):
        await self.waiting

    def test_run_fails(self):
        """
        A step started with L{Driver.run} that fails, after a wait, is
        logged through the connection's C{undecided}, naming what it did
        and the user, and makes the machine unavailable.
        """
        self.driver.run(self.step(), "beginning a rotation")
        self.assertEqual(self.connection.calls, [])
        self.waiting.errback(StoreError("gone"))
        self.assertEqual(
            self.connection.calls,
            [
                (
                    "undecided",
                    StoreError,
                    "{doing} for {user}",
                    {"doing": "beginning a rotation", "user": "alice"},
                )
            ],
        )
        self.assertEqual(
            self.machine.inputs, [("unavailable", "the store did not answer")]
        )

    def test_run_fails_after_lost(self):
        """
        A peer that went away is answered nothing; the failure is still
        logged.
        """
        self.connection.lost = True
        self.driver.run(self.step(), "beginning a rotation")
        self.waiting.errback(RuntimeError("boom"))
        [(what, kind, *_)] = self.connection.calls
        self.assertEqual((what, kind), ("undecided", RuntimeError))
        self.assertEqual(self.machine.inputs, [])

    def test_run_logged_fails(self):
        """
        A step started with L{Driver.run_logged} that fails is only
        logged: the peer has its answer.
        """
        self.driver.run_logged(self.step(), "recording a move")
        self.waiting.errback(StoreError("gone"))
        [(what, kind, _, fields)] = self.connection.calls
        self.assertEqual((what, kind), ("undecided", StoreError))
        self.assertEqual(fields["doing"], "recording a move")
        self.assertEqual(self.machine.inputs, [])

    def test_run_succeeds(self):
        """
        A step that ends well is neither logged nor answered by the
        driver.
        """
        self.driver.run(self.step(), "beginning a rotation")
        self.waiting.callback(None)
        self.assertEqual(self.connection.calls, [])
        self.assertEqual(self.machine.inputs, [])


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
