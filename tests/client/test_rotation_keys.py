"""
Tests for L{suto_client.rotation_keys}: what the agent seals and opens in
rotation and reconnection, checked against the key schedule as the server
uses it.
"""

from twisted.trial.unittest import SynchronousTestCase

from suto_client import rotation_keys
from suto_client.state import EnrolledProfile
from suto_server.core import keyschedule, wire

USER = "alice"
KEY = bytes(range(100, 132))
OTHER_KEY = bytes(32)
FINGERPRINT = bytes(range(32))
PROFILE = EnrolledProfile(
    user=USER,
    server_host="192.0.2.10",
    server_port=2021,
    pin="ab" * 32,
    key=KEY,
    key_id=keyschedule.key_id(KEY),
    generation=3,
    enrolled_at=1_700_000_000.0,
)
S2C = keyschedule.Direction.SERVER_TO_CLIENT
C2S = keyschedule.Direction.CLIENT_TO_SERVER


def server_seals(key: bytes, plaintext: bytes, purpose: str) -> bytes:
    """
    What the server sends for C{purpose}, sealed under C{key}.
    """
    return keyschedule.seal(
        key,
        plaintext,
        profile=USER,
        purpose=purpose,
        direction=S2C,
        counter=keyschedule.SEAL_COUNTERS[purpose],
    )


def server_opens_ack(key: bytes, sealed: bytes) -> bytes:
    """
    C{sealed}, a rotation's acknowledgement, opened under C{key} as the
    server opens it.
    """
    purpose = keyschedule.ROTATE_ACK_PURPOSE
    return keyschedule.open_sealed(
        key,
        sealed,
        profile=USER,
        purpose=purpose,
        direction=C2S,
        counter=keyschedule.SEAL_COUNTERS[purpose],
    )


def attempt_key(nonce: bytes) -> bytes:
    """
    The key of a reconnection attempt of C{PROFILE} with C{nonce}, at the
    server's time 1,700,000,000 and a 30 s step, as the key schedule
    derives it.
    """
    return keyschedule.attempt_key(
        keyschedule.offline_key(
            KEY, FINGERPRINT, keyschedule.time_step(1_700_000_000, 30), USER
        ),
        nonce,
        USER,
    )


class PendingTests(SynchronousTestCase):
    def test_draw_order(self):
        """
        The junk is drawn before the X25519 private key, each of its size,
        and both are what C{SUTO_C_ROTATE_} offers.
        """
        sizes = []

        def random_bytes(size):
            sizes.append(size)
            return bytes([len(sizes)]) * size

        pending = rotation_keys.Pending.draw(random_bytes)
        self.assertEqual(sizes, [keyschedule.JUNK_SIZE, keyschedule.DH_SIZE])
        rotate = pending.rotate(PROFILE)
        self.assertEqual(
            (rotate.key_id, rotate.junk, rotate.user),
            (PROFILE.key_id, bytes([1]) * keyschedule.JUNK_SIZE, USER),
        )
        self.assertIsInstance(rotate, wire.Rotate)


class ReconnectionTests(SynchronousTestCase):
    def test_sealed_under_attempt_key(self):
        """
        The reconnection carries its nonce and the junk sealed under the
        attempt's key, from the offline key of the server's time step and
        that nonce, and a proof of the last key over both.
        """
        junk = bytes([7]) * keyschedule.JUNK_SIZE
        nonce = bytes([8]) * keyschedule.ATTEMPT_NONCE_SIZE
        _, message = rotation_keys.reconnection(
            PROFILE, FINGERPRINT, 1_700_000_000, 30, junk, nonce
        )
        purpose = keyschedule.RECONNECT_PURPOSE
        opened = keyschedule.open_sealed(
            attempt_key(nonce),
            message.sealed,
            profile=USER,
            purpose=purpose,
            direction=C2S,
            counter=keyschedule.SEAL_COUNTERS[purpose],
        )
        self.assertEqual(opened, junk)
        self.assertEqual(message.nonce, nonce)
        self.assertEqual(
            message.proof,
            keyschedule.reconnect_proof(KEY, USER, message.sealed, nonce),
        )

    def test_welcomed(self):
        """
        The server's answer is welcome only when it opens under the
        attempt's key to "ok".
        """
        nonce = bytes([8]) * keyschedule.ATTEMPT_NONCE_SIZE
        attempt, _ = rotation_keys.reconnection(
            PROFILE, FINGERPRINT, 1_700_000_000, 30, bytes(32), nonce
        )
        key = attempt_key(nonce)
        purpose = keyschedule.RECONNECT_OK_PURPOSE
        self.assertTrue(
            rotation_keys.welcomed(attempt, server_seals(key, b"ok", purpose))
        )
        self.assertFalse(
            rotation_keys.welcomed(attempt, server_seals(OTHER_KEY, b"ok", purpose))
        )
        self.assertFalse(
            rotation_keys.welcomed(attempt, server_seals(key, b"no", purpose))
        )


