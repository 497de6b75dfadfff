"""
Tests for L{suto_server.core.logformat}: JSON lines for a log shipper,
with the syslog priority for journald, text on a terminal, and no repr,
raw bytes or epoch float in either.
"""

import datetime
import io
import json
import os
import sys
import tempfile

from twisted.internet.address import (
    HostnameAddress,
    IPv4Address,
    IPv6Address,
    UNIXAddress,
    _ProcessAddress,
)
from twisted.logger import Logger, LogLevel
from twisted.python.reflect import namedAny
from twisted.trial.unittest import SynchronousTestCase

from suto_server.core import logformat

#: 2026-12-05T08:55:00.123Z, the time every test event is logged at.
WHEN = datetime.datetime(
    2026, 12, 5, 8, 55, 0, 123000, tzinfo=datetime.UTC
).timestamp()

#: Twisted's internals, none of which may reach a JSON line.
INTERNALS = (
    "log_format",
    "log_logger",
    "log_source",
    "log_io",
    "log_time",
    "log_level",
    "log_namespace",
    "log_trace",
    "log_failure",
    "__class_uuid__",
)

#: Marks of a Python repr in a log line.
REPRS = ("IPv4Address(", "IPv6Address(", "UNIXAddress(", "b'", "<", "Failure")


class _Terminal(io.StringIO):
    """
    A stream that says it is a terminal.
    """

    def isatty(self) -> bool:
        return True


class _Source:
    """
    What logs, as C{log_source} names it for the server's classes.
    """


def _events(emit) -> list[dict]:
    """
    @param emit: called with a L{Logger} whose events are collected, as
        the server's code would log through it.
    @return: the events, each logged at L{WHEN}.
    """
    events: list[dict] = []
    emit(Logger(namespace="suto.test", source=_Source(), observer=events.append))
    for event in events:
        event["log_time"] = WHEN
    return events


def _connection(log) -> None:
    """
    Log an event with an address of each kind, bytes, a time, other
    numbers and a nested mapping.
    """
    log.info(
        "{user} from {source} to {server} over {socket} at {opened_at}: {secret}",
        user="alice",
        source=IPv4Address("TCP", "192.0.2.7", 40123),
        server=IPv6Address("TCP", "2001:db8::1", 4433),
        socket=UNIXAddress(b"/run/suto/admin.sock"),
        opened_at=WHEN + 60,
        secret=b"\x00\x01key material",
        seconds=1.5,
        count=3,
        alert={"type": "foreign_source", "peer": IPv4Address("UDP", "192.0.2.8", 9)},
    )


def _failure(log) -> None:
    """
    Log a failure, as an C{except} block in the server does.
    """
    try:
        {}["alice"]
    except KeyError:
        log.failure("checking {user} failed", user="alice")


def _log(stream, emit, environ=None) -> None:
    """
    Pass the events C{emit} logs to the observer made for C{stream}.
    """
    observe = logformat.observer(stream, {} if environ is None else environ)
    for event in _events(emit):
        observe(event)


def _write(stream: io.StringIO, emit) -> str:
    """
    @return: what the observer made for C{stream} wrote for the events
        C{emit} logs.
    """
    _log(stream, emit)
    return stream.getvalue()


def _json(emit) -> list[dict]:
    """
    @return: the JSON objects written for the events C{emit} logs, after
        checking each is one line free of Twisted's internals and reprs.
    """
    output = _write(io.StringIO(), emit)
    lines = output.splitlines()
    for line in lines:
        for internal in INTERNALS:
            assert internal not in line, (internal, line)
        for mark in REPRS:
            assert mark not in line, (mark, line)
    return [json.loads(line) for line in lines]


