"""
The key schedule: the test vectors printed in docs/PROTOCOL.md, the
constructions behind them rebuilt from the primitives, and the properties
later protocol code relies on (every binding of a seal, input checks,
X25519 agreement, time steps).
"""

import hmac

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey,
    X25519PublicKey,
)
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from suto_server.core.keyschedule import (
    ATTEMPT_NONCE_SIZE,
    CHECK_NONCE_SIZE,
    CHECK_PROOF_SIZE,
    FINGERPRINT_SIZE,
    JUNK_SIZE,
    KEY_SIZE,
    MAX_PLAINTEXT,
    MAX_PROFILE,
    MAX_PURPOSE,
    MAX_SALTED_HASH,
    RANDOM_SIZE,
    RECONNECT_OK_PURPOSE,
    RECONNECT_PURPOSE,
    ROTATE_ACK_PURPOSE,
    ROTATE_DONE_NEXT_PURPOSE,
    ROTATE_DONE_PURPOSE,
    ROTATE_OK_PURPOSE,
    SEAL_COUNTERS,
    Direction,
    KeyScheduleError,
    SealError,
    SealingKey,
    attempt_key,
    candidate_steps,
    check_proof,
    dh_shared_secret,
    encode_parts,
    first_key,
    key_id,
    next_key,
    offline_key,
    open_message,
    open_sealed,
    password_secret,
    reconnect_proof,
    seal,
    seal_message,
    time_step,
    verify_proof,
)
from tests.support.comparisons import record_comparisons
from tests.support.key_vectors import (
    ALICE_PRIVATE,
    ATTEMPT_KEY,
    ATTEMPT_NONCE,
    ATTEMPT_OK_SEALED,
    ATTEMPT_PROOF,
    ATTEMPT_SEALED,
    BOB_PRIVATE,
    BOB_PUBLIC,
    CHECK_MESSAGE,
    CHECK_NONCE,
    CHECK_PROOF,
    CHECK_SUBKEY,
    CHECK_USER,
    DH_SHARED,
    ENCODED,
    ENROLL_SEALED,
    FINGERPRINT,
    JUNK,
    KEY_0,
    KEY_1,
    KEY_ID_0,
    KEY_ID_1,
    NOW,
    OFFLINE,
    PLAINTEXT,
    PROFILE,
    PURPOSE,
    RANDOM_DATA,
    RECONNECT_OK_SEALED,
    RECONNECT_PROOF,
    RECONNECT_SEALED,
    SALTED_HASH,
    SEAL_AD,
    SEAL_NONCE,
    SEAL_SUBKEY,
    SEALED,
    SECRET,
    STEP,
    STEPS,
    VERIFY_PROOF,
)


def _hkdf(salt, ikm, info, length=KEY_SIZE):
    return HKDF(
        algorithm=hashes.SHA256(), length=length, salt=salt, info=info
    ).derive(ikm)


def _seal_vector(**overrides):
    arguments = dict(
        profile=PROFILE,
        purpose=PURPOSE,
        direction=Direction.SERVER_TO_CLIENT,
        counter=0,
    )
    arguments.update(overrides)
    return arguments


