"""
What IT does with enrollment windows through the admin API: open one at a
location (announcing it with a hello), list them, cancel one.

This is the thin layer between JSON requests and the enrollment rules:
it resolves location names, reads the clock, and shapes answers for
C{suto-admin}.
"""

from __future__ import annotations


from suto_server.discovery import HelloTarget
from suto_server.enrollment import Enrollment, window_location
from suto_server.timestamps import iso_utc


def hello_targets(location, port: int) -> tuple[HelloTarget, ...]:
    """
    Where to announce a window: each single host of the location directly,
    each IPv4 subnet by its directed broadcast (IPv6 has none, so an IPv6
    subnet gets no hello; the device's operator runs the enroll command
    anyway).
    """
    targets = []
    for network in location.networks:
        if network.num_addresses == 1:
            targets.append(
                HelloTarget(str(network.network_address), port, (network,))
            )
        elif network.version == 4 and network.num_addresses >= 4:
            targets.append(
                HelloTarget(
                    str(network.broadcast_address), port, (network,), broadcast=True
                )
            )
    return tuple(targets)


class WindowDesk:
    """
    @param clock: an L{IReactorTime}; the only place time is read.
    @param hello: anything with C{send_hello(user, target)}.
    @param fingerprints: returns the SHA-256 fingerprints of the serving
        certificates, for the device to pin.
    """

    def __init__(
        self, enrollment: Enrollment, locations, clock, hello, hello_port, fingerprints
    ) -> None:
        self._enrollment = enrollment
        self._locations = locations
        self._clock = clock
        self._hello = hello
        self._hello_port = hello_port
        self._fingerprints = fingerprints

    def open(self, user, location_text, timeout, password=None, replace=False):
        """
        @return: a L{Deferred} firing with the answer for IT: the one-time
            password (shown once), the window and the certificate pins.
        @raise suto_server.locations.LocationError: unknown location.
        @raise suto_server.store.errors.ProfileExists: enrolled already.
        """
        location = self._locations.resolve(location_text)
        now = self._clock.seconds()
        d = self._enrollment.open_window(
            user, location, timeout, now, password=password, replace=replace
        )

        def announce(one_time_password):
            for target in hello_targets(location, self._hello_port):
                try:
                    self._hello.send_hello(user, target)
                except OSError:
                    # The window is open either way; the operator can run
                    # the enroll command on the device without the hello.
                    pass
            return {
                "user": user,
                "password": one_time_password,
                "location": location.describe(),
                "deadline": iso_utc(now + timeout),
                "fingerprints": self._fingerprints(),
            }

        return d.addCallback(announce)

    def list(self) -> list[dict]:
        now = self._clock.seconds()
        return [
            {
                "user": window.username,
                "location": window_location(window).describe(),
                "seconds_left": window.deadline - now,
                "attempts": window.attempts,
                "max_attempts": window.max_attempts,
                "replace": window.replace,
            }
            for window in self._enrollment.windows(now)
        ]

    def cancel(self, user: str) -> bool:
        return self._enrollment.cancel(user, self._clock.seconds())
