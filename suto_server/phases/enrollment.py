# -*- test-case-name: tests.phases.test_connection_enrollment -*-
"""
The enrollment's driver: a device enrolling through the window open for
its user runs L{EnrollmentConversation}; its one-time password response is
checked through the enrollment portal and its sealed key material
committed through the enrollment rules.
"""

from __future__ import annotations

from dataclasses import dataclass

from suto_server.core import schemes, wire
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

    def __init__(self, connection, rules: EnrollmentRules, user: str, window, make_rsalt):
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
    ) -> EnrollmentDriver | None:
        """
        Open the enrollment of C{user} through its window and send the
        first reply.

        @return: the driver, or L{None} when the rules refuse (the device
            is then told C{SUTO_AUTH_0} and the connection closed).
        """
        try:
            window = rules.enrollment.begin(
                user, connection.source, connection.clock.seconds()
            )
        except EnrollmentRefused:
            connection.send(wire.Auth(False))
            connection.close()
            return None
        driver = cls(connection, rules, user, window, make_rsalt)
        driver.perform(driver.machine.start())
        return driver

    def connection_lost(self) -> None:
        self.perform(self.machine.connection_lost())

    def _complete(self, action: Complete) -> None:
        now = self.connection.clock.seconds()
        try:
            key_id, confirmation = self._enrollment.complete(
                self._window, self.connection.source, action.sealed, now
            )
        except EnrollmentRefused as refusal:
            self.perform(self.machine.rejected(refusal.reason))
        except Exception:
            # The store could not commit (a full disk, say): nothing was
            # written, the window stays open, and the device is told to
            # try again rather than left with a dropped connection.
            self.log.failure("enrollment of {user} not stored", user=self.user)
            self.perform(
                self.machine.protocol_error(
                    wire.ProtocolError(wire.ERROR_BUSY, "internal error")
                )
            )
        else:
            self.perform(self.machine.completed(key_id, confirmation))

    def _fail(self, action: Fail) -> None:
        now = self.connection.clock.seconds()
        source = self.connection.source
        if action.counted:
            try:
                self._enrollment.fail(self.user, source, action.reason, now)
            except EnrollmentRefused:
                pass
        else:
            self._enrollment.abandoned(self.user, source, action.reason, now)