class VectorTests(SynchronousTestCase):
    """
    Every function gives the output docs/PROTOCOL.md prints for the fixed
    inputs, so the specification and the code cannot drift apart.
    """

    def test_encode_parts(self):
        """
        Each part is a 4-byte big-endian length and its bytes; text is
        UTF-8.
        """
        self.assertEqual(encode_parts(b"ab", "\u00e9", b"").hex(), ENCODED)

    def test_password_secret(self):
        """
        The password secret of the specification's salted hash.
        """
        self.assertEqual(password_secret(SALTED_HASH, PROFILE).hex(), SECRET)

    def test_first_key(self):
        """
        The first key from the fixed random data, fingerprint and secret.
        """
        key = first_key(RANDOM_DATA, FINGERPRINT, bytes.fromhex(SECRET), PROFILE)
        self.assertEqual(key.hex(), KEY_0)

    def test_dh_shared_secret(self):
        """
        The shared secret is RFC 7748's, computed from either side.
        """
        alice = X25519PrivateKey.from_private_bytes(ALICE_PRIVATE)
        bob = X25519PrivateKey.from_private_bytes(BOB_PRIVATE)
        alice_public = alice.public_key().public_bytes_raw()
        self.assertEqual(dh_shared_secret(alice, BOB_PUBLIC).hex(), DH_SHARED)
        self.assertEqual(dh_shared_secret(bob, alice_public).hex(), DH_SHARED)

    def test_next_key(self):
        """
        The generation 1 key rolled forward from the first key.
        """
        key = next_key(
            bytes.fromhex(KEY_0),
            JUNK,
            FINGERPRINT,
            bytes.fromhex(DH_SHARED),
            PROFILE,
            1,
        )
        self.assertEqual(key.hex(), KEY_1)

    def test_time_steps(self):
        """
        The step of the fixed time, and the candidates around it: C{now} is
        20 seconds into its step, so the next step is nearer than the
        previous one.
        """
        self.assertEqual(time_step(NOW), STEP)
        self.assertEqual(candidate_steps(NOW), STEPS)

    def test_offline_key(self):
        """
        The offline key from the generation 1 key at the fixed step.
        """
        key = offline_key(bytes.fromhex(KEY_1), FINGERPRINT, STEP, PROFILE)
        self.assertEqual(key.hex(), OFFLINE)

    def test_reconnect_seals(self):
        """
        The reconnecting client's junk and the server's answer, each
        sealed under the offline key as its side's message 0, open again.
        """
        key = bytes.fromhex(OFFLINE)
        for plaintext, purpose, direction, expected in [
            (JUNK, RECONNECT_PURPOSE, Direction.CLIENT_TO_SERVER, RECONNECT_SEALED),
            (b"ok", RECONNECT_OK_PURPOSE, Direction.SERVER_TO_CLIENT, RECONNECT_OK_SEALED),
        ]:
            binding = dict(
                profile=PROFILE, purpose=purpose, direction=direction, counter=0
            )
            sealed = seal(key, plaintext, **binding)
            self.assertEqual(sealed.hex(), expected)
            self.assertEqual(open_sealed(key, sealed, **binding), plaintext)

    def test_reconnect_proof(self):
        """
        The proof that the reconnecting client holds the generation 1 key,
        over its sealed junk; it is not the check proof of the same key.
        """
        proof = reconnect_proof(
            bytes.fromhex(KEY_1), PROFILE, bytes.fromhex(RECONNECT_SEALED)
        )
        self.assertEqual(proof.hex(), RECONNECT_PROOF)
        self.assertNotEqual(proof.hex(), CHECK_PROOF)

    def test_attempt_seals(self):
        """
        The key of a reconnection attempt, from the offline key and the
        attempt's nonce; the client's junk and the server's answer sealed
        under it as each side's message 0; the proof over the nonce and the
        sealed junk, which is not the first form's proof.
        """
        key = attempt_key(bytes.fromhex(OFFLINE), ATTEMPT_NONCE, PROFILE)
        self.assertEqual(key.hex(), ATTEMPT_KEY)
        junk = seal_message(key, JUNK, profile=PROFILE, purpose=RECONNECT_PURPOSE)
        ok = seal_message(key, b"ok", profile=PROFILE, purpose=RECONNECT_OK_PURPOSE)
        self.assertEqual((junk.hex(), ok.hex()), (ATTEMPT_SEALED, ATTEMPT_OK_SEALED))
        proof = reconnect_proof(bytes.fromhex(KEY_1), PROFILE, junk, ATTEMPT_NONCE)
        self.assertEqual(proof.hex(), ATTEMPT_PROOF)
        self.assertNotEqual(
            proof, reconnect_proof(bytes.fromhex(KEY_1), PROFILE, junk)
        )

    def test_key_id(self):
        """
        The identifiers of both chain keys.
        """
        self.assertEqual(key_id(bytes.fromhex(KEY_0)), KEY_ID_0)
        self.assertEqual(key_id(bytes.fromhex(KEY_1)), KEY_ID_1)

    def test_seal(self):
        """
        The rotation confirmation sealed under the generation 1 key, and
        opened again.
        """
        key = bytes.fromhex(KEY_1)
        sealed = seal(key, PLAINTEXT, **_seal_vector())
        self.assertEqual(sealed.hex(), SEALED)
        self.assertEqual(open_sealed(key, sealed, **_seal_vector()), PLAINTEXT)

    def test_seal_enrollment(self):
        """
        An enrollment payload sealed under the password secret.
        """
        sealed = seal(
            bytes.fromhex(SECRET),
            b"enroll",
            profile=PROFILE,
            purpose="enrollment",
            direction=Direction.CLIENT_TO_SERVER,
            counter=0,
        )
        self.assertEqual(sealed.hex(), ENROLL_SEALED)

    def test_check_proof(self):
        """
        The answer to a check packet under the generation 1 key.
        """
        proof = check_proof(bytes.fromhex(KEY_1), CHECK_NONCE, CHECK_USER)
        self.assertEqual(proof.hex(), CHECK_PROOF)

    def test_verify_proof(self):
        """
        The answer to a verification challenge under the generation 1
        key, for the check's user and nonce: not the check's answer.
        """
        proof = verify_proof(bytes.fromhex(KEY_1), CHECK_NONCE, CHECK_USER)
        self.assertEqual(proof.hex(), VERIFY_PROOF)
        self.assertNotEqual(proof.hex(), CHECK_PROOF)


