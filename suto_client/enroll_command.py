# -*- test-case-name: tests.client.test_enroll_command -*-
"""
C{suto-client enroll}: enroll this machine with a one-time password.

The command checks everything it can before it runs the reactor: the
user, the server or the hello options, the trust options and the
password.  Without C{--server} it first waits for the hello with which
the server announces the enrollment window (see
L{suto_client.announcement}), then runs L{suto_client.enrollment.enroll}
and saves the enrolled profile in the state file, read again since the
agent may have changed it meanwhile.
"""

from __future__ import annotations

import errno
from dataclasses import replace

from twisted.internet.defer import succeed
from twisted.internet.error import CannotListenError
from twisted.internet.task import react

from suto_client.account_commands import (
    ask_password,
    parse_server,
    server_text,
    transport,
)
from suto_client.agent import DEFAULT_HELLO_PORT
from suto_client.announcement import NoAnnouncement, wait_for_announcement
from suto_client.enrollment import EnrollResult, enroll
from suto_client.enrollment_machine import EnrollOutcome
from suto_client.failover_command import failover_servers
from suto_client.state import DEFAULT_SERVER_PORT
from suto_client.statefile import StateFileError, load_state, save_state
from suto_server.core import wire
from suto_server.core.commandline import CommandError, Streams

#: Seconds C{suto-client enroll} waits for the server's hello by default:
#: longer than the default window, so the command may be started first.
DEFAULT_HELLO_WAIT = 300.0


def enroll_machine(args, io: Streams) -> int:
    if not wire.can_enroll(args.user):
        raise CommandError(
            f"{args.user!r} cannot be enrolled: use letters, digits, '.', "
            f"'_' and '-', at most 64 characters, not starting with 'DATA_'"
        )
    hello = _hello_options(args)
    if hello is None:
        host, port = parse_server(args.server)
    else:
        host, port = None, DEFAULT_SERVER_PORT
    options = transport(args)
    failover = failover_servers(None if host is None else (host, port), args.failover)
    existing = load_state(args.state).profiles.get(args.user)
    if existing is not None and not args.replace:
        raise CommandError(
            f"{args.user} is already enrolled with "
            f"{server_text(existing.server_host, existing.server_port)}; "
            f"use --replace to enroll again"
        )
    password = ask_password(args, io)
    if hello is not None:
        print(
            f"waiting up to {hello[2]:g} s for the server's hello for "
            f"{args.user} on {_listening_place(*hello[:2])}",
            file=io.stderr,
        )
    result = _run_enrollment(
        hello,
        host=host,
        port=port,
        **options,
        user=args.user,
        password=password,
    )
    if result.outcome is not EnrollOutcome.ENROLLED:
        raise CommandError(f"{args.user} was not enrolled: {result.reason}")
    enrolled = (result.profile.server_host, result.profile.server_port)
    # The hello's sender may be among them: it is no failover of its own.
    profile = replace(
        result.profile,
        failover=tuple(server for server in failover if server != enrolled),
    )
    try:
        # Read again: the agent may have changed the file meanwhile.
        state = load_state(args.state)
        state.profiles[args.user] = profile
        save_state(args.state, state)
    except StateFileError as e:
        raise CommandError(
            f"the server enrolled {args.user}, but the key could not be "
            f"saved ({e}); ask for a new enrollment window to replace it"
        ) from None
    io.say(
        f"enrolled {args.user} with "
        f"{server_text(profile.server_host, profile.server_port)}, "
        f"key id {profile.key_id[:8]}\u2026"
    )
    return 0


def _hello_options(args) -> tuple[int, str, float] | None:
    """
    Where and how long to wait for the server's hello: L{None} with
    C{--server}, which the hello options then may not accompany.
    """
    given = [
        option
        for option, value in (
            ("--hello-port", args.hello_port),
            ("--hello-interface", args.hello_interface),
            ("--hello-wait", args.hello_wait),
        )
        if value is not None
    ]
    if args.server is not None:
        if given:
            raise CommandError(
                f"{given[0]} has no use with --server: the hello is waited "
                f"for only to learn the server's address"
            )
        return None
    port = DEFAULT_HELLO_PORT if args.hello_port is None else args.hello_port
    wait = DEFAULT_HELLO_WAIT if args.hello_wait is None else args.hello_wait
    if not 0 < port < 65536:
        raise CommandError(f"--hello-port must be 1-65535, not {port}")
    if not 0 < wait <= 86400:
        raise CommandError("--hello-wait must be more than 0 and at most 86400 s")
    return port, args.hello_interface or "", wait


def _listening_place(port: int, interface: str) -> str:
    """
    @return: where the hello is listened for, as the operator should read
        it: the port, and the address unless it is every address.
    """
    if interface:
        return f"UDP port {port} of {interface}"
    return f"UDP port {port} of every address"


def _cannot_listen(port: int, interface: str, error: CannotListenError) -> str:
    """
    @return: the one line that says why the hello cannot be listened for,
        and what to do; a port in use is nearly always the running agent,
        which listens on the same port for its own hellos.
    """
    if getattr(error.socketError, "errno", None) == errno.EADDRINUSE:
        return (
            f"UDP port {port} is in use (is the agent running? stop it during "
            f"enrollment or give --server)"
        )
    return (
        f"cannot listen for the server's hello on "
        f"{_listening_place(port, interface)} ({error.socketError}); "
        f"stop the agent while enrolling, or give --server"
    )


def _run_enrollment(hello, **arguments) -> EnrollResult:
    """
    Run the reactor for as long as L{enroll} with C{arguments} takes; with
    C{hello} (port, interface, seconds), first for as long as the server's
    hello takes to come, which then names the host.

    @raise CommandError: no hello came, or the enrollment was interrupted
        before it ended.
    """
    results: list = []

    def run(reactor):
        if hello is None:
            found = succeed(arguments["host"])
        else:
            port, interface, wait = hello
            try:
                found = wait_for_announcement(
                    reactor, arguments["user"], port, interface, wait
                )
            except CannotListenError as e:
                results.append(CommandError(_cannot_listen(port, interface, e)))
                # react waits on what this returns, which must be a
                # Deferred even when there is nothing to wait for.
                return succeed(None)

        def not_announced(failure):
            failure.trap(NoAnnouncement)
            results.append(
                CommandError(
                    f"{failure.value} on {_listening_place(port, interface)}; "
                    f"check the window, or give --server"
                )
            )

        found.addCallback(
            lambda host: enroll(reactor, **{**arguments, "host": host})
        ).addCallbacks(results.append, not_announced)
        return found

    try:
        react(run)
    except SystemExit:
        # react always exits; the result says how the enrollment went.
        pass
    if not results:
        raise CommandError("the enrollment was interrupted")
    if isinstance(results[0], CommandError):
        raise results[0]
    return results[0]
