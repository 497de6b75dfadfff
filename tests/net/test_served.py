"""
Tests for L{suto_server.net.served}: the SIGHUP handler that reloads the
served certificates.
"""

import signal

from twisted.trial.unittest import SynchronousTestCase

from suto_server.net.served import ReloadOnHangup


class ThreadCallRecorder:
    """
    A reactor that records what C{callFromThread} is asked to run.
    """

    def __init__(self):
        self.calls = []

    def callFromThread(self, f, *args, **kwargs):
        self.calls.append((f, args, kwargs))


class ReloadOnHangupTests(SynchronousTestCase):
    """
    L{ReloadOnHangup} while running owns the SIGHUP handler.
    """

    def setUp(self):
        self.reactor = ThreadCallRecorder()
        self.reloads = []
        self.service = ReloadOnHangup(self.reactor, lambda: self.reloads.append(1))
        self.previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
        self.addCleanup(signal.signal, signal.SIGHUP, self.previous)

    def test_hangup_reloads_on_the_reactor(self):
        """
        The handler installed at start does not reload inside the signal
        handler: it hands the reload to the reactor's C{callFromThread}.
        """
        self.service.startService()
        self.addCleanup(self.service.stopService)
        handler = signal.getsignal(signal.SIGHUP)
        handler(signal.SIGHUP, None)
        self.assertEqual(self.reloads, [])
        [(f, args, kwargs)] = self.reactor.calls
        self.assertEqual((args, kwargs), ((), {}))
        f()
        self.assertEqual(self.reloads, [1])

    def test_stop_restores_previous_handler(self):
        """
        Stopping the service puts back the handler that was there before
        it started.
        """
        self.service.startService()
        self.assertNotEqual(signal.getsignal(signal.SIGHUP), signal.SIG_IGN)
        self.service.stopService()
        self.assertEqual(signal.getsignal(signal.SIGHUP), signal.SIG_IGN)
        self.assertEqual(self.reactor.calls, [])
