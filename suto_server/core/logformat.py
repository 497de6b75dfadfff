# -*- test-case-name: tests.core.test_logformat -*-
"""
How C{twistd suto} and C{twistd suto-client} write their log.

Under a service manager, standard output goes to journald and on to a log
shipper: each event is one line of JSON holding what a shipper expects
(C{time} in RFC 3339, C{level}, the rendered C{message}, C{namespace}, a
failure's C{traceback}) and the event's own fields, so events can be
selected by field rather than by parsing prose; Twisted's internals
(C{log_format}, C{log_source}, C{__class_uuid__}...) stay out.  When the
stream is journald's, each line starts with the syslog priority marker
C{<N>}, which journald strips and stores as the entry's C{PRIORITY}
(sd-daemon(3); C{SyslogLevelPrefix=} is on by default): the message stays
pure JSON, and C{journalctl -p warning} works.  Journald's native protocol
would carry every field as a journal field, but needs its socket and
would take the JSON away from whatever else reads standard output.  A
person running the daemon in a terminal reads Twisted's classic text
instead.

Both forms show values as an operator writes them: an address as
C{192.0.2.7:4433}, C{[2001:db8::7]:4433} or C{unix:/run/suto/admin.sock},
never as C{IPv4Address(type='TCP', ...)}; a POSIX time in a field named
for a time (C{opened_at}, C{since}...) in RFC 3339; bytes as their length
only, since they may be key material.  L{readable} prepares each event so
before either form renders it, and L{plain} rewrites what reprs are left
in the rendered text (Twisted's noisy factories log C{{factory!r}}).

twistd takes the factory by name::

    twistd --nodaemon --logger suto_server.core.logformat.observer suto
"""

from __future__ import annotations

import datetime
import json
import math
import os
import re
import string
import sys
from collections.abc import Mapping
from typing import Any, TextIO

from twisted.internet.address import (
    HostnameAddress,
    IPv4Address,
    IPv6Address,
    UNIXAddress,
)
from twisted.internet.interfaces import IAddress
from twisted.logger import (
    FileLogObserver,
    ILogObserver,
    LogLevel,
    formatEvent,
    formatEventAsClassicLogText,
)
from zope.interface import implementer

#: The syslog priority of each level, the C{<N>} of sd-daemon(3).
PRIORITIES = {
    LogLevel.debug: 7,
    LogLevel.info: 6,
    LogLevel.warn: 4,
    LogLevel.error: 3,
    LogLevel.critical: 2,
}

#: Keys that L{twisted.python.log} adds to an event for its own observers,
#: repeating what C{log_time}, C{log_level}, C{log_format} and
#: C{log_failure} say.  They are the event's own fields only when its
#: format names them.
_LEGACY_KEYS = frozenset(
    {"message", "time", "system", "isError", "format", "failure", "why", "printed", "logLevel"}
)

#: A field whose name says it holds a time: C{time}, C{opened_at},
#: C{since}, C{valid_until}...
_TIME_FIELD = re.compile(r"(?:^|_)(?:time|at|since|until)$")

#: The reprs that reach a log already turned into text: Twisted's addresses
#: (twisted.web logs C{str(transport.getPeer())}) and the default repr of
#: an object (a noisy factory logs C{{factory!r}}).
_REPR = re.compile(
    r"IPv4Address\(type='\w+', host='(?P<v4>[^']*)', port=(?P<v4port>\d+)\)"
    r"|IPv6Address\(type='\w+', host='(?P<v6>[^']*)', port=(?P<v6port>\d+)"
    r"(?:, flowInfo=\d+, scopeID=[^)]*)?\)"
    r"|UNIXAddress\((?:b?'(?P<unix>[^']*)'|None)\)"
    r"|<(?:\w+\.)*(?P<object>\w+) object at 0x[0-9a-fA-F]+>"
)

_FORMATTER = string.Formatter()


