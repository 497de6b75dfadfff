# -*- test-case-name: tests.audit.test_sinks -*-
"""
Alerts appended to a file, one JSON object a line, for log shippers and
C{tail -f}.

The file is opened for each alert (alerts are rare), so a log rotation
that moves it away is followed at once; it is created with mode 0600, and
each line is synced to disk before the alert counts as written.
"""

import json
import os

from twisted.logger import Logger
from zope.interface import implementer

from suto_server.audit.interfaces import IAlertSink


@implementer(IAlertSink)
class JsonFileSink:
    """
    Appends every alert to one file.

    @param path: the file; its directory must exist.
    """

    log = Logger()

    def __init__(self, path: str) -> None:
        self._path = path

    def deliver(self, alert) -> None:
        """
        See L{IAlertSink.deliver}.  A file that cannot be written is
        logged, and the alert dropped from it.
        """
        line = json.dumps(alert.to_json(), sort_keys=True) + "\n"
        try:
            self._append(line.encode("utf-8"))
        except OSError:
            self.log.failure(
                "could not append a {alert_type} alert to {path}",
                alert_type=alert.type,
                path=self._path,
            )

    def check(self) -> None:
        """
        Open the file for appending once (creating it), so that a path the
        server cannot write stops it at start instead of losing every
        alert later.

        @raise OSError: the file cannot be opened for appending.
        """
        os.close(self._open())

    def _open(self) -> int:
        return os.open(
            self._path,
            os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
            0o600,
        )

    def _append(self, data: bytes) -> None:
        """
        Write C{data} at the end of the file and sync it.

        @raise OSError: the file could not be opened or written.
        """
        fd = self._open()
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