class ConstructionTests(SynchronousTestCase):
    """
    The vectors rebuilt from HKDF and ChaCha20-Poly1305 as the
    specification describes them, label by label, so another
    implementation can follow the text alone.
    """

    def test_password_secret(self):
        """
        salt = the fixed label, ikm = the UTF-8 hash, info = encoded
        (label, profile).
        """
        expected = _hkdf(
            b"suto/v1/password-secret/salt",
            SALTED_HASH.encode("utf-8"),
            encode_parts(b"suto/v1/password-secret", PROFILE),
        )
        self.assertEqual(expected.hex(), SECRET)

    def test_first_key(self):
        """
        salt = the password secret, ikm = encoded (random, fingerprint),
        info = encoded (label, profile).
        """
        expected = _hkdf(
            bytes.fromhex(SECRET),
            encode_parts(RANDOM_DATA, FINGERPRINT),
            encode_parts(b"suto/v1/first-key", PROFILE),
        )
        self.assertEqual(expected.hex(), KEY_0)

    def test_next_key(self):
        """
        salt = the current key, ikm = encoded (junk, fingerprint, shared
        secret), info = encoded (label, profile, 8-byte generation).
        """
        expected = _hkdf(
            bytes.fromhex(KEY_0),
            encode_parts(JUNK, FINGERPRINT, bytes.fromhex(DH_SHARED)),
            encode_parts(b"suto/v1/next-key", PROFILE, (1).to_bytes(8, "big")),
        )
        self.assertEqual(expected.hex(), KEY_1)

    def test_offline_key(self):
        """
        salt = the last key, ikm = encoded (fingerprint), info = encoded
        (label, profile, 8-byte step).
        """
        expected = _hkdf(
            bytes.fromhex(KEY_1),
            encode_parts(FINGERPRINT),
            encode_parts(b"suto/v1/offline-key", PROFILE, STEP.to_bytes(8, "big")),
        )
        self.assertEqual(expected.hex(), OFFLINE)

    def test_key_id(self):
        """
        No salt, ikm = the key, info = encoded (label), 16 bytes.
        """
        expected = _hkdf(
            None, bytes.fromhex(KEY_0), encode_parts(b"suto/v1/key-id"), 16
        )
        self.assertEqual(expected.hex(), KEY_ID_0)

    def test_seal(self):
        """
        The cipher key is a subkey of the chain key; the nonce is the
        direction tag and the counter; the associated data is encoded
        (label, profile, purpose, direction, 8-byte counter).
        """
        subkey = _hkdf(None, bytes.fromhex(KEY_1), encode_parts(b"suto/v1/seal-key"))
        nonce = b"s2c\x00" + (0).to_bytes(8, "big")
        associated = encode_parts(
            b"suto/v1/seal", PROFILE, PURPOSE, "s2c", (0).to_bytes(8, "big")
        )
        self.assertEqual(subkey.hex(), SEAL_SUBKEY)
        self.assertEqual(nonce.hex(), SEAL_NONCE)
        self.assertEqual(associated.hex(), SEAL_AD)
        sealed = ChaCha20Poly1305(subkey).encrypt(nonce, PLAINTEXT, associated)
        self.assertEqual(sealed.hex(), SEALED)

    def test_attempt_key(self):
        """
        salt = the offline key, ikm = encoded (nonce), info = encoded
        (label, profile).
        """
        expected = _hkdf(
            bytes.fromhex(OFFLINE),
            encode_parts(ATTEMPT_NONCE),
            encode_parts(b"suto/v1/reconnect-attempt", PROFILE),
        )
        self.assertEqual(expected.hex(), ATTEMPT_KEY)

    def test_attempt_proof(self):
        """
        The reconnect proof's MAC key is a subkey of the chain key (no
        salt, info = encoded label); with a nonce the proof is the first
        16 bytes of HMAC-SHA256 of encoded (label, user, nonce, sealed).
        """
        subkey = _hkdf(
            None, bytes.fromhex(KEY_1), encode_parts(b"suto/v1/reconnect-key")
        )
        message = encode_parts(
            b"suto/v1/reconnect",
            PROFILE,
            ATTEMPT_NONCE,
            bytes.fromhex(ATTEMPT_SEALED),
        )
        proof = hmac.new(subkey, message, "sha256").digest()[:16]
        self.assertEqual(proof.hex(), ATTEMPT_PROOF)

    def test_check_proof(self):
        """
        The MAC key is a subkey of the chain key (no salt, info = encoded
        label); the proof is the first 16 bytes of HMAC-SHA256 of encoded
        (label, user, nonce).
        """
        subkey = _hkdf(None, bytes.fromhex(KEY_1), encode_parts(b"suto/v1/check-key"))
        message = encode_parts(b"suto/v1/check", CHECK_USER, CHECK_NONCE)
        self.assertEqual(subkey.hex(), CHECK_SUBKEY)
        self.assertEqual(message.hex(), CHECK_MESSAGE)
        proof = hmac.new(subkey, message, "sha256").digest()[:16]
        self.assertEqual(proof.hex(), CHECK_PROOF)

    def test_verify_proof(self):
        """
        The verification proof is the check proof's construction with
        the labels C{suto/v1/verify-key} and C{suto/v1/verify}.
        """
        subkey = _hkdf(None, bytes.fromhex(KEY_1), encode_parts(b"suto/v1/verify-key"))
        message = encode_parts(b"suto/v1/verify", CHECK_USER, CHECK_NONCE)
        proof = hmac.new(subkey, message, "sha256").digest()[:16]
        self.assertEqual(proof.hex(), VERIFY_PROOF)