class RotationTests(SynchronousTestCase):
    def test_sealed_answers(self):
        """
        "ok" and "done" open only under the key they were sealed with and
        to their own words; the acknowledgement opens under the same key,
        as the server opens it.
        """
        new = keyschedule.SealingKey(KEY, USER)
        other = keyschedule.SealingKey(OTHER_KEY, USER)
        ok = server_seals(KEY, b"ok", keyschedule.ROTATE_OK_PURPOSE)
        done = server_seals(KEY, b"done", keyschedule.ROTATE_DONE_PURPOSE)
        self.assertTrue(rotation_keys.opens_ok(new, ok))
        self.assertFalse(rotation_keys.opens_ok(other, ok))
        self.assertFalse(rotation_keys.opens_ok(new, done))
        self.assertTrue(rotation_keys.confirms(new, done))
        self.assertFalse(rotation_keys.confirms(new, ok))
        self.assertFalse(rotation_keys.confirms(other, done))
        ack = rotation_keys.acknowledgement(new)
        self.assertEqual(server_opens_ack(KEY, ack.sealed), b"ack")

    def test_next_key(self):
        """
        The next key is the key schedule's, of the next generation, from
        the shared secret of this side's key pair and the server's half.
        """
        pending = rotation_keys.Pending.draw(lambda size: bytes([5]) * size)
        server = rotation_keys.Pending.draw(lambda size: bytes([9]) * size)
        server_public = server.public
        shared = keyschedule.dh_shared_secret(pending.private, server_public)
        self.assertEqual(
            rotation_keys.next_key(PROFILE, pending, FINGERPRINT, server_public),
            keyschedule.next_key(
                KEY, pending.junk, FINGERPRINT, shared, USER, PROFILE.generation + 1
            ),
        )

    def test_unusable_half(self):
        """
        A server half of low order is refused by the key schedule.
        """
        pending = rotation_keys.Pending.draw(lambda size: bytes([5]) * size)
        self.assertRaises(
            keyschedule.KeyScheduleError,
            rotation_keys.next_key,
            PROFILE,
            pending,
            FINGERPRINT,
            bytes(32),
        )


class PrimedRotationTests(SynchronousTestCase):
    """
    The primed rotation: from the server's share of the last "done", the
    key, the acknowledgement and the message at once.
    """

    def test_share(self):
        """
        The next share opens only under the key it was sealed with, as the
        server's message 1 for the purpose "rotate-done-next"; a "done"
        of the two-message form is no share.
        """
        new = keyschedule.SealingKey(KEY, USER)
        share = bytes(range(40, 72))
        purpose = keyschedule.ROTATE_DONE_NEXT_PURPOSE
        sealed = server_seals(KEY, share, purpose)
        self.assertEqual(keyschedule.SEAL_COUNTERS[purpose], 1)
        self.assertEqual(rotation_keys.next_share(new, sealed), share)
        other = keyschedule.SealingKey(OTHER_KEY, USER)
        self.assertIsNone(rotation_keys.next_share(other, sealed))
        done = server_seals(KEY, b"done", keyschedule.ROTATE_DONE_PURPOSE)
        self.assertIsNone(rotation_keys.next_share(new, done))

    def test_key_ack_and_message(self):
        """
        The primed rotation's key is L{rotation_keys.next_key} of the same
        material with the share as the server's half; its message offers
        this side's junk and public key for the profile's key id and user,
        with the acknowledgement the two-message form would send under
        that key.
        """
        pending = rotation_keys.Pending.draw(lambda size: bytes([5]) * size)
        share = rotation_keys.Pending.draw(lambda size: bytes([9]) * size).public
        key, new, message = rotation_keys.primed_rotation(
            PROFILE, pending, FINGERPRINT, share
        )
        self.assertEqual(
            key, rotation_keys.next_key(PROFILE, pending, FINGERPRINT, share)
        )
        self.assertEqual(
            message,
            wire.RotatePrimed(
                PROFILE.key_id,
                pending.junk,
                pending.public,
                rotation_keys.acknowledgement(new).sealed,
                USER,
            ),
        )
        self.assertEqual(server_opens_ack(key, message.sealed), b"ack")

    def test_unusable_share(self):
        """
        A share of low order is refused by the key schedule.
        """
        pending = rotation_keys.Pending.draw(lambda size: bytes([5]) * size)
        self.assertRaises(
            keyschedule.KeyScheduleError,
            rotation_keys.primed_rotation,
            PROFILE,
            pending,
            FINGERPRINT,
            bytes(32),
        )
