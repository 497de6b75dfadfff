"""
Tests for the alert sinks: the structured log, the JSON-lines file, the
webhook (against a real twisted.web server on loopback, its retry delays
on a L{Clock}) and syslog (to a loopback UDP port and a UNIX datagram
socket).
"""

import json
import os
import stat

from twisted.internet import defer, reactor
from twisted.internet.defer import Deferred, DeferredQueue
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.protocol import DatagramProtocol
from twisted.internet.task import Clock
from twisted.logger import LogLevel, capturedLogs, eventAsJSON, formatEvent
from twisted.python import usage
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web import resource, server
from twisted.web.client import Agent
from twisted.web.iweb import IAgent
from zope.interface import implementer
from zope.interface.verify import verifyObject

from suto_server import tap
from suto_server.audit.alerts import Alert
from suto_server.audit.interfaces import IAlertSink
from suto_server.audit.log import AuditLog
from suto_server.audit.sinks import alert_sinks
from suto_server.audit.sinks.jsonfile import JsonFileSink
from suto_server.audit.sinks.log import LogSink
from suto_server.audit.sinks.syslog import (
    SyslogAddress,
    SyslogAddressError,
    SyslogSink,
    format_message,
    parse_address,
)
from suto_server.audit.sinks.webhook import WebhookSink, WebhookURLError, check_url
from suto_server.datafolder import DATABASE_FILE
from suto_server.store.memory import MemoryStore
from tests.support.folders import socket_folder

NOW = 1_700_000_000.25

ALERT = Alert(
    type="clone_suspected",
    time=NOW,
    profile="alice",
    locations=("10.9.0.4", "10.2.3.17 (bldg2-f3-jack17)"),
    reason="the client answered at its old location",
    source="10.9.0.4",
)


def numbered_alert(number):
    """
    @return: an alert telling itself apart by its reason.
    """
    return Alert("rate_limited", NOW + number, None, (), f"alert {number}", None)


def errors(logged):
    """
    @return: the events of C{logged} at level error or above.
    """
    return [
        event
        for event in logged
        if event["log_level"] in (LogLevel.error, LogLevel.critical)
    ]


class LogSinkTests(SynchronousTestCase):
    """
    L{LogSink} turns alerts into structured warnings.
    """

    def test_interface(self):
        """
        L{LogSink} provides L{IAlertSink}.
        """
        self.assertTrue(verifyObject(IAlertSink, LogSink()))

    def test_warning(self):
        """
        An alert is one warning whose fields name its parts and hold its
        JSON, which reads as one line and serialises as one JSON object.
        """
        with capturedLogs() as logged:
            self.assertIsNone(LogSink().deliver(ALERT))
        [event] = logged
        self.assertEqual(event["log_level"], LogLevel.warn)
        self.assertEqual(event["alert"], ALERT.to_json())
        self.assertEqual(
            formatEvent(event),
            "alert clone_suspected for alice from 10.9.0.4 at 10.9.0.4, "
            "10.2.3.17 (bldg2-f3-jack17): the client answered at its old "
            "location",
        )
        self.assertEqual(json.loads(eventAsJSON(event))["alert"], ALERT.to_json())

    def test_absent_parts(self):
        """
        An alert with no profile, source or location shows dashes.
        """
        with capturedLogs() as logged:
            LogSink().deliver(numbered_alert(1))
        self.assertEqual(
            formatEvent(logged[0]), "alert rate_limited for - from - at -: alert 1"
        )


