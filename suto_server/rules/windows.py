# -*- test-case-name: tests.rules.test_windows,tests.rules.test_windows_outage,tests.rules.test_windows_awaits -*-
"""
What IT does with enrollment windows through the admin API: open one at a
location (announcing it with hellos while it is open), list them, cancel
one.

This is the thin layer between JSON requests and the enrollment rules:
it resolves location names, reads the clock, and shapes answers for
C{suto-admin}.
"""

from __future__ import annotations

from collections.abc import Coroutine

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from suto_server.core.timestamps import iso_utc
from suto_server.locations import WIDEST_PREFIX, LocationError
from suto_server.net.discovery import HelloTarget
from suto_server.rules.enrollment import Enrollment, window_location
from suto_server.store.errors import StoreError

#: Seconds between two hellos announcing the same open window.  IT usually
#: opens the window first and then tells the person at the device the
#: password, so a device that starts listening after the window opened
#: still hears where the server is within this long.
ANNOUNCE_EVERY = 5.0


def too_wide(networks) -> tuple:
    """
    The one bound on how far a hello may reach, for an enrollment
    window's location and an authentication's targets alike.

    @return: those of C{networks} wider than L{WIDEST_PREFIX}.
    """
    return tuple(
        network
        for network in networks
        if network.prefixlen < WIDEST_PREFIX[network.version]
    )


def hello_targets(location, port: int) -> tuple[HelloTarget, ...]:
    """
    Where to announce a window: each single host of the location directly,
    each IPv4 subnet by its directed broadcast (IPv6 has none, so an IPv6
    subnet gets no hello; the device's operator runs the enroll command
    anyway).  A subnet wider than L{WIDEST_PREFIX} gets no hello either:
    a broadcast to a whole /8 is never wanted.
    """
    wide = too_wide(location.networks)
    targets = []
    for network in location.networks:
        if network.num_addresses == 1:
            targets.append(
                HelloTarget(str(network.network_address), port, (network,))
            )
        elif network.version == 4 and network.num_addresses >= 4 and (
            network not in wide
        ):
            targets.append(
                HelloTarget(
                    str(network.broadcast_address), port, (network,), broadcast=True
                )
            )
    return tuple(targets)


