"""
The server's side of the client's enrollment, from the key schedule.

The client's enrollment and constant-time tests and the check of the
machines against docs/PROTOCOL.md need what a server holding the window's
hash sends and expects; the device is the one in
L{tests.support.enrollment}, with its fingerprint hash and random data.
"""

from suto_server.core import keyschedule
from tests.support.enrollment import FINGERPRINT, RANDOM

USER = "alice"
SALT = "$6$saltsaltsaltsalt"
RSALT = "$6$rsaltrsaltrsalt1"
SALTED = SALT + "$" + "s" * 86
RESPONSE = RSALT + "$" + "r" * 86
S2C = keyschedule.Direction.SERVER_TO_CLIENT


def confirmation(key: bytes, plaintext: bytes, user: str = USER) -> bytes:
    """
    The sealed part of C{SUTO_ENROLLED_}, as a server seals it.
    """
    return keyschedule.seal(
        key,
        plaintext,
        profile=user,
        purpose="enroll-confirm",
        direction=S2C,
        counter=0,
    )


def expected_key(salted: str = SALTED) -> bytes:
    """
    The first key both sides derive when the window's hash is C{salted}.
    """
    secret = keyschedule.password_secret(salted, USER)
    return keyschedule.first_key(RANDOM, FINGERPRINT, secret, USER)
