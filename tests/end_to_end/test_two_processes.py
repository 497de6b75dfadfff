# -*- test-case-name: tests.end_to_end.test_two_processes -*-
"""
End to end over real loopback sockets: two servers sharing one store on
a real PostgreSQL server (L{tests.support.postgres}), as two processes
of a site do, and the endpoint agent.  A classic authentication asked of
one server is answered by the device connecting to the other; one of
the two leads.  First with both servers built in this process from their
options exactly as C{twistd suto} builds them (their insides at hand),
then with two real C{twistd suto} processes, asked through
C{suto-admin auth}.
"""

import datetime
import os
import re
import sys
import time

from twisted.internet import defer, protocol, reactor
from twisted.internet.endpoints import quoteStringArgument
from twisted.trial.unittest import TestCase

from suto_client.agent import Agent
from suto_client.classic_machine import Outcome
from suto_client.state import Account, ClientState
from suto_client.statefile import save_state
from suto_server import tap
from suto_server.core import schemes
from suto_server.net import certificate
from suto_server.net.discovery import parse_targets
from suto_server.rules.offline import OfflineWatch
from suto_server.rules.rendezvous import Verdict
from suto_server.store.postgres import PostgresStore
from tests.support.admin import run_admin_in_thread
from tests.support.folders import socket_folder
from tests.support.masterkeys import new_master_key, share_master_key
from tests.support.postgres import new_location

PASSWORD = "alice's secret"

#: Seconds any one awaited event may take.
WAIT = 15


class _SharedStore:
    """
    The shared store with alice's account, server data folders with
    their certificates, and the agent; mixed into the test cases.
    """

    timeout = 60

    def setUp(self):
        self.location = new_location(self)
        # One deployment: its processes share the master key.
        self.master = new_master_key(socket_folder(self, "suto-key-"))
        store = PostgresStore.open(self.location)
        store.add_user(
            "alice", schemes.hash_password(PASSWORD, "sha512_crypt"), time.time()
        )
        store.close()
        self.state_path = os.path.join(socket_folder(self, "suto-agent-"), "state.json")
        self.agent = Agent(
            reactor, self.state_path, hello_endpoint_port=0, hello_interface="127.0.0.1"
        )
        self.results = defer.DeferredQueue()
        self.agent.add_observer(lambda user, result: self.results.put(result))

    def data_folder(self, prefix, listen="ssl:0", files=None):
        """
        Make a server's data folder and its certificate.

        @param listen: the TLS listener, but for its interface and files.
        @param files: the key and certificate files to serve, when not the
            folder's own.
        @return: the folder, the server's arguments besides it, and the
            certificate's fingerprint.
        """
        data = socket_folder(self, prefix)
        share_master_key(self.master, data)
        key, cert, _ = files or certificate.ensure_self_signed(
            data, "localhost", datetime.datetime.now(datetime.timezone.utc)
        )
        with open(cert, "rb") as handle:
            pin = certificate.describe(handle.read()).fingerprint
        arguments = [
            "--data", data,
            "--store", self.location,
            "--listen",
            f"{listen}:interface=127.0.0.1:privateKey={quoteStringArgument(key)}"
            f":certKey={quoteStringArgument(cert)}",
            "--hello-port", "9",
            "--auth-timeout", "10",
        ]  # fmt: skip
        return data, arguments, pin

    def device_reaches(self, port, pin):
        """
        The agent's account names the server listening on C{port}.
        """
        self.account = dict(
            user="alice",
            server_host="127.0.0.1",
            server_port=port,
            pin=pin.replace(":", "").lower(),
        )

    def start_agent(self, password):
        save_state(
            self.state_path,
            ClientState(accounts={"alice": Account(**self.account, password=password)}),
        )
        self.agent.startService()
        self.addCleanup(self.agent.stopService)