class EncodePartsTests(SynchronousTestCase):
    """
    L{encode_parts} is injective and accepts only bytes and text.
    """

    def test_boundaries_matter(self):
        """
        Moving bytes from one part to the next, or splitting a part,
        changes the encoding.
        """
        self.assertNotEqual(encode_parts(b"ab", b"c"), encode_parts(b"a", b"bc"))
        self.assertNotEqual(encode_parts(b"abc"), encode_parts(b"ab", b"c"))
        self.assertNotEqual(encode_parts(b""), encode_parts())

    @given(
        st.lists(st.binary(max_size=8), max_size=4),
        st.lists(st.binary(max_size=8), max_size=4),
    )
    def test_injective(self, first, second):
        """
        Two sequences of parts encode alike only if they are equal.
        """
        self.assertEqual(
            encode_parts(*first) == encode_parts(*second), first == second
        )

    def test_text_is_utf8(self):
        """
        A text part encodes exactly as its UTF-8 bytes.
        """
        self.assertEqual(encode_parts("été"), encode_parts("été".encode("utf-8")))

    def test_rejects_other_types(self):
        """
        Integers, None and bytearrays are refused with the module's error.
        """
        for part in (1, None, bytearray(b"x"), True):
            self.assertRaises(KeyScheduleError, encode_parts, part)

    def test_rejects_unencodable_text(self):
        """
        A string with a lone surrogate cannot be UTF-8 and is refused.
        """
        self.assertRaises(KeyScheduleError, encode_parts, "\ud800")


class ValidationTests(SynchronousTestCase):
    """
    Every derivation refuses inputs of the wrong type, size or range with
    L{KeyScheduleError}.
    """

    key = bytes(KEY_SIZE)
    fingerprint = bytes(FINGERPRINT_SIZE)

    def test_password_secret(self):
        """
        Empty, oversized or non-text hashes and profiles are refused.
        """
        for salted, profile in [
            ("", PROFILE),
            ("x" * (MAX_SALTED_HASH + 1), PROFILE),
            (b"$6$x", PROFILE),
            (SALTED_HASH, ""),
            (SALTED_HASH, "p" * (MAX_PROFILE + 1)),
            (SALTED_HASH, None),
            (SALTED_HASH, "\udc80"),
        ]:
            self.assertRaises(KeyScheduleError, password_secret, salted, profile)

    def test_first_key(self):
        """
        Each byte input must have its exact size and be L{bytes}.
        """
        good = [bytes(RANDOM_SIZE), self.fingerprint, self.key]
        for index in range(3):
            for bad in (good[index][:-1], good[index] + b"\x00", None, "x" * 32):
                arguments = list(good)
                arguments[index] = bad
                self.assertRaises(KeyScheduleError, first_key, *arguments, PROFILE)
        self.assertRaises(KeyScheduleError, first_key, *good, 7)

    def test_next_key(self):
        """
        Sizes of the four byte inputs, and the range and type of the
        generation, are checked.
        """
        good = [self.key, bytes(JUNK_SIZE), self.fingerprint, bytes(32)]
        for index in range(4):
            arguments = list(good)
            arguments[index] = good[index][:-1]
            self.assertRaises(KeyScheduleError, next_key, *arguments, PROFILE, 1)
        for generation in (-1, 2**64, 1.0, True, "1", None):
            self.assertRaises(
                KeyScheduleError, next_key, *good, PROFILE, generation
            )
        self.assertEqual(len(next_key(*good, PROFILE, 2**64 - 1)), KEY_SIZE)

    def test_offline_key(self):
        """
        The key and fingerprint sizes and the step's range are checked.
        """
        self.assertRaises(
            KeyScheduleError, offline_key, self.key[:-1], self.fingerprint, 1, PROFILE
        )
        self.assertRaises(
            KeyScheduleError, offline_key, self.key, self.fingerprint[:-1], 1, PROFILE
        )
        for step in (-1, 2**64, 1.5):
            self.assertRaises(
                KeyScheduleError, offline_key, self.key, self.fingerprint, step, PROFILE
            )

    def test_key_id(self):
        """
        Only a L{KEY_SIZE}-byte key has an identifier.
        """
        for bad in (b"", self.key[:-1], self.key + b"\x00", "k" * KEY_SIZE):
            self.assertRaises(KeyScheduleError, key_id, bad)

    def test_seal(self):
        """
        L{seal} refuses a bad key, plaintext, profile, purpose, direction
        or counter.
        """
        cases = [
            (self.key[:-1], b"", {}),
            (self.key, "text", {}),
            (self.key, bytes(MAX_PLAINTEXT + 1), {}),
            (self.key, b"", {"profile": ""}),
            (self.key, b"", {"purpose": "p" * (MAX_PURPOSE + 1)}),
            (self.key, b"", {"direction": "s2c"}),
            (self.key, b"", {"counter": -1}),
            (self.key, b"", {"counter": 2**64}),
        ]
        for key, plaintext, overrides in cases:
            self.assertRaises(
                KeyScheduleError, seal, key, plaintext, **_seal_vector(**overrides)
            )
        self.assertEqual(
            len(seal(self.key, bytes(MAX_PLAINTEXT), **_seal_vector())),
            MAX_PLAINTEXT + 16,
        )


