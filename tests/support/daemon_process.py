"""
A real C{twistd suto} in a process of its own, for the end-to-end tests
that need a server to die as a host does (C{SIGKILL}, nothing flushed,
no goodbye on its connections).

L{DaemonProcess} starts the daemon in the foreground with its log on
standard output, reads the log as it comes, and fires
L{DaemonProcess.listening} with the TLS listener's port once the daemon
logs that it listens there and on its admin socket; it never sleeps or
polls.  L{self_signed} makes the certificate it serves, and
L{enroll_through} enrolls a user through it as an operator and the
user's machine do.
"""

import datetime
import re
import sys

from twisted.internet import defer, protocol, reactor
from twisted.internet.endpoints import quoteStringArgument

from suto_client.enrollment import enroll
from suto_client.enrollment_machine import EnrollOutcome
from suto_server.net import certificate
from tests.support.admin import run_admin_in_thread
from tests.support.sources import FixedSource

#: Seconds a daemon may take to start listening, or to end once told to.
WAIT = 30

# The TLS listener is the daemon's only one on 127.0.0.1.
_LISTENING = re.compile(rb"listening on 127\.0\.0\.1:([0-9]+)")

# Logged once the admin socket (whose commands the tests run) is bound.
_ADMIN_LISTENING = b"admin API listening on"


class DaemonProcess(protocol.ProcessProtocol):
    """
    One C{twistd suto} process.

    @ivar listening: fires with the port the TLS listener got.
    @ivar ended: fires once the process has ended, however it did.
    @ivar output: what it wrote so far, standard output and error.
    """

    def __init__(self):
        self.listening = defer.Deferred()
        self.ended = defer.Deferred()
        self.output = b""

    @classmethod
    def start(cls, testcase, data, key, cert, *arguments):
        """
        Start C{twistd suto} on the data folder C{data}, serving TLS on a
        free port of 127.0.0.1 with the private key C{key} and the
        certificate C{cert}, with the daemon's C{arguments} besides; it
        is stopped after C{testcase} if it still runs.

        @return: the L{DaemonProcess}.
        """
        daemon = cls()
        listen = (
            f"ssl:0:interface=127.0.0.1:privateKey={quoteStringArgument(key)}"
            f":certKey={quoteStringArgument(cert)}"
        )
        command = [
            sys.executable, "-c", "from twisted.scripts.twistd import run; run()",
            "--nodaemon", "--pidfile=", "suto", "--data", data, "--listen", listen,
            "--hello-port", "9", *arguments,
        ]  # fmt: skip
        reactor.spawnProcess(daemon, sys.executable, command, env=None, path=data)
        testcase.addCleanup(daemon.stop)
        return daemon

    def outReceived(self, data: bytes) -> None:
        self.output += data
        found = _LISTENING.search(self.output)
        ready = found is not None and _ADMIN_LISTENING in self.output
        if ready and not self.listening.called:
            self.listening.callback(int(found.group(1)))

    errReceived = outReceived

    def processEnded(self, reason) -> None:
        if not self.listening.called:
            self.listening.errback(
                RuntimeError(f"the daemon ended before listening:\n{self.output!r}")
            )
        self.ended.callback(None)

    def kill(self):
        """
        End the daemon at once, as a host that dies: C{SIGKILL}.

        @return: a L{Deferred} firing once it has ended.
        """
        if not self.ended.called:
            self.transport.signalProcess("KILL")
        return self.ended

    def stop(self):
        """
        Stop the daemon as its service manager would, C{SIGTERM}, unless
        it has ended.

        @return: a L{Deferred} firing once it has ended.
        """
        if self.ended.called:
            return self.ended
        self.transport.signalProcess("TERM")
        return self.ended.addTimeout(WAIT, reactor)


def self_signed(folder):
    """
    Make a self-signed certificate for C{localhost} in C{folder}, as a
    daemon serves it.

    @return: the paths of its key and certificate, and its fingerprint
        (the pin an enrolling client trusts).
    """
    key, cert, _ = certificate.ensure_self_signed(
        folder, "localhost", datetime.datetime.now(datetime.UTC)
    )
    with open(cert, "rb") as handle:
        return key, cert, certificate.describe(handle.read()).fingerprint


@defer.inlineCallbacks
def enroll_through(testcase, data, port, pin, user, machine):
    """
    Open an enrollment window for C{user} from 127.0.0.1 with
    C{suto-admin} on the daemon's data folder C{data}, and enroll from
    C{machine} through the daemon's C{port}, trusting C{pin}.

    @return: a L{Deferred} firing with the enrolled profile.
    """
    code, out, err = yield run_admin_in_thread(
        data, "enroll", user, "--location", "127.0.0.1/32"
    )
    testcase.assertEqual(code, 0, err)
    password = out.splitlines()[0].rsplit(": ", 1)[1]
    result = yield enroll(
        reactor,
        host="127.0.0.1",
        port=port,
        pin=pin,
        user=user,
        password=password,
        sources=[FixedSource(machine)],
    )
    testcase.assertEqual(result.outcome, EnrollOutcome.ENROLLED, result.reason)
    return result.profile
