"""
The key rotation rules over both stores, a real master key and a real
group committer on a L{task.Clock}: the key both sides derive, when it is
committed, what is refused and audited, and that a crash at any step
leaves both sides on one key.
"""

from dataclasses import replace

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from twisted.logger import capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from suto_server.audit.aggregation import DEFAULT_INTERVAL
from suto_server.audit.log import AuditLog
from suto_server.core import keyschedule
from suto_server.rules.gate import PENALISED_EVENTS
from suto_server.rules.rotation import COUNT_INTERVAL, Rotation, RotationRefused
from suto_server.rules.rotation_failures import DEFAULT_FAILURE_ALERT
from suto_server.store.groupcommit import GroupCommitter
from tests.support.alerts import RecordingSink
from tests.support.coroutines import failure_of, result_of
from tests.support.enrollment import FINGERPRINT
from tests.support.rotation import (
    ELSEWHERE,
    FIRST_KEY,
    JUNK,
    NOW,
    OTHER_FINGERPRINT,
    SOURCE,
    Device,
    RotationMixin,
    enroll,
)
from tests.support.stores import MemoryStoreMixin, SQLiteStoreMixin


class RotateTestsMixin(RotationMixin):
    """
    L{Rotation.begin} and L{Rotation.acknowledge} when everything goes
    right, and when the acknowledgement is bad.
    """

    def test_begin_checked(self):
        """
        Given what L{Rotation.check_key} returned, L{Rotation.begin} does
        not check the key again, and derives the same rotation a check of
        its own would.
        """
        request = self.device.request()
        checked = result_of(
            self, self.rotation.check_key(request.user, request.key_id, SOURCE, self.now())
        )
        self.patch(self.rotation, "check_key", lambda *args: self.fail("checked twice"))
        pending = result_of(
            self,
            self.rotation.begin(
                request.user,
                request.key_id,
                request.junk,
                request.public,
                SOURCE,
                self.now(),
                checked=checked,
            ),
        )
        self.assertEqual(
            (pending.expected_key_id, pending.replaces, pending.generation),
            (request.key_id, None, 1),
        )
        done = self.commit(
            pending, self.device.acknowledge(pending.server_public, pending.ok)
        )
        self.device.commit(done)
        self.assertEqual(self.profile().generation, 1)

    def test_check_key_given_profile(self):
        """
        Given the profile a rotation's start read with its standing,
        L{Rotation.check_key} reads the store no more and answers as a
        check that reads it: the profile and its key for a key it may
        rotate from, C{unknown_key} for no profile or another key.
        """
        request = self.device.request()
        profile = self.profile()
        read = result_of(
            self, self.rotation.check_key(request.user, request.key_id, SOURCE, self.now())
        )
        self.patch(self.store, "get_profile", lambda user: self.fail("read again"))
        given = result_of(
            self,
            self.rotation.check_key(
                request.user, request.key_id, SOURCE, self.now(), profile=profile
            ),
        )
        self.assertEqual(given, read)
        self.assertEqual(given, (profile, FIRST_KEY))
        for key_id, given_profile in (
            (request.key_id, None),
            (keyschedule.key_id(bytes(32)), profile),
        ):
            self.assertEqual(
                self.refusal(
                    self.rotation.check_key,
                    "alice",
                    key_id,
                    SOURCE,
                    self.now(),
                    given_profile,
                ),
                "unknown_key",
            )

    def test_derives_client_key(self):
        """
        The key the server commits is the one a client derives with the
        key schedule: K' = next_key(K, junk, fingerprint hash,
        X25519(own private, peer public), user, n + 1), and "ok" and "done"
        open under it.
        """
        private = X25519PrivateKey.generate()
        request = self.device.request(private=private)
        pending = self.begin(request)
        shared = keyschedule.dh_shared_secret(private, pending.server_public)
        expected = keyschedule.next_key(
            FIRST_KEY, JUNK, FINGERPRINT, shared, "alice", 1
        )
        done = self.commit(
            pending, self.device.acknowledge(pending.server_public, pending.ok)
        )
        self.device.commit(done)
        self.assertEqual(self.device.key, expected)
        self.assert_agreed()
        self.assertEqual(
            (pending.expected_key_id, pending.generation, pending.new_key_id),
            (keyschedule.key_id(FIRST_KEY), 1, keyschedule.key_id(expected)),
        )

    def test_committed_state(self):
        """
        A commit keeps the old key as the previous one, unconfirmed, and
        records when and from where.
        """
        self.clock.advance(7)
        self.rotate(source=ELSEWHERE)
        profile = self.profile()
        self.assertEqual(
            (
                profile.previous_key_id,
                self.master_key.open_key(
                    "alice", profile.previous_key_id, profile.previous_key_sealed
                ),
                profile.current_confirmed,
                profile.rotated_at,
                profile.last_seen,
                profile.last_address,
                profile.rotation_failures,
            ),
            (
                keyschedule.key_id(FIRST_KEY),
                FIRST_KEY,
                False,
                NOW + 7,
                NOW + 7,
                ELSEWHERE,
                0,
            ),
        )

    def test_rotations_in_a_row(self):
        """
        Rotation after rotation, each from the key the last one committed,
        keeps both sides on one key, a new one each time; each commit keeps
        the key it replaced as the previous one and retires the one before.
        """
        seen = [keyschedule.key_id(FIRST_KEY)]
        for generation in range(1, 5):
            self.rotate()
            self.assert_agreed()
            seen.append(keyschedule.key_id(self.device.key))
            self.assertEqual(self.device.generation, generation)
        self.assertEqual(len(set(seen)), 5)
        profile = self.profile()
        self.assertEqual(
            (profile.current_confirmed, profile.previous_key_id), (False, seen[3])
        )
        self.assertEqual(
            [self.store.is_retired("alice", key_id) for key_id in seen],
            [True, True, True, False, False],
        )
        self.assertEqual(self.events(), [])

    def test_begin_writes_nothing(self):
        """
        Beginning a rotation from the current key changes nothing in the
        store, even while the previous key is kept: the commit of that
        rotation is what proves the client holds the key.
        """
        self.rotate()
        before = self.profile()
        self.begin(self.device.request())
        self.assertEqual(self.profile(), before)

    def test_nothing_before_ack(self):
        """
        Beginning a rotation changes no key: the server commits only once
        a valid acknowledgement came.
        """
        before = self.profile()
        pending = self.begin(self.device.request())
        self.clock.advance(0)
        self.assertEqual(self.profile(), before)
        self.device.acknowledge(pending.server_public, pending.ok)
        self.assertEqual(self.profile(), before)

    def test_done_after_commit(self):
        """
        "done" comes only once the group commit ran: before it the store
        still holds the old key and the L{Deferred} has no result.
        """
        pending = self.begin(self.device.request())
        ack = self.device.acknowledge(pending.server_public, pending.ok)
        d = self.acknowledging(pending, ack)
        self.assertNoResult(d)
        self.assertEqual(self.profile().key_id, keyschedule.key_id(FIRST_KEY))
        self.clock.advance(0)
        self.device.commit(self.successResultOf(d).sealed)
        self.assert_agreed()

    def test_logs_a_count(self):
        """
        Committed rotations are logged as a count, one event once
        C{COUNT_INTERVAL} seconds have passed, not one per rotation.
        """
        with capturedLogs() as events:
            self.rotate()
            self.clock.advance(COUNT_INTERVAL / 2)
            self.rotate()
            self.assertEqual(events, [])
            self.clock.advance(COUNT_INTERVAL / 2)
            self.rotate()
            self.rotate()
        [event] = events
        self.assertEqual((event["count"], event["seconds"]), (3, COUNT_INTERVAL))

    def test_observers(self):
        """
        Each observer is told the user and time of every committed
        rotation, and of nothing else.
        """
        seen = []
        self.rotation.observers.append(lambda user, now: seen.append((user, now)))
        self.begin(self.device.request())
        self.assertEqual(seen, [])
        self.rotate()
        self.assertEqual(seen, [("alice", self.now())])

    def test_logs_no_key(self):
        """
        Neither the log nor a pending rotation shows a key or the junk.
        """
        first = self.device.key
        with capturedLogs() as events:
            self.rotate()
            self.clock.advance(COUNT_INTERVAL)
            pending = self.rotate()
        text = " ".join(map(formatEvent, events)) + repr(events) + repr(pending)
        self.assertIn("committed 2 rotations in the last 60 s", text)
        for secret in (self.device.key, first, FIRST_KEY, JUNK):
            self.assertNotIn(secret.hex(), text)
            self.assertNotIn(repr(secret)[2:-1], text)

    def test_bad_ack(self):
        """
        An acknowledgement that does not open is refused with
        C{rotation_failed}, counted and audited (as C{rotation_abandoned}:
        it comes from the profile's own address); the key stays.
        """
        before = self.profile()
        pending = self.begin(self.device.request())
        self.assertEqual(
            self.refusal(
                self.rotation.acknowledge, pending, bytes(19), SOURCE, self.now()
            ),
            "rotation_failed",
        )
        self.clock.advance(0)
        self.assertEqual(self.profile(), replace(before, rotation_failures=1))
        self.assertEqual(
            self.events(),
            [
                (
                    "rotation_abandoned",
                    "alice",
                    SOURCE,
                    "the acknowledgement did not open",
                )
            ],
        )

    def test_fingerprint_mismatch(self):
        """
        C{fingerprint_mismatch} is audited when C{failure_alert} rotations
        in a row failed, naming how many; a committed rotation resets the
        count, so as many failures again are needed.
        """

        def fail(count):
            for _ in range(count):
                self.acknowledge_noise()

        self.assertEqual(self.rotation.failures.alert, DEFAULT_FAILURE_ALERT)
        fail(DEFAULT_FAILURE_ALERT - 1)
        self.assertEqual(self.events("fingerprint_mismatch"), [])
        fail(1)
        [(_, user, source, reason)] = self.events("fingerprint_mismatch")
        self.assertEqual((user, source), ("alice", SOURCE))
        self.assertTrue(
            reason.startswith(
                f"{DEFAULT_FAILURE_ALERT} rotations in a row failed on the "
                "client's side"
            ),
            reason,
        )
        self.rotate()
        self.assertEqual(self.profile().rotation_failures, 0)
        fail(DEFAULT_FAILURE_ALERT - 1)
        self.assertEqual(len(self.events("fingerprint_mismatch")), 1)
        self.assertEqual(
            self.profile().rotation_failures, DEFAULT_FAILURE_ALERT - 1
        )

    def test_failure_alert(self):
        """
        The threshold is configurable.
        """
        self.rotation.failures.alert = 1
        result_of(self, self.rotation.failures.record("alice", SOURCE, "no acknowledgement", self.now()))
        self.assertEqual(
            [event for event, _, _, _ in self.events()],
            ["rotation_abandoned", "fingerprint_mismatch"],
        )

    def test_failure_alert_names_both_places(self):
        """
        Failures from an address other than the one the profile was last
        used from (a copy of its state on another machine fails the same
        way as a changed fingerprint) name both places in the alert.
        """
        self.rotation.failures.alert = 1
        result_of(self, self.rotation.failures.record("alice", ELSEWHERE, "no acknowledgement", self.now()))
        [mismatch] = [
            e for e in self.store.audit_events() if e.event == "fingerprint_mismatch"
        ]
        self.assertEqual(mismatch.locations, (ELSEWHERE, SOURCE))
        self.assertIn(f"the last from {ELSEWHERE}", mismatch.reason)
        self.assertIn("a copy of its state runs on another machine", mismatch.reason)
        self.assertIn(f"last used from {SOURCE})", mismatch.reason)

    def test_held_elsewhere_not_counted(self):
        """
        Failures while another connection holds the profile (it proved
        the key and the fingerprint, so they are not the key holder's),
        given up on or with an acknowledgement that does not open, are
        recorded and say why they are not counted, but count nothing:
        however many, no C{fingerprint_mismatch}, and the count of the
        holder's own failures is where it was.
        """
        self.rotation.failures.alert = 1
        result_of(self, self.rotation.failures.record("alice", SOURCE, "no acknowledgement", self.now()))
        for _ in range(DEFAULT_FAILURE_ALERT):
            result_of(
                self,
                self.rotation.failures.record(
                    "alice", SOURCE, "no acknowledgement", self.now(), held_elsewhere=True
                ),
            )
            self.acknowledge_noise(held_elsewhere=True)
        self.clock.advance(0)
        self.assertEqual(self.profile().rotation_failures, 1)
        self.assertEqual(len(self.events("fingerprint_mismatch")), 1)
        failed = self.events("rotation_abandoned")
        self.assertEqual(len(failed), 1 + 2 * DEFAULT_FAILURE_ALERT)
        for _, _, _, reason in failed[1:]:
            self.assertIn("not counted toward fingerprint_mismatch", reason)
        self.assertNotIn("not counted", failed[0][3])

    def test_failed_by_address(self):
        """
        A failure from the address the profile was last used from, or from
        its IPv6 /64, is recorded as C{rotation_abandoned}, which no
        source is penalised for (the client shares the address); from
        anywhere else as C{rotation_failed}.  Both count alike.
        """
        self.rotate(source="2001:db8::1")
        for source in ("2001:db8::1", "2001:db8::2", "2001:db8:0:1::1", ELSEWHERE):
            result_of(self, self.rotation.failures.record("alice", source, "no acknowledgement", self.now()))
        self.assertEqual(
            [
                (event, source)
                for event, _, source, _ in self.events()
                if event != "fingerprint_mismatch"
            ],
            [
                ("rotation_abandoned", "2001:db8::1"),
                ("rotation_abandoned", "2001:db8::2"),
                ("rotation_failed", "2001:db8:0:1::1"),
                ("rotation_failed", ELSEWHERE),
            ],
        )
        self.assertEqual(self.profile().rotation_failures, 4)
        self.assertNotIn("rotation_abandoned", PENALISED_EVENTS)
        self.assertIn("rotation_failed", PENALISED_EVENTS)

    def test_failed_unknown_profile(self):
        """
        A failure for a profile that went away records nothing.
        """
        result_of(self, self.rotation.failures.record("bob", SOURCE, "no acknowledgement", self.now()))
        self.assertEqual(self.events(), [])

    def test_unknown_profile(self):
        """
        A rotation for a profile that does not exist is C{unknown_key},
        with no C{clone_suspected}: nothing tells it from a wrong key.
        """
        request = Device("bob", FIRST_KEY).request()
        self.assertEqual(self.refusal(self.beginning, request), "unknown_key")
        self.assertEqual(
            self.refusal(
                self.rotation.check_key, "bob", request.key_id, SOURCE, self.now()
            ),
            "unknown_key",
        )
        self.assertEqual(self.events(), [])

    def test_never_held_key(self):
        """
        A key id the profile never held is C{unknown_key}, with no
        C{clone_suspected}, and changes nothing.
        """
        before = self.profile()
        request = Device("alice", bytes(32)).request()
        self.assertEqual(self.refusal(self.beginning, request), "unknown_key")
        self.assertEqual(
            self.refusal(
                self.rotation.check_key, "alice", request.key_id, SOURCE, self.now()
            ),
            "unknown_key",
        )
        self.assertEqual(self.profile(), before)
        self.assertEqual(self.events(), [])

    def test_low_order_public_key(self):
        """
        A client public key that gives no shared secret (all zeros) is
        refused, so no key is derived from a secret anyone can predict.
        """
        request = replace(self.device.request(), public=bytes(32))
        self.assertEqual(self.refusal(self.beginning, request), "rotation_failed")
        self.assertEqual(self.profile().key_id, keyschedule.key_id(FIRST_KEY))