class JsonFileSinkTests(SynchronousTestCase):
    """
    L{JsonFileSink} appends one JSON line per alert.
    """

    def setUp(self):
        self.directory = self.mktemp()
        os.makedirs(self.directory)
        self.path = os.path.join(self.directory, "alerts.jsonl")

    def lines(self):
        with open(self.path, encoding="utf-8") as handle:
            return handle.read().splitlines()

    def test_interface(self):
        """
        L{JsonFileSink} provides L{IAlertSink}.
        """
        self.assertTrue(verifyObject(IAlertSink, JsonFileSink(self.path)))

    def test_lines(self):
        """
        Each alert is one line holding its JSON, in the order delivered,
        in a file of mode 0600.
        """
        sink = JsonFileSink(self.path)
        self.assertIsNone(sink.deliver(ALERT))
        sink.deliver(numbered_alert(2))
        self.assertEqual(
            [json.loads(line) for line in self.lines()],
            [ALERT.to_json(), numbered_alert(2).to_json()],
        )
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o600)

    def test_appends(self):
        """
        An existing file is appended to, and a file moved away (by log
        rotation) is followed by a new one at the path.
        """
        with open(self.path, "w", encoding="utf-8") as handle:
            handle.write("earlier\n")
        sink = JsonFileSink(self.path)
        sink.deliver(ALERT)
        self.assertEqual(self.lines()[0], "earlier")
        self.assertEqual(json.loads(self.lines()[1]), ALERT.to_json())
        os.rename(self.path, self.path + ".1")
        sink.deliver(numbered_alert(3))
        self.assertEqual(
            [json.loads(line) for line in self.lines()],
            [numbered_alert(3).to_json()],
        )

    def test_check(self):
        """
        C{check} creates the file (mode 0600) and writes nothing into it,
        or raises L{OSError} naming a path it cannot append to.
        """
        JsonFileSink(self.path).check()
        self.assertEqual(self.lines(), [])
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o600)
        absent = os.path.join(self.directory, "absent", "a.jsonl")
        error = self.assertRaises(OSError, JsonFileSink(absent).check)
        self.assertEqual(error.filename, absent)

    def test_unwritable(self):
        """
        A file that cannot be written is logged; the alert is dropped and
        nothing is raised.
        """
        sink = JsonFileSink(os.path.join(self.directory, "absent", "a.jsonl"))
        with capturedLogs() as logged:
            self.assertIsNone(sink.deliver(ALERT))
        [failure] = [event for event in logged if "log_failure" in event]
        self.assertEqual(failure["alert_type"], "clone_suspected")
        self.assertEqual(len(self.flushLoggedErrors(FileNotFoundError)), 1)


class Hook(resource.Resource):
    """
    A webhook endpoint: keeps each body POSTed to it and answers with the
    next status of C{answers}, then 200.
    """

    isLeaf = True

    def __init__(self, answers=()):
        super().__init__()
        self.received = DeferredQueue()
        self._answers = list(answers)

    def render_POST(self, request):
        self.received.put(
            (request.getHeader(b"content-type"), json.loads(request.content.read()))
        )
        request.setResponseCode(self._answers.pop(0) if self._answers else 200)
        return b"ok"


@implementer(IAgent)
class WatchedAgent:
    """
    An agent that says when each of its requests is over, on a later turn
    of the reactor, so that the sink has handled the outcome by then.
    """

    def __init__(self, agent):
        self._agent = agent
        self.finished = DeferredQueue()

    def request(self, method, uri, headers=None, bodyProducer=None):
        def over(result):
            outcome = "failed" if isinstance(result, Failure) else "answered"
            reactor.callLater(0, self.finished.put, outcome)
            return result

        return self._agent.request(method, uri, headers, bodyProducer).addBoth(over)


@implementer(IAgent)
class ScriptedAgent:
    """
    An agent that records when each request is made and answers it with
    what C{answer} returns.
    """

    def __init__(self, clock, answer):
        self._clock = clock
        self._answer = answer
        self.requests = []

    def request(self, method, uri, headers=None, bodyProducer=None):
        self.requests.append(self._clock.seconds())
        return self._answer()


@implementer(IAlertSink)
class KeptResults:
    """
    Passes alerts on to C{sink}, keeping what its C{deliver} returned.
    """

    def __init__(self, sink):
        self._sink = sink
        self.results = []

    def deliver(self, alert):
        result = self._sink.deliver(alert)
        self.results.append(result)
        return result


