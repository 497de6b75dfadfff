# -*- test-case-name: tests.rules.test_authenticator -*-
"""
"Authenticate this user at that place": the operation behind
C{suto-admin auth}.

It checks that the user has a usable hash, registers the pending request
with the rendezvous (which decides which connection answers it), and sends
the hellos.  The verdict arrives later through the request's Deferred.

As the TLS listeners' witness it also hears of the connections that ended
before they could answer (refused by the connection limits, or a failed
TLS handshake): a request from whose sources one came ends, if no device
answers in time, with that cause rather than a bare timeout.

The account's hash comes from the store's calls first (through the
hash source), which may answer after a round trip the reactor does not
wait for: L{Authenticator.authenticate} and L{Authenticator.has_account}
are coroutines, and whoever calls them (the admin API, the verification
API) wraps them once.
"""

from __future__ import annotations

from twisted.internet.defer import maybeDeferred
from twisted.logger import Logger, LogLevel
from zope.interface import implementer

from suto_server.core.throttle import unpaced
from suto_server.cred.interfaces import IPasswordHashSource
from suto_server.locations import WIDEST_PREFIX
from suto_server.net.discovery import HelloTarget
from suto_server.net.refusals import IListenerWitness
from suto_server.rules.rendezvous import Outcome, Rendezvous, Verdict
from suto_server.rules.windows import too_wide


class UnknownAccount(LookupError):
    """
    No configured source has a usable password hash for the user.
    """


class TargetTooWide(ValueError):
    """
    A target reaches a network wider than an enrollment window may be,
    and the operator did not ask for that.
    """


@implementer(IListenerWitness)
class Authenticator:
    """
    @param hello: anything with C{send_hello(user, target)}.
    """

    log = Logger()

    def __init__(
        self, rendezvous: Rendezvous, hello, source: IPasswordHashSource, paced=None
    ) -> None:
        self._rendezvous = rendezvous
        self._hello = hello
        self._source = source
        # Refused connections and failed handshakes come from the network:
        # one line per source and cause per interval, so no peer can make
        # the server write more.
        self._paced = unpaced if paced is None else paced

    async def authenticate(
        self,
        user: str,
        targets: tuple[HelloTarget, ...],
        timeout: float | None = None,
        wide: bool = False,
    ) -> Outcome:
        """
        Start authenticating C{user} at C{targets}.

        @param wide: accept networks wider than L{WIDEST_PREFIX}, which an
            enrollment window refuses too unless asked: a hello to a /8 is
            rarely meant.

        @return: the request's L{suto_server.rules.rendezvous.Outcome},
            once it ended.
        @raise UnknownAccount: no usable hash for C{user}.
        @raise suto_server.store.errors.StoreError: the store could not
            say; nothing is pending.
        @raise TargetTooWide: a target is too wide and C{wide} is false.
        @raise suto_server.rules.rendezvous.RequestConflict: another request is
            waiting for the same addresses.
        @raise OSError: a hello could not be sent; nothing stays pending.
            With other processes on the store the hello waits until they
            heard of the request, and one that cannot be sent then ends
            it as L{Verdict.ERROR} instead.
        """
        if not await self.has_account(user):
            raise UnknownAccount(f"no usable password hash for {user}")
        accept_from = [net for target in targets for net in target.accept_from]
        wide_networks = too_wide(accept_from)
        if wide_networks and not wide:
            raise TargetTooWide(
                f"{', '.join(map(str, wide_networks))} is wider than a target "
                f"may be (/{WIDEST_PREFIX[4]} for IPv4, /{WIDEST_PREFIX[6]} "
                f"for IPv6): name the device's own network, or ask for a wide "
                f"target (suto-admin auth --wide)"
            )
        request = self._rendezvous.open(user, accept_from, timeout)
        if request.announced is None:
            self._send_hellos(request, targets)
        else:
            # Other processes share the store: the hello goes once they
            # heard of the request, and one that fails then ends it.
            request.announced.addCallback(self._send_announced, request, targets)
        return await request.done

    def _send_hellos(self, request, targets) -> None:
        try:
            for target in targets:
                self._hello.send_hello(request.user, target)
        except BaseException:
            # Free the addresses at once; the caller sees why.
            self._rendezvous.finish(
                request, Verdict.ERROR, "the hello could not be sent"
            )
            raise

    def _send_announced(self, _, request, targets) -> None:
        if request.done.called:
            return
        try:
            self._send_hellos(request, targets)
        except OSError as error:
            self.log.warn(
                "the hello for {user} could not be sent: {error}",
                user=request.user,
                error=str(error),
            )

    async def has_account(self, user: str) -> bool:
        """
        Can C{user} be authenticated at all: has a configured source a
        usable password hash for them?

        @raise suto_server.store.errors.StoreError: the store could not
            say.
        """
        return (await maybeDeferred(self._source.hash_for, user)) is not None

    def refused(self, host) -> None:
        """
        The connection limits refused a connection from C{host}.
        """
        self._notice(
            host,
            Verdict.REFUSED_BY_LIMITS,
            f"a connection from {host} was refused by the connection limits "
            f"(its source is penalised for failed attempts, or has too many "
            f"connections)",
        )

    def handshake_failed(self, host, reason) -> None:
        """
        The TLS handshake of a connection from C{host} failed.
        """
        self._notice(
            host,
            Verdict.TLS_TRUST_FAILURE,
            f"a device at {host} connected but its TLS handshake failed "
            f"({reason}): does it trust the server's certificate?",
        )

    def _notice(self, host, verdict: Verdict, reason: str) -> None:
        # A peer that is not an IP address (a UNIX socket) answers nothing.
        if host is not None and self._rendezvous.noticed(host, verdict, reason):
            self._paced(
                self.log,
                LogLevel.warn,
                host,
                verdict.value,
                "an authentication waits for {source}: {cause}",
                verdict=verdict.value,
                cause=reason,
            )