class JSONTests(SynchronousTestCase):
    def test_exact_object(self):
        """
        An event becomes exactly: C{time} in RFC 3339 UTC to the
        millisecond, C{level}, the rendered C{message}, C{namespace}, then
        its own fields made readable: IPv4, IPv6 and UNIX addresses as
        C{host:port}, C{[v6]:port} and C{unix:path}, bytes as their
        length, a POSIX time in a field named for a time in RFC 3339, a
        nested mapping item by item; nothing of Twisted's internals.
        """
        [record] = _json(_connection)
        self.assertEqual(
            record,
            {
                "time": "2026-12-05T08:55:00.123Z",
                "level": "info",
                "message": "alice from 192.0.2.7:40123 to [2001:db8::1]:4433 over "
                "unix:/run/suto/admin.sock at 2026-12-05T08:56:00.123Z: 14 bytes",
                "namespace": "suto.test",
                "user": "alice",
                "source": "192.0.2.7:40123",
                "server": "[2001:db8::1]:4433",
                "socket": "unix:/run/suto/admin.sock",
                "secret": "14 bytes",
                "opened_at": "2026-12-05T08:56:00.123Z",
                "seconds": 1.5,
                "count": 3,
                "alert": {"type": "foreign_source", "peer": "192.0.2.8:9"},
            },
        )

    def test_failure(self):
        """
        A failure's traceback is in a C{traceback} field, the message is
        the event's own text, and the failure object itself is not logged.
        """

        [record] = _json(_failure)
        traceback = record.pop("traceback")
        self.assertEqual(
            record,
            {
                "time": "2026-12-05T08:55:00.123Z",
                "level": "critical",
                "message": "checking alice failed",
                "namespace": "suto.test",
                "user": "alice",
            },
        )
        self.assertTrue(traceback.startswith("Traceback (most recent call last):\n"))
        self.assertIn("KeyError: 'alice'", traceback)

    def test_reprs_in_text(self):
        """
        An address that reaches the log already turned into its repr (as
        twisted.web logs C{str(transport.getPeer())}) is written as an
        address, in the field and in the message.
        """
        [record] = _json(
            lambda log: log.info(
                "timing out {peer} {other} {local}",
                peer=str(IPv4Address("TCP", "192.0.2.7", 80)),
                other=str(IPv6Address("TCP", "::1", 443)),
                local=f"{UNIXAddress('/x')!r} and {UNIXAddress(None)!r}",
            )
        )
        self.assertEqual(record["message"], "timing out 192.0.2.7:80 [::1]:443 unix:/x and unix:")
        self.assertEqual(record["peer"], "192.0.2.7:80")
        self.assertEqual(record["other"], "[::1]:443")

    def test_object_reprs(self):
        """
        An object's default repr (a noisy factory logs C{{factory!r}}) is
        written as its class's name, in the message and in the field.
        """
        [record] = _json(
            lambda log: log.info("Starting factory {factory!r}", factory=_Source())
        )
        self.assertEqual(record["message"], "Starting factory _Source")
        self.assertEqual(record["factory"], "_Source")

    def test_time_fields_by_name(self):
        """
        Only a number in a field whose name says it is a time becomes RFC
        3339; other numbers, and a flag in a time field, stay as they are.
        """
        [record] = _json(
            lambda log: log.info(
                "times",
                since=WHEN,
                valid_until=int(WHEN),
                check_time=WHEN,
                seat=7,
                format_count=2,
                deadline_at=True,
                uptime_seconds=12.5,
            )
        )
        self.assertEqual(record["since"], "2026-12-05T08:55:00.123Z")
        self.assertEqual(record["valid_until"], "2026-12-05T08:55:00.000Z")
        self.assertEqual(record["check_time"], "2026-12-05T08:55:00.123Z")
        self.assertEqual(record["seat"], 7)
        self.assertEqual(record["format_count"], 2)
        self.assertIs(record["deadline_at"], True)
        self.assertEqual(record["uptime_seconds"], 12.5)

    def test_other_values(self):
        """
        A value JSON cannot hold is written as its text; sequences item by
        item; a float JSON cannot hold as its text.
        """

        class Named:
            def __str__(self):
                return "named"

        [record] = _json(
            lambda log: log.info(
                "others",
                thing=Named(),
                items=("a", IPv4Address("TCP", "192.0.2.1", 1)),
                ratio=float("nan"),
                nothing=None,
            )
        )
        self.assertEqual(record["thing"], "named")
        self.assertEqual(record["items"], ["a", "192.0.2.1:1"])
        self.assertEqual(record["ratio"], "nan")
        self.assertIsNone(record["nothing"])

    def test_levels(self):
        """
        C{level} is the level's name: debug, info, warn, error, critical.
        """
        records = _json(
            lambda log: [
                log.emit(level, "at {level_name}", level_name=level.name)
                for level in LogLevel.iterconstants()
            ]
        )
        self.assertEqual(
            [record["level"] for record in records],
            ["debug", "info", "warn", "error", "critical"],
        )

    def test_legacy_keys(self):
        """
        The keys L{twisted.python.log} adds to an event that passed
        through its observers (C{time}, C{system}, C{isError}, C{format},
        C{why}...) are not the event's own fields, unless its format names
        one, as the limits' C{{why}} does.
        """
        [event] = _events(lambda log: log.warn("refused: {why}", why="penalty"))
        event.update(
            message=(),
            time=WHEN,
            system="-",
            isError=0,
            format="%(log_legacy)s",
            log_legacy="refused: penalty",
            printed=0,
        )
        stream = io.StringIO()
        logformat.observer(stream, {})(event)
        self.assertEqual(
            json.loads(stream.getvalue()),
            {
                "time": "2026-12-05T08:55:00.123Z",
                "level": "warn",
                "message": "refused: penalty",
                "namespace": "suto.test",
                "why": "penalty",
            },
        )

    def test_own_names_first(self):
        """
        A field named like one of the record's own keys does not replace
        it.
        """
        [record] = _json(lambda log: log.info("hi", message="bye", namespace="x"))
        self.assertEqual(record["message"], "hi")
        self.assertEqual(record["namespace"], "suto.test")

    def test_event_left_alone(self):
        """
        The observer works on a copy: other observers of the same event
        still see its address object.
        """
        address = IPv4Address("TCP", "192.0.2.7", 1)
        [event] = _events(lambda log: log.info("{peer}", peer=address))
        logformat.observer(io.StringIO(), {})(event)
        self.assertIs(event["peer"], address)

    def test_one_line(self):
        """
        Each event is one line, without the record separator of Twisted's
        JSON observer, even when a field holds a newline.
        """
        output = _write(
            io.StringIO(),
            lambda log: log.info("granted {user} from {where}", user="alice", where="jack\n17"),
        )
        self.assertEqual(output.count("\n"), 1)
        self.assertNotIn("\x1e", output)
        self.assertEqual(json.loads(output)["where"], "jack\n17")