class AttemptKeyTests(SynchronousTestCase):
    """
    L{attempt_key} and the nonce of L{reconnect_proof}: a fresh key, and a
    fresh proof, for every attempt.
    """

    def test_nonce_changes_key(self):
        """
        Two attempts of one step with different nonces have different
        keys, and neither is the offline key itself.
        """
        offline = bytes.fromhex(OFFLINE)
        first = attempt_key(offline, bytes(ATTEMPT_NONCE_SIZE), PROFILE)
        second = attempt_key(offline, b"\x01" * ATTEMPT_NONCE_SIZE, PROFILE)
        self.assertEqual(len({first, second, offline}), 3)
        self.assertNotEqual(first, attempt_key(offline, bytes(16), "bob"))

    def test_bad_inputs(self):
        """
        A nonce or offline key of the wrong size or type, or a bad
        profile, raises L{KeyScheduleError}; so does a proof's nonce of the
        wrong size.
        """
        offline = bytes.fromhex(OFFLINE)
        for args in [
            (offline, bytes(15), PROFILE),
            (offline, "0" * 16, PROFILE),
            (offline[:31], bytes(16), PROFILE),
            (offline, bytes(16), ""),
        ]:
            self.assertRaises(KeyScheduleError, attempt_key, *args)
        self.assertRaises(
            KeyScheduleError,
            reconnect_proof,
            bytes.fromhex(KEY_1),
            PROFILE,
            bytes.fromhex(ATTEMPT_SEALED),
            bytes(17),
        )

    def test_proof_binds_nonce(self):
        """
        The proof changes with the nonce, so a message's nonce cannot be
        swapped for another.
        """
        key, sealed = bytes.fromhex(KEY_1), bytes.fromhex(ATTEMPT_SEALED)
        self.assertNotEqual(
            reconnect_proof(key, PROFILE, sealed, bytes(16)),
            reconnect_proof(key, PROFILE, sealed, ATTEMPT_NONCE),
        )


class CheckProofTests(SynchronousTestCase):
    """
    A check proof depends on the key, the nonce and the user, and refuses
    malformed inputs.
    """

    key = bytes.fromhex(KEY_1)

    def test_every_input_matters(self):
        """
        Another key, nonce or user gives another proof of
        L{CHECK_PROOF_SIZE} bytes, so an answer proves the key and cannot
        be replayed to another check or moved to another profile.
        """
        proof = check_proof(self.key, CHECK_NONCE, CHECK_USER)
        self.assertEqual(len(proof), CHECK_PROOF_SIZE)
        self.assertEqual(proof, check_proof(self.key, CHECK_NONCE, CHECK_USER))
        others = {
            check_proof(bytes.fromhex(KEY_0), CHECK_NONCE, CHECK_USER),
            check_proof(self.key, bytes(CHECK_NONCE_SIZE), CHECK_USER),
            check_proof(self.key, CHECK_NONCE, "bob"),
        }
        self.assertEqual(len(others), 3)
        self.assertNotIn(proof, others)

    def test_not_the_key_id(self):
        """
        The proof is not a piece of the key or of its public identifier.
        """
        proof = check_proof(self.key, CHECK_NONCE, CHECK_USER)
        self.assertNotIn(proof, self.key)
        self.assertNotIn(proof.hex(), KEY_ID_1)

    def test_bad_inputs(self):
        """
        A key or nonce of the wrong size or type, or a user that is empty,
        too long or not text, is refused with L{KeyScheduleError}.
        """
        for key, nonce, user in [
            (self.key[:-1], CHECK_NONCE, CHECK_USER),
            (self.key.hex(), CHECK_NONCE, CHECK_USER),
            (self.key, CHECK_NONCE[:-1], CHECK_USER),
            (self.key, CHECK_NONCE + b"\x00", CHECK_USER),
            (self.key, None, CHECK_USER),
            (self.key, CHECK_NONCE, ""),
            (self.key, CHECK_NONCE, "u" * (MAX_PROFILE + 1)),
            (self.key, CHECK_NONCE, b"alice"),
        ]:
            self.assertRaises(KeyScheduleError, check_proof, key, nonce, user)


