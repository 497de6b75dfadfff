# -*- test-case-name: tests.console.test_site -*-
"""
The console's pages that act: the enrollment windows (open, cancel), the
blacklist (unblock, after a confirmation) and the audit chain's
verification.

Each action calls the admin API's own operation
(L{suto_server.admin.operations}) with the signed-in operator, so it
goes through the same rules and leaves the same audit record as
C{suto-admin}; their errors become the console's 4xx pages.  Each page
that reads or changes the store is a coroutine, answered once the store
has (from its database thread, for a store across the network).
"""

from __future__ import annotations

from twisted.internet.defer import maybeDeferred

from suto_server.admin.operations import (
    cancel_window,
    open_window,
    unblock,
    verify_chain,
)
from suto_server.console import action_pages
from suto_server.console.guard import (
    ConsoleError,
    form_value,
    number_field,
    user_field,
)
from suto_server.console.views import Redirect


class Actions:
    """
    The acting pages.

    @param clock: the L{IReactorTime} an unblocking is timed by.
    @param desk: the L{WindowDesk}, or L{None} when the server does not
        enroll.
    @param reconnection: the blacklist's rules, or L{None}.
    @param reports: the L{Reports}, whose audit page shows a
        verification's result.
    @param audit: the L{AuditLog} whose chain is verified.
    """

    def __init__(self, clock, desk, reconnection, reports, audit) -> None:
        self._clock = clock
        self._desk = desk
        self._reconnection = reconnection
        self._reports = reports
        self._audit = audit

    def _enrolling(self):
        if self._desk is None:
            raise ConsoleError(
                404, "this server does not enroll (it has no master key)"
            )
        return self._desk

    def _blacklisting(self):
        if self._reconnection is None:
            raise ConsoleError(404, "this server keeps no blacklist")
        return self._reconnection

    async def windows(self, request, session, opened=None):
        desk = self._enrolling()
        return action_pages.windows(session, await maybeDeferred(desk.list), opened)

    async def open_window(self, request, session):
        desk = self._enrolling()
        timeout = number_field(
            request, "timeout", "'timeout' must be a whole number of seconds"
        )
        fields = {
            "user": form_value(request, "user", 64),
            "location": form_value(request, "location", 256),
            "replace": form_value(request, "replace", 3) == "yes",
            "wide": form_value(request, "wide", 3) == "yes",
        }
        if timeout is not None:
            fields["timeout"] = timeout
        opened = await open_window(desk, fields, session.operator)
        return await self.windows(request, session, opened)

    async def cancel_window(self, request, session):
        desk = self._enrolling()
        await cancel_window(desk, {"user": user_field(request)}, session.operator)
        return Redirect(b"/windows")

    async def blacklist(self, request, session, notice=None):
        reconnection = self._blacklisting()
        entries = await maybeDeferred(reconnection.blacklist_report)
        return action_pages.blacklist(entries, notice)

    def confirm_unblock(self, request, session):
        self._blacklisting()
        return action_pages.confirm_unblock(session, user_field(request))

    async def unblock(self, request, session):
        reconnection = self._blacklisting()
        done = await unblock(
            reconnection, self._clock, {"user": user_field(request)}, session.operator
        )
        return await self.blacklist(
            request,
            session,
            f"Lifted the blacklist entry of {done['user']} and removed its "
            f"profile: enroll the device again.",
        )

    def verify(self, request, session):
        return verify_chain(self._audit).addCallback(
            lambda verified: self._reports.audit(request, session, verified)
        )
