"""
The real daemon on loopback, with the endpoint's clients pointed at it.

L{EnrollmentFixture} starts the daemon exactly as C{twistd suto} does (its
own C{makeService}) in a short data folder, opens windows with the real
C{suto-admin}, and enrolls and rotates with the real endpoint code; the
end-to-end tests of enrollment, rotation, reconnection, tracking and
mutual TLS, and the admin command line's, all start from it.
"""

import dataclasses
import datetime

from twisted.internet import defer, reactor
from twisted.internet.endpoints import quoteStringArgument

from suto_client.agent import Agent
from suto_client.enrollment import enroll
from suto_client.fingerprint import compute_fingerprint
from suto_client.rotation import RotationFactory, profile_endpoint
from suto_server import tap
from suto_server.net import certificate
from tests.support.admin import run_admin_in_thread
from tests.support.folders import socket_folder
from tests.support.sources import FixedSource

#: Seconds any one awaited event may take.
WAIT = 10


def fingerprint_of(machine: str):
    """
    The fingerprint callable of an agent on C{machine}.
    """
    return lambda: compute_fingerprint([FixedSource(machine)]).hash


def rotation_factory(profile, report, machine="machine-1"):
    """
    A factory rotating C{profile} once a minute as C{machine}, storing
    nothing and handing each report to C{report}.
    """
    return RotationFactory(
        profile,
        clock=reactor,
        interval=60,
        timeout=5,
        store=lambda old, new: None,
        report=report,
        fingerprint=fingerprint_of(machine),
    )


class EnrollmentFixture:
    """
    A daemon built by makeService on loopback with a generated certificate,
    C{suto-admin} over its admin socket, and the endpoint's enroll client;
    mixed into the end-to-end test cases of enrollment and rotation.
    """

    timeout = 60
    #: The daemon's options besides its data folder and listener.
    server_arguments = ("--hello-port", "9")

    def setUp(self):
        self.data = socket_folder(self, "suto-enr-")
        self.listen = self.make_listener()
        return self.start_server()

    def make_listener(self):
        """
        Make the server's certificate, set C{self.pin} to its fingerprint,
        and return the daemon's listen description.
        """
        key, cert, _ = certificate.ensure_self_signed(
            self.data, "localhost", datetime.datetime.now(datetime.timezone.utc)
        )
        with open(cert, "rb") as handle:
            self.pin = certificate.describe(handle.read()).fingerprint
        return (
            f"ssl:0:interface=127.0.0.1:privateKey={quoteStringArgument(key)}"
            f":certKey={quoteStringArgument(cert)}"
        )

    def trust(self):
        """
        How the enroll client trusts the server, as L{enroll} arguments.
        """
        return {"pin": self.pin}

    @defer.inlineCallbacks
    def start_server(self):
        options = tap.Options()
        options.parseOptions(
            ["--data", self.data, "--listen", self.listen, *self.server_arguments]
        )
        self.server = tap.makeService(options)
        self.server.startService()
        self.addCleanup(self.stop_server)
        port = yield self.server.listeners[0].listening
        self.port = port.getHost().port

    def stop_server(self):
        if self.server.running:
            return self.server.stopService()

    def next_outcome(self, outcomes):
        """
        The next rotation outcome an agent reports to C{outcomes}, within
        L{WAIT} seconds.
        """
        return outcomes.get().addTimeout(WAIT, reactor)

    @defer.inlineCallbacks
    def events(self, name):
        """
        The audit events of type C{name}, once every record so far is
        written (the daemon writes them on its database thread).
        """
        yield self.server.audit.flushed()
        return [e for e in self.server.store.audit_events() if e.event == name]

    def admin(self, *argv, stdin=""):
        return run_admin_in_thread(self.data, *argv, stdin=stdin)

    @defer.inlineCallbacks
    def open_window(self, user="alice", location="127.0.0.1/32", timeout="60s", *extra):
        code, out, err = yield self.admin(
            "enroll", user, "--location", location, "--timeout", timeout, *extra
        )
        self.assertEqual(code, 0, err)
        for line in err.splitlines():
            # A user without an account (most here) is only warned about.
            self.assertTrue(line.startswith("suto-admin: warning: "), line)
        password = out.splitlines()[0].rsplit(": ", 1)[1]
        self.assertIn(f"server certificate sha256: {self.pin}", out)
        return password

    def enroll(self, password, user="alice", machine="machine-1"):
        return enroll(
            reactor,
            host="127.0.0.1",
            port=self.port,
            **self.trust(),
            user=user,
            password=password,
            sources=[FixedSource(machine)],
        )

    def start_agent(self, state, hello_port):
        """
        Start the real agent on the state file C{state}, its hello server
        on C{hello_port} of 127.0.0.1, as C{machine-1}; it is stopped when
        the test ends.

        @return: a L{Deferred} firing with the outcome of its first
            rotation.
        """
        self.agent = Agent(
            reactor,
            state,
            hello_endpoint_port=hello_port,
            hello_interface="127.0.0.1",
            rotation_interval=30,
            fingerprint=fingerprint_of("machine-1"),
        )
        rotated = defer.Deferred()
        self.agent.add_rotation_observer(
            lambda user, outcome, key_id: rotated.called or rotated.callback(outcome)
        )
        self.agent.startService()
        self.addCleanup(self.stop_agent)
        return rotated

    def stop_agent(self):
        if self.agent.running:
            return self.agent.stopService()

    @defer.inlineCallbacks
    def rotate(self, profile, machine="machine-1"):
        """
        Connect once with C{profile}, as the agent does, to the daemon
        wherever it now listens, and run one rotation from C{machine}.

        @return: a L{Deferred} firing with the rotation's report.
        """
        profile = dataclasses.replace(profile, server_port=self.port)
        reported = defer.Deferred()
        factory = rotation_factory(profile, reported.callback, machine)
        protocol = yield profile_endpoint(reactor, profile, 5).connect(factory)
        report = yield reported
        protocol.transport.loseConnection()
        return report