class NextKeyTests(SynchronousTestCase):
    """
    Rolling forward is deterministic and depends on every input.
    """

    arguments = (
        bytes.fromhex(KEY_0),
        JUNK,
        FINGERPRINT,
        bytes.fromhex(DH_SHARED),
        PROFILE,
        1,
    )

    def test_deterministic(self):
        """
        Both sides, given the same inputs, derive the same key.
        """
        self.assertEqual(next_key(*self.arguments), next_key(*self.arguments))

    def test_every_input_matters(self):
        """
        Changing any one input gives a different key.
        """
        baseline = next_key(*self.arguments)
        replacements = [
            bytes.fromhex(KEY_1),
            bytes(JUNK_SIZE),
            bytes(FINGERPRINT_SIZE),
            bytes(32),
            "bob@it-srv1",
            2,
        ]
        for index, replacement in enumerate(replacements):
            arguments = list(self.arguments)
            arguments[index] = replacement
            self.assertNotEqual(next_key(*arguments), baseline, index)

    def test_derivations_are_separated(self):
        """
        The first, next and offline derivations use different labels, so
        even on coinciding inputs they give different keys.
        """
        key = bytes(KEY_SIZE)
        self.assertNotEqual(
            first_key(bytes(RANDOM_SIZE), FINGERPRINT, key, PROFILE),
            offline_key(key, FINGERPRINT, 0, PROFILE),
        )
        self.assertNotEqual(
            offline_key(key, FINGERPRINT, 1, PROFILE),
            offline_key(key, FINGERPRINT, 2, PROFILE),
        )


class DiffieHellmanTests(SynchronousTestCase):
    """
    L{dh_shared_secret} agrees between two parties and refuses
    predictable secrets.
    """

    def test_agreement(self):
        """
        Two fresh key pairs derive the same 32-byte secret.
        """
        client = X25519PrivateKey.generate()
        server = X25519PrivateKey.generate()
        client_side = dh_shared_secret(client, server.public_key().public_bytes_raw())
        server_side = dh_shared_secret(server, client.public_key().public_bytes_raw())
        self.assertEqual(client_side, server_side)
        self.assertEqual(len(client_side), 32)

    def test_low_order_point(self):
        """
        Public keys of low order (zero, one) force an all-zero secret and
        are refused.
        """
        private = X25519PrivateKey.generate()
        for public in (bytes(32), b"\x01" + bytes(31)):
            self.assertRaises(KeyScheduleError, dh_shared_secret, private, public)

    def test_all_zero_result(self):
        """
        An all-zero secret is refused even from a backend that returns it
        rather than raising.
        """

        class ZeroExchange(X25519PrivateKey):
            def exchange(self, peer_public_key):
                return bytes(32)

            def public_key(self):
                raise NotImplementedError()

            def private_bytes(self, encoding, format, encryption_algorithm):
                raise NotImplementedError()

            def private_bytes_raw(self):
                raise NotImplementedError()

            def __copy__(self):
                return self

            def __deepcopy__(self, memo):
                return self

        self.assertRaises(
            KeyScheduleError, dh_shared_secret, ZeroExchange(), BOB_PUBLIC
        )

    def test_zero_check_constant_time(self):
        """
        The secret is checked against all zeros with
        L{hmac.compare_digest}, so the time the check takes says nothing
        of how many of its leading bytes are zero.
        """
        compared = record_comparisons(self)
        private = X25519PrivateKey.generate()
        shared = dh_shared_secret(private, BOB_PUBLIC)
        self.assertEqual(compared, [(shared, bytes(32))])

    def test_bad_arguments(self):
        """
        A private key of another kind, or a public key of the wrong size
        or type, is refused.
        """
        private = X25519PrivateKey.generate()
        self.assertRaises(KeyScheduleError, dh_shared_secret, ALICE_PRIVATE, BOB_PUBLIC)
        self.assertRaises(KeyScheduleError, dh_shared_secret, private, BOB_PUBLIC[:-1])
        self.assertRaises(
            KeyScheduleError,
            dh_shared_secret,
            private,
            X25519PublicKey.from_public_bytes(BOB_PUBLIC),
        )


