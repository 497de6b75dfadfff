"""
The rotation connection over a store that answers later, as one across
the network does: while the store has not answered, the server's turn
ends and nothing goes to the peer; once it answers, the conversation goes
on as over a local store.  A store that fails any step answers
C{SUTO_ERROR_BUSY}, closes, logs one warning and stores nothing.
"""

from twisted.internet import error
from twisted.logger import LogLevel, capturedLogs, formatEvent
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from suto_server.core import keyschedule, wire
from suto_server.core.timing import DEFAULT_OFFLINE_STEP
from suto_server.store.errors import StoreError
from tests.support.held_rotation import HeldStoreMixin
from tests.support.reconnection import reconnect_message
from tests.support.rotation import FIRST_KEY, NOW, Device
from tests.support.rotation_listener import IDLE_TIMEOUT, VERSION


class RecordingTicket:
    """
    A connection gate's ticket that records what its connection told it.
    """

    def __init__(self):
        self.told = []

    def __getattr__(self, name):
        return lambda *args: self.told.append(name)


class HeldRotationTests(HeldStoreMixin, SynchronousTestCase):
    """
    A plain rotation over a store that answers later.
    """

    def started(self):
        """
        Connect and start a rotation, the store answering.

        @return: the protocol, its transport, and the device's
            acknowledgement line.
        """
        protocol, transport = self.connect()
        self.exchange(protocol, transport, VERSION + self.rotate_line())
        transport.clear()
        self.release()
        return protocol, transport, self.ok_line(transport.value())

    def assert_ack_busy(self, name, protocol, transport, ack):
        """
        The acknowledgement C{ack}, when the store fails the call C{name},
        is answered as L{assert_busy} says.

        @return: the names of the calls the store was asked.
        """
        self.held.fail_every(StoreError("could not connect to server"), name)
        before = self.state()
        transport.clear()
        with capturedLogs() as events:
            self.exchange(protocol, transport, ack)
            answered = self.release()
        self.assert_busy(transport, events, before)
        return answered

    def test_turn_ends_before_store(self):
        """
        C{SUTO_C_ROTATE_} asks the store, in one call, for the profile with
        its standing, and nothing goes out until it answers; then
        C{SUTO_ROTATE_OK_}, the key checked against what that call read;
        after the acknowledgement, C{SUTO_ROTATE_DONE_} only once the
        commit's call has answered.
        """
        protocol, transport = self.connect()
        self.assertEqual(self.exchange(protocol, transport, VERSION + self.rotate_line()), VERSION)
        self.assertEqual(self.held.names, ["rotation_start"])
        transport.clear()
        self.assertEqual(self.release(), ["rotation_start"])
        ack = self.ok_line(transport.value())
        self.assertEqual(self.exchange(protocol, transport, ack), b"")
        self.clock.advance(0)
        self.assertEqual(self.held.names, ["commit_rotations"])
        self.assertEqual(self.store.get_profile("alice").generation, 0)
        self.assertEqual(transport.value(), b"")
        self.release()
        [done] = self.decode(transport.value())
        self.device.commit(done.sealed)
        self.assertEqual(
            self.store.get_profile("alice").key_id, keyschedule.key_id(self.device.key)
        )
        self.assertFalse(transport.disconnecting)

    def test_pipelined_while_waiting(self):
        """
        A message arriving while the store has not answered is
        pipelined: C{SUTO_ERROR_PIPELINED}, closed; the store's late
        answer sends nothing and starts nothing.
        """
        protocol, transport = self.connect()
        self.exchange(protocol, transport, VERSION + self.rotate_line())
        reply = self.exchange(protocol, transport, self.rotate_line())
        self.assertEqual(reply, b"SUTO_ERROR_PIPELINED\r\n")
        before = self.state()
        protocol.connectionLost(Failure(error.ConnectionDone()))
        transport.clear()
        self.release()
        self.assertEqual(transport.value(), b"")
        self.assertEqual(self.state(), before)

    def test_lost_while_waiting(self):
        """
        A peer that hangs up while the store has not answered gets
        nothing once it does, and nothing is recorded.
        """
        protocol, transport = self.connect()
        self.exchange(protocol, transport, VERSION + self.rotate_line())
        before = self.state()
        protocol.connectionLost(Failure(error.ConnectionDone()))
        transport.clear()
        self.assertEqual(self.release(), ["rotation_start"])
        self.assertEqual(transport.value(), b"")
        self.assertEqual(self.state(), before)

    def test_store_never_answers(self):
        """
        A rotation whose store does not answer, on a connection idle since
        its last rotation, ends at the exchange's timeout rather than the
        idle one; the store's late answer then sends and stores nothing.
        """
        protocol, transport = self.connect()
        self.exchange(protocol, transport, VERSION + self.rotate_line())
        transport.clear()
        self.release()
        self.exchange(protocol, transport, self.ok_line(transport.value()))
        self.release()
        [done] = self.decode(transport.value())
        self.device.commit(done.sealed)
        self.assertEqual(self.exchange(protocol, transport, self.rotate_line()), b"")
        before = self.state()
        transport.clear()
        self.clock.advance(protocol.exchange_timeout)
        self.assertEqual(transport.value(), b"SUTO_ERROR_TIMEOUT\r\n")
        self.assertTrue(transport.disconnecting)
        protocol.connectionLost(Failure(error.ConnectionDone()))
        transport.clear()
        self.release()
        self.assertEqual((transport.value(), self.state()), (b"", before))

    def test_timed_out_while_committing(self):
        """
        A connection whose exchange timed out while its commit waited for
        the store has ended, though its transport has not said so yet:
        the commit's late answer neither counts a rotation on its ticket
        nor sets a timeout again, which would count it timed out twice.
        """
        protocol, transport, ack = self.started()
        protocol.ticket = ticket = RecordingTicket()
        self.exchange(protocol, transport, ack)
        self.clock.advance(protocol.exchange_timeout)
        self.assertEqual(transport.value(), b"SUTO_ERROR_TIMEOUT\r\n")
        self.release()
        self.clock.advance(IDLE_TIMEOUT * 2)
        self.assertEqual(ticket.told, ["timed_out"])
        self.assertEqual(transport.value(), b"SUTO_ERROR_TIMEOUT\r\n")

    def test_pipelined_while_beginning(self):
        """
        A connection closed for a pipelined message while its rotation's
        start waited for the store derives no key once the store answers,
        and sets no timeout again.
        """
        protocol, transport = self.connect()
        protocol.ticket = ticket = RecordingTicket()
        self.exchange(protocol, transport, VERSION + self.rotate_line())
        self.exchange(protocol, transport, self.rotate_line())
        self.assertEqual(self.release(), ["rotation_start"])
        self.clock.advance(IDLE_TIMEOUT * 2)
        self.assertEqual(ticket.told, ["rotation_started"])
        # The first of the server's X25519 keys was never drawn.
        self.assertEqual(next(self.server_keys).private_bytes_raw(), bytes([1]) * 32)

    def test_begin_store_errors(self):
        """
        When the store fails the one call of a rotation's start, the
        connection is answered C{SUTO_ERROR_BUSY}, closed, and nothing is
        stored.
        """
        self.assert_failing_call_busy("rotation_start", self.rotate_line())

    def test_commit_store_error(self):
        """
        A commit the store fails is answered C{SUTO_ERROR_BUSY}, never
        C{SUTO_ROTATE_DONE_}, and the profile keeps its key.
        """
        protocol, transport, ack = self.started()
        self.assert_ack_busy("commit_rotations", protocol, transport, ack)

    def test_roll_back_store_error(self):
        """
        A rotation from the previous key whose roll back the store fails
        is answered C{SUTO_ERROR_BUSY}: neither the roll back nor the
        commit happens.
        """
        protocol, transport, ack = self.started()
        self.exchange(protocol, transport, ack)
        self.release()
        protocol.connectionLost(Failure(error.ConnectionDone()))
        # The device never took "done": it comes back with the first key.
        self.device = Device("alice", FIRST_KEY)
        protocol, transport, ack = self.started()
        answered = self.assert_ack_busy("roll_back", protocol, transport, ack)
        self.assertEqual(answered, ["roll_back"])

    def test_abandon_store_error(self):
        """
        A rotation abandoned (the peer hung up before its acknowledgement)
        whose record the store fails is one warning; nothing is counted.
        """
        protocol, transport = self.connect()
        self.exchange(protocol, transport, VERSION + self.rotate_line())
        self.release()
        self.held.fail_every(StoreError("could not connect to server"), "get_profile")
        before = self.state()
        with capturedLogs() as events:
            protocol.connectionLost(Failure(error.ConnectionDone()))
            self.assertEqual(self.release(), ["get_profile"])
        self.assertEqual(self.state(), before)
        self.assertEqual(self.flushLoggedErrors(), [])
        self.assertEqual(
            [formatEvent(e) for e in events if e["log_level"] == LogLevel.warn],
            [
                (
                    "recording an abandoned rotation for alice failed: the "
                    "store did not answer (could not connect to server)"
                )
            ],
        )


