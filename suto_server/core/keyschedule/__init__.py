# -*- test-case-name: tests.core.test_keyschedule,tests.core.test_vectors -*-
"""
The SUTO key schedule: every key a profile ever uses, and what each key
protects, with no I/O.

This package is the key schedule's documented API; callers write
C{from suto_server.core import keyschedule} and C{keyschedule.X}.  It has
two modules:

  - L{derivation}: how each key is made (the password secret, the first,
    next and offline keys, the X25519 exchange, key ids and the offline
    time steps), and the input checks and encoding every use shares;
  - L{sealing}: what a key protects, each under a subkey of its own:
    messages sealed with ChaCha20-Poly1305 (a L{SealingKey} seals and
    opens one rotation's messages under one subkey), and proofs of
    possession.

Nothing here reads the clock or draws random numbers, so every function
has test vectors (docs/PROTOCOL.md).
"""

from suto_server.core.keyschedule.derivation import (
    ATTEMPT_NONCE_SIZE,
    DH_SIZE,
    FINGERPRINT_SIZE,
    JUNK_SIZE,
    KEY_ID_SIZE,
    KEY_SIZE,
    MAX_PROFILE,
    MAX_SALTED_HASH,
    RANDOM_SIZE,
    KeyScheduleError,
    attempt_key,
    candidate_steps,
    dh_shared_secret,
    encode_parts,
    first_key,
    key_id,
    next_key,
    offline_key,
    password_secret,
    time_step,
)
from suto_server.core.keyschedule.sealing import (
    CHECK_NONCE_SIZE,
    CHECK_PROOF_SIZE,
    ENROLL_CONFIRM_PURPOSE,
    ENROLL_DATA_PURPOSE,
    MAX_PLAINTEXT,
    MAX_PURPOSE,
    RECONNECT_OK_PURPOSE,
    RECONNECT_PURPOSE,
    ROTATE_ACK_PURPOSE,
    ROTATE_DONE_NEXT_PURPOSE,
    ROTATE_DONE_PURPOSE,
    ROTATE_OK_PURPOSE,
    SEAL_COUNTERS,
    Direction,
    SealError,
    SealingKey,
    check_proof,
    open_message,
    open_sealed,
    reconnect_proof,
    seal,
    seal_message,
    verify_proof,
)

__all__ = [
    "ATTEMPT_NONCE_SIZE",
    "CHECK_NONCE_SIZE",
    "CHECK_PROOF_SIZE",
    "DH_SIZE",
    "ENROLL_CONFIRM_PURPOSE",
    "ENROLL_DATA_PURPOSE",
    "FINGERPRINT_SIZE",
    "JUNK_SIZE",
    "KEY_ID_SIZE",
    "KEY_SIZE",
    "MAX_PLAINTEXT",
    "MAX_PROFILE",
    "MAX_PURPOSE",
    "MAX_SALTED_HASH",
    "RANDOM_SIZE",
    "RECONNECT_OK_PURPOSE",
    "RECONNECT_PURPOSE",
    "ROTATE_ACK_PURPOSE",
    "ROTATE_DONE_NEXT_PURPOSE",
    "ROTATE_DONE_PURPOSE",
    "ROTATE_OK_PURPOSE",
    "SEAL_COUNTERS",
    "Direction",
    "KeyScheduleError",
    "SealError",
    "SealingKey",
    "attempt_key",
    "candidate_steps",
    "check_proof",
    "dh_shared_secret",
    "encode_parts",
    "first_key",
    "key_id",
    "next_key",
    "offline_key",
    "open_message",
    "open_sealed",
    "password_secret",
    "reconnect_proof",
    "seal",
    "seal_message",
    "time_step",
    "verify_proof",
]
