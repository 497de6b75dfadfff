# -*- test-case-name: tests.test_preflight -*-
"""
What the server checks of its options before it serves, in one place.

The options' own rules (C{postOptions}) find a value that is wrong by
itself or against another.  What is left needs the world: an endpoint
string parses only as its parser reads it, a TLS key or a shadow file
loads only from disk.  L{check_start} does all of it without listening
or writing anything, and reports each problem with the option it is
about, so that both its users say the same thing of the same options:

  - the daemon's start (L{suto_server.startup}) stops with the first
    problem in one line, before anything in its data folder is opened,
    and serves the endpoints parsed here;
  - C{config check} reports every problem at its option's line of the
    file (L{problems_before_start}, through
    L{suto_server.core.config.check}), as C{sshd -t} does.
"""

from __future__ import annotations

import os
import socket
import tempfile
from dataclasses import dataclass

from twisted.internet.endpoints import quoteStringArgument, serverFromString

from suto_server.core.configurable import OptionProblem
from suto_server.cred.shadow import ShadowFile, ShadowFileError
from suto_server.datafolder import ADMIN_SOCKET
from suto_server.locations import LocationError, Locations
from suto_server.net.descriptions import (
    API_TYPES,
    CONSOLE_TYPES,
    DEFAULT_LISTEN,
    DEVICE_TYPES,
    METRICS_TYPES,
    ListenerOptionError,
    api_listen,
    console_description,
    console_listen,
    tls_listen,
)
from suto_server.net.endpoint import server_endpoint
from suto_server.net.listening import admin_endpoint, option_endpoint
from suto_server.settings import Listeners


@dataclass(frozen=True)
class StartCheck:
    """
    What L{check_start} found.

    @ivar problems: every problem, in the order the server would meet
        them; empty when it can start.
    @ivar listeners: the endpoints to serve, when nothing is wrong.
    @ivar locations: the locations file's contents, when nothing is wrong.
    @ivar extra_sources: the shadow file, when given and nothing is wrong.
    @ivar verify_targets: the verify-targets file's contents, when nothing
        is wrong.
    """

    problems: list[OptionProblem]
    listeners: Listeners | None = None
    locations: Locations | None = None
    extra_sources: tuple[ShadowFile, ...] = ()
    verify_targets: Locations | None = None


def check_start(reactor, options, data: str, listen: str) -> StartCheck:
    """
    Check everything the server loads from its options before it serves:
    its endpoint strings, parsed (TLS files loaded) but not listened on;
    its shadow and locations files, loaded; its alert file's access; its
    PostgreSQL store, connected to but left unchanged.

    @param options: parsed L{suto_server.tap.Options}.
    @param data: the data folder, where the admin socket is by default.
    @param listen: the TLS listener's full description (see
        L{suto_server.net.descriptions.tls_listen}).
    """
    endpoints, problems = {}, []

    def parse(field: str, option: str, build) -> None:
        """
        Keep the endpoint C{build} returns as the L{Listeners} C{field},
        or its problem as C{option}'s.
        """
        try:
            endpoints[field] = build()
        except ListenerOptionError as error:
            problems.append(OptionProblem(option, str(error)))

    def optional(name: str, types, parser):
        if options[name]:
            return option_endpoint(reactor, f"--{name}", options[name], types, parser)
        return None

    given = options["listen"] or DEFAULT_LISTEN
    parse("devices", "listen", lambda: (
        option_endpoint(
            reactor, "--listen", given, DEVICE_TYPES, server_endpoint, full=listen
        ),
    ))
    parse("legacy", "legacy-listen", lambda: optional(
        "legacy-listen", DEVICE_TYPES, server_endpoint
    ))
    if options["admin"] is None:
        parse("admin", "data", lambda: admin_endpoint(
            reactor, "the admin socket in --data", _default_admin(data), data
        ))
    else:
        parse("admin", "admin", lambda: admin_endpoint(
            reactor, "--admin", options["admin"], data
        ))
    parse("metrics", "metrics-listen", lambda: optional(
        "metrics-listen", METRICS_TYPES, serverFromString
    ))
    if options["api-listen"]:
        parse("api", "api-listen", lambda: option_endpoint(
            reactor, "--api-listen", options["api-listen"], API_TYPES,
            server_endpoint, full=api_listen(options["api-listen"], listen),
        ))
    if options["console-listen"]:
        parse("console", "console-listen", lambda: option_endpoint(
            reactor,
            "--console-listen",
            console_description(options["console-listen"]),
            CONSOLE_TYPES,
            server_endpoint,
            full=console_listen(options["console-listen"], listen),
        ))
    loaded = _load_files(options, problems)
    if options["store"]:
        _check_store(options["store"], problems)
    if problems:
        return StartCheck(problems)
    return StartCheck(problems, listeners=Listeners(**endpoints), **loaded)


