"""
The reconnection that must be made twice (docs/PROTOCOL.md §10.2, "A
reconnection cut short"): the rotation after a reconnection committed on
the server and not on the client (SUTO_ROTATE_DONE_ lost, the agent unable
to write its state, or a crash on either side around the commit), so the
client comes back still offline, from its previous key, within the same
offline time step.  Every cut point of §9.3 that matters here, over both
stores, with the real rules on a L{task.Clock}: the legitimate client gets
back in without an alert, and no captured reconnection commits twice.
"""

from twisted.trial.unittest import SynchronousTestCase

from suto_server.rules.reconnection import MAX_ATTEMPTS_PER_STEP
from suto_server.rules.rotation import RotationRefused
from suto_server.store.records import SpentOfflineStep
from tests.support.coroutines import failure_of
from tests.support.reconnection import (
    ATTEMPT_NONCE,
    ReconnectionMixin,
    opens_ok,
    reconnect_message,
)
from tests.support.rotation import ELSEWHERE, FIRST_KEY, SOURCE, Device
from tests.support.stores import MemoryStoreMixin, SQLiteStoreMixin

#: The nonce of the client's second attempt in the same step.
RETRY_NONCE = bytes(range(100, 116))
#: Other junk for an attempt that reuses a nonce.
OTHER_JUNK = bytes(range(60, 92))


