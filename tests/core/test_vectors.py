"""
The test vectors printed in docs/PROTOCOL.md, checked against the code, so
the specification cannot drift from what is implemented.
"""

import re

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from twisted.trial.unittest import SynchronousTestCase

from suto_server.core import keyschedule, libxcrypt, schemes, wire
from tests.support.key_vectors import (
    ALICE_PRIVATE,
    ATTEMPT_NONCE,
    BOB_PUBLIC,
    CHECK_NONCE,
    DH_SHARED,
    FINGERPRINT,
    JUNK,
    KEY_1,
)
from tests.support.repository import PROTOCOL

PASSWORD = "correct horse"
RSALT = "$6$ABCDEFGHIJKLMNOP"


def _vector_rows():
    with open(PROTOCOL, encoding="utf-8") as handle:
        text = handle.read()
    section = text.split("### 5.3 Test vectors", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| ([a-z0-9-]+) \| `([^`]+)` \| `([^`]+)` \|$", section, re.M)
    return section, rows


class ProtocolVectorTests(SynchronousTestCase):
    def test_rows_present(self):
        """
        The specification lists a vector for every supported scheme.
        """
        _, rows = _vector_rows()
        self.assertEqual(
            [name for name, _, _ in rows],
            ["sha512-crypt", "sha256-crypt", "md5-crypt", "bcrypt", "yescrypt"],
        )

    def test_stored_and_final_hashes(self):
        """
        Every stored hash is crypt(password, salt) and every final hash is
        crypt(stored, rsalt), as both sides compute them.
        """
        _, rows = _vector_rows()
        for name, stored, final in rows:
            salt = schemes.salt_of(stored)
            self.assertEqual(libxcrypt.crypt(PASSWORD, salt), stored, name)
            self.assertEqual(schemes.challenge_response(stored, RSALT), final, name)
            self.assertEqual(schemes.client_response(PASSWORD, salt, RSALT), final, name)

    def test_legacy_transcript(self):
        """
        The byte-for-byte legacy exchange has the lengths the
        specification gives.
        """
        _, rows = _vector_rows()
        stored, final = rows[0][1], rows[0][2]
        legacy = wire.Framing.LEGACY
        self.assertEqual(len(wire.encode(wire.GetSaltA(), legacy)), 16)
        salta = wire.encode(wire.SaltA(schemes.salt_of(stored), RSALT), legacy)
        self.assertEqual(salta, b"SUTO_SALTA_$6$abcdefghijklmnop_$6$ABCDEFGHIJKLMNOP")
        self.assertEqual(len(salta), 50)
        self.assertEqual(len(wire.encode(wire.CFHash(final), legacy)), 119)
        self.assertEqual(len(wire.encode(wire.Auth(True), legacy)), 11)


class ReconnectTranscriptTests(SynchronousTestCase):
    def test_transcript(self):
        """
        The reconnections printed in section 10.4 are what the key schedule
        and the codec make of the section 7.7 inputs for the user alice:
        the offline and attempt keys, the proof, the sealed junk and the
        server's answer, byte for byte, first with the attempt nonce and
        then in the first form, without one.
        """
        section = section_text("### 10.4 On the wire")
        offline = keyschedule.offline_key(
            bytes.fromhex(KEY_1), FINGERPRINT, keyschedule.time_step(1700000000), "alice"
        )
        attempt = keyschedule.attempt_key(offline, ATTEMPT_NONCE, "alice")
        key = bytes.fromhex(KEY_1)
        lines = [wire.ServerTime(1700000000, 30)]
        for sealing_key, nonce in ((attempt, ATTEMPT_NONCE), (offline, None)):
            sealed = keyschedule.seal_message(
                sealing_key, JUNK, profile="alice", purpose=keyschedule.RECONNECT_PURPOSE
            )
            lines += [
                wire.Reconnect(
                    keyschedule.key_id(key),
                    keyschedule.reconnect_proof(key, "alice", sealed, nonce),
                    sealed,
                    "alice",
                    nonce,
                ),
                wire.ReconnectOk(
                    keyschedule.seal_message(
                        sealing_key,
                        b"ok",
                        profile="alice",
                        purpose=keyschedule.RECONNECT_OK_PURPOSE,
                    )
                ),
            ]
        self.assertIn(offline.hex(), section)
        self.assertIn(attempt.hex(), section)
        self.assertEqual(printed(section), encoded(lines))


class PrimedTranscriptTests(SynchronousTestCase):
    def test_transcript(self):
        """
        The primed rotation printed in section 9.2 is what the key schedule
        and the codec make of the section 7.7 inputs for the user alice:
        the share sealed under K1 at the server's counter 1, and the
        rotation whose acknowledgement is sealed under K2, derived from
        that share and Bob's key pair.
        """
        section = section_text("#### A primed rotation on the wire")
        key = bytes.fromhex(KEY_1)
        share = (
            X25519PrivateKey.from_private_bytes(ALICE_PRIVATE)
            .public_key()
            .public_bytes_raw()
        )
        following = keyschedule.next_key(
            key, JUNK, FINGERPRINT, bytes.fromhex(DH_SHARED), "alice", 2
        )
        lines = [
            wire.RotateDoneNext(
                keyschedule.seal_message(
                    key,
                    share,
                    profile="alice",
                    purpose=keyschedule.ROTATE_DONE_NEXT_PURPOSE,
                )
            ),
            wire.RotatePrimed(
                keyschedule.key_id(key),
                JUNK,
                BOB_PUBLIC,
                keyschedule.seal_message(
                    following,
                    b"ack",
                    profile="alice",
                    purpose=keyschedule.ROTATE_ACK_PURPOSE,
                ),
                "alice",
            ),
        ]
        self.assertIn(following.hex(), section)
        self.assertEqual(printed(section), encoded(lines))


class VerifyTranscriptTests(SynchronousTestCase):
    def test_transcript(self):
        """
        The verification challenge printed in section 11.3 is what the key
        schedule and the codec make of the section 7.7 inputs (the key
        K1, the check's nonce, the user alice).
        """
        section = section_text("### 11.3 Which proof, and why")
        proof = keyschedule.verify_proof(bytes.fromhex(KEY_1), CHECK_NONCE, "alice")
        lines = [wire.VerifyChallenge(CHECK_NONCE), wire.VerifyProof(CHECK_NONCE, proof)]
        self.assertEqual(printed(section), encoded(lines))


def section_text(heading: str) -> str:
    """
    The text of docs/PROTOCOL.md from C{heading} to the next section.
    """
    with open(PROTOCOL, encoding="utf-8") as handle:
        text = handle.read().split(heading, 1)[1]
    return re.split(r"^#{2,3} ", text, maxsplit=1, flags=re.M)[0]


def printed(section: str) -> list:
    """
    The lines a section prints as C{S: SUTO_...} or C{C: SUTO_...}.
    """
    return re.findall(r"^    [SC]: (SUTO_\S+)$", section, re.M)


def encoded(messages: list) -> list:
    """
    C{messages} as framed lines, without their line endings.
    """
    return [
        wire.encode(message, wire.Framing.FRAMED).decode("ascii").rstrip("\r\n")
        for message in messages
    ]
