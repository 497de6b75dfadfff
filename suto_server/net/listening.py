# -*- test-case-name: tests.net.test_listening -*-
"""
The daemon's listeners: the endpoint each listener option's full
description (L{suto_server.net.descriptions}) parses to, and a listener
as a service.

A server that cannot serve must not look healthy.  So every endpoint
string is parsed when the server is built, and refused with one line
naming its option when it is not one the option takes; and a listener
listens in C{privilegedStartService}, which twistd runs before anything
is served, and stops the process with one line when it cannot.
"""

from __future__ import annotations

import os
import re
import stat

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import serverFromString
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IStreamServerEndpoint
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from suto_server.core.logformat import address_text
from suto_server.net.descriptions import ListenerOptionError, endpoint_arguments


def _endpoint_type(description: str) -> str:
    """
    The endpoint type an endpoint string names: what precedes its first
    colon.
    """
    return description.split(":", 1)[0]


def option_endpoint(
    reactor, option: str, description: str, types, parse, full=None
) -> OptionEndpoint:
    """
    Parse the endpoint string given to a listener option.

    @param types: the endpoint types the option takes.
    @param parse: builds the endpoint from a string and the reactor
        (L{serverFromString} or L{suto_server.net.endpoint.server_endpoint}).
    @param full: what to parse, when it says more than the operator's
        C{description} (a generated certificate's files).
    @raise ListenerOptionError: the string has another type, or does not
        parse; the message names the option and the string.
    """
    kind = _endpoint_type(description)
    if kind not in types:
        raise ListenerOptionError(
            option,
            description,
            f"{kind}: endpoints are not served here; use "
            + ", ".join(f"{each}:" for each in types),
        )
    try:
        endpoint = parse(reactor, description if full is None else full)
    except (TypeError, ValueError) as error:
        raise ListenerOptionError(option, description, _parse_reason(error)) from None
    return OptionEndpoint(option, description, endpoint)


def _parse_reason(error: Exception) -> str:
    """
    What was wrong with an endpoint string, without the name of the
    Twisted function that found it (C{_parseTCP() got an unexpected
    keyword argument 'interfce'}).
    """
    return re.sub(r"^\w+\(\) ", "", str(error))


#: The umask the admin socket is bound under: Twisted binds a UNIX
#: socket, then gives it its mode, and meanwhile it would have the
#: process's umask permissions.
ADMIN_UMASK = 0o077


def admin_endpoint(
    reactor, option: str, description: str, data: str | None = None
) -> OptionEndpoint:
    """
    Parse the admin API's endpoint string.  The API enrolls, authenticates
    and opens windows with no login of its own: whoever can connect to it
    is an operator.  So it is served only on a UNIX socket whose mode
    gives other users nothing (C{mode=600}, or C{660} for a group of
    operators), in a folder no one else can write to (where they could
    put their own socket in its place), bound under L{ADMIN_UMASK}.

    @param option: the option to name in an error (C{--admin}, or what
        chose the default socket).
    @param data: the data folder, which the daemon keeps at 0700 itself
        (and may not have made yet): a socket in it is not checked there.
    @raise ListenerOptionError: the string describes anything else.
    """
    if _endpoint_type(description) != "unix":
        raise ListenerOptionError(
            option,
            description,
            "the admin API has no login of its own, so it is served only on "
            "a UNIX socket: unix:PATH:mode=600",
        )
    endpoint = option_endpoint(
        reactor, option, description, ("unix",), serverFromString
    )
    arguments = endpoint_arguments(description)
    modes = [each[len("mode="):] for each in arguments if each.startswith("mode=")]
    if not modes or int(modes[-1], 8) & 0o007:
        raise ListenerOptionError(
            option,
            description,
            "the socket must give other users nothing: add mode=600 (or 660 "
            "for a group of operators)",
        )
    folder = os.path.dirname(os.path.abspath(_unix_path(arguments)))
    if data is None or not _same_folder(folder, data):
        reason = _open_folder(folder)
        if reason is not None:
            raise ListenerOptionError(option, description, reason)
    endpoint.umask = ADMIN_UMASK
    return endpoint


def _unix_path(arguments: list[str]) -> str:
    """
    The path a C{unix:} endpoint's arguments give: C{address=}, else the
    first unnamed one, its escaped colons unescaped.
    """
    named = [each[len("address="):] for each in arguments if each.startswith("address=")]
    unnamed = [each for each in arguments if "=" not in each]
    return re.sub(r"\\(.)", r"\1", (named or unnamed)[0])


def _same_folder(one: str, other: str) -> bool:
    return os.path.realpath(one) == os.path.realpath(other)


