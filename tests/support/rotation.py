"""
Key rotation from the device's side, and the rotation rules set up around
an enrolled device.

L{Device} computes what a client computes, straight from the key schedule
rather than from the client's code; L{RotationMixin} builds the rotation
rules over a store mixin's store, a real master key and a group committer
on a L{task.Clock}. The rotation, reconnection, offline and tracking rules,
the connection's rotation phase and the admin blacklist all start from
the same enrolled device.
"""

from dataclasses import replace

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from twisted.internet import task
from twisted.internet.defer import Deferred

from suto_server.audit.log import AuditLog
from suto_server.core import keyschedule, wire
from suto_server.rules.rotation import Rotation, RotationRefused
from suto_server.store.calls import LocalCalls
from suto_server.store.groupcommit import GroupCommitter
from suto_server.store.records import Profile
from tests.support.coroutines import failure_of, result_of
from tests.support.enrollment import FINGERPRINT
from tests.support.masterkey import new_master_key
from tests.support.store_suite.values import WINDOW

#: When the device enrolled, and when the rules' clock starts.
NOW = 1_700_000_000.0
#: Where the device enrolled and connects from.
SOURCE = "127.0.0.5"
#: Another address of the lab.
ELSEWHERE = "127.0.0.9"
#: The key enrollment left the device with.
FIRST_KEY = bytes(range(50, 82))
#: Another machine's fingerprint hash.
OTHER_FINGERPRINT = bytes(range(1, 33))
#: The junk of every rotation request.
JUNK = bytes(range(150, 182))


def raw_public(private):
    """
    The raw 32 bytes of the X25519 public key of C{private}, as the wire
    carries them.
    """
    return private.public_key().public_bytes_raw()


class Device:
    """
    A client's side of key rotation (docs/PROTOCOL.md §9.2), computed with
    the key schedule: it holds one committed key, draws a fresh X25519 key
    pair for every rotation, and commits the next key only on "done".

    @ivar key: the key it holds, from enrollment at first.
    @ivar generation: that key's generation.
    @ivar fingerprint: the fingerprint hash it computes on its machine.
    @ivar next: the key the rotation under way derived, or L{None}.
    @ivar share: on a version-3 connection, the server's X25519 public key
        for the next (primed) rotation, from the last
        C{SUTO_ROTATE_DONE_NEXT_}; else L{None}.
    """

    def __init__(self, user, key, fingerprint=FINGERPRINT):
        self.user = user
        self.key = key
        self.generation = 0
        self.fingerprint = fingerprint
        self._private = None
        self.next = None
        self.share = None

    def request(self, private=None):
        """
        Start a rotation, with L{JUNK} as its junk.

        @param private: the X25519 private key to use, a fresh one if
            L{None}.
        @return: the L{wire.Rotate} to send.
        """
        self._private = private or X25519PrivateKey.generate()
        return wire.Rotate(
            keyschedule.key_id(self.key),
            JUNK,
            raw_public(self._private),
            self.user,
        )

    def derive(self, server_public):
        """
        Derive the next key from the server's public key, as C{next}.
        """
        shared = keyschedule.dh_shared_secret(self._private, server_public)
        self.next = keyschedule.next_key(
            self.key,
            JUNK,
            self.fingerprint,
            shared,
            self.user,
            self.generation + 1,
        )

    def opened(self, sealed, purpose):
        """
        C{sealed}, from the server, opened under the next key.

        @raise keyschedule.SealError: it does not open.
        """
        return keyschedule.open_sealed(
            self.next,
            sealed,
            profile=self.user,
            purpose=purpose,
            direction=keyschedule.Direction.SERVER_TO_CLIENT,
            counter=keyschedule.SEAL_COUNTERS[purpose],
        )

    def opens(self, sealed, plaintext, purpose):
        """
        Does C{sealed}, from the server, open under the next key to
        C{plaintext}?
        """
        try:
            return self.opened(sealed, purpose) == plaintext
        except keyschedule.SealError:
            return False

    def ack(self):
        """
        @return: the acknowledgement sealed under the next key.
        """
        return keyschedule.seal(
            self.next,
            b"ack",
            profile=self.user,
            purpose=keyschedule.ROTATE_ACK_PURPOSE,
            direction=keyschedule.Direction.CLIENT_TO_SERVER,
            counter=keyschedule.SEAL_COUNTERS[keyschedule.ROTATE_ACK_PURPOSE],
        )

    def acknowledge(self, server_public, ok):
        """
        Answer C{SUTO_ROTATE_OK_} as a client does: derive, open "ok",
        seal "ack".

        @raise keyschedule.SealError: "ok" does not open.
        """
        self.derive(server_public)
        if not self.opens(ok, b"ok", keyschedule.ROTATE_OK_PURPOSE):
            raise keyschedule.SealError("the server's ok does not open")
        return self.ack()

    def commit(self, done):
        """
        Take the next key on a "done" that opens.

        @raise keyschedule.SealError: "done" does not open.
        """
        if not self.opens(done, b"done", keyschedule.ROTATE_DONE_PURPOSE):
            raise keyschedule.SealError("the server's done does not open")
        self._take_next()

    def _take_next(self):
        self.key, self.generation, self.next = self.next, self.generation + 1, None

    def commit_next(self, sealed):
        """
        Take the next key on a C{SUTO_ROTATE_DONE_NEXT_} that opens, and
        keep the server's share it carries, as C{share}.

        @raise keyschedule.SealError: it does not open.
        """
        self.share = self.opened(sealed, keyschedule.ROTATE_DONE_NEXT_PURPOSE)
        self._take_next()

    def primed_request(self, private=None):
        """
        Start a primed rotation with the share the last commit kept:
        derive the next key with it, and seal "ack" under that key.

        @param private: as for L{request}.
        @return: the L{wire.RotatePrimed} to send.
        """
        request = self.request(private)
        self.derive(self.share)
        return wire.RotatePrimed(
            request.key_id, request.junk, request.public, self.ack(), self.user
        )