class TwoServersTests(_SharedStore, TestCase):
    """
    Two servers built in this process, as C{twistd suto} builds them.
    """

    @defer.inlineCallbacks
    def setUp(self):
        super().setUp()
        self.asked, _ = yield self.start_server("suto-asked-")
        self.reached, port = yield self.start_server("suto-reached-")
        self.device_reaches(port, self.reached_pin)
        # Both hear each other's requests from now on.
        yield defer.gatherResults(
            [self.asked.relay.meet(1), self.reached.relay.meet(1)]
        ).addTimeout(WAIT, reactor)

    @defer.inlineCallbacks
    def start_server(self, prefix):
        """
        Start a server on the shared store with a data folder of its own.

        @return: a L{Deferred} firing with the server and its TLS port.
        """
        _, arguments, self.reached_pin = self.data_folder(prefix)
        options = tap.Options()
        options.parseOptions(arguments)
        server = tap.makeService(options)
        server.startService()
        self.addCleanup(server.stopService)
        port = yield server.listeners[0].listening
        return server, port.getHost().port

    def authenticate(self):
        """
        Ask the first server to authenticate alice at the agent, whose
        account names the second server.
        """
        targets = parse_targets(f"127.0.0.1:{self.agent.hello_port}")
        return defer.Deferred.fromCoroutine(
            self.asked.authenticator.authenticate("alice", targets)
        ).addTimeout(WAIT, reactor)

    @defer.inlineCallbacks
    def audited(self):
        """
        The authentication events of the shared audit log, once both
        servers wrote what they recorded.
        """
        yield defer.gatherResults(
            [self.asked.audit.flushed(), self.reached.audit.flushed()]
        )
        return [
            (e.event, e.username, e.source)
            for e in self.asked.store.audit_events()
            if e.event.startswith("authentication")
        ]

    @defer.inlineCallbacks
    def test_answered_through_other(self):
        """
        The device connects to the other server, which runs the challenge:
        the server asked learns the device proved the password, and the
        shared audit log records it once.
        """
        self.start_agent(PASSWORD)
        outcome = yield self.authenticate()
        self.assertEqual(
            (outcome.verdict, outcome.source), (Verdict.ACCEPTED, "127.0.0.1")
        )
        result = yield self.results.get().addTimeout(WAIT, reactor)
        self.assertEqual(result.outcome, Outcome.ACCEPTED)
        self.assertEqual(
            (yield self.audited()),
            [("authentication_accepted", "alice", "127.0.0.1")],
        )
        self.assertEqual(self.asked.rendezvous.pending, ())

    @defer.inlineCallbacks
    def test_rejected_through_other(self):
        """
        A wrong password given to the other server is a rejection for the
        server asked.
        """
        self.start_agent("guess")
        outcome = yield self.authenticate()
        self.assertEqual(outcome.verdict, Verdict.REJECTED)
        self.assertEqual(
            (yield self.audited()),
            [("authentication_rejected", "alice", "127.0.0.1")],
        )

    @defer.inlineCallbacks
    def test_one_leads(self):
        """
        Of the two servers, one runs the once-only jobs: the offline
        sweep runs there only.
        """
        servers = (self.asked, self.reached)
        yield defer.gatherResults([server.leadership.attempt() for server in servers])
        self.assertEqual(
            sorted(server.leadership.leading for server in servers), [False, True]
        )
        for server in servers:
            [sweep] = [
                job for job in server.leadership.jobs if isinstance(job, OfflineWatch)
            ]
            self.assertEqual(bool(sweep.running), server.leadership.leading)


class _Daemon(protocol.ProcessProtocol):
    """
    A C{twistd suto} process: fires C{ready} with its TLS port once its
    log says it listens there and hears the other processes, C{met} once
    it heard from another, and C{ended} when it exits.
    """

    _LISTENING = re.compile(rb"listening on 127\.0\.0\.1:(\d+)")
    _HEARING = b"hearing the other server processes"
    _MET = b"heard from another server process"

    def __init__(self):
        self.ready = defer.Deferred()
        self.met = defer.Deferred()
        self.ended = defer.Deferred()
        self.output = b""

    def outReceived(self, data):
        self.output += data
        found = self._LISTENING.search(self.output)
        if found and self._HEARING in self.output and not self.ready.called:
            self.ready.callback(int(found.group(1)))
        if self._MET in self.output and not self.met.called:
            self.met.callback(None)

    errReceived = outReceived

    def processEnded(self, reason):
        self.ended.callback(None)