class CrashTestsMixin(RotationMixin):
    """
    A crash or a dropped connection at each step of a rotation: the
    in-flight objects are lost, the client comes back with the key it holds,
    and both sides end on one key with nothing refused or reported.
    """

    def recover(self):
        """
        The client's next rotation, from the key it holds, succeeds; then
        one more does too (nothing was blacklisted), and no clone was
        suspected.
        """
        self.restart_server()
        self.rotate()
        self.assert_agreed()
        self.rotate()
        self.assert_agreed()
        self.assertEqual(self.events("clone_suspected"), [])

    def test_after_junk_sent(self):
        """
        The client sent its junk and the server began, then the
        connection broke before "ok".
        """
        self.rotate()
        self.begin(self.device.request())
        self.recover()
        self.assertEqual(self.device.generation, 3)

    def test_after_server_ok(self):
        """
        The client received "ok" and derived the next key, then crashed
        before acknowledging: it still holds the old key.
        """
        pending = self.begin(self.device.request())
        self.device.acknowledge(pending.server_public, pending.ok)
        self.recover()
        self.assertEqual(self.events("rotation_rolled_back"), [])

    def test_after_client_ack(self):
        """
        The client acknowledged, then the server crashed before its group
        commit ran.
        """
        pending = self.begin(self.device.request())
        ack = self.device.acknowledge(pending.server_public, pending.ok)
        self.acknowledging(pending, ack)
        self.assertEqual(self.profile().key_id, keyschedule.key_id(FIRST_KEY))
        self.recover()
        self.assertEqual(self.events("rotation_rolled_back"), [])

    def test_after_server_commit(self):
        """
        The server committed the next key but "done" never reached the
        client: it comes back with the old key, and the server rotates
        from it, rolling back to it (audited as C{rotation_rolled_back})
        only once the acknowledgement proved the client holds it.
        """
        self.clock.advance(5)
        pending = self.begin(self.device.request())
        self.commit(pending, self.device.acknowledge(pending.server_public, pending.ok))
        self.assertEqual(self.profile().key_id, pending.new_key_id)
        self.restart_server()
        request = self.device.request()
        rolled_back = self.begin(request)
        self.assertEqual(
            (rolled_back.expected_key_id, rolled_back.generation),
            (keyschedule.key_id(FIRST_KEY), 1),
        )
        self.assertEqual(self.profile().key_id, pending.new_key_id)
        self.assertEqual(self.events("rotation_rolled_back"), [])
        self.device.commit(
            self.commit(
                rolled_back,
                self.device.acknowledge(rolled_back.server_public, rolled_back.ok),
            )
        )
        self.assertEqual(
            self.events("rotation_rolled_back"),
            [
                (
                    "rotation_rolled_back",
                    "alice",
                    SOURCE,
                    f"the client came back with key id {request.key_id}: it "
                    f"never committed {pending.new_key_id}",
                )
            ],
        )
        self.assert_agreed()
        self.recover()

    def test_after_final_ack_before_client_commit(self):
        """
        "done" reached the client, which crashed before writing the next
        key: as after the server's commit, a roll back.
        """
        pending = self.begin(self.device.request())
        done = self.commit(
            pending, self.device.acknowledge(pending.server_public, pending.ok)
        )
        self.assertTrue(
            self.device.opens(done, b"done", keyschedule.ROTATE_DONE_PURPOSE)
        )
        self.recover()
        self.assertEqual(len(self.events("rotation_rolled_back")), 1)

    def test_after_final_ack(self):
        """
        "done" reached the client, which committed the next key: its next
        rotation confirms that key, with no roll back.
        """
        self.rotate()
        self.recover()
        self.assertEqual(self.events("rotation_rolled_back"), [])
        self.assertEqual(self.device.generation, 3)


