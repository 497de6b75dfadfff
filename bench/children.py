"""
Processes the benchmark starts (echo servers, the SUTO server under
test), and the guarantee that they stop: when their measurement ends, when
the run fails, and when the reactor shuts down (Ctrl-C).

A child is asked to stop with SIGTERM and killed if it has not exited
after a grace period.  What it printed, and the end of its log file if it
has one, are kept for error messages.  Work that needs a child running
(L{while_running}) fails as soon as the child exits, instead of piling up
connection errors.
"""

from __future__ import annotations

import os
import sys

from twisted.internet import error
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.protocol import ProcessProtocol

#: Bytes of a child's output kept for error messages.
MAX_OUTPUT = 16 * 1024

#: Lines of standard output kept for L{Child.line}; later ones only count
#: as output for error messages.
MAX_LINES = 64

#: Lines of output (and of the log file) an error message shows.
TAIL_LINES = 20

#: Seconds a child has to exit after SIGTERM before it is killed.
STOP_GRACE = 5.0

#: The repository root, put first on a child's module path so that
#: C{python -m bench...} and the twistd plugins resolve from this tree.
REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class ChildFailed(Exception):
    """
    A child exited too early, or never became ready; the message holds
    the end of its output and log.
    """


def _tail(text: str) -> str:
    return "\n".join(text.splitlines()[-TAIL_LINES:])


class Child(ProcessProtocol):
    """
    One running child process.

    @ivar ended: fires when the process has exited.
    @ivar exited: whether it has.
    """

    def __init__(self, name: str, log_file: str | None = None) -> None:
        """
        @param name: what error messages call it.
        @param log_file: where it logs, if not on its standard output.
        """
        self.name = name
        self.ended: Deferred = Deferred()
        self.exited = False
        self._log_file = log_file
        self._partial = b""
        self._lines: list[str] = []
        self._line_waiters: dict[int, list[Deferred]] = {}
        self._output = b""

    @property
    def pid(self) -> int | None:
        return None if self.transport is None else self.transport.pid

    def line(self, index: int) -> Deferred:
        """
        @param index: which line of the child's standard output, from 0
            (how the echo server announces its port, and how load clients
            say they are ready and report).
        @return: a L{Deferred} firing with that line, or failing with
            L{ChildFailed} if the child exits before printing it.
        @raise ValueError: C{index} is not below L{MAX_LINES}.
        """
        if not 0 <= index < MAX_LINES:
            raise ValueError(f"only the first {MAX_LINES} lines are kept")
        if index < len(self._lines):
            return succeed(self._lines[index])
        if self.exited:
            return fail(self.failure("exited before it answered"))
        waiter: Deferred = Deferred()
        self._line_waiters.setdefault(index, []).append(waiter)
        return waiter

    def send_line(self, text: str) -> None:
        """
        Write C{text} and a newline to the child's standard input.
        """
        self.transport.write(text.encode("utf-8") + b"\n")

    def failure(self, what: str) -> ChildFailed:
        """
        @return: an error saying the child C{what}, with the end of its
            output and of its log file.
        """
        parts = [f"{self.name} {what}", _tail(self._output.decode("utf-8", "replace"))]
        if self._log_file is not None:
            try:
                with open(self._log_file, "rb") as handle:
                    handle.seek(max(0, os.fstat(handle.fileno()).st_size - MAX_OUTPUT))
                    parts.append(_tail(handle.read().decode("utf-8", "replace")))
            except OSError:
                pass
        return ChildFailed("\n".join(part for part in parts if part))

    def outReceived(self, data: bytes) -> None:
        self._keep(data)
        self._partial += data
        while b"\n" in self._partial and len(self._lines) < MAX_LINES:
            line, self._partial = self._partial.split(b"\n", 1)
            self._lines.append(line.decode("utf-8", "replace").strip())
            for waiter in self._line_waiters.pop(len(self._lines) - 1, []):
                waiter.callback(self._lines[-1])
        if len(self._lines) >= MAX_LINES or len(self._partial) > MAX_OUTPUT:
            self._partial = b""

    def errReceived(self, data: bytes) -> None:
        self._keep(data)

    def _keep(self, data: bytes) -> None:
        self._output = (self._output + data)[-MAX_OUTPUT:]

    def processEnded(self, reason) -> None:
        self.exited = True
        waiting, self._line_waiters = self._line_waiters, {}
        for waiters in waiting.values():
            for waiter in waiters:
                waiter.errback(self.failure("exited before it answered"))
        self.ended.callback(None)

    def stop(self, reactor, grace: float = STOP_GRACE) -> Deferred:
        """
        Ask the child to exit (SIGTERM), and kill it after C{grace} seconds.

        @return: a L{Deferred} firing once it has exited.
        """
        if self.exited:
            return succeed(None)
        self._signal("TERM")
        kill = reactor.callLater(grace, self._signal, "KILL")

        def cancel_kill(result):
            if kill.active():
                kill.cancel()
            return result

        return self.when_ended().addBoth(cancel_kill)

    def when_ended(self) -> Deferred:
        """
        @return: a new L{Deferred} firing when the child has exited, so
            several callers can wait on the one event.
        """
        waiting: Deferred = Deferred()
        self.ended.addBoth(lambda result: waiting.callback(None) or result)
        return waiting

    def _signal(self, name: str) -> None:
        try:
            self.transport.signalProcess(name)
        except error.ProcessExitedAlready:
            pass


def while_running(child: Child, work: Deferred) -> Deferred:
    """
    Wait for C{work}, unless C{child} exits first: then cancel it and fail.

    @return: a L{Deferred} firing with C{work}'s result, or failing with
        L{ChildFailed} if the child exited before C{work} was done.
    """
    result: Deferred = Deferred(lambda _: work.cancel())

    def exited(_):
        if not result.called:
            result.errback(child.failure("exited during the measurement"))
            work.cancel()

    def done(outcome):
        if not result.called:
            result.callback(outcome)

    work.addBoth(done)
    child.when_ended().addCallback(exited)
    return result


def python_argv(*arguments: str) -> list[str]:
    """
    @return: the command line running this Python with C{arguments}.
    """
    return [sys.executable, *arguments]


def spawn(reactor, name: str, argv: list[str], log_file: str | None = None) -> Child:
    """
    Start C{argv} from the repository root, with that root on its module
    path, and make sure it is stopped when the reactor shuts down.

    @param log_file: where the child logs, for error messages.
    @return: the L{Child}.
    """
    child = Child(name, log_file)
    environment = dict(os.environ)
    environment["PYTHONPATH"] = os.pathsep.join(
        filter(None, [REPOSITORY, environment.get("PYTHONPATH")])
    )
    reactor.spawnProcess(child, argv[0], argv, env=environment, path=REPOSITORY)
    # Stopping a child that has exited is a no-op, so the trigger can stay.
    reactor.addSystemEventTrigger("before", "shutdown", child.stop, reactor)
    return child
