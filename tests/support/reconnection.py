"""
Reconnection from the device's side, and the reconnection rules set up
beside the rotation rules.

L{reconnect_message} and L{opens_ok} compute what a client sends and
checks, straight from the key schedule; L{ReconnectionMixin} adds the
L{Reconnection} rules to L{RotationMixin}'s. The reconnection and offline
rules and the connection's rotation phase share them.
"""

from suto_server.audit.log import AuditLog
from suto_server.core import keyschedule, wire
from suto_server.core.timing import DEFAULT_OFFLINE_STEP
from suto_server.rules.reconnection import Reconnection, ReconnectRefused
from tests.support.coroutines import failure_of, result_of
from tests.support.rotation import SOURCE, RotationMixin

#: The junk a reconnecting client seals (any 32 bytes).
RECONNECT_JUNK = bytes(range(200, 232))
#: The nonce of its attempt (any 16 bytes; a client draws a new one for
#: every attempt).
ATTEMPT_NONCE = bytes(range(232, 248))


def offline_key_of(device, step):
    """
    The offline key C{device} derives for C{step} from the key it holds
    and the fingerprint its machine computes.
    """
    return keyschedule.offline_key(device.key, device.fingerprint, step, device.user)


def sealing_key_of(device, step, nonce):
    """
    The key C{device} seals its junk under for C{step} and the attempt
    C{nonce}: the attempt's key, or the offline key itself without a nonce
    (the first form of the message).
    """
    offline_key = offline_key_of(device, step)
    if nonce is None:
        return offline_key
    return keyschedule.attempt_key(offline_key, nonce, device.user)


def reconnect_message(device, step, junk=RECONNECT_JUNK, nonce=ATTEMPT_NONCE):
    """
    The L{wire.Reconnect} C{device} sends for the offline time step
    C{step}, as a client computes it (docs/PROTOCOL.md §10.2); with
    C{nonce=None}, in the first form, as an agent not yet upgraded does.
    """
    sealed = keyschedule.seal(
        sealing_key_of(device, step, nonce),
        junk,
        profile=device.user,
        purpose=keyschedule.RECONNECT_PURPOSE,
        direction=keyschedule.Direction.CLIENT_TO_SERVER,
        counter=0,
    )
    return wire.Reconnect(
        keyschedule.key_id(device.key),
        keyschedule.reconnect_proof(device.key, device.user, sealed, nonce),
        sealed,
        device.user,
        nonce,
    )


def opens_ok(device, step, sealed, nonce=ATTEMPT_NONCE):
    """
    Does C{sealed}, the server's confirmation, open under C{device}'s key
    for C{step} and the attempt C{nonce} to C{ok}?
    """
    try:
        return (
            keyschedule.open_sealed(
                sealing_key_of(device, step, nonce),
                sealed,
                profile=device.user,
                purpose=keyschedule.RECONNECT_OK_PURPOSE,
                direction=keyschedule.Direction.SERVER_TO_CLIENT,
                counter=0,
            )
            == b"ok"
        )
    except keyschedule.SealError:
        return False


class ReconnectionMixin(RotationMixin):
    """
    L{RotationMixin}'s rules plus the L{Reconnection} rules over the same
    store, with the default step and window.
    """

    def start_server(self):
        super().start_server()
        self.reconnection = Reconnection(
            self.calls, self.rotation, AuditLog(self.store)
        )

    def step(self, offset=0):
        """
        The server's offline time step now, plus C{offset}.
        """
        return keyschedule.time_step(self.now(), DEFAULT_OFFLINE_STEP) + offset

    def go_offline(self, user="alice"):
        """
        The sweep found C{user}'s profile silent.
        """
        self.assertEqual(self.store.mark_offline([user], self.now()), [user])

    def reconnect(self, message, source=SOURCE):
        return result_of(
            self, self.reconnection.reconnect(message, source, self.now())
        )

    def refused(self, message, source=SOURCE):
        """
        The reason the reconnection C{message} is refused with.
        """
        return failure_of(
            self,
            self.reconnection.reconnect(message, source, self.now()),
            ReconnectRefused,
        ).value.reason

    def rotation_refused(self, device, source=SOURCE, reconnected=False):
        """
        The reason L{Reconnection.check_rotation} refuses a plain rotation
        of C{device} with.
        """
        return failure_of(
            self, self._check_rotation(device, source, reconnected), ReconnectRefused
        ).value.reason

    def check_rotation(self, device, source=SOURCE, reconnected=False):
        return result_of(self, self._check_rotation(device, source, reconnected))

    def _check_rotation(self, device, source, reconnected):
        return self.reconnection.check_rotation(
            device.user,
            keyschedule.key_id(device.key),
            source,
            self.now(),
            reconnected,
        )

    def rotate_reconnected(self, accepted, device=None, source=SOURCE):
        """
        The rotation that follows a reconnection, passing its step and
        nonce so the commit spends them.
        """
        pending = self.rotate(
            device,
            source,
            offline_step=accepted.step,
            attempt_nonce=accepted.attempt_nonce,
        )
        self.assertEqual(pending.offline_step, accepted.step)

    def blacklisted(self, user="alice"):
        entry = self.store.blacklist_entry(user)
        return None if entry is None else (entry.alert, entry.source)

    def state(self, user="alice"):
        return (
            self.profile(user),
            self.store.offline_since(user),
            self.store.spent_offline_step(user),
            self.blacklisted(user),
        )