class CloneTestsMixin(RotationMixin):
    """
    A second holder of the chain: a superseded key is C{clone_suspected},
    and two rotations from one key cannot both commit.
    """

    def assert_clone(self, stale, source=ELSEWHERE):
        """
        C{stale} (a L{Device} holding a superseded key) is refused with
        C{unknown_key}; C{clone_suspected} is audited, naming C{source}
        and the address the profile was last used from; the profile does
        not change.
        """
        before = self.profile()
        reason = self.refusal(self.beginning, stale.request(), source)
        self.assertEqual(reason, "unknown_key")
        self.assertEqual(self.profile(), before)
        [(_, user, audited_source, text)] = self.events("clone_suspected")
        self.assertEqual((user, audited_source), ("alice", source))
        self.assertIn(source, text)
        self.assertIn(before.last_address, text)
        self.assertNotEqual(source, before.last_address)

    def test_retired_key(self):
        """
        The key made at enrollment, two rotations later, is retired: its
        use is a clone.
        """
        copy = Device("alice", FIRST_KEY)
        self.rotate()
        self.rotate()
        self.assertTrue(self.store.is_retired("alice", keyschedule.key_id(FIRST_KEY)))
        self.assert_clone(copy)

    def test_previous_key_once_rotated_from(self):
        """
        Once the client rotated from the current key, the previous one is
        no longer a roll back but a clone: the commit of that rotation
        retired it.
        """
        copy = Device("alice", FIRST_KEY)
        self.rotate()
        self.rotate()
        self.assert_clone(copy)
        self.assertEqual(self.profile().key_id, keyschedule.key_id(self.device.key))

    def test_previous_key_until_commit(self):
        """
        A rotation from the current key that has begun but not committed
        proves nothing yet, so the previous key may still begin a roll
        back; but that changes nothing before its own acknowledgement, so
        the rotation under way commits, and the roll back then fails.
        """
        copy = Device("alice", FIRST_KEY)
        self.rotate()
        pending = self.begin(self.device.request())
        stale = self.begin(copy.request(), ELSEWHERE)
        self.assertEqual(self.events("rotation_rolled_back"), [])
        self.device.commit(
            self.commit(
                pending, self.device.acknowledge(pending.server_public, pending.ok)
            )
        )
        self.assert_agreed()
        ack = copy.acknowledge(stale.server_public, stale.ok)
        failure = failure_of(
            self,
            self.rotation.acknowledge(stale, ack, ELSEWHERE, self.now()),
            RotationRefused,
        )
        self.assertEqual(failure.value.reason, "rotation_failed")
        self.assertEqual(self.events("rotation_rolled_back"), [])
        self.assert_agreed()

    def test_roll_back_needs_the_fingerprint(self):
        """
        A copy of the previous key on another machine (another
        fingerprint) that begins a roll back changes nothing: it cannot
        open "ok", and the legitimate client's unconfirmed key stays.
        """
        copy = Device("alice", FIRST_KEY, fingerprint=bytes(32))
        self.rotate()
        before = self.profile()
        pending = self.begin(copy.request(), ELSEWHERE)
        self.assertRaises(
            keyschedule.SealError, copy.acknowledge, pending.server_public, pending.ok
        )
        self.assertEqual(self.profile(), before)
        self.rotate()
        self.assert_agreed()

    def test_rolled_back_key(self):
        """
        The key a roll back discarded is retired: a client that turns up
        with it is a clone.
        """
        copy = Device("alice", FIRST_KEY)
        pending = self.begin(copy.request())
        copy.commit(
            self.commit(pending, copy.acknowledge(pending.server_public, pending.ok))
        )
        self.rotate()
        self.assert_clone(copy)

    def test_clone_check_key(self):
        """
        L{Rotation.check_key} recognises the clone as well, before any
        derivation.
        """
        copy = Device("alice", FIRST_KEY)
        self.rotate()
        self.rotate()
        self.assertEqual(
            self.refusal(
                self.rotation.check_key,
                "alice",
                keyschedule.key_id(FIRST_KEY),
                ELSEWHERE,
                self.now(),
            ),
            "unknown_key",
        )
        self.assertEqual(len(self.events("clone_suspected")), 1)
        self.assertEqual(copy.key, FIRST_KEY)

    def test_concurrent_same_batch(self):
        """
        Two rotations from the same key acknowledged in one reactor turn:
        the first commits, the other's L{Deferred} fails with
        C{rotation_failed}, and the profile holds the first one's key.
        """
        first = self.device
        second = Device("alice", FIRST_KEY)
        first_pending = self.begin(first.request())
        second_pending = self.begin(second.request(), ELSEWHERE)
        first_d = self.acknowledging(
            first_pending,
            first.acknowledge(first_pending.server_public, first_pending.ok),
        )
        second_d = self.acknowledging(
            second_pending,
            second.acknowledge(second_pending.server_public, second_pending.ok),
            ELSEWHERE,
        )
        self.clock.advance(0)
        first.commit(self.successResultOf(first_d).sealed)
        self.assertEqual(
            self.failureResultOf(second_d, RotationRefused).value.reason,
            "rotation_failed",
        )
        self.assertNotEqual(first.next, second.next)
        self.assert_agreed(first)

    def test_concurrent_later_batch(self):
        """
        The same when the second acknowledgement comes after the first
        rotation committed: its compare-and-swap finds another key.
        """
        second = Device("alice", FIRST_KEY)
        second_pending = self.begin(second.request(), ELSEWHERE)
        ack = second.acknowledge(second_pending.server_public, second_pending.ok)
        self.rotate()
        d = self.acknowledging(second_pending, ack, ELSEWHERE)
        self.clock.advance(0)
        self.assertEqual(
            self.failureResultOf(d, RotationRefused).value.reason, "rotation_failed"
        )
        self.assert_agreed()

    def test_retired_key_pending(self):
        """
        The client misses "done"; a second holder of the new key begins a
        rotation from it; the client comes back with its old key, rolls
        back and commits generation 1 again.  The second holder's rotation,
        from the key the roll back retired to generation 2 (the generation
        a rotation from the current key would reach), then fails with
        C{rotation_failed} when acknowledged: committing it would fork the
        key chain.
        """
        pending = self.begin(self.device.request())
        self.commit(pending, self.device.acknowledge(pending.server_public, pending.ok))
        second = Device("alice", self.device.next)
        second.generation = 1
        second_pending = self.begin(second.request(), ELSEWHERE)
        self.assertEqual(
            (second_pending.expected_key_id, second_pending.generation),
            (pending.new_key_id, 2),
        )
        ack = second.acknowledge(second_pending.server_public, second_pending.ok)
        self.rotate()
        self.assert_agreed()
        self.assertTrue(self.store.is_retired("alice", pending.new_key_id))
        d = self.acknowledging(second_pending, ack, ELSEWHERE)
        self.clock.advance(0)
        self.assertEqual(
            self.failureResultOf(d, RotationRefused).value.reason, "rotation_failed"
        )
        self.assert_agreed()
        self.assertEqual(self.device.generation, 1)


