"""
The hash pool: computations in its threads, the bound on pending work, and
the service lifecycle.  These tests return Deferreds, which trial's running
reactor delivers from the pool threads.
"""

import os
import threading

from twisted.application.service import MultiService
from twisted.internet import defer, reactor
from twisted.trial.unittest import TestCase

from suto_server.core import libxcrypt
from suto_server.cred.hashpool import HashPool, HashPoolBusy

SETTING = "$6$abcdefghijklmnop"


class HashPoolTests(TestCase):
    """
    L{HashPool.crypt} computes in the pool and bounds what is pending.
    """

    skip = None if libxcrypt.available() else "libxcrypt is not installed"

    def start_pool(self, **kwargs):
        """
        A started pool, stopped when the test ends.
        """
        pool = HashPool(reactor, **kwargs)
        pool.startService()
        self.addCleanup(pool.stopService)
        return pool

    def block_crypt(self):
        """
        Make every crypt wait until the returned event is set (at the latest
        when the test ends), so a test holds computations pending.
        """
        release = threading.Event()
        real_crypt = libxcrypt.crypt

        def blocked_crypt(phrase, setting):
            release.wait()
            return real_crypt(phrase, setting)

        self.patch(libxcrypt, "crypt", blocked_crypt)
        self.addCleanup(release.set)
        return release

    def test_same_as_direct(self):
        """
        The pool's result is what L{libxcrypt.crypt} computes, and nothing
        is left pending.
        """
        pool = self.start_pool(size=2)
        phrases = [f"phrase {n}" for n in range(6)]
        d = defer.gatherResults([pool.crypt(phrase, SETTING) for phrase in phrases])
        self.assertEqual(pool.pending, len(phrases))

        def computed(results):
            self.assertEqual(results, [libxcrypt.crypt(p, SETTING) for p in phrases])
            self.assertEqual(pool.pending, 0)

        return d.addCallback(computed)

    def test_runs_off_the_reactor_thread(self):
        """
        The computation runs in another thread; the result arrives on the
        reactor thread.
        """
        pool = self.start_pool(size=1)
        threads = []
        real_crypt = libxcrypt.crypt

        def recording_crypt(phrase, setting):
            threads.append(threading.current_thread())
            return real_crypt(phrase, setting)

        self.patch(libxcrypt, "crypt", recording_crypt)

        def computed(result):
            self.assertNotIn(threading.current_thread(), threads)
            self.assertEqual(len(threads), 1)

        return pool.crypt("phrase", SETTING).addCallback(computed)

    def test_crypt_error(self):
        """
        A setting libxcrypt refuses fails the Deferred with
        L{libxcrypt.CryptError} and frees its slot.
        """
        pool = self.start_pool(size=1)
        d = self.assertFailure(pool.crypt("phrase", "$9$nothing"), libxcrypt.CryptError)
        return d.addCallback(lambda _: self.assertEqual(pool.pending, 0))

    def test_busy(self):
        """
        With C{max_pending} computations pending the next fails at once with
        L{HashPoolBusy}; once they finish, the pool accepts work again.
        """
        pool = self.start_pool(size=1, max_pending=2)
        release = self.block_crypt()
        held = [pool.crypt("first", SETTING), pool.crypt("second", SETTING)]
        self.assertEqual(pool.pending, 2)
        self.failureResultOf(pool.crypt("third", SETTING), HashPoolBusy)
        self.assertEqual(pool.pending, 2)
        release.set()

        def finished(results):
            self.assertEqual(
                results,
                [libxcrypt.crypt("first", SETTING), libxcrypt.crypt("second", SETTING)],
            )
            self.assertEqual(pool.pending, 0)
            return pool.crypt("fourth", SETTING)

        return defer.gatherResults(held).addCallback(finished)

    def test_not_running(self):
        """
        Before the service starts and after it stops, a computation fails at
        once with L{HashPoolBusy} instead of waiting forever.
        """
        pool = HashPool(reactor, size=1)
        self.failureResultOf(pool.crypt("phrase", SETTING), HashPoolBusy)
        pool.startService()
        pool.stopService()
        self.failureResultOf(pool.crypt("phrase", SETTING), HashPoolBusy)
        self.assertEqual(pool.pending, 0)


class HashPoolServiceTests(TestCase):
    """
    L{HashPool} starts and stops its threads with the service.
    """

    skip = None if libxcrypt.available() else "libxcrypt is not installed"

    def test_lifecycle(self):
        """
        Starting runs the service, stopping ends it and its threads, and it
        can start again and compute.
        """
        pool = HashPool(reactor, size=1)
        self.assertFalse(pool.running)
        pool.startService()
        self.assertTrue(pool.running)
        pool.stopService()
        self.assertFalse(pool.running)
        pool.startService()
        self.addCleanup(pool.stopService)
        return pool.crypt("phrase", SETTING).addCallback(
            self.assertEqual, libxcrypt.crypt("phrase", SETTING)
        )

    def test_stop_finishes_accepted_work(self):
        """
        Work accepted before the service stops still completes and is
        delivered.
        """
        pool = HashPool(reactor, size=1)
        pool.startService()
        d = pool.crypt("phrase", SETTING)
        pool.stopService()
        return d.addCallback(self.assertEqual, libxcrypt.crypt("phrase", SETTING))

    def test_with_parent(self):
        """
        As a child of a L{MultiService} the pool starts and stops with its
        parent.
        """
        parent = MultiService()
        pool = HashPool(reactor, size=1)
        pool.setServiceParent(parent)
        parent.startService()
        self.assertTrue(pool.running)
        d = pool.crypt("phrase", SETTING)

        def computed(result):
            self.assertEqual(result, libxcrypt.crypt("phrase", SETTING))
            return parent.stopService()

        return d.addCallback(computed).addCallback(
            lambda _: self.assertFalse(pool.running)
        )

    def test_default_size(self):
        """
        Without a size the pool has one thread per CPU (one when the count
        is unknown); sizes below one are refused.
        """
        self.patch(os, "cpu_count", lambda: 3)
        self.assertEqual(HashPool(reactor).size, 3)
        self.patch(os, "cpu_count", lambda: None)
        self.assertEqual(HashPool(reactor).size, 1)
        self.assertRaises(ValueError, HashPool, reactor, size=0)
        self.assertRaises(ValueError, HashPool, reactor, max_pending=0)
