"""
Network namespaces, and a private mount namespace, that a test makes for
itself: a small network of its own (each machine in its own namespace,
linked to others by veth pairs), processes run inside them, and files
such as C{/etc/pam.d} replaced for one command only.

Nothing of the machine's own network or files changes: every namespace
and link is made by the test and deleted in its cleanups (deleting a
namespace deletes its ends of the veth pairs), and the mounts live in a
mount namespace that ends with the command.

This needs root, C{ip} (iproute2) and C{unshare} (util-linux).  Without
them L{require} skips the test with the reason, except under C{CI=true},
where it fails: CI must run the tests that need them (C{.ci/run}
installs them).
"""

from __future__ import annotations

import itertools
import os
import shlex
import shutil
import signal
import subprocess

from twisted.internet import reactor
from twisted.internet.defer import Deferred, succeed
from twisted.internet.protocol import DatagramProtocol, ProcessProtocol
from twisted.trial.unittest import SkipTest

#: Seconds any one setup command may take.
COMMAND_TIMEOUT = 30

_serial = itertools.count()


def require(testcase, *programs: str) -> None:
    """
    Check that this test can make namespaces and find C{programs}.

    @raise SkipTest: it cannot (outside CI; under C{CI=true} the test
        fails instead).
    """
    problem = None
    if os.geteuid() != 0:
        problem = "making network namespaces needs root"
    else:
        missing = [p for p in ("ip", "unshare", *programs) if shutil.which(p) is None]
        if missing:
            problem = f"{', '.join(missing)} not installed (Debian: apt-get install pamtester iproute2)"
    if problem is None:
        return
    if os.environ.get("CI") == "true":
        testcase.fail(problem)
    raise SkipTest(problem)


def _run(*argv: str) -> str:
    return subprocess.run(
        argv, check=True, capture_output=True, text=True, timeout=COMMAND_TIMEOUT
    ).stdout


class Network:
    """
    Namespaces linked point to point, each deleted after the test.

    @ivar names: each machine's namespace name, by the test's name for it.
    """

    def __init__(self, testcase) -> None:
        self._testcase = testcase
        self._tag = f"suto{os.getpid() % 100000}x{next(_serial)}"
        self.names: dict[str, str] = {}
        self._links = itertools.count()

    def machine(self, name: str) -> str:
        """
        Make the namespace of the machine C{name}, with its loopback up.

        @return: the namespace's name.
        """
        namespace = f"{self._tag}-{name}"
        _run("ip", "netns", "add", namespace)
        self._testcase.addCleanup(_run, "ip", "netns", "delete", namespace)
        _run("ip", "-n", namespace, "link", "set", "lo", "up")
        self.names[name] = namespace
        return namespace

    def link(self, first: str, first_address: str, second: str, second_address: str) -> None:
        """
        Join two machines by a veth pair, each end with an address of a
        C{/24} (C{first_address} and C{second_address} must share it).
        """
        number = next(self._links)
        ends = (f"{self._tag[-6:]}a{number}", f"{self._tag[-6:]}b{number}")
        # Made inside the namespaces, so no end is ever left behind in the
        # machine's own: deleting a namespace deletes its ends.
        _run(
            "ip", "link", "add", ends[0], "netns", self.names[first], "type", "veth",
            "peer", "name", ends[1], "netns", self.names[second],
        )
        for end, machine, address in zip(ends, (first, second), (first_address, second_address)):
            namespace = self.names[machine]
            _run("ip", "-n", namespace, "address", "add", f"{address}/24", "dev", end)
            _run("ip", "-n", namespace, "link", "set", end, "up")

    def command(self, machine: str, *argv: str) -> list[str]:
        """
        The command line that runs C{argv} on C{machine}.
        """
        return ["ip", "netns", "exec", self.names[machine], *argv]