class JournalTests(SynchronousTestCase):
    def setUp(self):
        descriptor, path = tempfile.mkstemp()
        os.close(descriptor)
        self.addCleanup(os.remove, path)
        self.stream = open(path, "w+")
        self.addCleanup(self.stream.close)
        status = os.fstat(self.stream.fileno())
        self.journal = {"JOURNAL_STREAM": f"{status.st_dev}:{status.st_ino}"}

    def _lines(self, environ) -> list[str]:
        def emit(log):
            for level in LogLevel.iterconstants():
                log.emit(level, "at {where}", where=IPv4Address("TCP", "192.0.2.7", 1))

        _log(self.stream, emit, environ)
        self.stream.flush()
        self.stream.seek(0)
        return self.stream.read().splitlines()

    def test_priority(self):
        """
        When C{JOURNAL_STREAM} names the stream, each line starts with its
        level's syslog priority, C{<N>} as sd-daemon(3) has it (7 debug, 6
        info, 4 warn, 3 error, 2 critical), then the same JSON object.
        """
        lines = self._lines(self.journal)
        self.assertEqual(
            [line[:3] for line in lines], ["<7>", "<6>", "<4>", "<3>", "<2>"]
        )
        self.assertEqual(
            [json.loads(line[3:])["message"] for line in lines], ["at 192.0.2.7:1"] * 5
        )

    def test_other_stream(self):
        """
        A C{JOURNAL_STREAM} naming another stream (the unit's, where a
        shell redirected ours) adds no priority.
        """
        status = os.fstat(self.stream.fileno())
        lines = self._lines({"JOURNAL_STREAM": f"{status.st_dev}:{status.st_ino + 1}"})
        self.assertEqual(json.loads(lines[0])["level"], "debug")

    def test_no_journal(self):
        """
        Without C{JOURNAL_STREAM}, or on a stream with no file, there is no
        priority.
        """
        self.assertEqual(json.loads(self._lines({})[0])["level"], "debug")
        self.assertFalse(logformat.is_journal(io.StringIO(), self.journal))


