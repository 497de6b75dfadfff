# -*- test-case-name: tests.store.test_memory,tests.store.test_sqlite -*-
"""
What the store holds (accounts, enrollment windows, enrolled profiles and
their key rotations and moves, the audit log, the blacklist), and the
bounds of what it keeps.

The records are plain frozen dataclasses; L{suto_server.store.checks}
holds the checks every store runs before writing one.
"""

from dataclasses import dataclass, field

from zope.interface import implementer

from suto_server.store.interfaces import IUserRecord


@implementer(IUserRecord)
@dataclass(frozen=True)
class UserRecord:
    """
    One account as listed; it names the hash scheme but never carries the
    hash, so a listing can be shown or logged without leaking secrets.
    """

    username: str
    scheme: str
    created: float
    updated: float


#: Most networks one enrollment window may name.
MAX_NETWORKS = 256
#: Longest location name, event name and source address the store keeps.
MAX_NAME = 255
#: Longest audit reason the store keeps.
MAX_REASON = 16384
#: Most locations one audit event may name (a move names two).
MAX_LOCATIONS = 16
#: Most profiles one page of L{IProfileStore.locations} may name.
LOCATIONS_PAGE = 1000
#: Size of a hardware fingerprint hash (SHA-256).
FINGERPRINT_SIZE = 32
#: Largest sealed key the store keeps (a master-key seal of a 32-byte key
#: is 60 bytes; this only bounds the input).
MAX_SEALED_KEY = 1024
#: Latest POSIX time the store keeps: every int up to it is exactly a
#: float, so both stores give back the same value.  (NaN fails the
#: comparison and infinity is out of range.)
MAX_TIME = 2**53
#: How many retired key ids the store remembers per profile: enough to
#: recognise a copy of a device that fell a few rotations behind, few
#: enough that the history of a long-lived profile stays small.
RETIRED_KEY_HISTORY = 16


@dataclass(frozen=True)
class EnrollmentWindow:
    """
    IT's permission for one user to enroll one device, from one location,
    until a deadline, with a one-time password.  The password itself is
    never kept, only its hash, which C{repr} leaves out so a window can be
    logged.

    @ivar networks: the location's networks in canonical CIDR notation
        (as C{str(ipaddress.ip_network(...))} writes them).
    @ivar opened_at: POSIX time the window was opened.
    @ivar deadline: POSIX time after which it accepts nobody; absolute, so
        a restart does not extend it.
    @ivar replace: whether completing it may replace an existing profile.
    """

    username: str
    otp_hash: str = field(repr=False)
    networks: tuple[str, ...]
    location_name: str | None
    opened_at: float
    deadline: float
    attempts: int
    max_attempts: int
    replace: bool


@dataclass(frozen=True)
class Profile:
    """
    An enrolled device: what the server needs to recognise it and the keys
    it shares with it.  Keys are kept only sealed with the master key (see
    L{suto_server.masterkey}); C{repr} leaves out the fingerprint hash and
    the sealed keys.

    The fields after C{location_name} follow key rotation and have the
    values of a device that has just enrolled, so that enrollment need not
    name them.

    @ivar key_id: the id of the current key, the one the server rotates
        from.
    @ivar generation: how many rotations led to the current key (0 for
        the key made at enrollment).
    @ivar location: the source address the device enrolled from.
    @ivar location_name: the name of the window's location, if it had one.
    @ivar previous_key_sealed: the key the current one replaced, kept
        until the device shows it holds the current one (a device that
        crashed before committing the new key comes back with this one);
        L{None} when there is none.
    @ivar previous_key_id: the id of that key, or L{None} with it.
    @ivar current_confirmed: whether the device has shown it holds the
        current key (by enrolling with it or rotating from it).
    @ivar rotated_at: POSIX time the last rotation was committed, or
        L{None} if the profile never rotated.
    @ivar last_seen: POSIX time the device last used the profile; given
        as L{None}, the enrollment time.
    @ivar last_address: the address the device last used the profile
        from; given as L{None}, the enrollment location.
    @ivar rotation_failures: rotations in a row that failed on the
        device's side since the last committed one.
    """

    username: str
    fingerprint_hash: bytes = field(repr=False)
    key_sealed: bytes = field(repr=False)
    key_id: str
    generation: int
    enrolled_at: float
    location: str
    location_name: str | None
    previous_key_sealed: bytes | None = field(default=None, repr=False)
    previous_key_id: str | None = None
    current_confirmed: bool = True
    rotated_at: float | None = None
    last_seen: float | None = None
    last_address: str | None = None
    rotation_failures: int = 0

    def __post_init__(self):
        # A frozen dataclass sets its fields through object.__setattr__;
        # these two default to other fields, which a field default cannot.
        if self.last_seen is None:
            object.__setattr__(self, "last_seen", self.enrolled_at)
        if self.last_address is None:
            object.__setattr__(self, "last_address", self.location)

    @property
    def previous_held(self) -> bool:
        """
        May a legitimate device still hold the previous key?  Yes while
        the current one is unconfirmed: a device that missed the final
        acknowledgement comes back with it.
        """
        return self.previous_key_id is not None and not self.current_confirmed

    def may_hold(self, key_id: str) -> bool:
        """
        Is C{key_id} one a legitimate device of this profile may hold now:
        the current key's, or the previous one's while L{previous_held}?
        """
        return key_id == self.key_id or (
            self.previous_held and key_id == self.previous_key_id
        )


