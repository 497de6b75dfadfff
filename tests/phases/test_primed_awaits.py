"""
The primed rotation over a store that answers later, as one across the
network does: nothing goes to the peer until the store has answered the
key's check and the commit; a store that fails is answered busy; a
connection that times out meanwhile commits nothing, but an
acknowledgement it carried that does not open is counted all the same.
"""

from dataclasses import replace

from twisted.internet import error
from twisted.logger import capturedLogs
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from suto_server.core import keyschedule, wire
from suto_server.store.errors import StoreError
from tests.support.held_rotation import HeldStoreMixin
from tests.support.rotation_listener import VERSION_3


class HeldPrimedTests(HeldStoreMixin, SynchronousTestCase):
    """
    A version-3 connection whose rules' store calls wait for
    C{self.held.answer_all()}.
    """

    def primed(self):
        """
        Connect on version 3 and complete the first rotation, the store
        answering, up to C{SUTO_ROTATE_DONE_NEXT_}.

        @return: the protocol and its transport.
        """
        protocol, transport = self.connect()
        self.exchange(protocol, transport, VERSION_3 + self.rotate_line())
        transport.clear()
        self.release()
        self.exchange(protocol, transport, self.ok_line(transport.value()))
        self.release()
        self.take_next(transport)
        return protocol, transport

    def test_turn_ends_before_store(self):
        """
        A primed rotation sends nothing while the store has not read the
        profile with its standing, nor while the commit waits; then
        C{SUTO_ROTATE_DONE_NEXT_}, with the new key committed.
        """
        protocol, transport = self.primed()
        self.assertEqual(self.exchange(protocol, transport, self.primed_line()), b"")
        self.assertEqual(self.held.names, ["rotation_start"])
        self.held.answer_all()
        self.clock.advance(0)
        self.assertEqual(self.held.names, ["commit_rotations"])
        self.assertEqual(transport.value(), b"")
        self.assertEqual(self.store.get_profile("alice").generation, 1)
        self.release()
        self.take_next(transport)
        self.assertEqual(self.key_id(), keyschedule.key_id(self.device.key))
        self.assertFalse(transport.disconnecting)

    def test_commit_store_error(self):
        """
        A primed rotation whose commit the store fails is answered
        C{SUTO_ERROR_BUSY} and closed, with one warning; the profile keeps
        its key and no failure is counted.
        """
        protocol, transport = self.primed()
        self.held.fail_every(
            StoreError("could not connect to server"), "commit_rotations"
        )
        before = self.state()
        transport.clear()
        with capturedLogs() as events:
            self.exchange(protocol, transport, self.primed_line())
            self.release()
        self.assert_busy(transport, events, before)

    def test_store_never_answers(self):
        """
        A primed rotation whose store does not answer ends at the exchange
        timeout, not the idle one, counting nothing; the store's late
        answer then neither commits nor sends anything.
        """
        protocol, transport = self.primed()
        before = self.state()
        self.exchange(protocol, transport, self.primed_line())
        self.clock.advance(protocol.exchange_timeout)
        self.assertEqual(transport.value(), b"SUTO_ERROR_TIMEOUT\r\n")
        protocol.connectionLost(Failure(error.ConnectionDone()))
        transport.clear()
        self.release()
        self.assertEqual((transport.value(), self.state()), (b"", before))

    def test_bad_ack_then_gone(self):
        """
        A primed rotation whose acknowledgement does not open counts as a
        failed rotation even when its connection ends before the store
        has answered the key's check, as a two-message rotation's
        acknowledgement counts whenever the connection ends: hanging up
        at once does not hide it.  Nothing else changes.
        """
        protocol, transport = self.primed()
        request = self.device.primed_request()
        line = wire.encode(replace(request, sealed=bytes(19)), wire.Framing.FRAMED)
        self.exchange(protocol, transport, line)
        protocol.connectionLost(Failure(error.ConnectionDone()))
        before = self.store.get_profile("alice")
        self.release()
        self.release()
        self.assertEqual(
            [reason for _, _, _, reason in self.failures()],
            ["the acknowledgement did not open"],
        )
        profile = self.store.get_profile("alice")
        self.assertEqual(profile.rotation_failures, 1)
        self.assertEqual(
            (profile.key_id, profile.generation),
            (before.key_id, before.generation),
        )
