# -*- test-case-name: tests.core.test_config -*-
"""
Configuration files for C{twistd suto} and C{twistd suto-client}.

A configuration file is TOML whose top-level keys are the long names of
the daemon's command-line options::

    data = "/var/lib/suto"
    hello-port = 2020
    auth-timeout = 5.0

The keys a file may hold are read from the C{Options} class itself
(C{optParameters} and C{optFlags}), and every value goes through the same
coerce function and the same C{postOptions} checks as the command line,
so an option added to the command line is at once a key of the file,
checked the same way.  Keys the daemon does not know are errors: a
misspelt key silently ignored would leave a production default in place.

L{suto_server.core.configurable.ConfigurableOptions} reads the file named
by C{--config} before it parses the command line and keeps its values as
the defaults the command line then overrides: the command line wins over
the file, the file over the built-in defaults.

L{check} finds every problem of a file at once, each with its line, so
that an operator can fix a file before restarting the daemon with it.  It
goes as deep as the daemon's own start (as C{sshd -t} does): it asks the
options what would stop the daemon at start (endpoints parsed, files
opened), which the daemon checks at start too, and puts each problem on
the line of the option it names.
"""

from __future__ import annotations

import datetime
import difflib
import re
import tomllib
from dataclasses import dataclass
from typing import Callable

from twisted.python import reflect, usage, util

from suto_server.core.shown import shortened

#: Largest configuration file read, in bytes.
MAX_CONFIG_BYTES = 256 * 1024

#: The option naming the file; it cannot itself appear in a file.
CONFIG_OPTION = "config"

#: Longest rendering of a rejected value, and of a coerce function's
#: reason (which may quote the value), in a message.
_MAX_SHOWN = 60
_MAX_REASON = 120

#: How close an unknown key must be to an option's name to be suggested.
_SUGGESTION_CUTOFF = 0.75

_SYNTAX_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*\Z")
_KEY_AT_LINE_START = re.compile(
    r"^[ \t]*(?:\[\[?[ \t]*)?"  # indentation, a table header's brackets
    r"""(?:([A-Za-z0-9_-]+)|"([^"\\\n]*)"|'([^'\n]*)')"""  # bare or quoted key
    r"[ \t]*[=.\]]",
    re.MULTILINE,
)


@dataclass(frozen=True)
class Problem:
    """
    One thing wrong with a configuration file.

    @ivar line: the line it is on, counted from 1, or L{None} when it
        belongs to no line (an unreadable file, options that conflict).
    @ivar message: what is wrong, for the operator.
    """

    line: int | None
    message: str

    def describe(self, path: str) -> str:
        """
        @return: C{PATH:LINE: MESSAGE}, the form editors can jump to.
        """
        where = path if self.line is None else f"{path}:{self.line}"
        return f"{where}: {self.message}"


class ConfigError(ValueError):
    """
    A configuration file cannot be used.

    @ivar path: the file.
    @ivar problems: every L{Problem} found, in the order of the file.
    """

    def __init__(self, path: str, problems: list[Problem]) -> None:
        self.path = path
        self.problems = tuple(problems)
        super().__init__(
            "\n".join(problem.describe(path) for problem in self.problems)
        )


@dataclass(frozen=True)
class _Option:
    """
    What a key of the file may hold: a flag takes a boolean; a parameter
    takes what its coerce function accepts, or any string without one.
    """

    flag: bool
    coerce: Callable[[str], object] | None


class _BadValue(Exception):
    """A value of the file does not fit its option; the message says how."""


def _accepted(options_class: type[usage.Options]) -> dict[str, _Option]:
    """
    The keys a file for C{options_class} may hold, gathered the way
    L{usage.Options} gathers its own options, inherited ones included.
    """
    parameters: list = []
    flags: list = []
    reflect.accumulateClassList(options_class, "optParameters", parameters)
    reflect.accumulateClassList(options_class, "optFlags", flags)
    accepted = {}
    for parameter in parameters:
        name, _short, _default, _doc, coerce = util.padTo(5, parameter)
        accepted[name] = _Option(False, coerce)
    for flag in flags:
        accepted[flag[0]] = _Option(True, None)
    accepted.pop(CONFIG_OPTION, None)
    return accepted


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, (datetime.date, datetime.time)):
        return "a date or time"
    return type(value).__name__