class ReplayTestsMixin(RotationMixin):
    """
    Sealed messages open only in the rotation, profile, direction and
    purpose they were sealed for, and only on the enrolled machine.
    """

    def assert_refused(self, forge):
        """
        An acknowledgement made by C{forge(pending)} for a rotation begun
        by C{self.device} is refused with C{rotation_failed}, and the key
        stays.

        @param forge: given the L{PendingRotation} (after the device
            derived the next key), returns the acknowledgement to present.
        """
        before = self.profile().key_id
        pending = self.begin(self.device.request())
        self.device.derive(pending.server_public)
        sealed = forge(pending)
        self.assertEqual(
            self.refusal(
                self.rotation.acknowledge, pending, sealed, SOURCE, self.now()
            ),
            "rotation_failed",
        )
        self.clock.advance(0)
        self.assertEqual(self.profile().key_id, before)

    def seal(self, plaintext=b"ack", **changes):
        """
        A seal under the device's next key with the acknowledgement's
        binding, with C{changes}.
        """
        binding = dict(
            profile="alice",
            purpose=keyschedule.ROTATE_ACK_PURPOSE,
            direction=keyschedule.Direction.CLIENT_TO_SERVER,
            counter=0,
        )
        binding.update(changes)
        return keyschedule.seal(self.device.next, plaintext, **binding)

    def test_valid_binding(self):
        """
        The binding L{seal} makes by default is the one that opens, so the
        refusals below come from the one thing each changes.
        """
        pending = self.begin(self.device.request())
        self.device.derive(pending.server_public)
        self.commit(pending, self.seal())
        self.assertEqual(self.profile().key_id, pending.new_key_id)

    def test_other_counter(self):
        """
        An acknowledgement sealed at another counter than the client's
        first message under the new key is refused.
        """
        self.assert_refused(lambda pending: self.seal(counter=1))
        self.assert_refused(lambda pending: self.seal(counter=pending.generation))

    def test_ok_reflected(self):
        """
        The server's own "ok" sent back as the acknowledgement is refused,
        and so is "ack" sealed in the server's direction.
        """
        self.assert_refused(lambda pending: pending.ok)
        self.assert_refused(
            lambda pending: self.seal(
                direction=keyschedule.Direction.SERVER_TO_CLIENT
            )
        )

    def test_other_purpose(self):
        """
        A seal made for another step of rotation is refused.
        """
        self.assert_refused(
            lambda pending: self.seal(purpose=keyschedule.ROTATE_OK_PURPOSE)
        )
        self.assert_refused(
            lambda pending: self.seal(purpose=keyschedule.ENROLL_DATA_PURPOSE)
        )

    def test_other_profile(self):
        """
        An acknowledgement sealed for another profile is refused, even
        under the right key.
        """
        self.assert_refused(lambda pending: self.seal(profile="bob"))

    def test_other_profiles_ack(self):
        """
        Another profile's valid acknowledgement, presented here, is
        refused.
        """
        bob = enroll(self.store, self.master_key, "bob")
        bob_pending = self.begin(bob.request())
        bob_ack = bob.acknowledge(bob_pending.server_public, bob_pending.ok)
        self.assert_refused(lambda pending: bob_ack)

    def test_previous_rotations_ack(self):
        """
        The acknowledgement of the last rotation, replayed into the next,
        is refused.
        """
        pending = self.begin(self.device.request())
        old_ack = self.device.acknowledge(pending.server_public, pending.ok)
        self.device.commit(self.commit(pending, old_ack))
        self.assert_refused(lambda pending: old_ack)

    def test_copied_state(self):
        """
        The client's state copied to another machine (another fingerprint
        hash) derives another key: it cannot open "ok", and its
        acknowledgement is refused.
        """
        copy = Device("alice", FIRST_KEY, fingerprint=OTHER_FINGERPRINT)
        pending = self.begin(copy.request(), ELSEWHERE)
        copy.derive(pending.server_public)
        self.assertFalse(copy.opens(pending.ok, b"ok", keyschedule.ROTATE_OK_PURPOSE))
        self.assertEqual(
            self.refusal(
                self.rotation.acknowledge, pending, copy.ack(), ELSEWHERE, self.now()
            ),
            "rotation_failed",
        )
        self.clock.advance(0)
        self.assertEqual(self.profile().key_id, keyschedule.key_id(FIRST_KEY))
        self.assertEqual(self.profile().rotation_failures, 1)

    def test_heals(self):
        """
        A thief who learned K_n (and the fingerprint hash), and saw the
        junk and both public keys of the next rotation but neither
        private key, cannot derive K_n+1: every shared secret he can
        compute gives another key, which cannot open "ok".
        """
        stolen = self.device.key
        request = self.device.request()
        pending = self.begin(request)
        self.device.acknowledge(pending.server_public, pending.ok)
        legitimate = self.device.next
        thief = X25519PrivateKey.generate()
        guesses = [
            keyschedule.dh_shared_secret(thief, request.public),
            keyschedule.dh_shared_secret(thief, pending.server_public),
            request.public,
            pending.server_public,
            bytes(a ^ b for a, b in zip(request.public, pending.server_public)),
            bytes(32),
        ]
        candidates = [
            keyschedule.next_key(stolen, request.junk, FINGERPRINT, guess, "alice", 1)
            for guess in guesses
        ]
        self.assertNotIn(legitimate, candidates)
        for candidate in candidates:
            self.assertRaises(
                keyschedule.SealError,
                keyschedule.open_sealed,
                candidate,
                pending.ok,
                profile="alice",
                purpose=keyschedule.ROTATE_OK_PURPOSE,
                direction=keyschedule.Direction.SERVER_TO_CLIENT,
                counter=0,
            )

    def test_seals_share_no_keystream(self):
        """
        "ok" and "done" are sealed under the same new key in the same
        direction; they must not share a nonce (docs/PROTOCOL.md §7.5: a
        key never seals two messages with the same direction and counter),
        or XORing them gives away the XOR of the plaintexts and the
        one-time Poly1305 key.
        """
        pending = self.begin(self.device.request())
        done = self.commit(
            pending, self.device.acknowledge(pending.server_public, pending.ok)
        )
        ciphertexts_xor = bytes(a ^ b for a, b in zip(pending.ok[:2], done[:2]))
        plaintexts_xor = bytes(a ^ b for a, b in zip(b"ok", b"do"))
        self.assertNotEqual(ciphertexts_xor, plaintexts_xor)