def enroll(store, master_key, user):
    """
    Store C{user}'s profile as enrollment leaves it, at L{SOURCE} and
    L{NOW}, holding L{FIRST_KEY}.

    @return: the L{Device} that enrolled.
    """
    key_id = keyschedule.key_id(FIRST_KEY)
    store.open_window(replace(WINDOW, username=user))
    store.complete_enrollment(
        Profile(
            username=user,
            fingerprint_hash=FINGERPRINT,
            key_sealed=master_key.seal_key(user, key_id, FIRST_KEY),
            key_id=key_id,
            generation=0,
            enrolled_at=NOW,
            location=SOURCE,
            location_name="lab",
        )
    )
    return Device(user, FIRST_KEY)


class RotationMixin:
    """
    A L{Rotation} over the store of a store mixin (its calls, as
    C{self.calls}, made at once), a real master key, and a
    L{GroupCommitter} on a L{task.Clock}; C{alice} is enrolled with
    L{FIRST_KEY}, and C{self.device} is her client.  The rules' coroutines
    have finished when the helpers return (see L{tests.support.coroutines}).
    """

    def setUp(self):
        super().setUp()
        self.store = self.make_store()
        self.addCleanup(lambda: self.store.close())
        self.master_key = new_master_key(self)
        self.start_server()
        self.device = enroll(self.store, self.master_key, "alice")

    def start_server(self):
        """
        Build the rules on a clock of their own, as a server starts.
        """
        self.clock = task.Clock()
        self.clock.advance(NOW)
        committer = GroupCommitter(self.clock, self.store.commit_rotations)
        self.calls = LocalCalls(self.store)
        self.rotation = Rotation(
            self.calls,
            self.master_key,
            committer,
            AuditLog(self.store),
            new_private_key=self.new_private_key,
        )

    def new_private_key(self):
        """
        The rules' source of the server's X25519 keys: a fresh one each.
        """
        return X25519PrivateKey.generate()

    def restart_server(self):
        """
        A server crash: everything in flight (rotations begun, commits not
        yet run) is lost; the store and the master key remain.
        """
        self.store = self.reopen_store(self.store)
        self.start_server()

    def now(self):
        return self.clock.seconds()

    def begin(
        self, request, source=SOURCE, offline_step=None, attempt_nonce=None, **kwargs
    ):
        """
        @param offline_step: the offline time step of the reconnection
            this rotation follows, if any.
        @param attempt_nonce: the nonce of that reconnection, if any.
        @param kwargs: the other arguments of L{Rotation.begin}.
        @return: the L{PendingRotation} for C{request}.
        """
        return result_of(
            self,
            self.beginning(request, source, offline_step, attempt_nonce, **kwargs),
        )

    def beginning(
        self, request, source=SOURCE, offline_step=None, attempt_nonce=None, **kwargs
    ):
        """
        @return: the coroutine of L{Rotation.begin} for C{request}, as
            L{begin} runs it (for L{refusal}).
        """
        return self.rotation.begin(
            request.user,
            request.key_id,
            request.junk,
            request.public,
            source,
            self.now(),
            offline_step=offline_step,
            attempt_nonce=attempt_nonce,
            **kwargs,
        )

    def acknowledging(self, pending, sealed_ack, source=SOURCE, **kwargs):
        """
        Acknowledge C{pending} with C{sealed_ack}; the group commit has
        not run yet.

        @param kwargs: the other arguments of L{Rotation.acknowledge}.
        @return: the L{Deferred} of L{Rotation.acknowledge}.
        """
        return Deferred.fromCoroutine(
            self.rotation.acknowledge(
                pending, sealed_ack, source, self.now(), **kwargs
            )
        )

    def committed(self, pending, sealed_ack, source=SOURCE, **kwargs):
        """
        Acknowledge and run the group commit.

        @param kwargs: as for L{acknowledging}.
        @return: the rules' answer, the L{Committed}.
        """
        d = self.acknowledging(pending, sealed_ack, source, **kwargs)
        self.clock.advance(0)
        return self.successResultOf(d)

    def commit(self, pending, sealed_ack, source=SOURCE):
        """
        Acknowledge and run the group commit.

        @return: the sealed "done".
        """
        return self.committed(pending, sealed_ack, source).sealed

    def rotate(
        self, device=None, source=SOURCE, offline_step=None, attempt_nonce=None
    ):
        """
        One complete rotation of C{device} (by default C{self.device}),
        following the reconnection of C{offline_step} (with
        C{attempt_nonce}) if given.

        @return: the L{PendingRotation} it went through.
        """
        device = device or self.device
        pending = self.begin(device.request(), source, offline_step, attempt_nonce)
        done = self.commit(
            pending, device.acknowledge(pending.server_public, pending.ok), source
        )
        device.commit(done)
        return pending

    def acknowledge_noise(self, **kwargs):
        """
        Begin a rotation of C{self.device} from L{SOURCE} and acknowledge
        it with noise, which is refused; C{kwargs} go to
        L{Rotation.acknowledge}.
        """
        pending = self.begin(self.device.request())
        failure_of(
            self,
            self.rotation.acknowledge(
                pending, bytes(19), SOURCE, self.now(), **kwargs
            ),
            RotationRefused,
        )

    def refusal(self, call, *args):
        """
        The reason C{call(*args)}, a coroutine of the rules, is refused
        with.
        """
        return failure_of(self, call(*args), RotationRefused).value.reason

    def profile(self, user="alice"):
        return self.store.get_profile(user)

    def stored_key(self, user="alice"):
        """
        The current key of C{user}'s profile, opened with the master key.
        """
        profile = self.profile(user)
        return self.master_key.open_key(user, profile.key_id, profile.key_sealed)

    def events(self, event=None):
        return [
            (e.event, e.username, e.source, e.reason)
            for e in self.store.audit_events()
            if event is None or e.event == event
        ]

    def assert_agreed(self, device=None):
        """
        The server's current key is the one C{device} holds, at its
        generation.
        """
        device = device or self.device
        profile = self.profile(device.user)
        self.assertEqual(
            (profile.key_id, profile.generation, self.stored_key(device.user)),
            (keyschedule.key_id(device.key), device.generation, device.key),
        )