class TimeStepTests(SynchronousTestCase):
    """
    Time steps count like TOTP and candidates come nearest first.
    """

    def test_floor(self):
        """
        A step starts at a multiple of the step length and includes it.
        """
        self.assertEqual(time_step(0), 0)
        self.assertEqual(time_step(29.999), 0)
        self.assertEqual(time_step(30), 1)
        self.assertEqual(time_step(125, step=60), 2)

    def test_candidates_early_in_step(self):
        """
        Early in a step the previous step is nearer than the next.
        """
        self.assertEqual(candidate_steps(100), [3, 2, 4, 1, 5])

    def test_candidates_late_in_step(self):
        """
        Late in a step the next step is nearer than the previous.
        """
        self.assertEqual(candidate_steps(115), [3, 4, 2, 5, 1])

    def test_candidates_tie(self):
        """
        Exactly halfway through a step, the earlier step comes first.
        """
        self.assertEqual(candidate_steps(105, window=1), [3, 2, 4])

    def test_candidates_window(self):
        """
        The window sets how many steps either side are included; zero
        gives the current step alone.
        """
        self.assertEqual(candidate_steps(100, window=0), [3])
        self.assertEqual(sorted(candidate_steps(1000, window=3)), list(range(30, 37)))

    def test_candidates_near_epoch(self):
        """
        No candidate lies before the epoch.
        """
        self.assertEqual(candidate_steps(10), [0, 1, 2])

    def test_bad_times(self):
        """
        Negative, infinite, NaN or non-numeric times, and non-positive or
        non-integer steps and windows, are refused.
        """
        for now in (-1, float("inf"), float("nan"), "0", None, True):
            self.assertRaises(KeyScheduleError, time_step, now)
        for step in (0, -30, 1.5, True):
            self.assertRaises(KeyScheduleError, time_step, 0, step)
        for window in (-1, 1.0, None):
            self.assertRaises(KeyScheduleError, candidate_steps, 0, 30, window)


class KeyIdTests(SynchronousTestCase):
    """
    A key identifier names a key without revealing it.
    """

    def test_stable_and_distinct(self):
        """
        The identifier is the same every time, differs between keys, and
        is 32 lowercase hex digits that appear nowhere in the key.
        """
        key = bytes.fromhex(KEY_0)
        identifier = key_id(key)
        self.assertEqual(identifier, key_id(key))
        self.assertNotEqual(identifier, key_id(bytes.fromhex(KEY_1)))
        self.assertRegex(identifier, "^[0-9a-f]{32}$")
        self.assertNotIn(identifier, key.hex())
        self.assertNotIn(bytes.fromhex(identifier), key)


class SealTests(SynchronousTestCase):
    """
    A sealed message opens only with the same key and the same bindings,
    and every failure is the same L{SealError}.
    """

    key = bytes.fromhex(KEY_1)

    def setUp(self):
        self.sealed = seal(self.key, PLAINTEXT, **_seal_vector(counter=5))

    def assertSealError(self, key, sealed, **overrides):
        """
        Opening fails with L{SealError}, whose message does not say why.
        """
        error = self.assertRaises(
            SealError,
            open_sealed,
            key,
            sealed,
            **_seal_vector(**dict({"counter": 5}, **overrides)),
        )
        self.assertEqual(str(error), "the message cannot be opened")

    def test_round_trip(self):
        """
        The same arguments open what was sealed, including an empty
        message.
        """
        self.assertEqual(
            open_sealed(self.key, self.sealed, **_seal_vector(counter=5)), PLAINTEXT
        )
        empty = seal(self.key, b"", **_seal_vector())
        self.assertEqual(open_sealed(self.key, empty, **_seal_vector()), b"")

    def test_wrong_key(self):
        """
        Another key cannot open the message.
        """
        self.assertSealError(bytes.fromhex(KEY_0), self.sealed)

    def test_wrong_counter(self):
        """
        A message cannot be replayed under another counter.
        """
        self.assertSealError(self.key, self.sealed, counter=4)
        self.assertSealError(self.key, self.sealed, counter=6)

    def test_wrong_direction(self):
        """
        A message cannot be reflected back to its sender.
        """
        self.assertSealError(
            self.key, self.sealed, direction=Direction.CLIENT_TO_SERVER
        )

    def test_wrong_profile(self):
        """
        A message cannot be moved to another profile.
        """
        self.assertSealError(self.key, self.sealed, profile="bob@it-srv1")

    def test_wrong_purpose(self):
        """
        A message cannot be used for another purpose.
        """
        self.assertSealError(self.key, self.sealed, purpose="enrollment")

    def test_tampered(self):
        """
        Flipping any single bit of the ciphertext or tag is detected.
        """
        for index in range(len(self.sealed)):
            tampered = bytearray(self.sealed)
            tampered[index] ^= 0x01
            self.assertSealError(self.key, bytes(tampered))

    def test_truncated(self):
        """
        A message cut short, down to nothing, does not open.
        """
        for length in range(len(self.sealed)):
            self.assertSealError(self.key, self.sealed[:length])
        self.assertSealError(self.key, self.sealed + b"\x00")

    def test_bad_arguments(self):
        """
        Malformed arguments to L{open_sealed} are reported as the same
        L{SealError}, never as another exception.
        """
        self.assertSealError(self.key[:-1], self.sealed)
        self.assertSealError(self.key, self.sealed.hex())
        self.assertSealError(self.key, bytes(MAX_PLAINTEXT + 17))
        self.assertSealError(self.key, self.sealed, direction="s2c")
        self.assertSealError(self.key, self.sealed, counter=-1)
        self.assertSealError(self.key, self.sealed, profile="")

    @given(st.binary(max_size=64), st.integers(min_value=0, max_value=2**64 - 1))
    def test_arbitrary_input(self, sealed, counter):
        """
        Any bytes under any counter either open or raise L{SealError}.
        """
        try:
            open_sealed(self.key, sealed, **_seal_vector(counter=counter))
        except SealError:
            pass
        else:
            self.fail("random bytes opened")

    def test_directions_have_separate_nonces(self):
        """
        The two directions under the same key and counter give different
        ciphertexts for the same plaintext, so their counters never share
        a nonce.
        """
        to_client = seal(self.key, PLAINTEXT, **_seal_vector())
        to_server = seal(
            self.key, PLAINTEXT, **_seal_vector(direction=Direction.CLIENT_TO_SERVER)
        )
        self.assertNotEqual(to_client[: len(PLAINTEXT)], to_server[: len(PLAINTEXT)])