class MemoryRotateTests(RotateTestsMixin, MemoryStoreMixin, SynchronousTestCase):
    """
    Rotating over a L{MemoryStore}.
    """


class SQLiteRotateTests(RotateTestsMixin, SQLiteStoreMixin, SynchronousTestCase):
    """
    Rotating over a L{SQLiteStore}.
    """


class MemoryCrashTests(CrashTestsMixin, MemoryStoreMixin, SynchronousTestCase):
    """
    Crashes at each step over a L{MemoryStore}.
    """


class SQLiteCrashTests(CrashTestsMixin, SQLiteStoreMixin, SynchronousTestCase):
    """
    Crashes at each step over a L{SQLiteStore}, the server reopening the
    database as a restarted one does.
    """


class MemoryCloneTests(CloneTestsMixin, MemoryStoreMixin, SynchronousTestCase):
    """
    Clones and races over a L{MemoryStore}.
    """


class SQLiteCloneTests(CloneTestsMixin, SQLiteStoreMixin, SynchronousTestCase):
    """
    Clones and races over a L{SQLiteStore}.
    """


class MemoryReplayTests(ReplayTestsMixin, MemoryStoreMixin, SynchronousTestCase):
    """
    Replayed, reflected and copied messages over a L{MemoryStore}.
    """


