"""
How C{twistd suto} and C{twistd suto-client} write their log.

Under a service manager, standard output goes to journald, which stores
it line by line: one JSON object per line keeps every field of an event
(C{log_namespace}, C{log_level}, the format's named fields), so events can
be selected by field rather than by parsing prose.  A person running the
daemon in a terminal reads text instead.

twistd takes the factory by name::

    twistd --nodaemon --logger suto_server.core.logformat.observer suto
"""

from __future__ import annotations

import sys
from typing import TextIO

from twisted.logger import ILogObserver, jsonFileLogObserver, textFileLogObserver


def observer(stream: TextIO | None = None) -> ILogObserver:
    """
    The log observer for C{stream}: text on a terminal, JSON lines
    otherwise.

    @param stream: where events go; standard output by default, which is
        how twistd calls this factory (before it redirects standard output
        into the log, so events reach the real one).
    @return: a file log observer writing to C{stream}.
    """
    stream = sys.stdout if stream is None else stream
    if stream.isatty():
        return textFileLogObserver(stream)
    # No record separator: journald splits on newlines, and eventAsJSON
    # escapes any newline inside an event.
    return jsonFileLogObserver(stream, recordSeparator="")