class SealMessageTests(SynchronousTestCase):
    """
    L{seal_message} and L{open_message} seal the messages of a rotation or
    reconnection as L{seal} does at the direction and counter their
    purpose fixes.
    """

    key = bytes.fromhex(KEY_1)

    def test_purposes(self):
        """
        Each purpose's message is sealed at its counter, in the way it
        travels (the server's "ok", "done" and reconnection answer towards
        the client, the acknowledgement and the reconnection junk towards
        the server), and opens again.
        """
        ways = {
            ROTATE_OK_PURPOSE: Direction.SERVER_TO_CLIENT,
            ROTATE_ACK_PURPOSE: Direction.CLIENT_TO_SERVER,
            ROTATE_DONE_PURPOSE: Direction.SERVER_TO_CLIENT,
            ROTATE_DONE_NEXT_PURPOSE: Direction.SERVER_TO_CLIENT,
            RECONNECT_PURPOSE: Direction.CLIENT_TO_SERVER,
            RECONNECT_OK_PURPOSE: Direction.SERVER_TO_CLIENT,
        }
        self.assertEqual(set(ways), set(SEAL_COUNTERS))
        for purpose, direction in ways.items():
            sealed = seal_message(self.key, PLAINTEXT, profile="alice", purpose=purpose)
            self.assertEqual(
                sealed,
                seal(
                    self.key,
                    PLAINTEXT,
                    profile="alice",
                    purpose=purpose,
                    direction=direction,
                    counter=SEAL_COUNTERS[purpose],
                ),
            )
            self.assertEqual(
                open_message(self.key, sealed, profile="alice", purpose=purpose),
                PLAINTEXT,
            )


class SealingKeyTests(SynchronousTestCase):
    """
    L{SealingKey} seals and opens a rotation's messages under one key, as
    L{seal_message} and L{open_message} do each alone.
    """

    key = bytes.fromhex(KEY_1)

    def test_same_seals(self):
        """
        Every purpose's message sealed by one L{SealingKey} is the bytes
        L{seal_message} gives, and opens again through it.
        """
        sealing = SealingKey(self.key, "alice")
        for purpose in SEAL_COUNTERS:
            sealed = sealing.seal(PLAINTEXT, purpose)
            self.assertEqual(
                sealed,
                seal_message(self.key, PLAINTEXT, profile="alice", purpose=purpose),
            )
            self.assertEqual(sealing.open(sealed, purpose), PLAINTEXT)

    def test_bound(self):
        """
        A message opens only under its own key, profile and purpose.
        """
        sealed = SealingKey(self.key, "alice").seal(PLAINTEXT, ROTATE_ACK_PURPOSE)
        for other in (
            SealingKey(bytes(KEY_SIZE), "alice"),
            SealingKey(self.key, "bob"),
        ):
            self.assertRaises(SealError, other.open, sealed, ROTATE_ACK_PURPOSE)
        sealing = SealingKey(self.key, "alice")
        self.assertRaises(SealError, sealing.open, sealed, RECONNECT_PURPOSE)
        self.assertRaises(SealError, sealing.open, sealed[:-1], ROTATE_ACK_PURPOSE)
        self.assertRaises(SealError, sealing.open, "text", ROTATE_ACK_PURPOSE)

    def test_checks(self):
        """
        A key or profile of the wrong type or size is refused when the
        L{SealingKey} is made, and a plaintext too long when it seals.
        """
        self.assertRaises(KeyScheduleError, SealingKey, b"short", "alice")
        self.assertRaises(KeyScheduleError, SealingKey, self.key, "")
        self.assertRaises(
            KeyScheduleError,
            SealingKey(self.key, "alice").seal,
            bytes(MAX_PLAINTEXT + 1),
            ROTATE_OK_PURPOSE,
        )

    def test_repr(self):
        """
        Its C{repr} names the profile and shows nothing of the key.
        """
        text = repr(SealingKey(self.key, "alice"))
        self.assertIn("alice", text)
        self.assertNotIn(self.key.hex(), text)
