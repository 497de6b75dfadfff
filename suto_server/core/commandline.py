# -*- test-case-name: tests.admin.test_cli,tests.client.test_account_commands -*-
"""
What C{suto-admin} and C{suto-client} share as command lines.

Both are argparse subcommands with a dispatch table: L{run} parses the
arguments, looks up the command they name and calls it with the parsed
arguments and a L{Streams} bundle, so that tests run a whole command with
injected standard input, output, error and password prompt.  A command
returns its exit status, or raises L{CommandError} to fail with one line
on standard error; a usage error is argparse's own message and status 2.

This lives in the shared core only because the endpoint agent may import
nothing else of C{suto_server}; it imports nothing but the standard
library, so neither command line pays for the other's dependencies.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from typing import Callable, Hashable, Mapping, TextIO

#: Longest password read from standard input or the terminal, so a runaway
#: pipe cannot fill memory before it is refused.
MAX_PASSWORD = 1024


class CommandError(Exception):
    """
    The command cannot be carried out; the message says why, for the
    person who typed it, and C{status} is the exit status.
    """

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Streams:
    """
    Where a command reads and writes: its standard streams, the function
    that prompts for a password without echo, and the program's name that
    starts every complaint.
    """

    program: str
    stdin: TextIO
    stdout: TextIO
    stderr: TextIO
    getpass: Callable[[str], str]

    def say(self, text: str) -> None:
        print(text, file=self.stdout)

    def complain(self, text: str) -> None:
        print(f"{self.program}: {text}", file=self.stderr)


def read_password(
    io: Streams,
    from_stdin: bool,
    prompt: str,
    again: str,
    mismatch: str,
    status: int,
) -> str:
    """
    Read a new password from the first line of standard input or, twice,
    from the prompt.  The read is bounded, and an input that ends before
    the password (a closed pipe without C{--password-stdin}) is one clear
    line, not a traceback.

    @param again: the prompt for the second entry.
    @param mismatch: the complaint when the two entries differ.
    @param status: the exit status of every refusal.
    @raise CommandError: no usable password was given.
    """
    if from_stdin:
        password = io.stdin.readline(MAX_PASSWORD + 2).rstrip("\r\n")
    else:
        try:
            password = io.getpass(prompt)
            repeated = io.getpass(again)
        except EOFError:
            raise CommandError(
                "no password: the input ended (use --password-stdin in scripts)",
                status,
            ) from None
        if repeated != password:
            raise CommandError(mismatch, status)
    if not password:
        raise CommandError("refusing an empty password", status)
    if len(password) > MAX_PASSWORD or "\0" in password:
        raise CommandError(
            f"the password must be at most {MAX_PASSWORD} characters, without NUL",
            status,
        )
    return password


def check_config(io: Streams, path: str, options) -> int:
    """
    Report every problem of the configuration file C{path} for the
    L{twisted.python.usage.Options} class C{options}, each on standard error as
    C{FILE:LINE: message}, so that a daemon is only restarted with a file
    it accepts: those of its values, and what would stop the daemon at
    start (endpoints that do not parse, files that do not load), found
    without listening or writing anything (L{suto_server.core.config.check}).

    @return: 0 for a file without problems.
    @raise CommandError: it has problems, saying how many.
    """
    # The configuration's rules load Twisted's option parsing: only the
    # commands that check a file pay for it.
    from suto_server.core import config

    problems = config.check(path, options)
    for problem in problems:
        print(problem.describe(path), file=io.stderr)
    if problems:
        raise CommandError(f"{len(problems)} problem(s) in {path}")
    io.say(f"{path}: ok")
    return 0


def streams(
    program: str,
    stdin: TextIO | None,
    stdout: TextIO | None,
    stderr: TextIO | None,
    getpass: Callable[[str], str],
) -> Streams:
    """
    @return: the given streams, the process's own where none is given.
    """
    return Streams(
        program,
        sys.stdin if stdin is None else stdin,
        sys.stdout if stdout is None else stdout,
        sys.stderr if stderr is None else stderr,
        getpass,
    )


def run(
    parser: argparse.ArgumentParser,
    commands: Mapping[Hashable, Callable[[argparse.Namespace, Streams], int]],
    key: Callable[[argparse.Namespace], Hashable],
    argv: list[str] | None,
    io: Streams,
    failures: tuple[type[Exception], ...] = (),
) -> int:
    """
    Run the command C{argv} names.

    @param commands: the dispatch table, from the command's C{key} to the
        function that carries it out.
    @param key: the dispatch table's key for the parsed arguments.
    @param failures: the exceptions, besides L{CommandError}, that mean
        the command failed for a reason its message explains.
    @return: the exit status: the command's; 1 (or the L{CommandError}'s
        own) when it failed; 2 for a usage error, 0 for C{--help}.
    """
    try:
        with redirect_stdout(io.stdout), redirect_stderr(io.stderr):
            args = parser.parse_args(argv)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else 2
    try:
        return commands[key(args)](args, io)
    except CommandError as e:
        io.complain(str(e))
        return e.status
    except failures as e:
        io.complain(str(e))
        return 1



def configuration(
    config: str | None,
    variable: str,
    environ: Mapping[str, str],
    options: Callable[[], type],
) -> dict[str, object]:
    """
    Read the daemon's configuration the way the daemon does, so that a
    command line run beside it needs no option the file already holds.

    @param config: the file C{--config} named, if any.
    @param variable: the environment variable naming the file when
        C{config} is L{None}.
    @param options: returns the daemon's L{twisted.python.usage.Options}
        class, whose options are the file's keys; called only when a file
        is read, so a command without one does not load the daemon's
        option parsing.
    @return: the file's values by option name; none without a file.
    @raise CommandError: the file named cannot be used, with all its
        problems on one line.
    """
    path = config if config is not None else environ.get(variable) or None
    if path is None:
        return {}
    from suto_server.core.config import ConfigError, load

    try:
        return load(path, options())
    except ConfigError as error:
        problems = "; ".join(problem.describe(path) for problem in error.problems)
        raise CommandError(f"cannot use the configuration: {problems}") from None