class TextTests(SynchronousTestCase):
    def test_text_on_terminal(self):
        """
        On a terminal the event is written as text a person reads.
        """
        output = _write(
            _Terminal(),
            lambda log: log.info("granted {user} from {where}", user="alice", where="jack\n17"),
        )
        self.assertIn("[suto.test#info] granted alice from jack\n\t17\n", output)
        self.assertFalse(output.startswith("{"))

    def test_readable(self):
        """
        The text shows addresses, bytes and times as the JSON does, never a
        repr or an epoch float.
        """
        output = _write(_Terminal(), _connection)
        self.assertIn(
            "[suto.test#info] alice from 192.0.2.7:40123 to [2001:db8::1]:4433 over "
            "unix:/run/suto/admin.sock at 2026-12-05T08:56:00.123Z: 14 bytes\n",
            output,
        )
        for mark in REPRS + (str(WHEN + 60),):
            self.assertNotIn(mark, output)

    def test_failure(self):
        """
        A failure's traceback follows its message.
        """

        output = _write(_Terminal(), _failure)
        self.assertIn("[suto.test#critical] checking alice failed\n", output)
        self.assertIn("KeyError: 'alice'", output)


class AddressTextTests(SynchronousTestCase):
    def test_kinds(self):
        """
        Each kind of address is written as an operator writes it; an
        unnamed UNIX socket as C{unix:}; a kind with no location by its
        type's name.
        """
        for address, text in [
            (IPv4Address("UDP", "192.0.2.7", 53), "192.0.2.7:53"),
            (IPv6Address("TCP", "::ffff:192.0.2.7", 443), "[::ffff:192.0.2.7]:443"),
            (UNIXAddress("/run/x.sock"), "unix:/run/x.sock"),
            (UNIXAddress(None), "unix:"),
            (HostnameAddress(b"suto.example", 4433), "suto.example:4433"),
            (_ProcessAddress(), "_ProcessAddress"),
        ]:
            with self.subTest(text):
                self.assertEqual(logformat.address_text(address), text)

    def test_rfc3339(self):
        """
        A POSIX time is written in UTC, to the millisecond, with C{Z}.
        """
        self.assertEqual(logformat.rfc3339(WHEN), "2026-12-05T08:55:00.123Z")
        self.assertEqual(logformat.rfc3339(0), "1970-01-01T00:00:00.000Z")


class FactoryTests(SynchronousTestCase):
    def test_standard_output(self):
        """
        Called without a stream, as twistd calls a C{--logger} factory, the
        observer writes to standard output as it is at that moment.
        """
        stream = io.StringIO()
        self.patch(sys, "stdout", stream)
        Logger(namespace="suto.test", observer=logformat.observer()).info("up")
        self.assertEqual(json.loads(stream.getvalue())["message"], "up")

    def test_named(self):
        """
        The name the systemd units give twistd's C{--logger} resolves to
        this factory.
        """
        self.assertIs(
            namedAny("suto_server.core.logformat.observer"), logformat.observer
        )