def _convert(option: _Option, value: object) -> object:
    """
    Turn a TOML value into what the command line would have stored.

    A parameter with a coerce function is given the value as it would be
    typed on the command line, so C{auth-timeout = 5} and C{= "5"} both
    mean C{--auth-timeout 5}.

    @raise _BadValue: the value has the wrong type, or its coerce
        function refuses it.
    """
    if option.flag:
        if not isinstance(value, bool):
            raise _BadValue(f"expected true or false, not {_kind(value)}")
        return 1 if value else 0
    if option.coerce is None:
        if not isinstance(value, str):
            raise _BadValue(f"expected a string, not {_kind(value)}")
        return value
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise _BadValue(f"expected a number or a string, not {_kind(value)}")
    try:
        return option.coerce(str(value))
    except ValueError as error:
        raise _BadValue(
            f"bad value {shortened(repr(value), _MAX_SHOWN)}: "
            f"{shortened(str(error), _MAX_REASON)}"
        ) from None


def _key_lines(text: str) -> dict[str, int]:
    """
    The line where each key first appears at the start of a line: set
    with C{=}, opening a table, or first part of a dotted key.  Keys
    written in a form this does not recognise (quoted with escapes) are
    left out, and their problems are reported on no line.
    """
    lines: dict[str, int] = {}
    line, counted = 1, 0
    for match in _KEY_AT_LINE_START.finditer(text):
        line += text.count("\n", counted, match.start())
        counted = match.start()
        key = next(group for group in match.groups() if group is not None)
        lines.setdefault(key, line)
    return lines