def _open_folder(folder: str) -> str | None:
    """
    Why the admin socket may not be in C{folder}, or L{None}: it is
    writable by others than the daemon's user, or another user owns it.
    A folder that does not exist is left to the listener, which fails.
    """
    try:
        status = os.stat(folder)
    except FileNotFoundError:
        return None
    except OSError as error:
        return f"cannot check the socket's folder {folder}: {error.strerror}"
    if status.st_uid != os.geteuid():
        return (
            f"the socket's folder {folder} is not the daemon's user's: use a "
            "folder it owns that only it can write to"
        )
    if status.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return (
            f"the socket's folder {folder} is writable by other users: use a "
            "folder only the daemon's user can write to"
        )
    return None


@implementer(IStreamServerEndpoint)
class OptionEndpoint:
    """
    An endpoint with the option and the string that described it, so a
    listener that cannot listen names them.

    @ivar tls: the wrapped endpoint's TLS settings, if it has any (see
        L{suto_server.net.tls.TLSServerEndpoint}).
    @ivar umask: the umask to listen under (and restore after), or
        L{None} to leave the process's alone.
    """

    umask: int | None = None

    def __init__(self, option: str, description: str, endpoint) -> None:
        self.option = option
        self.description = description
        self._endpoint = endpoint
        self.tls = getattr(endpoint, "tls", None)

    def listen(self, protocolFactory):
        if self.umask is None:
            return self._endpoint.listen(protocolFactory)
        previous = os.umask(self.umask)
        try:
            return self._endpoint.listen(protocolFactory)
        finally:
            os.umask(previous)

    def __str__(self) -> str:
        return f"{self.option} {self.description}"


class CannotListen(SystemExit, Exception):
    """
    A listener cannot listen: the server stops before it serves anything.

    twistd starts the listeners in the process that will serve.  Daemonized,
    it hands an L{Exception} from there to the process the operator started,
    which prints its message and exits 1; in the foreground, an exception
    would end twistd with a traceback, but a L{SystemExit} with only its
    C{code}.  Being both, this is one line either way: the message in the
    former, the code (the same, after C{suto: cannot start:}) in the latter.
    It is not logged apart: twistd's log already takes what is printed on
    standard error, this line included.
    """

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"{where}: {reason}")
        self.code = f"suto: cannot start: {self.args[0]}"


def _listen_reason(error: BaseException) -> str:
    """
    Why a listener could not listen, in a few words (C{address already in
    use}).
    """
    if isinstance(error, CannotListenError):
        error = error.socketError
    if isinstance(error, OSError) and error.strerror:
        text = error.strerror
    else:
        text = str(error) or type(error).__name__
    if text[1:2].islower():
        text = text[:1].lower() + text[1:]
    return text


class ListeningService(Service):
    """
    Listens on one endpoint while running.  It listens in
    C{privilegedStartService} (or C{startService}, when nothing called
    that first) and raises L{CannotListen} there when it cannot, so twistd
    stops before serving anything; the endpoint must listen at once, as
    those of the types this module's options take do.

    @ivar listening: fires with the L{IListeningPort} once listening
        (tests read the bound port number from it).
    """

    log = Logger()

    def __init__(self, name: str, endpoint, factory) -> None:
        self.setName(name)
        self._endpoint = endpoint
        self._factory = factory
        self._port = None
        self._tried = False
        self.listening: Deferred = Deferred()

    def privilegedStartService(self) -> None:
        super().privilegedStartService()
        self._listen()

    def startService(self) -> None:
        super().startService()
        if not self._tried:
            self._listen()

    def _listen(self) -> None:
        """
        @raise CannotListen: the endpoint failed to listen, or did not
            listen at once.
        """
        self._tried = True
        outcome = []
        d = self._endpoint.listen(self._factory)
        d.addBoth(outcome.append)
        if not outcome:
            d.cancel()
            self._refuse("did not listen at once")
        [result] = outcome
        if isinstance(result, Failure):
            self._refuse(_listen_reason(result.value))
        self._port = result
        self.log.info(
            "{name} listening on {address}",
            name=self.name,
            # Rendered here, so no log observer ever shows a repr.
            address=address_text(result.getHost()),
        )
        self.listening.callback(result)

    def _refuse(self, reason: str) -> None:
        where = (
            str(self._endpoint)
            if isinstance(self._endpoint, OptionEndpoint)
            else self.name
        )
        raise CannotListen(where, reason)

    @property
    def address(self):
        """
        The bound address while listening, else L{None}.
        """
        return None if self._port is None else self._port.getHost()

    def stopService(self):
        super().stopService()
        # Started again, it listens again, and tells so on a new Deferred.
        self._tried = False
        if self.listening.called:
            self.listening = Deferred()
        if self._port is not None:
            port, self._port = self._port, None
            return port.stopListening()