class HeldReconnectionTests(HeldStoreMixin, SynchronousTestCase):
    """
    A reconnection over a store that answers later.
    """

    def setUp(self):
        super().setUp()
        self.store.mark_offline(["alice"], NOW)

    def reconnect_line(self):
        step = keyschedule.time_step(self.clock.seconds(), DEFAULT_OFFLINE_STEP)
        return wire.encode(reconnect_message(self.device, step), wire.Framing.FRAMED)

    def test_turn_ends_before_store(self):
        """
        Nothing answers a reconnection before the store does; then
        C{SUTO_RECONNECT_OK_}, and the rotation that follows spends the
        step.
        """
        protocol, transport = self.connect()
        reply = self.exchange(protocol, transport, VERSION + self.reconnect_line())
        self.assertEqual(reply, VERSION)
        self.assertEqual(self.held.names, ["rotation_start"])
        transport.clear()
        self.assertEqual(self.release(), ["rotation_start", "spent_offline_step"])
        [ok] = self.decode(transport.value())
        self.assertIsInstance(ok, wire.ReconnectOk)
        reply = self.exchange(protocol, transport, self.rotate_line())
        self.assertEqual(reply, b"")
        self.release()
        self.exchange(protocol, transport, self.ok_line(transport.value()))
        self.release()
        [done] = self.decode(transport.value())
        self.assertIsInstance(done, wire.RotateDone)
        self.assertIsNone(self.store.offline_since("alice"))
        self.assertIsNotNone(self.store.spent_offline_step("alice"))

    def test_store_errors(self):
        """
        Whichever call of a reconnection the store fails, it is answered
        C{SUTO_ERROR_BUSY}, closed, and nothing is stored: the profile is
        still offline, no step spent, nothing blacklisted.
        """
        for name in ("rotation_start", "spent_offline_step"):
            self.assert_failing_call_busy(name, self.reconnect_line())

    def test_blacklisting_store_error(self):
        """
        A reconnection that would blacklist the profile (the key proven,
        the offline key wrong), whose blacklisting the store fails, is
        answered C{SUTO_ERROR_BUSY} and records nothing: neither the
        alert nor the entry.
        """
        self.device.fingerprint = bytes(32)
        self.assert_failing_call_busy("add_to_blacklist", self.reconnect_line())