def with_files(
    replacements: dict[str, str], *argv: str, dev_log: str | None = None, scratch: str = ""
) -> list[str]:
    """
    The command line that runs C{argv} in a private mount namespace where
    each path of C{replacements} (a file or a folder) shows the one it
    names instead: bind mounts nobody else sees, gone when it exits.

    @param dev_log: a UNIX datagram socket to show as C{/dev/log}, so the
        test reads what the command sends to syslog.  C{/dev} is then an
        overlay of the real one, its changes kept in C{scratch} (a folder
        on a file system that is not an overlay), so that C{/dev/null} and
        the rest stay as they are.
    """
    mounts = ""
    if dev_log is not None:
        upper, work = os.path.join(scratch, "dev-upper"), os.path.join(scratch, "dev-work")
        os.makedirs(upper, exist_ok=True)
        os.makedirs(work, exist_ok=True)
        mounts += (
            f"mount -t overlay overlay -o lowerdir=/dev,upperdir={shlex.quote(upper)},"
            f"workdir={shlex.quote(work)} /dev && rm -f /dev/log && touch /dev/log && "
        )
        replacements = {**replacements, "/dev/log": dev_log}
    mounts += "".join(
        f"mount --bind {shlex.quote(source)} {shlex.quote(target)} && "
        for target, source in replacements.items()
    )
    script = f"{mounts}exec {shlex.join(argv)}"
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script]


class SystemLog(DatagramProtocol):
    """
    A syslog socket of the test's own: the lines processes send to it, as
    sent (C{<PRIORITY>TIMESTAMP TAG[PID]: TEXT}).
    """

    def __init__(self) -> None:
        self.lines: list[str] = []

    @classmethod
    def listen(cls, testcase, path: str) -> SystemLog:
        """
        Listen at C{path} until C{testcase} ends.
        """
        log = cls()
        port = reactor.listenUNIXDatagram(path, log)
        testcase.addCleanup(port.stopListening)
        return log

    def datagramReceived(self, data: bytes, address) -> None:
        self.lines.append(data.decode("utf-8", "replace"))


class Process(ProcessProtocol):
    """
    A long-running process (a daemon on one of the machines), its output
    gathered so that a test can wait for a line, and killed after the
    test.

    @ivar output: everything it wrote to stdout and stderr so far.
    @ivar reason: why it ended (L{ProcessDone} or L{ProcessTerminated}),
        or L{None} while it runs.
    """

    def __init__(self) -> None:
        self.output = ""
        self.reason = None
        self._waiting: list[tuple[str, Deferred]] = []
        self._ending: list[Deferred] = []

    @classmethod
    def start(cls, testcase, argv: list[str], stdin: str = "") -> Process:
        """
        Start C{argv} with C{stdin} as its whole input, killed (and
        reaped) when C{testcase} ends.
        """
        process = cls()
        transport = reactor.spawnProcess(process, argv[0], argv, env=os.environ)
        transport.write(stdin.encode("utf-8"))
        transport.closeStdin()
        testcase.addCleanup(process.kill)
        return process

    def outReceived(self, data: bytes) -> None:
        self.output += data.decode("utf-8", "replace")
        still = []
        for text, waiter in self._waiting:
            if text in self.output:
                waiter.callback(None)
            else:
                still.append((text, waiter))
        self._waiting = still

    errReceived = outReceived

    def processEnded(self, reason) -> None:
        self.reason = reason.value
        for text, waiter in self._waiting:
            waiter.errback(RuntimeError(f"ended before writing {text!r}:\n{self.output}"))
        self._waiting = []
        for waiter in self._ending:
            waiter.callback(self.reason)
        self._ending = []

    def ended(self) -> Deferred:
        """
        Fire with L{reason} once it has ended.
        """
        if self.reason is not None:
            return succeed(self.reason)
        waiter = Deferred()
        self._ending.append(waiter)
        return waiter

    def wait_for(self, text: str, timeout: float) -> Deferred:
        """
        Fire once the output holds C{text}; fail after C{timeout} seconds,
        or if the process ends first.
        """
        if text in self.output:
            return succeed(None)
        waiter = Deferred()
        self._waiting.append((text, waiter))
        return waiter.addTimeout(timeout, reactor)

    def signal(self, number: int) -> None:
        """
        Send the signal C{number}, if it still runs.
        """
        if self.reason is None:
            self.transport.signalProcess(number)

    def kill(self) -> Deferred:
        """
        Kill it, if it still runs, and wait until it has ended.
        """
        self.signal(signal.SIGKILL)
        return self.ended()
