# -*- test-case-name: tests.core.test_config -*-
"""
Command-line options that may also come from a configuration file, and
what would stop a daemon at start with them.

A daemon's C{Options} subclass L{ConfigurableOptions}: C{--config} names a
TOML file (read by L{suto_server.core.config}) whose values replace the
built-in defaults before the command line is parsed, so options on the
command line win over the file.  A daemon whose options name endpoints
or files says, in L{ConfigurableOptions.start_problems}, what would stop
it at start, so that C{config check} finds it without starting anything.
"""

from __future__ import annotations

import getopt
import sys
from dataclasses import dataclass

from twisted.python import usage

from suto_server.core.config import CONFIG_OPTION, ConfigError, load


@dataclass(frozen=True)
class OptionProblem:
    """
    Something that would stop the daemon at start, found from options
    that each passed their own checks.

    @ivar option: the long name of the option at fault, or L{None} when
        it is no single option's.
    @ivar message: what is wrong, naming the option as the daemon's
        start would (C{--listen tcp:notaport: ...}).
    """

    option: str | None
    message: str



class ConfigurableOptions(usage.Options):
    """
    Command-line options that may also be given in a configuration file,
    named by C{--config}.  The file's values replace the built-in
    defaults before the command line is parsed, so options on the command
    line win over the file.
    """

    optParameters = [
        [
            CONFIG_OPTION,
            None,
            None,
            "TOML file of options (keys are the long option names); "
            "options given here win over it.",
        ],
    ]

    def parseOptions(self, options: list[str] | None = None) -> None:
        """
        Load the configuration file, if any, then parse C{options}.

        @raise usage.UsageError: the configuration file has problems (all
            of them listed) or the command line is wrong.
        """
        if options is None:
            options = sys.argv[1:]
        path = self._config_path(options)
        if path is not None:
            try:
                self.update(load(path, type(self)))
            except ConfigError as error:
                raise usage.UsageError(str(error)) from None
        super().parseOptions(options)

    def start_problems(self) -> list[OptionProblem]:
        """
        What, beyond C{postOptions}, would stop the daemon at start with
        these (parsed) options, found without listening or writing
        anything; the daemon checks it at start, and L{check} puts each
        problem on its option's line.  None, unless a daemon's options
        say otherwise.
        """
        return []

    def _config_path(self, arguments: list[str]) -> str | None:
        """
        The last C{--config} of C{arguments}, read as L{usage.Options}
        will read them; L{None} if there is none or the command line is
        malformed, which L{usage.Options.parseOptions} then reports.
        """
        try:
            given, _rest = getopt.getopt(arguments, self.shortOpt, self.longOpt)
        except getopt.GetoptError:
            return None
        paths = [value for name, value in given if name == f"--{CONFIG_OPTION}"]
        return paths[-1] if paths else None