class SQLiteReplayTests(ReplayTestsMixin, SQLiteStoreMixin, SynchronousTestCase):
    """
    Replayed, reflected and copied messages over a L{SQLiteStore}.
    """


class RotationAlertTests(RotationMixin, MemoryStoreMixin, SynchronousTestCase):
    """
    A rotation proves nothing before its acknowledgement opens, so what
    any peer can cause by naming a key id (a retired one, or noise for an
    acknowledgement) reaches the sinks gathered per source.
    """

    def start_server(self):
        super().start_server()
        self.sink = RecordingSink()
        self.rotation = Rotation(
            self.calls,
            self.master_key,
            GroupCommitter(self.clock, self.store.commit_rotations),
            AuditLog(self.store, [self.sink], clock=self.clock),
        )

    def test_retired_key_named(self):
        """
        A peer naming a retired key id 50 times is 50 C{clone_suspected}
        records, but two alerts: the first at once, one for the other 49
        when the interval ends.
        """
        copy = Device("alice", FIRST_KEY)
        self.rotate()
        self.rotate()
        for _ in range(50):
            self.refusal(self.beginning, copy.request(), ELSEWHERE)
        self.assertEqual(len(self.events("clone_suspected")), 50)
        self.assertEqual(self.sink.counted(), [("clone_suspected", 1)])
        self.clock.advance(DEFAULT_INTERVAL)
        self.assertEqual(
            self.sink.counted(), [("clone_suspected", 1), ("clone_suspected", 49)]
        )

    def test_noise_for_acknowledgements(self):
        """
        A peer naming the current key id and sending noise for the
        acknowledgement fails rotations the way a changed fingerprint
        does; every failure past the threshold is recorded, but its
        C{fingerprint_mismatch} alerts are gathered.
        """
        for _ in range(DEFAULT_FAILURE_ALERT + 9):
            pending = self.begin(self.device.request(), ELSEWHERE)
            self.refusal(
                self.rotation.acknowledge, pending, bytes(19), ELSEWHERE, self.now()
            )
        self.assertEqual(len(self.events("fingerprint_mismatch")), 10)
        self.assertEqual(self.sink.counted(), [("fingerprint_mismatch", 1)])
        self.clock.advance(DEFAULT_INTERVAL)
        self.assertEqual(self.sink.counted()[1:], [("fingerprint_mismatch", 9)])