class RetryTestsMixin(ReconnectionMixin):
    """
    The client reconnects (attempt nonce L{ATTEMPT_NONCE}) and the
    rotation that follows commits on the server; what then happens at each
    cut point.
    """

    def setUp(self):
        super().setUp()
        self.go_offline()
        self.first = reconnect_message(self.device, self.step())

    def rotation_commits_on_server_only(self, message):
        """
        Reconnect with C{message} and run the rotation that follows up to
        the server's commit; the client never takes the new key (it lost
        "done", or could not write its state), so it still holds the key
        it reconnected with and is still offline.

        @return: the sealed "done" the client never got.
        """
        accepted = self.reconnect(message)
        pending = self.begin(
            self.device.request(), SOURCE, accepted.step, accepted.attempt_nonce
        )
        done = self.commit(
            pending, self.device.acknowledge(pending.server_public, pending.ok)
        )
        self.device.next = None
        return done

    def retry_and_rotate(self, message):
        """
        The client reconnects again with C{message} and this time its
        rotation commits on both sides.
        """
        accepted = self.reconnect(message)
        self.assertTrue(opens_ok(self.device, accepted.step, accepted.ok, message.nonce))
        self.rotate_reconnected(accepted)
        self.assert_agreed()
        return accepted

    def alerts(self):
        return [
            event
            for event, *_ in self.events()
            if event in ("reconnect_failed", "blacklisted", "clone_suspected")
        ]

    def test_done_lost_retry_same_step(self):
        """
        "done" lost (or the agent could not write its state): the client
        reconnects from its previous key in the same step with a new nonce
        and is accepted, with no alert; its rotation rolls back to that
        key and commits; the step's record holds both nonces and the key
        the retry made.
        """
        self.rotation_commits_on_server_only(self.first)
        self.assertIsNone(self.store.offline_since("alice"))
        retry = reconnect_message(self.device, self.step(), nonce=RETRY_NONCE)
        accepted = self.retry_and_rotate(retry)
        self.assertEqual(accepted.step, self.step())
        self.assertEqual(self.alerts(), [])
        [(_, _, _, again)] = self.events("reconnected")[1:]
        self.assertIn("again", again)
        self.assertEqual(
            self.store.spent_offline_step("alice"),
            SpentOfflineStep(
                self.step(),
                self.profile().key_id,
                frozenset({ATTEMPT_NONCE, RETRY_NONCE}),
            ),
        )
        self.check_rotation(self.device)

    def test_server_crash_after_commit(self):
        """
        The server crashed after the commit, before "done" went out: what
        it needs is durable, so after the restart the retry in the same
        step is accepted all the same, with no alert.
        """
        self.rotation_commits_on_server_only(self.first)
        self.restart_server()
        retry = reconnect_message(self.device, self.step(), nonce=RETRY_NONCE)
        self.retry_and_rotate(retry)
        self.assertEqual(self.alerts(), [])

    def test_server_crash_before_commit(self):
        """
        The server crashed after the client's "ack", before the commit:
        nothing was written, the step is not spent, and the retry in the
        same step is accepted as a first reconnection.
        """
        accepted = self.reconnect(self.first)
        pending = self.begin(
            self.device.request(), SOURCE, accepted.step, accepted.attempt_nonce
        )
        self.device.acknowledge(pending.server_public, pending.ok)
        self.device.next = None
        self.restart_server()
        self.assertIsNone(self.store.spent_offline_step("alice"))
        self.assertIsNotNone(self.store.offline_since("alice"))
        retry = reconnect_message(self.device, self.step(), nonce=RETRY_NONCE)
        self.retry_and_rotate(retry)
        self.assertEqual(self.alerts(), [])

    def test_agent_wrote_state(self):
        """
        The agent took the new key (its state written) and is online.  The
        captured reconnection, replayed before the agent's next rotation,
        is refused and alerted, and blacklists nothing (the profile is
        online); the agent's plain rotation from the new key confirms it,
        and a replay after that names a retired key.
        """
        accepted = self.reconnect(self.first)
        pending = self.begin(
            self.device.request(), SOURCE, accepted.step, accepted.attempt_nonce
        )
        self.device.commit(
            self.commit(
                pending, self.device.acknowledge(pending.server_public, pending.ok)
            )
        )
        self.assertEqual(self.refused(self.first, ELSEWHERE), "reconnect_failed")
        self.assertIsNone(self.blacklisted())
        self.check_rotation(self.device)
        self.rotate()
        self.assert_agreed()
        self.assertEqual(self.refused(self.first, ELSEWHERE), "unknown_key")
        self.assertEqual(self.alerts(), ["reconnect_failed", "clone_suspected"])

    def test_retry_next_step(self):
        """
        The retry comes in the next step: a newer step, accepted as any
        first reconnection, with no alert.
        """
        self.rotation_commits_on_server_only(self.first)
        self.clock.advance(30)
        retry = reconnect_message(self.device, self.step(), nonce=RETRY_NONCE)
        accepted = self.retry_and_rotate(retry)
        self.assertEqual(accepted.step, self.step())
        self.assertEqual(self.alerts(), [])
        self.assertEqual(
            self.store.spent_offline_step("alice").attempt_nonces,
            frozenset({RETRY_NONCE}),
        )

    def test_replay_after_commit(self):
        """
        The captured first message, replayed after its rotation committed,
        is refused and alerted as C{reconnect_failed} (the profile is
        online, so it stays enrolled) and changes nothing; the client's own
        retry is still accepted afterwards.
        """
        self.rotation_commits_on_server_only(self.first)
        before = self.state()
        self.assertEqual(self.refused(self.first, ELSEWHERE), "reconnect_failed")
        self.assertEqual(self.state(), before)
        self.assertEqual(self.alerts(), ["reconnect_failed"])
        self.retry_and_rotate(
            reconnect_message(self.device, self.step(), nonce=RETRY_NONCE)
        )

    def test_replay_after_commit_offline(self):
        """
        Replayed when the profile is offline again, the captured message is
        refused exactly as before there were retries: the profile is
        blacklisted, as for any reconnection by a holder of the key that
        opens under no step it may use.
        """
        self.rotation_commits_on_server_only(self.first)
        self.go_offline()
        self.assertEqual(self.refused(self.first, ELSEWHERE), "blacklisted")
        self.assertEqual(self.blacklisted(), ("reconnect_failed", ELSEWHERE))

    def test_replays_after_retry(self):
        """
        Once the retry's rotation committed, neither the first message nor
        the retry is accepted again.
        """
        self.rotation_commits_on_server_only(self.first)
        retry = reconnect_message(self.device, self.step(), nonce=RETRY_NONCE)
        self.rotation_commits_on_server_only(retry)
        for message in (self.first, retry):
            self.assertEqual(self.refused(message, ELSEWHERE), "reconnect_failed")
        self.assertEqual(self.alerts(), ["reconnect_failed"] * 2)

    def test_retry_with_old_nonce(self):
        """
        A retry that reuses the first attempt's nonce, even with fresh
        junk, is refused and alerted as a replay: a nonce that committed
        never opens the step again.
        """
        self.rotation_commits_on_server_only(self.first)
        reused = reconnect_message(self.device, self.step(), junk=OTHER_JUNK)
        self.assertEqual(reused.nonce, self.first.nonce)
        self.assertEqual(self.refused(reused), "reconnect_failed")
        self.assertEqual(self.alerts(), ["reconnect_failed"])

    def test_answered_never_committed(self):
        """
        A captured message that was answered but whose rotation never
        committed is answered again while its step is unspent, as before
        there were retries: the answer is all it gets, since the rotation
        that would spend the step needs the key and the fingerprint to
        acknowledge, and the client's own rotation commits undisturbed.
        """
        accepted = self.reconnect(self.first)
        replayed = self.reconnect(self.first, ELSEWHERE)
        self.assertEqual(replayed.ok, accepted.ok)
        own = self.begin(
            self.device.request(), SOURCE, accepted.step, accepted.attempt_nonce
        )
        self.device.commit(
            self.commit(own, self.device.acknowledge(own.server_public, own.ok))
        )
        thief = Device("alice", FIRST_KEY)
        other = self.begin(
            thief.request(), ELSEWHERE, replayed.step, replayed.attempt_nonce
        )
        failure_of(
            self,
            self.rotation.acknowledge(other, bytes(32), ELSEWHERE, self.now()),
            RotationRefused,
        )
        self.assert_agreed()

    def test_same_message_twice_commits_once(self):
        """
        The same message answered on two connections before either
        rotation committed (a race): the first commit records its nonce,
        and the second, though acknowledged under the right key, is not
        applied.
        """
        accepted = self.reconnect(self.first)
        again = self.reconnect(self.first)
        first = self.begin(
            self.device.request(), SOURCE, accepted.step, accepted.attempt_nonce
        )
        first_ack = self.device.acknowledge(first.server_public, first.ok)
        second = self.begin(
            self.device.request(), SOURCE, again.step, again.attempt_nonce
        )
        second_ack = self.device.acknowledge(second.server_public, second.ok)
        self.commit(first, first_ack)
        d = self.acknowledging(second, second_ack)
        self.clock.advance(0)
        self.failureResultOf(d, RotationRefused)
        self.assertEqual(self.profile().key_id, first.new_key_id)

    def test_first_form_keeps_old_rules(self):
        """
        An agent not yet upgraded (no nonce) that lost "done" is refused
        in the same step as before, and gets back in at the next step.
        """
        first = reconnect_message(self.device, self.step(), nonce=None)
        self.rotation_commits_on_server_only(first)
        again = reconnect_message(self.device, self.step(), nonce=None, junk=OTHER_JUNK)
        self.assertEqual(self.refused(again), "reconnect_failed")
        self.clock.advance(30)
        later = reconnect_message(self.device, self.step(), nonce=None)
        accepted = self.reconnect(later)
        self.assertTrue(opens_ok(self.device, accepted.step, accepted.ok, None))
        self.rotate_reconnected(accepted)
        self.assert_agreed()

    def test_not_from_current_key(self):
        """
        The spent step reopens only for the key the client reconnected
        from: a reconnection in it from the current key (which the client
        would have only after committing, and so online) is refused.
        """
        self.rotation_commits_on_server_only(self.first)
        holder = Device("alice", self.stored_key())
        holder.generation = 1
        message = reconnect_message(holder, self.step(), nonce=RETRY_NONCE)
        self.assertEqual(self.refused(message), "reconnect_failed")

    def test_bounded_attempts(self):
        """
        After L{MAX_ATTEMPTS_PER_STEP} committed reconnections in one step
        the step does not reopen: the store keeps at most that many nonces
        per profile, and the client gets in at the next step.
        """
        for number in range(MAX_ATTEMPTS_PER_STEP):
            nonce = bytes([number]) * 16
            message = reconnect_message(self.device, self.step(), nonce=nonce)
            self.rotation_commits_on_server_only(message)
        spent = self.store.spent_offline_step("alice")
        self.assertEqual(len(spent.attempt_nonces), MAX_ATTEMPTS_PER_STEP)
        late = reconnect_message(self.device, self.step(), nonce=RETRY_NONCE)
        self.assertEqual(self.refused(late), "reconnect_failed")
        self.clock.advance(30)
        self.retry_and_rotate(
            reconnect_message(self.device, self.step(), nonce=RETRY_NONCE)
        )


class MemoryRetryTests(RetryTestsMixin, MemoryStoreMixin, SynchronousTestCase):
    """
    L{RetryTestsMixin} over the in-memory store.
    """


class SQLiteRetryTests(RetryTestsMixin, SQLiteStoreMixin, SynchronousTestCase):
    """
    L{RetryTestsMixin} over the SQLite store.
    """
