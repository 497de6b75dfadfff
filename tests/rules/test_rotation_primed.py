"""
The rotation rules' two parts of a primed rotation (docs/PROTOCOL.md
§9.2, version 3): a commit that hands out the share of the next rotation,
and a rotation begun with that share instead of a fresh one, over both
stores, a real master key and a real group committer.
"""

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from twisted.trial.unittest import SynchronousTestCase

from suto_server.core import keyschedule
from suto_server.rules.rotation import RotationRefused
from tests.support.coroutines import failure_of
from tests.support.enrollment import FINGERPRINT
from tests.support.rotation import JUNK, SOURCE, RotationMixin, raw_public
from tests.support.stores import MemoryStoreMixin, SQLiteStoreMixin


class PrimedRotationTestsMixin(RotationMixin):
    """
    L{Rotation.acknowledge} with C{prime}, and L{Rotation.begin} given
    the share it handed out.
    """

    def setUp(self):
        self.drawn = []
        super().setUp()

    def new_private_key(self):
        """
        A fresh key, recorded: the rules' every draw.
        """
        self.drawn.append(super().new_private_key())
        return self.drawn[-1]

    def prime(self):
        """
        A two-message rotation whose commit hands out the next share; the
        device commits on it.

        @return: the L{Committed} answer.
        """
        pending = self.begin(self.device.request())
        committed = self.committed(
            pending,
            self.device.acknowledge(pending.server_public, pending.ok),
            prime=True,
        )
        self.device.commit_next(committed.sealed)
        return committed

    def begin_primed(self, request, private):
        """
        Begin the primed rotation C{request} with the share C{private}.
        """
        return self.begin(request, server_private=private)

    def test_commit_hands_out_share(self):
        """
        Asked to prime, the commit answers with the public key of a fresh
        share, sealed under the new key for C{ROTATE_DONE_NEXT}, and its
        private key, which C{repr} leaves out.
        """
        committed = self.prime()
        [_, share] = self.drawn
        self.assertIs(committed.next_private, share)
        self.assertEqual(self.device.share, raw_public(share))
        self.assert_agreed()
        text = repr(committed)
        self.assertNotIn("next_private", text)
        self.assertNotIn(share.private_bytes_raw().hex(), text)

    def test_primed_rotation(self):
        """
        Begun with the share, a rotation draws no key and seals no "ok";
        the device's key, derived with the share's public key, is the one
        the ack it sealed in advance opens under, and the commit.
        """
        committed = self.prime()
        request = self.device.primed_request()
        pending = self.begin_primed(request, committed.next_private)
        self.assertIsNone(pending.ok)
        self.assertEqual(pending.server_public, self.device.share)
        self.assertEqual(len(self.drawn), 2)
        shared = keyschedule.dh_shared_secret(
            committed.next_private, request.public
        )
        self.assertEqual(
            pending.new_key,
            keyschedule.next_key(
                self.device.key, JUNK, FINGERPRINT, shared, "alice", 2
            ),
        )
        again = self.committed(pending, request.sealed, prime=True)
        self.device.commit_next(again.sealed)
        self.assert_agreed()
        self.assertEqual(self.profile().generation, 2)

    def test_without_share_as_before(self):
        """
        Not primed, a rotation begins and commits as it always has: a
        fresh share, "ok", and "done".
        """
        pending = self.begin(self.device.request())
        self.assertEqual(pending.server_public, raw_public(self.drawn[0]))
        done = self.commit(
            pending, self.device.acknowledge(pending.server_public, pending.ok)
        )
        self.device.commit(done)
        self.assert_agreed()
        self.assertEqual(len(self.drawn), 1)

    def test_ack_under_other_share(self):
        """
        An ack derived with another share than the one held does not
        open: refused, counted as a failed rotation, no key written.
        """
        self.prime()
        before = self.profile()
        request = self.device.primed_request()
        pending = self.begin_primed(request, X25519PrivateKey.generate())
        failure_of(
            self,
            self.rotation.acknowledge(
                pending, request.sealed, SOURCE, self.now(), prime=True
            ),
            RotationRefused,
        )
        self.clock.advance(0)
        profile = self.profile()
        self.assertEqual(profile.key_id, before.key_id)
        self.assertEqual(profile.rotation_failures, 1)
        self.assertEqual(
            [event for event, *_ in self.events() if "rotation_" in event],
            ["rotation_abandoned"],
        )


class MemoryPrimedRotationTests(
    PrimedRotationTestsMixin, MemoryStoreMixin, SynchronousTestCase
):
    """
    Over the in-memory store.
    """


class SQLitePrimedRotationTests(
    PrimedRotationTestsMixin, SQLiteStoreMixin, SynchronousTestCase
):
    """
    Over the SQLite store.
    """