def _read_text(path: str) -> str:
    """
    @raise ConfigError: the file cannot be read, is too large, or is not
        UTF-8.
    """
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as error:
        raise ConfigError(path, [Problem(None, f"cannot read: {error.strerror}")])
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(
            path, [Problem(None, f"larger than {MAX_CONFIG_BYTES} bytes")]
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise ConfigError(path, [Problem(line, "not UTF-8")]) from None


def _parse(path: str, text: str) -> dict:
    """
    @raise ConfigError: the text is not TOML, or nests deeper than the
        parser can recurse; only the first syntax error can be found, as
        the parser stops there.
    """
    try:
        return tomllib.loads(text)
    except RecursionError:
        # tomllib recurses once per nested array or inline table, so a few
        # kilobytes of brackets exhaust the stack; no option takes a nested
        # value, and the parser cannot say where it gave up.
        raise ConfigError(
            path, [Problem(None, "TOML syntax: values nested too deeply")]
        ) from None
    except tomllib.TOMLDecodeError as error:
        message = str(error)
        position = _SYNTAX_POSITION.search(message)
        if position is None:
            raise ConfigError(
                path, [Problem(None, f"TOML syntax: {message}")]
            ) from None
        line, column = position.groups()
        raise ConfigError(
            path,
            [
                Problem(
                    int(line),
                    f"TOML syntax: {message[: position.start()]} "
                    f"(column {column})",
                )
            ],
        ) from None


def _refusal(options_class: type[usage.Options], values: dict) -> str | None:
    """
    What C{options_class}'s own C{postOptions} says of C{values} over the
    built-in defaults, or L{None} if it accepts them.
    """
    options = options_class()
    options.update(values)
    try:
        options.postOptions()
    except usage.UsageError as error:
        return str(error)
    return None


def _checked(
    options_class: type[usage.Options], values: dict, lines: dict
) -> list[Problem]:
    """
    Run C{postOptions} on the file's values.  It stops at its first
    complaint, so when it refuses them all together, each value is tried
    alone to put every refused value on its line; a refusal no single
    value explains is a conflict between them, on no line.  A value
    refused alone is refused against the other options' defaults, so
    when leaving it out of the file's values settles them, the refusal of
    the file's own values is the one reported (its numbers are the
    file's, not the defaults').
    """
    together = _refusal(options_class, values)
    if together is None:
        return []
    problems = []
    for name, value in values.items():
        alone = _refusal(options_class, {name: value})
        if alone is None:
            continue
        rest = {key: other for key, other in values.items() if key != name}
        message = together if _refusal(options_class, rest) is None else alone
        problems.append(Problem(lines[name], f"{name}: {message}"))
    return problems or [Problem(None, together)]


def _in_file_order(problems: list[Problem]) -> list[Problem]:
    """
    C{problems} by line, those on no line last.
    """
    return sorted(
        problems, key=lambda problem: (problem.line is None, problem.line or 0)
    )


def _read(
    path: str, options_class: type[usage.Options]
) -> tuple[dict[str, object], dict[str, int | None], list[Problem]]:
    """
    The file's values that fit their options, as L{load} returns them,
    the line of each key, and every problem of the values.

    @raise ConfigError: the file cannot be read as TOML at all.
    """
    text = _read_text(path)
    document = _parse(path, text)
    accepted = _accepted(options_class)
    key_lines = _key_lines(text)
    values, lines, problems = {}, {}, []
    for key, value in document.items():
        line = lines[key] = key_lines.get(key)
        option = accepted.get(key)
        if option is None:
            message = f"unknown key {shortened(repr(key), _MAX_SHOWN)}"
            close = difflib.get_close_matches(
                key.replace("_", "-"), list(accepted), 1, _SUGGESTION_CUTOFF
            )
            if close:
                message += f" (did you mean {close[0]!r}?)"
            problems.append(Problem(line, message))
            continue
        try:
            values[key] = _convert(option, value)
        except _BadValue as error:
            problems.append(Problem(line, f"{key}: {error}"))
    problems.extend(_checked(options_class, values, lines))
    return values, lines, _in_file_order(problems)


def load(path: str, options_class: type[usage.Options]) -> dict[str, object]:
    """
    Read a configuration file for the daemon whose options are
    C{options_class}.

    @param path: the TOML file.
    @param options_class: the daemon's L{usage.Options} subclass; its
        options say which keys the file may hold and how to check them.
    @return: the file's values by long option name, as the command line
        would have stored them.
    @raise ConfigError: listing every problem of the file.
    """
    values, _lines, problems = _read(path, options_class)
    if problems:
        raise ConfigError(path, problems)
    return values


def check(path: str, options_class: type[usage.Options]) -> list[Problem]:
    """
    Every problem of a configuration file, without starting anything:
    those of its values, and what would stop the daemon at start
    (L{suto_server.core.configurable.ConfigurableOptions.start_problems})
    with the values that fit
    their options, each on the line of its option.  When C{postOptions}
    refuses those values, what they would start is not checked.

    @param path: the TOML file.
    @param options_class: as for L{load}.
    @return: the problems in the order of the file, those on no line
        last; empty when the daemon would accept the file.
    """
    try:
        values, lines, problems = _read(path, options_class)
    except ConfigError as error:
        return list(error.problems)
    options = options_class()
    options.update(values)
    try:
        options.postOptions()
    except usage.UsageError:
        return problems
    return _in_file_order(
        problems
        + [
            Problem(lines.get(found.option), found.message)
            for found in options.start_problems()
        ]
    )


def read_toml(path: str) -> dict:
    """
    Read a TOML file that is not a daemon's options (C{suto-pam}'s), with
    the same cap, encoding and syntax checks as L{load}.

    @raise ConfigError: the file cannot be read, is too large, is not
        UTF-8, or is not TOML.
    """
    return _parse(path, _read_text(path))