def problems_before_start(options) -> list[OptionProblem]:
    """
    Every problem L{check_start} finds in C{options}, with nothing of the
    data folder made: an C{ssl:} listener that serves the generated
    certificate is checked with one generated in a scratch folder.
    """
    from twisted.internet import reactor

    hostname = options["hostname"] or socket.gethostname()
    with tempfile.TemporaryDirectory() as scratch:
        listen = tls_listen(scratch, hostname, options["listen"] or DEFAULT_LISTEN)
        return check_start(
            reactor, options, os.path.abspath(options["data"]), listen
        ).problems


def _default_admin(data: str) -> str:
    """
    The admin socket's endpoint when C{--admin} is not given: in the data
    folder, its owner's alone.
    """
    path = quoteStringArgument(os.path.join(data, ADMIN_SOCKET))
    return f"unix:{path}:mode=600:lockfile=1"


def _load_files(options, problems: list[OptionProblem]) -> dict:
    """
    Load the files the options name, as the server will use them, and
    check that the alert file can be appended to, without creating it.

    @param problems: where to add what is wrong with them.
    @return: the L{StartCheck} fields of what loaded.
    """
    loaded: dict = {"locations": Locations(), "verify_targets": Locations()}
    if options["shadow"]:
        try:
            loaded["extra_sources"] = (ShadowFile(options["shadow"]),)
        except ShadowFileError as error:
            problems.append(OptionProblem("shadow", f"--shadow {error}"))
    for option, field in (
        ("locations", "locations"),
        ("verify-targets", "verify_targets"),
    ):
        if options[option]:
            _load_locations(options[option], option, field, loaded, problems)
    if options["alert-file"]:
        reason = _unwritable(
            os.path.abspath(options["alert-file"]), os.path.abspath(options["data"])
        )
        if reason is not None:
            problems.append(
                OptionProblem(
                    "alert-file", f"--alert-file {options['alert-file']}: {reason}"
                )
            )
    return loaded


def _load_locations(
    path: str, option: str, field: str, loaded: dict, problems: list
) -> None:
    """
    Load the file of named networks at C{path} (the locations file's
    format) as the L{StartCheck} C{field}, or add its problem as
    C{option}'s.
    """
    try:
        loaded[field] = Locations.from_file(path)
    except OSError as error:
        problems.append(OptionProblem(option, f"--{option} {path}: {error.strerror}"))
    except LocationError as error:
        problems.append(OptionProblem(option, f"--{option} {error}"))


def _check_store(uri: str, problems: list[OptionProblem]) -> None:
    """
    Check that the PostgreSQL store at C{uri} can be opened: the URI names
    no password, the server lets us in, and its database is empty or of a
    schema this server can use.  Nothing is written: creating or upgrading
    the schema is the start's own work, never a check's.

    @param problems: where to add what is wrong with it.
    """
    from suto_server.store.errors import StoreError
    from suto_server.store.postgres.connection import check_openable

    try:
        check_openable(uri)
    except StoreError as error:
        problems.append(OptionProblem("store", f"--store: {error}"))


def _unwritable(path: str, data: str) -> str | None:
    """
    Why a file cannot be appended to, or created in its folder, or
    L{None} if it can.  The data folder C{data} is made at start, so a
    file there can be created even before it exists.
    """
    if os.path.isdir(path):
        return "is a folder"
    if os.path.exists(path):
        return None if os.access(path, os.W_OK) else "not writable"
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        return None if folder == data else "its folder does not exist"
    if not os.access(folder, os.W_OK | os.X_OK):
        return "cannot be created: its folder is not writable"
    return None
