# -*- test-case-name: tests.phases.test_connection_enrollment,tests.phases.test_enrollment_off_reactor -*-
"""
The enrollment's driver: a device enrolling through the window open for
its user runs L{EnrollmentConversation}; its one-time password response is
checked through the enrollment portal and its sealed key material
committed through the enrollment rules.

The rules' steps await the store (L{suto_server.rules.enrollment}); the
driver wraps each once.  A store that cannot answer gets the device
C{SUTO_ERROR_BUSY}, never a half-done enrollment, and one warning line.
While a step is awaited the machine waits in the state that asked for
it, so a message arriving meanwhile is a pipelining error as it is
during the portal's check; the answer of a step whose connection ended
meanwhile goes nowhere.

The commit is the one step a timeout must not cut short: once it has
begun the store may take it whatever the server then tells the device,
and a device timed out while its profile lands holds no confirmed key
(it never got C{SUTO_ENROLLED_}) while its window is used up.  So while
the data is opened and committed the connection's timeout is the
commit's bound (L{timing.commit_wait}), above the store's own bounds,
and the device hears C{SUTO_ENROLLED_} or C{SUTO_ERROR_BUSY} when the
store answers (docs/PROTOCOL.md §8.2).  A commit that lands after the
connection ended (the device went away, or the bound passed) leaves a
profile whose device holds no key, as when a device dies after the
commit: the server says so in a warning, for IT to re-enroll it.
"""

from __future__ import annotations

from dataclasses import dataclass

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from suto_server.core import schemes, timing, wire
from suto_server.machines.enrollment import Complete, EnrollmentConversation, Fail
from suto_server.phases.driver import VerifyingDriver
from suto_server.rules.enrollment import Enrollment, EnrollmentRefused


@dataclass(frozen=True)
class EnrollmentRules:
    """
    What an enrollment needs, on a listener that enrolls.

    @ivar enrollment: the enrollment rules.
    @ivar portal: checks one-time password responses.
    """

    enrollment: Enrollment
    portal: object


class EnrollmentDriver(VerifyingDriver):
    """
    Carries out L{EnrollmentConversation}'s actions for the window C{window}.
    """

    __slots__ = ("_enrollment", "_window")

    ACTIONS = {**VerifyingDriver.ACTIONS, Complete: "_complete", Fail: "_fail"}

    def __init__(
        self, connection, rules: EnrollmentRules, user: str, window, make_rsalt
    ):
        super().__init__(
            connection,
            EnrollmentConversation(schemes.salt_of(window.otp_hash), make_rsalt),
            user,
            rules.portal,
        )
        self._enrollment = rules.enrollment
        self._window = window

    @classmethod
    def start(
        cls, connection, rules: EnrollmentRules, user: str, make_rsalt
    ) -> Deferred:
        """
        Open the enrollment of C{user} through its window and send the
        first reply.

        @return: a L{Deferred} firing with the driver, or with L{None} when
            the rules refuse (the device is then told C{SUTO_AUTH_0} and
            the connection closed), the store could not answer (told
            C{SUTO_ERROR_BUSY}), or the connection ended meanwhile.
        """
        return Deferred.fromCoroutine(cls._begin(connection, rules, user, make_rsalt))

    @classmethod
    async def _begin(cls, connection, rules, user, make_rsalt):
        try:
            window = await rules.enrollment.begin(
                user, connection.source, connection.clock.seconds()
            )
        except EnrollmentRefused:
            if not connection.ended:
                connection.send(wire.Auth(False))
                connection.close()
            return None
        except Exception:
            connection.undecided(
                cls.log, Failure(), "opening the enrollment of {user}", user=user
            )
            if not connection.ended:
                connection.refuse(wire.ERROR_BUSY)
            return None
        if connection.ended:
            return None
        driver = cls(connection, rules, user, window, make_rsalt)
        driver.perform(driver.machine.start())
        return driver

    def connection_lost(self) -> None:
        self.perform(self.machine.connection_lost())

    def _complete(self, action: Complete) -> None:
        # A store that could not commit (unreachable, a full disk) wrote
        # nothing, the window stays open, and run tells the device to try
        # again rather than leaving it with a dropped connection.  The
        # device is not timed out while the store decides (see above);
        # every answer closes the connection, so nothing sets it back.
        connection = self.connection
        connection.setTimeout(timing.commit_wait(connection.exchange_timeout))
        self.run(self._completing(action.sealed), "storing the enrollment")

    async def _completing(self, sealed: bytes) -> None:
        now = self.connection.clock.seconds()
        try:
            key_id, confirmation = await self._enrollment.complete(
                self._window, self.connection.source, sealed, now
            )
        except EnrollmentRefused as refusal:
            answer = self.machine.rejected(refusal.reason)
        else:
            if self.connection.ended:
                # Stored, yet nobody hears it: the device holds no key.
                self.log.warn(
                    "enrolled {user} after the device's connection ended: it "
                    "holds no key; re-enroll it with --replace",
                    user=self.user,
                )
                return
            answer = self.machine.completed(key_id, confirmation)
        if not self.connection.ended:
            self.perform(answer)

    def _fail(self, action: Fail) -> None:
        now = self.connection.clock.seconds()
        source = self.connection.source
        if action.counted:
            self.run_logged(
                self._counting(source, action.reason, now),
                "counting a failed enrollment",
            )
        else:
            self._enrollment.abandoned(self.user, source, action.reason, now)

    async def _counting(self, source: str, reason: str, now: float) -> None:
        # The device has its answer already; only the count is left, and
        # a store that could not count it is only logged (see _fail).
        try:
            await self._enrollment.fail(self.user, source, reason, now)
        except EnrollmentRefused:
            pass
