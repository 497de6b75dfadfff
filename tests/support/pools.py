"""
Hash pools that answer on the test's terms.

The real L{suto_server.cred.hashpool.HashPool} runs crypt in threads; the
protocol, rules and admin tests want the verdict at once, or held until
they release it, or a busy pool, without threads or a reactor.
"""

from twisted.internet import defer

from suto_server.core import libxcrypt
from suto_server.cred.hashpool import HashPoolBusy


class ImmediatePool:
    """
    Computes hashes synchronously, or holds them back when C{hold} is set,
    so a test decides when the verdict arrives.
    """

    def __init__(self):
        self.hold = False
        self.busy = False
        self.held = []

    def crypt(self, phrase, setting):
        if self.busy:
            return defer.fail(HashPoolBusy())
        if self.hold:
            d = defer.Deferred()
            self.held.append((d, phrase, setting))
            return d
        return defer.succeed(libxcrypt.crypt(phrase, setting))

    def release(self):
        for d, phrase, setting in self.held:
            d.callback(libxcrypt.crypt(phrase, setting))


class ReportingPool:
    """
    Computes hashes at once and, as the real hash pool does, reports a
    refused input through the L{Deferred} rather than by raising.
    """

    def crypt(self, phrase, setting):
        return defer.maybeDeferred(libxcrypt.crypt, phrase, setting)
