"""
What an enrolling device computes, straight from the key schedule.

The enrollment rules, the connection's enrollment phase and the window
rules each check the server against a device; they share this one model of
it, written from the design rather than from the client's code, so a bug
the two ends share cannot hide.
"""

from suto_server.core import keyschedule, libxcrypt

#: A one-time enrollment password, in the shape the server hands out.
PASSWORD = "k7m2p-abcde-fghjk-mnpqr"
#: The device's fingerprint hash.
FINGERPRINT = bytes(range(32))
#: The device's random contribution to its first key.
RANDOM = bytes(range(100, 132))


def device_payload(password, salt, user, fingerprint=FINGERPRINT, random_data=RANDOM):
    """
    What a device that knows C{password} sends after C{SUTO_AUTH_1}, and
    the first key it derives, computed as the design spells it out.

    @param salt: the salt the server sent (the window hash's setting).
    @return: C{(sealed, first_key)}.
    """
    secret = keyschedule.password_secret(libxcrypt.crypt(password, salt), user)
    sealed = keyschedule.seal(
        secret,
        fingerprint + random_data,
        profile=user,
        purpose="enroll-data",
        direction=keyschedule.Direction.CLIENT_TO_SERVER,
        counter=0,
    )
    return sealed, keyschedule.first_key(random_data, fingerprint, secret, user)


def open_confirmation(key, confirmation, user):
    """
    Open the server's confirmation as the device does.
    """
    return keyschedule.open_sealed(
        key,
        confirmation,
        profile=user,
        purpose="enroll-confirm",
        direction=keyschedule.Direction.SERVER_TO_CLIENT,
        counter=0,
    )