@dataclass(frozen=True)
class RotationCommit:
    """
    One rotation to commit: a compare-and-swap that makes C{new_key_id} a
    profile's current key, provided its current key is still
    C{expected_key_id}.  C{repr} leaves out the sealed key.

    @ivar expected_key_id: the id of the current key the new one was
        derived from.
    @ivar new_key_sealed: the new key, sealed with the master key.
    @ivar new_generation: the new key's generation, one more than the
        expected key's.
    @ivar now: POSIX time of the commit.
    @ivar address: the address the device rotated from.
    @ivar offline_step: for the rotation that ends a reconnection, the
        offline time step it reconnected with, which the profile may then
        never use again; L{None} for any other rotation.
    @ivar attempt_nonce: for the rotation that ends a reconnection with an
        attempt nonce, that nonce: the commit records it, and is not
        applied when the profile has recorded it already (a replayed
        reconnection never commits twice); L{None} otherwise.
    """

    username: str
    expected_key_id: str
    new_key_sealed: bytes = field(repr=False)
    new_key_id: str
    new_generation: int
    now: float
    address: str
    offline_step: int | None = None
    attempt_nonce: bytes | None = None


#: Size of a reconnection attempt's nonce.
ATTEMPT_NONCE_SIZE = 16


@dataclass(frozen=True)
class SpentOfflineStep:
    """
    The newest offline time step a profile reconnected with, and what its
    reconnections in that step committed (docs/PROTOCOL.md §10.2).

    @ivar step: the step; no older one is ever accepted again.
    @ivar key_id: the id of the key the newest rotation that spent it
        committed, or L{None} when it was spent before the store kept it.
        While that key is the profile's unconfirmed current key, its
        client may retry in the same step from the previous key.
    @ivar attempt_nonces: the attempt nonces of the reconnections in that
        step whose rotations committed; none of them is accepted again.
    """

    step: int
    key_id: str | None = None
    attempt_nonces: frozenset = frozenset()


@dataclass(frozen=True)
class BlacklistEntry:
    """
    A profile refused for good until an operator lifts the entry (and the
    device enrolls again).

    @ivar time: POSIX time it was blacklisted.
    @ivar reason: why, for people; never a secret.
    @ivar source: the address the offending connection came from.
    @ivar alert: the type of the alert it raised.
    """

    username: str
    time: float
    reason: str
    source: str | None
    alert: str


@dataclass(frozen=True)
class RotationStart:
    """
    What a plain rotation's start is checked against, read at once: the
    profile with its keys and both marks that refuse it.  One read instead
    of two, on every rotation: over PostgreSQL each read is a round trip
    and two thread hand-offs.

    @ivar profile: the L{Profile}, or L{None} when there is none.
    @ivar blacklisted: whether the profile has a blacklist entry (which
        outlives the profile).
    @ivar offline_since: when the profile was marked offline, or L{None}.
    """

    profile: Profile | None
    blacklisted: bool
    offline_since: float | None


@dataclass(frozen=True)
class AuditEvent:
    """
    One line of the audit log: what happened to whom, from where, and why.

    The log is a hash chain (see L{suto_server.store.chain}): the store
    sets C{previous_hash} and C{hash} when it appends an event, whatever
    the event carried, so that no caller can fork the chain.  They take
    no part in comparisons, so an event read back equals the one
    appended.

    @ivar event: a machine-readable name, e.g. C{"enrollment_failed"}.
    @ivar username: the user concerned, if any.
    @ivar source: the peer's address, if a peer was involved.
    @ivar reason: the detail, e.g. C{"wrong_location"}.
    @ivar locations: the places the event concerns, as operators name
        them (e.g. C{"10.2.3.17 (bldg2-f3-jack17)"}), possibly none.
    @ivar previous_hash: the hash of the event appended before this one
        (32 zero bytes for the first), or L{None} before it is stored.
    @ivar hash: this event's link in the chain, or L{None} before it is
        stored.
    """

    time: float
    event: str
    username: str | None
    source: str | None
    reason: str
    locations: tuple[str, ...] = ()
    previous_hash: bytes | None = field(default=None, compare=False)
    hash: bytes | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Move:
    """
    One move of an enrolled profile from one address to another, kept for
    its history after the profile itself is gone.

    @ivar time: POSIX time the move was accepted.
    @ivar old_location_name: the named location of C{old_address}, if
        any.
    @ivar new_location_name: the named location of C{new_address}, if
        any.
    """

    username: str
    time: float
    old_address: str
    new_address: str
    old_location_name: str | None
    new_location_name: str | None
