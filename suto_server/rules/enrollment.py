# -*- test-case-name: tests.rules.test_enrollment,tests.phases.test_enrollment_off_reactor -*-
"""
Enrollment rules: IT opens a window, a device at the right place with the
right one-time password closes it with a first key.

A window names one user, the location (networks) the device must connect
from, a deadline, and the sha512-crypt hash of a one-time password; the
password itself is shown to IT once and never stored.  Every refusal is
recorded in the audit log with its reason and, except for a missing
window, counts as a failed attempt; after C{max_attempts} the window
closes.  Success writes the profile (fingerprint hash, first key sealed
with the master key) and removes the window in one transaction, so a
window is used at most once.

A refusal's C{enrollment_failed} alert is C{unproven}: the peer proved
nothing (a right password ends in an enrollment, not a refusal), and any
peer can probe, so the audit log gathers those alerts per source.  The
window closing after the last attempt (C{enrollment_window_exhausted}) is
a change of state and goes out at once.

Every method takes C{now} (POSIX seconds) instead of reading a clock.

The steps of a device's enrollment (L{Enrollment.begin},
L{Enrollment.fail}, L{Enrollment.complete}, and the window's hash the
portal checks) and IT's operations on windows (open, list, cancel, and
whether a window announced is still open) are coroutines over the store's calls
(L{suto_server.store.calls}): on PostgreSQL each read or write is a round
trip the reactor does not wait for.  They keep nothing in memory between
two awaits: the window is read again where a decision needs it, and the
attempt counter is the store's, so the bound holds whichever process the
device reaches.  A L{suto_server.store.errors.StoreError} goes up to the
driver, which answers busy, or to the operator's request, which
answers that the store is unavailable.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets

from twisted.internet.defer import Deferred
from twisted.logger import Logger
from zope.interface import implementer

from suto_server.audit.log import AuditLog
from suto_server.core import keyschedule, schemes
from suto_server.cred.interfaces import IPasswordHashSource
from suto_server.locations import Location
from suto_server.store.calls import LocalCalls
from suto_server.store.errors import ProfileExists, UnknownWindow
from suto_server.store.records import EnrollmentWindow, Profile

#: Characters of generated one-time passwords: no look-alikes (0/O, 1/l/I).
PASSWORD_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
#: Four groups of five: about 99 bits, easy to read out over the phone.
PASSWORD_GROUPS = 4
PASSWORD_GROUP_LENGTH = 5


DEFAULT_MAX_ATTEMPTS = 5


def new_password() -> str:
    """
    A fresh one-time password, e.g. C{k7m2p-...}.
    """
    return "-".join(
        "".join(
            secrets.choice(PASSWORD_ALPHABET) for _ in range(PASSWORD_GROUP_LENGTH)
        )
        for _ in range(PASSWORD_GROUPS)
    )


class EnrollmentRefused(Exception):
    """
    The enrollment cannot go on; C{reason} is the audit code
    (C{no_window}, C{expired}, C{wrong_location}, C{wrong_password},
    C{bad_seal}).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def window_location(window: EnrollmentWindow) -> Location:
    return Location(
        tuple(ipaddress.ip_network(net) for net in window.networks),
        window.location_name,
    )


def _where(window: EnrollmentWindow | None) -> tuple[str, ...]:
    """
    The locations an event about C{window} concerns: the window's, or
    none when there is no window.
    """
    return () if window is None else (window_location(window).describe(),)


@implementer(IPasswordHashSource)
class WindowHashSource:
    """
    The one-time password hashes of the open windows, as a hash source, so
    the enrollment challenge is checked by the same cred checker as the
    classic one.

    @param calls: the store's calls (L{suto_server.store.calls.IStoreCalls}).
    """

    def __init__(self, calls) -> None:
        self._calls = calls

    def hash_for(self, username) -> Deferred:
        """
        @return: a L{Deferred} firing with the window's hash, or L{None}
            when C{username} has no open window.
        """
        return self._calls.get_window(username).addCallback(
            lambda window: None if window is None else window.otp_hash
        )


