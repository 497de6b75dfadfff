# -*- test-case-name: tests.cluster.test_shared_store -*-
"""
The decisions several server processes take together through one
PostgreSQL store (L{tests.support.postgres}), each process standing as a
L{PostgresStore} opened on its own and called from its own thread: one
enrollment window and one attempt counter, one winner of two rotations
of one key (so one move), one move of a profile moved by two
processes at once, a blacklisting and a key seen by every process
at once, one audit chain.  The rules read all of these from the store on
each connection and keep no copy (docs/ARCHITECTURE.md, "Several
processes and hosts").
"""

import threading
from dataclasses import replace

from twisted.trial.unittest import SynchronousTestCase

from suto_server.store.errors import StoreError
from suto_server.store.postgres import PostgresStore
from tests.support.postgres import new_location
from tests.support.store_suite.values import (
    AUDIT,
    BLACKLISTED,
    WINDOW,
    numbered_key_id,
    numbered_rotation,
    numbered_seal,
    profile_for,
)


class TwoProcessesTests(SynchronousTestCase):
    """
    Two stores on one PostgreSQL database, as two server processes hold.
    """

    def setUp(self):
        location = new_location(self)
        self.first = PostgresStore.open(location)
        self.addCleanup(self.first.close)
        self.second = PostgresStore.open(location)
        self.addCleanup(self.second.close)

    def together(self, call, *each):
        """
        Run C{call(store, argument)} for the first store with C{each[0]}
        and the second with C{each[1]}, at once, each on a thread and a
        connection of its own (its store's sibling).

        @return: what each returned, or the L{StoreError} it raised.
        """
        start = threading.Barrier(2)
        results = [None, None]

        def run(index, store, argument):
            own = store.sibling()
            try:
                start.wait()
                results[index] = call(own, argument)
            except StoreError as error:
                results[index] = error
            finally:
                own.close()

        threads = [
            threading.Thread(target=run, args=(index, store, argument))
            for index, (store, argument) in enumerate(
                zip((self.first, self.second), each)
            )
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return results

    def enroll(self):
        """
        Enroll alice with key number 0, through the first process.
        """
        self.first.open_window(WINDOW)
        self.first.complete_enrollment(
            profile_for(
                "alice", key_sealed=numbered_seal(0), key_id=numbered_key_id(0)
            )
        )

    def test_one_attempt_counter(self):
        """
        Failed enrollment attempts counted by both processes at once are
        counted once each, in one counter: each count is given out once.
        """
        self.first.open_window(WINDOW)

        def count(store, times):
            return [store.record_failed_attempt("alice") for _ in range(times)]

        counts = self.together(count, 10, 10)
        self.assertEqual(sorted(counts[0] + counts[1]), list(range(1, 21)))
        self.assertEqual(self.second.get_window("alice").attempts, 20)

    def test_one_window(self):
        """
        A window used up by both processes at once enrolls one profile;
        the other process is told the window is gone.
        """
        self.first.open_window(WINDOW)
        profiles = [
            profile_for("alice", key_sealed=numbered_seal(n), key_id=numbered_key_id(n))
            for n in (1, 2)
        ]
        results = self.together(
            lambda store, profile: store.complete_enrollment(profile), *profiles
        )
        [winner] = [p for p, r in zip(profiles, results) if r is None]
        self.assertEqual(len([r for r in results if isinstance(r, StoreError)]), 1)
        self.assertEqual(self.second.list_profiles(), [winner])
        self.assertEqual(self.first.list_windows(), [])

    def test_one_rotation_of_a_key(self):
        """
        Two connections rotating the same key through two processes at
        once (a client and its copy): one rotation commits, the other is
        refused, and both processes then hold the winner's key as the
        only one to rotate from, so only the winner proves the key (and
        has its move recorded).
        """
        self.enroll()
        rotations = [
            replace(numbered_rotation("alice", 0, n, 2000.0), address=address)
            for n, address in ((1, "10.2.3.50"), (2, "10.9.0.4"))
        ]
        results = self.together(
            lambda store, rotation: store.commit_rotations([rotation]), *rotations
        )
        self.assertEqual(sorted(results), [[False], [True]])
        winner = rotations[results.index([True])]
        for store in (self.first, self.second):
            profile = store.get_profile("alice")
            self.assertEqual(
                (profile.key_id, profile.last_address),
                (winner.new_key_id, winner.address),
            )
            self.assertEqual(
                store.commit_rotations([numbered_rotation("alice", 0, 3, 2100.0)]),
                [False],
            )

    def test_one_move_of_a_profile(self):
        """
        Two reconnections of one profile moving it through two processes
        at once, each from the address both read, record exactly one move
        (the store's compare-and-swap on the last address), whether they
        come from one address (one device reaching both processes) or from
        two; both processes then read the winner's address, and the moves
        make one unbroken chain.
        """
        self.enroll()
        seen = "10.2.3.17"
        pairs = [("10.9.0.4", "10.9.0.4"), ("10.9.0.5", "10.9.0.6")] * 5
        for number, pair in enumerate(pairs):
            results = self.together(
                lambda store, move: store.record_move(*move),
                *[("alice", 3000.0 + number, seen, to, None, None) for to in pair],
            )
            self.assertEqual(sorted(results), [False, True])
            seen = pair[results.index(True)]
            for store in (self.first, self.second):
                self.assertEqual(store.get_profile("alice").last_address, seen)
        moves = self.second.moves("alice")
        self.assertEqual(len(moves), len(pairs))
        self.assertEqual(
            [move.old_address for move in moves[1:]],
            [move.new_address for move in moves[:-1]],
        )

    def test_confirmed_key_only(self):
        """
        A key confirmed through one process retires the one before it for
        the other at once.
        """
        self.enroll()
        self.first.commit_rotations([numbered_rotation("alice", 0, 1, 2000.0)])
        self.assertFalse(self.second.is_retired("alice", numbered_key_id(0)))
        self.assertTrue(
            self.first.confirm_current("alice", numbered_key_id(1), 2001.0, "10.2.3.99")
        )
        self.assertTrue(self.second.is_retired("alice", numbered_key_id(0)))

    def test_blacklist_everywhere(self):
        """
        A profile blacklisted through one process is blacklisted for the
        other at once, and unblocked for both by either.
        """
        self.enroll()
        self.first.add_to_blacklist(BLACKLISTED)
        self.assertEqual(self.second.blacklist_entry("alice"), BLACKLISTED)
        self.assertTrue(self.second.standing("alice")[0])
        self.assertTrue(self.second.unblock("alice"))
        self.assertIsNone(self.first.blacklist_entry("alice"))

    def test_one_audit_chain(self):
        """
        Both processes appending at once make one chain that verifies.
        """

        def append(store, count):
            for number in range(count):
                store.append_audits([replace(AUDIT, time=float(number))] * 3)

        self.together(append, 15, 15)
        self.assertEqual(len(self.first.audit_events()), 90)
        self.assertEqual(self.second.verify_audit(), [])
