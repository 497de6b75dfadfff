"""
C{suto-admin} run against a live daemon's data folder.

The command line blocks on its admin socket, so a test runs it in a thread
and reads what it printed; the audit, registry, blacklist and end-to-end
tests all drive the real command this way.
"""

import io

from twisted.internet import threads

from suto_server.admin import cli as admin


def run_admin(data, *argv, stdin=""):
    """
    Run C{suto-admin --data data argv} in a thread, with C{stdin} as its
    standard input.

    @return: a L{Deferred} firing with the exit code, standard output and
        standard error.
    """
    stdout, stderr = io.StringIO(), io.StringIO()
    d = threads.deferToThread(
        admin.main,
        ["--data", data, *argv],
        stdin=io.StringIO(stdin),
        stdout=stdout,
        stderr=stderr,
    )
    return d.addCallback(lambda code: (code, stdout.getvalue(), stderr.getvalue()))


class AdminCommandMixin:
    """
    Mixed into a test case whose C{data} is a daemon's data folder.
    """

    def run_admin(self, *argv):
        """
        Run C{suto-admin} with C{argv} against C{self.data}.

        @return: a L{Deferred} firing with the exit code, standard output
            and standard error.
        """
        return run_admin(self.data, *argv)