class TwoProcessesTests(_SharedStore, TestCase):
    """
    Two real C{twistd suto} processes.
    """

    def setUp(self):
        super().setUp()
        self.daemons = []

    def met(self):
        """
        @return: a L{Deferred} firing once every daemon heard from
            another: each serves the other's requests from then on.
        """
        return defer.gatherResults([d.met for d in self.daemons]).addTimeout(
            WAIT, reactor
        )

    @defer.inlineCallbacks
    def start_daemon(self, prefix, listen="ssl:0", files=None):
        """
        Start C{twistd suto} on the shared store with a data folder of its
        own, and stop it after the test.

        @param listen: see L{_SharedStore.data_folder}, as C{files}.
        @return: a L{Deferred} firing with its data folder, TLS port and
            certificate's fingerprint.
        """
        data, arguments, pin = self.data_folder(prefix, listen, files)
        daemon = _Daemon()
        process = reactor.spawnProcess(
            daemon,
            sys.executable,
            [
                sys.executable, "-c", "from twisted.scripts.twistd import run; run()",
                "--nodaemon", "--pidfile=", "suto", *arguments,
            ],  # fmt: skip
            env=os.environ,
            path=data,
        )

        def stop():
            if not daemon.ended.called:
                process.signalProcess("TERM")
            return daemon.ended

        self.addCleanup(stop)
        self.daemons.append(daemon)
        port = yield daemon.ready.addTimeout(WAIT, reactor)
        return data, port, pin

    @defer.inlineCallbacks
    def test_asked_of_one_answered_by_other(self):
        """
        C{suto-admin auth} asks one process; the device connects to the
        other, which runs the challenge: the command reports the device
        proved the password, and the shared audit log records it once.
        """
        asked, _, _ = yield self.start_daemon("suto-asked-")
        _, port, pin = yield self.start_daemon("suto-reached-")
        yield self.met()
        self.device_reaches(port, pin)
        self.start_agent(PASSWORD)
        code, out, err = yield run_admin_in_thread(
            asked, "auth", "alice",
            "--target", f"127.0.0.1:{self.agent.hello_port}", "--timeout", "10",
        )  # fmt: skip
        self.assertEqual(code, 0, err)
        self.assertIn("accepted", out)
        result = yield self.results.get().addTimeout(WAIT, reactor)
        self.assertEqual(result.outcome, Outcome.ACCEPTED)

    @defer.inlineCallbacks
    def test_one_port(self):
        """
        Two processes sharing one TLS port (C{reusePort=yes}) and one
        certificate: authentications asked of one succeed whichever
        process the kernel hands each of the device's connections.
        """
        asked, port, pin = yield self.start_daemon(
            "suto-asked-", "ssl:0:reusePort=yes"
        )
        # The first process's files, which it generated.
        files = certificate.ensure_self_signed(asked, "localhost", None)
        _, same, _ = yield self.start_daemon(
            "suto-reached-", f"ssl:{port}:reusePort=yes", files
        )
        self.assertEqual(same, port)
        yield self.met()
        self.device_reaches(port, pin)
        self.start_agent(PASSWORD)
        for _ in range(4):
            code, out, err = yield run_admin_in_thread(
                asked, "auth", "alice",
                "--target", f"127.0.0.1:{self.agent.hello_port}", "--timeout", "10",
            )  # fmt: skip
            self.assertEqual(code, 0, out + err)
            result = yield self.results.get().addTimeout(WAIT, reactor)
            self.assertEqual(result.outcome, Outcome.ACCEPTED)