class WebhookTests(TestCase):
    """
    L{WebhookSink} against a real twisted.web server on loopback; its
    delays and timeouts run on a L{Clock}.
    """

    timeout = 30

    def setUp(self):
        self.clock = Clock()

    def serve(self, hook, number=0):
        """
        Serve C{hook} on loopback port C{number} until the test ends.

        @return: the port number.
        """
        port = reactor.listenTCP(number, server.Site(hook), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        return port.getHost().port

    @defer.inlineCallbacks
    def free_port(self):
        """
        @return: a L{Deferred} firing with a loopback port number nothing
            listens on.
        """
        port = reactor.listenTCP(0, server.Site(Hook()), interface="127.0.0.1")
        number = port.getHost().port
        yield port.stopListening()
        return number

    def test_interface(self):
        """
        L{WebhookSink} provides L{IAlertSink}.
        """
        sink = WebhookSink("http://127.0.0.1:9/", Agent(reactor), self.clock)
        self.assertTrue(verifyObject(IAlertSink, sink))

    @defer.inlineCallbacks
    def test_delivered(self):
        """
        Alerts are POSTed as their JSON, one after the other in the order
        delivered, and each delivery fires with L{True}.
        """
        hook = Hook()
        number = self.serve(hook)
        sink = WebhookSink(
            f"http://127.0.0.1:{number}/alerts", Agent(reactor), self.clock
        )
        alerts = [ALERT, numbered_alert(1), numbered_alert(2)]
        delivered = yield defer.gatherResults([sink.deliver(a) for a in alerts])
        self.assertEqual(delivered, [True, True, True])
        received = []
        for _ in alerts:
            received.append((yield hook.received.get()))
        self.assertEqual(
            received,
            [(b"application/json; charset=UTF-8", a.to_json()) for a in alerts],
        )
        self.assertEqual(sink.queued, 0)

    @defer.inlineCallbacks
    def test_server_down_then_up(self):
        """
        While the server is down, attempts fail and are retried after 2s,
        then 4s; once it is up the alert is delivered.  The audit log
        recorded the event and returned at once, before any attempt was
        over.
        """
        number = yield self.free_port()
        agent = WatchedAgent(Agent(reactor))
        webhook = WebhookSink(
            f"http://127.0.0.1:{number}/alerts", agent, self.clock, first_delay=2
        )
        kept = KeptResults(webhook)
        store = MemoryStore()
        result = AuditLog(store, [kept]).record(
            NOW,
            "clone_suspected",
            "alice",
            "10.9.0.4",
            "the client answered at its old location",
            ("10.9.0.4", "10.2.3.17 (bldg2-f3-jack17)"),
        )
        self.assertIsNone(result)
        self.assertEqual(len(store.audit_events()), 1)
        self.assertEqual(webhook.queued, 1)
        self.assertNoResult(kept.results[0])

        self.assertEqual((yield agent.finished.get()), "failed")
        self.assertEqual([call.getTime() for call in self.clock.getDelayedCalls()], [2])
        self.clock.advance(2)
        self.assertEqual((yield agent.finished.get()), "failed")
        self.assertEqual([call.getTime() for call in self.clock.getDelayedCalls()], [6])

        hook = Hook()
        self.serve(hook, number)
        self.clock.advance(4)
        self.assertEqual((yield kept.results[0]), True)
        _, body = yield hook.received.get()
        self.assertEqual(body, ALERT.to_json())
        self.assertEqual(webhook.queued, 0)

    @defer.inlineCallbacks
    def test_error_status_retried(self):
        """
        An answer other than 2xx counts as a failed attempt and is retried.
        """
        hook = Hook(answers=[503])
        number = self.serve(hook)
        agent = WatchedAgent(Agent(reactor))
        sink = WebhookSink(
            f"http://127.0.0.1:{number}/alerts", agent, self.clock, first_delay=2
        )
        with capturedLogs() as logged:
            delivered = sink.deliver(ALERT)
            self.assertEqual((yield agent.finished.get()), "answered")
            yield hook.received.get()
            self.assertNoResult(delivered)
            self.clock.advance(2)
            self.assertEqual((yield delivered), True)
        [warning] = [e for e in logged if e["log_level"] is LogLevel.warn]
        self.assertEqual((warning["why"], warning["delay"]), ("answered 503", 2))


class WebhookRetryTests(SynchronousTestCase):
    """
    L{WebhookSink}'s backoff, timeout and queue cap, with agents that
    fail or never answer.
    """

    def setUp(self):
        self.clock = Clock()

    def sink(self, answer, **options):
        self.agent = ScriptedAgent(self.clock, answer)
        return WebhookSink(
            "https://hooks.example/alerts", self.agent, self.clock, **options
        )

    def test_gives_up(self):
        """
        Failed attempts are retried with delays that double from the
        first; after the last attempt the alert is dropped, logged, and
        its delivery fires with L{False}.
        """
        sink = self.sink(lambda: defer.fail(ConnectionRefusedError()), first_delay=2)
        with capturedLogs() as logged:
            delivered = sink.deliver(ALERT)
            self.clock.pump([1] * 40)
        self.assertEqual(self.agent.requests, [0, 2, 6, 14, 30])
        self.assertIs(self.successResultOf(delivered), False)
        [error] = errors(logged)
        self.assertEqual(
            (error["attempts"], error["alert_type"]), (5, "clone_suspected")
        )
        self.assertEqual(sink.queued, 0)

    def test_longest_delay(self):
        """
        The delay between attempts stops growing at C{max_delay}.
        """
        sink = self.sink(
            lambda: defer.fail(ConnectionRefusedError()),
            first_delay=100,
            max_delay=150,
            attempts=4,
        )
        sink.deliver(ALERT)
        self.clock.pump([50] * 10)
        self.assertEqual(self.agent.requests, [0, 100, 250, 400])

    def test_timeout(self):
        """
        An attempt with no answer is cancelled after C{timeout} seconds
        (its request's L{Deferred} is cancelled, so no connection is left
        hanging) and retried after the first delay.
        """
        cancelled = []

        def hang():
            return Deferred(lambda _: cancelled.append(self.clock.seconds()))

        sink = self.sink(hang, first_delay=2, timeout=10)
        delivered = sink.deliver(ALERT)
        self.clock.advance(9)
        self.assertEqual((self.agent.requests, cancelled), ([0], []))
        self.clock.advance(1)
        self.assertEqual(
            (
                self.agent.requests,
                cancelled,
                [call.getTime() for call in self.clock.getDelayedCalls()],
            ),
            ([0], [10], [12]),
        )
        self.clock.advance(2)
        self.assertEqual((self.agent.requests, cancelled), ([0, 12], [10]))
        self.assertNoResult(delivered)

    def test_next_after_dropped(self):
        """
        Once an alert is dropped, the next one waiting is tried.
        """
        sink = self.sink(
            lambda: defer.fail(ConnectionRefusedError()), attempts=1
        )
        first = sink.deliver(ALERT)
        second = sink.deliver(numbered_alert(1))
        self.assertEqual(
            (self.successResultOf(first), self.successResultOf(second)),
            (False, False),
        )
        self.assertEqual(self.agent.requests, [0, 0])

    def test_queue_cap(self):
        """
        While the endpoint does not answer, at most C{max_queued} alerts
        wait; newer ones are dropped at once, and logged.
        """
        sink = self.sink(Deferred, max_queued=3)
        with capturedLogs() as logged:
            waiting = [sink.deliver(numbered_alert(n)) for n in range(3)]
            dropped = [sink.deliver(numbered_alert(n)) for n in range(3, 5)]
        for d in waiting:
            self.assertNoResult(d)
        self.assertEqual([self.successResultOf(d) for d in dropped], [False, False])
        self.assertEqual(sink.queued, 3)
        self.assertEqual(
            [event["alert_type"] for event in errors(logged)],
            ["rate_limited", "rate_limited"],
        )
        self.assertEqual(self.agent.requests, [0])

    def test_audit_log_unaffected(self):
        """
        The audit log records an alert and returns at once while the
        webhook waits for an answer that does not come.
        """
        store = MemoryStore()
        sink = self.sink(Deferred)
        AuditLog(store, [sink]).record(NOW, "blacklisted", "alice", None, "by IT")
        self.assertEqual([e.event for e in store.audit_events()], ["blacklisted"])
        self.assertEqual(sink.queued, 1)


class CheckURLTests(SynchronousTestCase):
    """
    L{check_url} accepts only absolute http and https URLs.
    """

    def test_accepted(self):
        """
        http and https URLs with a host, with or without a port and path.
        """
        for url in [
            "http://127.0.0.1/",
            "https://hooks.example/services/T0/B0?x=1",
            "http://[::1]:8080/alerts",
        ]:
            self.assertEqual(check_url(url), url)

    def test_refused(self):
        """
        Other schemes, no host, bad ports, spaces, control characters,
        non-ASCII, overlong or non-string values raise L{WebhookURLError}.
        """
        for url in [
            "ftp://hooks.example/",
            "hooks.example/alerts",
            "http://",
            "https:///path",
            "http://hooks.example:99999/",
            "http://hooks.example/a b",
            "http://hooks.example/\n",
            "http://h\u00e9.example/",
            "http://hooks.example/" + "a" * 2048,
            "",
            None,
            b"http://hooks.example/",
        ]:
            self.assertRaises(WebhookURLError, check_url, url)


class Receiver(DatagramProtocol):
    """
    Keeps every datagram received.
    """

    def __init__(self):
        self.datagrams = DeferredQueue()

    def datagramReceived(self, datagram, address=None):
        self.datagrams.put(datagram)


class SyslogAddressTests(SynchronousTestCase):
    """
    L{parse_address} reads the C{--alert-syslog} forms.
    """

    def test_accepted(self):
        """
        C{unix:PATH} and C{udp:HOST:PORT}, with an IPv6 host in brackets;
        L{SyslogAddress.describe} gives them back.
        """
        for text, address in [
            ("unix:/dev/log", SyslogAddress(path="/dev/log")),
            ("udp:127.0.0.1:514", SyslogAddress(host="127.0.0.1", port=514)),
            ("udp:[::1]:5514", SyslogAddress(host="::1", port=5514)),
        ]:
            self.assertEqual(parse_address(text), address)
            self.assertEqual(address.describe(), text)

    def test_refused(self):
        """
        Anything else raises L{SyslogAddressError}.
        """
        for text in [
            "",
            "/dev/log",
            "unix:dev/log",
            "unix:/dev/\nlog",
            "tcp:127.0.0.1:514",
            "udp:127.0.0.1",
            "udp:localhost:514",
            "udp:127.0.0.1:0",
            "udp:127.0.0.1:65536",
            "udp:127.0.0.1:+514",
        ]:
            self.assertRaises(SyslogAddressError, parse_address, text)


class SyslogFormatTests(SynchronousTestCase):
    """
    L{format_message} writes RFC 5424.
    """

    def test_message(self):
        """
        Facility auth, severity warning, version 1, the time in UTC to the
        microsecond, host, C{suto}, the process id, the alert type as
        MSGID, no structured data, and the alert's JSON.
        """
        message = format_message(ALERT, "suto-host", 4242)
        header, body = message.split(b" - ", 1)
        self.assertEqual(
            header,
            b"<36>1 2023-11-14T22:13:20.250000Z suto-host suto 4242 "
            b"clone_suspected",
        )
        self.assertEqual(json.loads(body), ALERT.to_json())

    def test_bad_hostname(self):
        """
        A host name RFC 5424 does not allow is sent as C{-}.
        """
        for name in ["", "two words", "h\u00f6st", "x" * 256]:
            self.assertIn(b" - suto 1 ", format_message(ALERT, name, 1))

    def test_ascii(self):
        """
        A reason outside ASCII is escaped in the JSON, so the message is
        ASCII.
        """
        alert = Alert("blacklisted", NOW, "alice", (), "caf\u00e9", None)
        message = format_message(alert, "h", 1)
        self.assertTrue(message.isascii())
        self.assertEqual(
            json.loads(message.split(b" - ", 1)[1])["reason"], "caf\u00e9"
        )


class SyslogSinkTests(TestCase):
    """
    L{SyslogSink} sends datagrams to real loopback sockets.
    """

    timeout = 30

    def start(self, address):
        sink = SyslogSink(reactor, address, hostname="suto-test")
        sink.startService()
        self.addCleanup(sink.stopService)
        return sink

    def test_interface(self):
        """
        L{SyslogSink} provides L{IAlertSink}.
        """
        sink = SyslogSink(reactor, parse_address("unix:/dev/log"))
        self.assertTrue(verifyObject(IAlertSink, sink))

    @defer.inlineCallbacks
    def test_udp(self):
        """
        An alert arrives at a UDP collector as one RFC 5424 datagram.
        """
        receiver = Receiver()
        port = reactor.listenUDP(0, receiver, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        sink = self.start(parse_address(f"udp:127.0.0.1:{port.getHost().port}"))
        self.assertIsNone(sink.deliver(ALERT))
        datagram = yield receiver.datagrams.get()
        self.assertEqual(datagram, format_message(ALERT, "suto-test", os.getpid()))

    @defer.inlineCallbacks
    def test_unix(self):
        """
        An alert arrives at a UNIX datagram socket (as C{/dev/log} is) as
        one RFC 5424 datagram.
        """
        path = os.path.join(socket_folder(self, "suto-syslog-"), "log")
        receiver = Receiver()
        port = reactor.listenUNIXDatagram(path, receiver)
        self.addCleanup(port.stopListening)
        sink = self.start(parse_address(f"unix:{path}"))
        sink.deliver(ALERT)
        datagram = yield receiver.datagrams.get()
        self.assertEqual(datagram, format_message(ALERT, "suto-test", os.getpid()))

    def test_no_daemon(self):
        """
        When nothing listens at the socket's path, the alert is dropped and
        logged; nothing is raised.
        """
        path = os.path.join(socket_folder(self, "suto-syslog-"), "log")
        sink = self.start(SyslogAddress(path=path))
        with capturedLogs() as logged:
            self.assertIsNone(sink.deliver(ALERT))
        [failure] = [event for event in logged if "log_failure" in event]
        self.assertEqual(failure["alert_type"], "clone_suspected")
        self.assertEqual(len(self.flushLoggedErrors(FileNotFoundError)), 1)

    def test_not_running(self):
        """
        Before the service starts there is no socket: the alert is dropped
        and logged, and nothing is raised.
        """
        sink = SyslogSink(reactor, parse_address("udp:127.0.0.1:9"))
        with capturedLogs() as logged:
            self.assertIsNone(sink.deliver(ALERT))
        [error] = errors(logged)
        self.assertEqual(error["address"], "udp:127.0.0.1:9")


class OptionsTests(SynchronousTestCase):
    """
    C{twistd suto --alert-file}, C{--alert-webhook} and C{--alert-syslog}
    configure the sinks besides the structured log.
    """

    def sinks(self, *argv):
        options = tap.Options()
        options.parseOptions(list(argv))
        return alert_sinks(
            reactor,
            file=options["alert-file"],
            webhook=options["alert-webhook"],
            syslog=options["alert-syslog"],
        )

    def test_none(self):
        """
        Without the options there is no sink besides the structured log.
        """
        self.assertEqual(self.sinks(), [])

    def test_all(self):
        """
        Each option adds its sink, all of them together.
        """
        file_sink, webhook, syslog = self.sinks(
            "--alert-file",
            "alerts.jsonl",
            "--alert-webhook",
            "https://hooks.example/alerts",
            "--alert-syslog",
            "udp:127.0.0.1:514",
        )
        self.assertIsInstance(file_sink, JsonFileSink)
        self.assertIsInstance(webhook, WebhookSink)
        self.assertIsInstance(syslog, SyslogSink)

    def test_file_path_absolute(self):
        """
        The alert file is written where it was named from, wherever the
        daemon's working directory goes later.
        """
        directory = os.path.abspath(self.mktemp())
        os.makedirs(directory)
        cwd = os.getcwd()
        os.chdir(directory)
        try:
            [sink] = self.sinks("--alert-file", "alerts.jsonl")
        finally:
            os.chdir(cwd)
        sink.deliver(ALERT)
        self.assertTrue(os.path.exists(os.path.join(directory, "alerts.jsonl")))

    def test_unwritable_file_stops_start(self):
        """
        An alert file the server cannot append to stops it at start with
        one line naming the file, instead of losing every alert later.
        """
        data = self.mktemp()
        absent = os.path.abspath(os.path.join(self.mktemp(), "alerts.jsonl"))
        options = tap.Options()
        options.parseOptions(["--data", data, "--alert-file", absent])
        error = self.assertRaises(SystemExit, tap.makeService, options)
        self.assertTrue(error.code.startswith("suto: cannot start: "), error.code)
        self.assertIn(absent, error.code)
        self.assertFalse(os.path.exists(os.path.join(data, DATABASE_FILE)))

    def test_invalid(self):
        """
        A webhook that is not an http(s) URL, or a syslog address of
        another form, is a usage error.
        """
        for argv in [
            ["--alert-webhook", "ftp://hooks.example/"],
            ["--alert-syslog", "tcp:127.0.0.1:514"],
        ]:
            self.assertRaises(usage.UsageError, tap.Options().parseOptions, argv)
