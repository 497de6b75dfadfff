"""
A real C{twistd suto} in a process of its own, for the end-to-end tests
that need a server to die as a host does (C{SIGKILL}, nothing flushed,
no goodbye on its connections).

L{DaemonProcess} starts the daemon in the foreground with its log on
standard output, reads the log as it comes, and fires
L{DaemonProcess.listening} with the TLS listener's port once the daemon
logs that it listens there and on its admin socket; it never sleeps or
polls.
"""

import re
import sys

from twisted.internet import defer, protocol, reactor
from twisted.internet.endpoints import quoteStringArgument

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
