# -*- test-case-name: tests.phases.test_driver,tests.phases.test_rotation_awaits -*-
"""
What every phase's driver shares: carrying out its machine's actions.

A driver owns one phase of one connection: it feeds the machine what the
connection decoded, and carries out the actions the machine returns
against the rules (and the connection, for writing and closing).  Each
driver names its actions in a table from action class to method, so one
dictionary lookup replaces a chain of C{isinstance} tests, and an action
a driver does not know is a C{KeyError} at once rather than a silent
drop.

The connection a driver works on provides C{send(message)}, C{close()},
C{setTimeout(seconds)}, C{clock}, C{source} (the peer's address),
C{ticket} (the connection gate's), C{lost} (the peer went away),
C{ended} (the connection is closing or gone) and
C{undecided(log, failure, what, **fields)} (logs a decision the rules
could not make).

A step that awaits the rules (which await the store) is a coroutine the
driver starts once, with L{Driver.run} (L{suto_server.phases.steps}
drives it, with no L{Deferred} of its own): while it waits the machine
sits in a state that asks nothing of the peer, and a message arriving
then is handled by the machine's table as any message arriving before
its reply.  A step that fails answers C{SUTO_ERROR_BUSY} through the
machine's C{unavailable}, logged by the connection's C{undecided}: a
store that did not answer (L{StoreError}) in a warning paced across the
listener's connections, anything else with the traceback.  A step whose
answer has gone out already (recording what a committed rotation
proved, counting a failed enrollment) is started with
L{Driver.run_logged}: its failure is only logged.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import ClassVar

from twisted.cred.error import UnauthorizedLogin
from twisted.logger import Logger

from suto_server.core.machine import Close, Send
from suto_server.cred.credentials import SaltedChallenge
from suto_server.cred.hashpool import HashPoolBusy
from suto_server.cred.realm import IAuthenticatedUser
from suto_server.machines.classic import Verify
from suto_server.phases.steps import run_step
from suto_server.store.errors import StoreError


class Driver:
    """
    The base of the phases' drivers.

    @cvar ACTIONS: the methods (by name) that carry out each action class
        the machine returns.
    @ivar machine: the phase's machine.
    @ivar user: the user (or profile) this phase is for.
    """

    # One driver lives as long as its connection, and a fleet keeps
    # thousands of rotation connections open: slots keep each driver small.
    __slots__ = ("connection", "machine", "user")

    log = Logger()

    ACTIONS: ClassVar[dict[type, str]] = {Send: "_send", Close: "_close"}

    def __init__(self, connection, machine, user: str | None) -> None:
        self.connection = connection
        self.machine = machine
        self.user = user

    def receive(self, message) -> None:
        self.perform(self.machine.receive(message))

    def protocol_error(self, error) -> None:
        self.perform(self.machine.protocol_error(error))

    def connection_lost(self) -> None:
        """The peer went away; by default the phase has nothing to undo."""

    def perform(self, actions: list) -> None:
        for action in actions:
            getattr(self, self.ACTIONS[type(action)])(action)

    def run(self, step: Coroutine, doing: str) -> None:
        """
        Start C{step}, a coroutine that carries out one action against the
        rules; should it fail, the peer gets C{SUTO_ERROR_BUSY} (when it is
        still there) and the failure is logged as L{logged} says.

        @param doing: what C{step} does, for the log ("beginning a
            rotation").
        """
        run_step(step, self._step_failed, doing)

    def run_logged(self, step: Coroutine, doing: str) -> None:
        """
        Start C{step}, whose failure is only logged as L{logged} says: the
        peer has had its answer.
        """
        run_step(step, self.logged, doing)

    def _step_failed(self, failure, doing: str) -> None:
        reason = self.logged(failure, doing)
        if not self.connection.lost:
            self.perform(self.machine.unavailable(reason))

    def logged(self, failure, doing: str) -> str:
        """
        Log C{failure} of C{doing}: a store that did not answer is a
        condition of the deployment (PostgreSQL away, a stopping server),
        one warning line naming the user and the error; anything else is
        a fault, logged with its traceback.

        @return: the reason the peer's C{SUTO_ERROR_BUSY} gives.
        """
        self.connection.undecided(
            self.log, failure, "{doing} for {user}", doing=doing, user=self.user
        )
        if failure.check(StoreError):
            return "the store did not answer"
        return "internal error"

    def _send(self, action: Send) -> None:
        self.connection.send(action.message)

    def _close(self, action: Close) -> None:
        self.connection.close()


class VerifyingDriver(Driver):
    """
    A driver whose machine asks for a response to be checked (L{Verify})
    through a cred portal, and takes the answer through C{verified} and
    C{unavailable}.

    @ivar portal: the portal that checks this phase's responses.
    """

    __slots__ = ("portal",)

    ACTIONS = {**Driver.ACTIONS, Verify: "_verify"}

    def __init__(self, connection, machine, user: str, portal) -> None:
        super().__init__(connection, machine, user)
        self.portal = portal

    def _verify(self, action: Verify) -> None:
        # While the portal works the connection stays lockstep-quiet; the
        # exchange timeout keeps running so a stuck check still ends.
        credentials = SaltedChallenge(self.user, action.rsalt, action.response)
        d = self.portal.login(credentials, None, IAuthenticatedUser)
        d.addCallbacks(self._login_succeeded, self._login_failed)

    def _login_succeeded(self, result) -> None:
        if not self.connection.lost:
            self.perform(self.machine.verified(True))

    def _login_failed(self, failure) -> None:
        if self.connection.lost:
            return
        if failure.check(UnauthorizedLogin):
            self.perform(self.machine.verified(False))
        elif failure.check(HashPoolBusy):
            self.perform(self.machine.unavailable("hash pool saturated"))
        elif failure.check(StoreError):
            # The hash source is the store, which could not answer.
            self.connection.undecided(
                self.log, failure, "checking the response for {user}", user=self.user
            )
            self.perform(self.machine.unavailable("the store could not answer"))
        else:
            self.log.failure(
                "checking the response for {user} failed",
                failure,
                user=self.user,
            )
            self.perform(self.machine.unavailable("internal error"))
