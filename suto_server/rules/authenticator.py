"""
"Authenticate this user at that place": the operation behind
C{suto-admin auth}.

It checks that the user has a usable hash, registers the pending request
with the rendezvous (which decides which connection answers it), and sends
the hellos.  The verdict arrives later through the request's Deferred.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred

from suto_server.cred.interfaces import IPasswordHashSource
from suto_server.net.discovery import HelloTarget
from suto_server.rules.rendezvous import Rendezvous, Verdict


class UnknownAccount(LookupError):
    """
    No configured source has a usable password hash for the user.
    """


class Authenticator:
    """
    @param hello: anything with C{send_hello(user, target)}.
    """

    def __init__(
        self, rendezvous: Rendezvous, hello, source: IPasswordHashSource
    ) -> None:
        self._rendezvous = rendezvous
        self._hello = hello
        self._source = source

    def authenticate(
        self,
        user: str,
        targets: tuple[HelloTarget, ...],
        timeout: float | None = None,
    ) -> Deferred:
        """
        Start authenticating C{user} at C{targets}.

        @return: a L{Deferred} firing with a
            L{suto_server.rules.rendezvous.Outcome}.
        @raise UnknownAccount: no usable hash for C{user}.
        @raise suto_server.rules.rendezvous.RequestConflict: another request is
            waiting for the same addresses.
        @raise OSError: a hello could not be sent; nothing stays pending.
        """
        if self._source.hash_for(user) is None:
            raise UnknownAccount(f"no usable password hash for {user}")
        accept_from = [net for target in targets for net in target.accept_from]
        request = self._rendezvous.open(user, accept_from, timeout)
        try:
            for target in targets:
                self._hello.send_hello(user, target)
        except BaseException:
            # Free the addresses at once; the caller sees why.
            self._rendezvous.finish(
                request, Verdict.ERROR, "the hello could not be sent"
            )
            raise
        return request.done