def rfc3339(timestamp: float) -> str:
    """
    @return: the POSIX time C{timestamp} in RFC 3339, UTC, to the
        millisecond: C{2026-12-05T08:55:00.123Z}.
    """
    moment = datetime.datetime.fromtimestamp(timestamp, datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def address_text(address: IAddress) -> str:
    """
    @return: C{address} as an operator writes it: C{host:port},
        C{[v6]:port}, C{unix:path} (C{unix:} alone for an unnamed socket,
        such as a client's end), or the address type's name for any other
        kind (a process, a pipe), which has nothing more to say.
    """
    if isinstance(address, IPv6Address):
        return f"[{address.host}]:{address.port}"
    if isinstance(address, IPv4Address):
        return f"{address.host}:{address.port}"
    if isinstance(address, UNIXAddress):
        return "unix:" + ("" if address.name is None else os.fsdecode(address.name))
    if isinstance(address, HostnameAddress):
        return f"{address.hostname.decode('ascii', 'replace')}:{address.port}"
    return type(address).__name__


def _unrepr(match: re.Match) -> str:
    if match["v4"] is not None:
        return f"{match['v4']}:{match['v4port']}"
    if match["v6"] is not None:
        return f"[{match['v6']}]:{match['v6port']}"
    if match["object"] is not None:
        return match["object"]
    return "unix:" + (match["unix"] or "")


def plain(text: str) -> str:
    """
    @return: C{text} with the reprs it holds (see L{_REPR}) written as an
        operator reads them: an address as L{address_text} writes it, an
        object by its class's name.
    """
    return _REPR.sub(_unrepr, text)


def _readable(name: str, value: Any) -> Any:
    """
    @return: C{value}, of the field named C{name}, as an operator reads
        it: addresses as text (also inside a string, see L{plain}), bytes
        as their length, a number in a time field as RFC 3339; any other
        value unchanged.
    """
    if IAddress.providedBy(value):
        return address_text(value)
    if isinstance(value, (bytes, bytearray)):
        return f"{len(value)} bytes"
    if isinstance(value, str):
        return plain(value)
    if (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and _TIME_FIELD.search(name)
    ):
        try:
            return rfc3339(value)
        except (OverflowError, OSError, ValueError):
            return value
    return value


def _named_fields(log_format: object) -> set[str]:
    """
    @return: the fields C{log_format} names, without attribute, index or
        call suffixes (C{{peer.host}} names C{peer}).
    """
    if not isinstance(log_format, str):
        return set()
    try:
        parsed = list(_FORMATTER.parse(log_format))
    except ValueError:
        return set()
    return {
        re.match(r"[^.\[(]*", field).group()
        for _, field, _, _ in parsed
        if field
    }


def own_fields(event: Mapping[str, Any]) -> list[str]:
    """
    @return: the keys of C{event} that are its own fields rather than
        Twisted's bookkeeping: not C{log_*}, not C{__class_uuid__}, and not
        one of L{twisted.python.log}'s keys unless the format names it.
    """
    named = _named_fields(event.get("log_format"))
    return [
        key
        for key in event
        if not key.startswith("log_")
        and key != "__class_uuid__"
        and (key not in _LEGACY_KEYS or key in named)
    ]


def readable(event: Mapping[str, Any]) -> dict[str, Any]:
    """
    @return: a copy of C{event} whose own fields are readable (see
        L{_readable}), so that its rendered message shows no repr, no raw
        bytes and no epoch float.  The original is left alone: other
        observers see the same event.
    """
    copy = dict(event)
    for key in own_fields(event):
        copy[key] = _readable(key, event[key])
    return copy


def _json_safe(name: str, value: Any) -> Any:
    """
    @return: C{value} as JSON can hold it: readable (see L{_readable}),
        mappings and sequences item by item, anything else as its
        L{plain} text.
    """
    value = _readable(name, value)
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {str(key): _json_safe(str(key), item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_json_safe(name, item) for item in value]
    return plain(str(value))


def json_record(event: Mapping[str, Any]) -> dict[str, Any]:
    """
    @return: the JSON object for a readable C{event}: C{time}, C{level},
        C{message}, C{namespace}, C{traceback} when it carries a failure,
        then its own fields (one named like those is left out).
    """
    record: dict[str, Any] = {}
    if "log_time" in event:
        record["time"] = rfc3339(event["log_time"])
    record["level"] = event.get("log_level", LogLevel.info).name
    record["message"] = plain(formatEvent(event))
    record["namespace"] = event.get("log_namespace")
    failure = event.get("log_failure")
    if failure is not None:
        record["traceback"] = plain(failure.getTraceback())
    for key in own_fields(event):
        record.setdefault(key, _json_safe(key, event[key]))
    return record


def _text_line(event: Mapping[str, Any]) -> str | None:
    text = formatEventAsClassicLogText(event)
    return None if text is None else plain(text)


def _json_line(event: Mapping[str, Any]) -> str:
    return json.dumps(json_record(event)) + "\n"


def _journal_line(event: Mapping[str, Any]) -> str:
    priority = PRIORITIES.get(event.get("log_level"), PRIORITIES[LogLevel.info])
    return f"<{priority}>{_json_line(event)}"


def is_journal(stream: TextIO, environ: Mapping[str, str]) -> bool:
    """
    Whether C{stream} is connected to journald, as systemd.exec(5) says to
    tell: C{JOURNAL_STREAM} holds the device and inode numbers
    (C{"dev:inode"}) of the stream systemd connected to the journal, and
    only that very stream matches (not one a shell redirected).

    @param environ: the environment, in which to read C{JOURNAL_STREAM}.
    """
    expected = environ.get("JOURNAL_STREAM")
    if not expected:
        return False
    try:
        status = os.fstat(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return False
    return expected == f"{status.st_dev}:{status.st_ino}"


@implementer(ILogObserver)
class _Readable:
    """
    Hands its observer a L{readable} copy of each event.
    """

    def __init__(self, observer: ILogObserver) -> None:
        self._observer = observer

    def __call__(self, event: Mapping[str, Any]) -> None:
        self._observer(readable(event))


def observer(
    stream: TextIO | None = None, environ: Mapping[str, str] | None = None
) -> ILogObserver:
    """
    The log observer for C{stream}: text on a terminal, JSON lines
    otherwise, each led by its syslog priority when journald reads them.

    @param stream: where events go; standard output by default, which is
        how twistd calls this factory (before it redirects standard output
        into the log, so events reach the real one).
    @param environ: the environment; the process's own by default.
    @return: a log observer writing to C{stream}.
    """
    stream = sys.stdout if stream is None else stream
    environ = os.environ if environ is None else environ
    if stream.isatty():
        return _Readable(FileLogObserver(stream, _text_line))
    # One line per event: journald splits on newlines, and json.dumps
    # escapes any newline inside an event.
    if is_journal(stream, environ):
        return _Readable(FileLogObserver(stream, _journal_line))
    return _Readable(FileLogObserver(stream, _json_line))