class Enrollment:
    """
    @param store: an L{suto_server.store.interfaces.IStore}.
    @param master_key: seals keys at rest (L{suto_server.masterkey.MasterKey}).
    @param pool: computes the one-time password's hash off the reactor.
    @param audit: the L{AuditLog} events and alerts go to; one over
        C{store} with the structured log as its only alert sink unless
        given.
    @param calls: the store's calls the device's steps await
        (L{suto_server.store.calls.IStoreCalls}); made on C{store} at once
        unless given.
    """

    log = Logger()

    def __init__(
        self,
        store,
        master_key,
        pool,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        audit: AuditLog | None = None,
        calls=None,
    ) -> None:
        self._calls = LocalCalls(store) if calls is None else calls
        self._master_key = master_key
        self._pool = pool
        self.max_attempts = max_attempts
        self._audit_log = AuditLog(store) if audit is None else audit

    async def open_window(
        self,
        user: str,
        location: Location,
        timeout: float,
        now: float,
        password: str | None = None,
        replace: bool = False,
        wide: bool = False,
        operator: str | None = None,
    ) -> str:
        """
        Open (or reopen, with a new password) the window for C{user}.

        @param wide: IT asked for a location wider than a window normally
            covers; the audit record says so.
        @param operator: who opened it (the admin socket, or the console's
            signed-in operator), named in the audit record.

        @return: the one-time password, once its hash is stored.
        @raise ProfileExists: C{user} is enrolled and C{replace} is false,
            or C{user} is blacklisted.
        @raise suto_server.store.errors.StoreError: the store could not
            answer; no window was opened.
        """
        if await self._calls.blacklist_entry(user) is not None:
            raise ProfileExists(
                f"{user} is blacklisted; lift it with 'suto-admin unblock "
                f"{user}' first, which removes the profile"
            )
        if await self._calls.get_profile(user) is not None and not replace:
            raise ProfileExists(
                f"{user} is already enrolled; re-enroll with "
                f"suto-admin enroll --replace"
            )
        password = password or new_password()
        otp_hash = await self._pool.crypt(password, schemes.new_setting())
        await self._calls.open_window(
            EnrollmentWindow(
                username=user,
                otp_hash=otp_hash,
                networks=tuple(str(net) for net in location.networks),
                location_name=location.name,
                opened_at=now,
                deadline=now + timeout,
                attempts=0,
                max_attempts=self.max_attempts,
                replace=replace,
            )
        )
        self._audit(
            now,
            "enrollment_window_opened",
            user,
            None,
            f"at {location.describe()} for {timeout:g}s"
            + (", a wide location on request" if wide else "")
            + (", replacing the profile" if replace else "")
            + (f", by {operator}" if operator else ""),
            (location.describe(),),
        )
        return password

    async def windows(self, now: float) -> list:
        """
        The open windows; any that expired are closed (and audited) first.
        """
        current = []
        for window in await self._calls.list_windows():
            if now >= window.deadline:
                await self._calls.close_window(window.username)
                self._audit(
                    now,
                    "enrollment_window_expired",
                    window.username,
                    None,
                    "deadline passed with no enrollment",
                    _where(window),
                )
            else:
                current.append(window)
        return current

    async def is_open(self, user: str, opened_at: float, now: float) -> bool:
        """
        Whether the window C{user} had opened at C{opened_at} is still
        open: not used, cancelled, exhausted, replaced by another or past
        its deadline.
        """
        window = await self._calls.get_window(user)
        return (
            window is not None
            and window.opened_at == opened_at
            and now < window.deadline
        )

    async def cancel(self, user: str, now: float, operator: str = "IT") -> bool:
        """
        Close C{user}'s window, if any; the audit record names C{operator}.
        """
        closed = await self._calls.close_window(user)
        if closed:
            self._audit(
                now, "enrollment_window_cancelled", user, None, f"by {operator}"
            )
        return closed

    async def begin(self, user: str, source: str, now: float) -> EnrollmentWindow:
        """
        A device at C{source} asks to enroll C{user}.

        @return: the window it may now prove the password for.
        @raise EnrollmentRefused: no window, expired, or wrong location.
        @raise suto_server.store.errors.StoreError: the store could not
            answer; no attempt was counted.
        """
        window = await self._calls.get_window(user)
        if window is None:
            self._audit(now, "enrollment_failed", user, source, "no_window")
            raise EnrollmentRefused("no_window")
        if now >= window.deadline:
            await self._expire(window, source, now)
        if not window_location(window).contains(source):
            await self._count(user, window, source, "wrong_location", now)
        return window

    async def fail(self, user: str, source: str, reason: str, now: float) -> None:
        """
        Count a failed attempt on C{user}'s window, closing it after the
        last allowed one.

        @raise EnrollmentRefused: always, with C{reason}, once counted.
        @raise suto_server.store.errors.StoreError: the store could not
            answer.
        """
        # Read again: the window may have been reopened or closed since
        # the device began, and its limit is the one it was opened with.
        window = await self._calls.get_window(user)
        await self._count(user, window, source, reason, now)

    async def _count(
        self,
        user: str,
        window: EnrollmentWindow | None,
        source: str,
        reason: str,
        now: float,
    ) -> None:
        """
        Count a failed attempt on C{user}'s window, C{window} as the store
        held it when last read (L{None}: gone), closing it after the last
        allowed one.

        @raise EnrollmentRefused: always, with C{reason}.
        """
        self._audit(now, "enrollment_failed", user, source, reason, _where(window))
        if window is None:
            raise EnrollmentRefused(reason)
        try:
            # The store's counter: one per window across every process.
            attempts = await self._calls.record_failed_attempt(user)
        except UnknownWindow:
            raise EnrollmentRefused(reason) from None
        # The limit the window was opened with stands, even if the daemon
        # restarted with another one since.
        if attempts >= window.max_attempts:
            await self._calls.close_window(user)
            self._audit(
                now,
                "enrollment_window_exhausted",
                user,
                source,
                f"{attempts} failed attempts",
                _where(window),
            )
        raise EnrollmentRefused(reason)

    async def _expire(self, window: EnrollmentWindow, source: str, now: float) -> None:
        """
        The device came after C{window}'s deadline: close it.

        @raise EnrollmentRefused: always, C{expired}.
        """
        await self._calls.close_window(window.username)
        self._audit(
            now, "enrollment_failed", window.username, source, "expired", _where(window)
        )
        raise EnrollmentRefused("expired")

    async def complete(
        self, window: EnrollmentWindow, source: str, sealed: bytes, now: float
    ) -> tuple[str, bytes]:
        """
        The device proved the password and sent its sealed fingerprint hash
        and random data: derive the first key and commit the profile.

        @return: the key id and the confirmation sealed under the new key.
        @raise EnrollmentRefused: the data does not open, or the window
            expired or went away meanwhile.
        @raise suto_server.store.errors.StoreError: the store could not
            answer; no profile was written.
        """
        user = window.username
        current = await self._calls.get_window(user)
        if current is None or not hmac.compare_digest(
            current.otp_hash, window.otp_hash
        ):
            # IT cancelled or reopened the window (new password) meanwhile.
            self._audit(now, "enrollment_failed", user, source, "no_window")
            raise EnrollmentRefused("no_window")
        secret = keyschedule.password_secret(window.otp_hash, user)
        try:
            plaintext = keyschedule.open_sealed(
                secret,
                sealed,
                profile=user,
                purpose=keyschedule.ENROLL_DATA_PURPOSE,
                direction=keyschedule.Direction.CLIENT_TO_SERVER,
                counter=0,
            )
        except keyschedule.SealError:
            await self._count(user, current, source, "bad_seal", now)
        if len(plaintext) != keyschedule.FINGERPRINT_SIZE + keyschedule.RANDOM_SIZE:
            await self._count(user, current, source, "bad_seal", now)
        if now >= window.deadline:
            await self._expire(window, source, now)
        fingerprint_hash = plaintext[: keyschedule.FINGERPRINT_SIZE]
        random_data = plaintext[keyschedule.FINGERPRINT_SIZE :]
        key = keyschedule.first_key(random_data, fingerprint_hash, secret, user)
        key_id = keyschedule.key_id(key)
        profile = Profile(
            username=user,
            fingerprint_hash=fingerprint_hash,
            key_sealed=self._master_key.seal_key(user, key_id, key),
            key_id=key_id,
            generation=0,
            enrolled_at=now,
            location=source,
            location_name=window.location_name,
        )
        try:
            # The window of the password the device proved, still: IT may
            # have reopened it with a new password since it was read.
            await self._calls.complete_enrollment(profile, otp_hash=window.otp_hash)
        except UnknownWindow:
            self._audit(now, "enrollment_failed", user, source, "no_window")
            raise EnrollmentRefused("no_window") from None
        self._audit(
            now, "enrolled", user, source, f"key id {key_id}", _where(window)
        )
        confirmation = keyschedule.seal(
            key,
            key_id.encode("ascii"),
            profile=user,
            purpose=keyschedule.ENROLL_CONFIRM_PURPOSE,
            direction=keyschedule.Direction.SERVER_TO_CLIENT,
            counter=0,
        )
        return key_id, confirmation

    def abandoned(self, user: str, source: str, reason: str, now: float) -> None:
        """
        The device went away or broke the protocol mid-enrollment: record
        it, without counting an attempt (a password was never refused).
        """
        self._audit(now, "enrollment_abandoned", user, source, reason)

    def _audit(self, now, event, user, source, reason, locations=()) -> None:
        # Every refusal is unproven; see the module's docstring.
        self._audit_log.record(
            now,
            event,
            user,
            source,
            reason,
            locations,
            unproven=event == "enrollment_failed",
        )
        self.log.info(
            "{event} {user} from {source}: {reason}",
            event=event,
            user=user,
            source=source or "-",
            reason=reason,
        )