class WindowDesk(Service):
    """
    Opens, lists and cancels windows; while running, announces each open
    window every L{ANNOUNCE_EVERY} seconds until it closes (used,
    cancelled, exhausted or expired), and resumes the announcements of
    the windows a restart kept.

    @param clock: an L{IReactorTime}; the only place time is read.
    @param hello: anything with C{send_hello(user, target)}.
    @param fingerprints: returns the SHA-256 fingerprints of the serving
        certificates, for the device to pin.
    @param has_account: tells, awaited, whether a user can pass the
        classic challenge (L{Authenticator.has_account}); a window for a user who
        cannot is opened with a warning, since enrolling needs no account
        but is then most often a typo of the name.  L{None}: no check.
    """

    log = Logger()

    def __init__(
        self,
        enrollment: Enrollment,
        locations,
        clock,
        hello,
        hello_port,
        fingerprints,
        announce_every: float = ANNOUNCE_EVERY,
        has_account=None,
    ) -> None:
        self._enrollment = enrollment
        self._locations = locations
        self._clock = clock
        self._hello = hello
        self._hello_port = hello_port
        self._fingerprints = fingerprints
        self._announce_every = announce_every
        self._has_account = has_account
        # The next announcement of each announced window, by user.
        self._announcing: dict = {}

    def startService(self) -> None:
        super().startService()
        Deferred.fromCoroutine(self._resume())

    async def _resume(self) -> None:
        """
        Announce again the windows a restart kept.  A store that cannot
        answer now leaves them unannounced: the device's operator can
        still run the enroll command with C{--server}.
        """
        try:
            windows = await self._enrollment.windows(self._clock.seconds())
        except StoreError as error:
            self.log.warn(
                "could not read the open enrollment windows to announce "
                "them: {error}",
                error=str(error),
            )
            return
        for window in windows:
            self._announce(window.username, window_location(window), window.opened_at)

    def stopService(self):
        super().stopService()
        for pending in self._announcing.values():
            pending.cancel()
        self._announcing.clear()

    def open(
        self,
        user,
        location_text,
        timeout,
        password=None,
        replace=False,
        wide=False,
        operator=None,
    ):
        """
        @param wide: open the window even if its location has a network
            wider than L{WIDEST_PREFIX}; that network gets no hello.
        @param operator: who asks, named in the audit record.
        @return: a L{Deferred} firing with the answer for IT: the one-time
            password (shown once), the window, the certificate pins and
            the warnings IT should read.
        @raise suto_server.locations.LocationError: unknown location, or
            one too wide without C{wide}.
        @raise suto_server.store.errors.ProfileExists: enrolled already.
        """
        location = self._locations.resolve(location_text)
        wide_networks = ", ".join(
            str(network) for network in too_wide(location.networks)
        )
        if wide_networks and not wide:
            raise LocationError(
                f"{wide_networks} is wider than an enrollment window may be "
                f"(/{WIDEST_PREFIX[4]} for IPv4, /{WIDEST_PREFIX[6]} for IPv6): "
                f"name the device's own network, or ask for a wide window "
                f"(suto-admin enroll --wide), which sends that network no hello"
            )
        now = self._clock.seconds()
        if wide_networks:
            self.log.warn(
                "opening a wide enrollment window for {user} at {location}: "
                "no hello goes to {networks}",
                user=user,
                location=location.describe(),
                networks=wide_networks,
            )
        opening = self._enrollment.open_window(
            user,
            location,
            timeout,
            now,
            password=password,
            replace=replace,
            wide=bool(wide_networks),
            operator=operator,
        )
        return Deferred.fromCoroutine(
            self._opened(opening, user, location, now, timeout)
        )

    async def _opened(self, opening: Coroutine, user, location, now, timeout) -> dict:
        """
        Once the window is stored: announce it, and answer IT.
        """
        one_time_password = await opening
        warnings = await self._account_warnings(user)
        self._announce(user, location, now)
        return {
            "user": user,
            "password": one_time_password,
            "location": location.describe(),
            "deadline": iso_utc(now + timeout),
            "fingerprints": self._fingerprints(),
            "warnings": warnings,
        }

    async def _account_warnings(self, user: str) -> list[str]:
        """
        What IT should read about C{user}'s account: a window for a user
        who could not pass the classic challenge is most often a typo.
        """
        if self._has_account is None:
            return []
        try:
            has_account = await self._has_account(user)
        except StoreError as error:
            self.log.warn(
                "whether {user} has an account could not be read: {error}",
                user=user,
                error=str(error),
            )
            return [f"whether {user} has an account could not be checked: {error}"]
        if has_account:
            return []
        self.log.warn(
            "opening an enrollment window for {user}, who has no account "
            "with a usable password",
            user=user,
        )
        return [
            f"{user} has no account with a usable password on this "
            f"server: the device will enroll, but a classic "
            f"authentication of {user} will fail (is the name right? "
            f"suto-admin user add {user})"
        ]

    def _announce(self, user: str, location, opened_at: float) -> None:
        """
        Send the hellos for C{user}'s window, opened at C{opened_at}, and
        while running send them again after a while, as long as that same
        window is open.
        """
        for target in hello_targets(location, self._hello_port):
            try:
                self._hello.send_hello(user, target)
            except OSError as error:
                # The window is open either way; the operator can run the
                # enroll command on the device with --server.
                self.log.warn(
                    "could not send the hello for {user} to {address}:{port}: "
                    "{error}",
                    user=user,
                    address=target.address,
                    port=target.port,
                    error=str(error),
                )
        previous = self._announcing.pop(user, None)
        if previous is not None and previous.active():
            previous.cancel()
        if self.running:
            self._announcing[user] = self._clock.callLater(
                self._announce_every, self._again, user, location, opened_at
            )

    def _again(self, user: str, location, opened_at: float) -> None:
        del self._announcing[user]
        Deferred.fromCoroutine(self._announce_if_open(user, location, opened_at))

    async def _announce_if_open(self, user: str, location, opened_at: float) -> None:
        try:
            still_open = await self._enrollment.is_open(
                user, opened_at, self._clock.seconds()
            )
        except StoreError as error:
            # Whether the window is open is not known until the store is
            # back: the hellos go on meanwhile (one too many is harmless)
            # and the next asks again.
            self.log.warn(
                "could not read the enrollment window of {user}: {error}",
                user=user,
                error=str(error),
            )
            still_open = True
        if still_open:
            self._announce(user, location, opened_at)

    async def list(self) -> list[dict]:
        now = self._clock.seconds()
        windows = await self._enrollment.windows(now)
        return [
            {
                "user": window.username,
                "location": window_location(window).describe(),
                "seconds_left": window.deadline - now,
                "attempts": window.attempts,
                "max_attempts": window.max_attempts,
                "replace": window.replace,
            }
            for window in windows
        ]

    async def cancel(self, user: str, operator: str = "IT") -> bool:
        return await self._enrollment.cancel(user, self._clock.seconds(), operator)
