# -*- test-case-name: tests.client.pam.test_main -*-
"""
C{suto-pam}, the command: start isolated, then decide or check.

    suto-pam [--config FILE]                  under pam_exec: decide for PAM_USER
    suto-pam --check [--config FILE] [--user NAME]

Under C{pam_exec} the helper runs as root with PAM's environment, which a
PAM module or the user's own files can fill.  The console script's
interpreter has read that environment already when L{main} runs, so
L{main} first replaces the process with C{python3 -I -m suto_client.pam}
and an environment of its own (L{clean_environment}: the C{PAM_*} values
C{pam_exec} passes, a fixed C{PATH}, the C locale): C{-I} ignores every
C{PYTHON*} variable and the user's site folder, and nothing of the old
environment reaches OpenSSL or the resolver.  Before that, this module
and its package import only the standard library.  The PAM line can also
name the interpreter itself, C{python3 -I -m suto_client.pam}, which
skips the first start; started isolated, the helper cleans its
environment in place instead, so it never restarts twice.

Exit statuses: 0 accepted; 1 denied, for any reason; 2 the command line
is wrong.  C{--check} has its own (see L{suto_client.pam.check}).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping, MutableMapping
from contextlib import redirect_stderr, redirect_stdout

#: The only C{PATH} the helper runs with.
SAFE_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"

#: What C{pam_exec} passes that the helper keeps: who, through which
#: service, from where.
_KEPT = ("PAM_USER", "PAM_TYPE", "PAM_SERVICE", "PAM_RHOST", "PAM_RUSER", "PAM_TTY")

#: The exit status of a wrong command line.
USAGE = 2


def clean_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """
    The environment the helper runs with: C{environ}'s C{PAM_*} values
    and nothing else of it.
    """
    kept = {name: environ[name] for name in _KEPT if name in environ}
    return {**kept, "PATH": SAFE_PATH, "LC_ALL": "C.UTF-8"}


def isolate(
    argv: list[str],
    environ: MutableMapping[str, str],
    isolated: bool,
    execve: Callable = os.execve,
    executable: str = sys.executable,
) -> None:
    """
    Make sure the helper runs isolated in a clean environment: replace
    the process with an isolated interpreter if this one is not, else
    clean C{environ} in place (which changes the process's environment,
    before OpenSSL or the resolver has read it).  An isolated interpreter
    never starts another, so this cannot loop.

    @param isolated: whether this interpreter runs with C{-I}.
    """
    wanted = clean_environment(environ)
    if isolated:
        for name in set(environ) - set(wanted):
            del environ[name]
        environ.update(wanted)
        return
    execve(
        executable,
        [executable, "-I", "-m", "suto_client.pam", *argv[1:]],
        wanted,
    )


def parser() -> argparse.ArgumentParser:
    from suto_client.pam.config import DEFAULT_PATH

    arguments = argparse.ArgumentParser(
        prog="suto-pam",
        description=(
            "Ask the SUTO server whether PAM_USER's device vouches for them "
            "(for pam_exec.so), or check the configuration first."
        ),
    )
    arguments.add_argument("--config", default=DEFAULT_PATH, help="the TOML configuration (default: %(default)s)")
    arguments.add_argument("--check", action="store_true", help="check the configuration, its files and the server, step by step")
    arguments.add_argument("--user", help="with --check: also ask the server to verify this user")
    return arguments


def run(argv: list[str], environ: Mapping[str, str], stdout, stderr, write) -> int:
    """
    Parse C{argv} and run the decision or the check.

    @param stdout: where C{--check} and C{--help} write.
    @param stderr: where usage errors go.
    @param write: the system log writer.
    """
    try:
        with redirect_stdout(stdout), redirect_stderr(stderr):
            options = parser().parse_args(argv)
    except SystemExit as leaving:
        return USAGE if leaving.code else 0
    if options.user is not None and not options.check:
        print("suto-pam: --user goes with --check", file=stderr)
        return USAGE
    if options.check:
        from suto_client.pam.check import check

        return check(options.config, options.user, stdout)
    from suto_client.pam.login import authenticate

    return authenticate(options.config, environ, write)


def main() -> None:
    """
    The console script: isolate, then run.
    """
    isolate(sys.argv, os.environ, bool(sys.flags.isolated))
    from suto_client.pam.report import system_log

    sys.exit(run(sys.argv[1:], os.environ, sys.stdout, sys.stderr, system_log()))
