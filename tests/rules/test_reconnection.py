"""
The reconnection and blacklist rules (L{Reconnection}) over both stores,
with the real rotation rules, a real master key and a group committer on a
L{task.Clock}: the seed's attacks ("Changing ports", "Reconnected",
"Attacking") played by L{Device}s that hold real or stolen state, and what
is refused, recorded and blacklisted.
"""

import base64

from twisted.logger import capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from suto_server.audit.aggregation import DEFAULT_INTERVAL
from suto_server.audit.log import AuditLog
from suto_server.core import keyschedule, wire
from suto_server.core.timing import DEFAULT_OFFLINE_STEP, DEFAULT_OFFLINE_WINDOW
from suto_server.rules.reconnection import (
    Reconnected,
    Reconnection,
    ReconnectRefused,
)
from suto_server.store.records import BlacklistEntry
from tests.support.alerts import RecordingSink
from tests.support.coroutines import failure_of, result_of
from tests.support.reconnection import (
    RECONNECT_JUNK,
    ReconnectionMixin,
    offline_key_of,
    opens_ok,
    reconnect_message,
)
from tests.support.rotation import (
    ELSEWHERE,
    FIRST_KEY,
    JUNK,
    NOW,
    OTHER_FINGERPRINT,
    SOURCE,
    Device,
    enroll,
)
from tests.support.stores import MemoryStoreMixin, SQLiteStoreMixin


def count_start_reads(case) -> list[str]:
    """
    Patch C{case}'s store so that each read a connection's start may make
    of a profile and its marks is named, in order, in the list returned.
    """
    reads = []
    names = ("rotation_start", "standing", "blacklist_entry", "offline_since")
    for name in names + ("get_profile",):
        original = getattr(case.store, name)

        def counted(user, original=original, name=name):
            reads.append(name)
            return original(user)

        case.patch(case.store, name, counted)
    return reads


class ReconnectTestsMixin(ReconnectionMixin):
    """
    L{Reconnection.reconnect} for the legitimate client.
    """

    def test_reconnects(self):
        """
        An offline profile's client that seals junk under offline_key(K,
        fingerprint, step, user) for the server's step is accepted: the
        answer names that step and its key, carries "ok" sealed under the
        offline key (purpose C{reconnect-ok}, s2c, counter 0), and a
        C{reconnected} event is recorded; the spell lasts until a rotation
        commits.
        """
        self.clock.advance(500)
        self.go_offline()
        accepted = self.reconnect(reconnect_message(self.device, self.step()))
        self.assertIsInstance(accepted, Reconnected)
        self.assertEqual(
            (accepted.user, accepted.step, accepted.key, accepted.previous),
            ("alice", self.step(), FIRST_KEY, None),
        )
        self.assertTrue(opens_ok(self.device, self.step(), accepted.ok))
        self.assertFalse(opens_ok(self.device, self.step(1), accepted.ok))
        self.assertEqual(
            self.events(),
            [
                (
                    "reconnected",
                    "alice",
                    SOURCE,
                    f"reconnected with the offline key of step {self.step()}",
                )
            ],
        )
        self.assertEqual(self.store.offline_since("alice"), NOW + 500)
        self.assertIsNone(self.store.spent_offline_step("alice"))
        self.assertIsNone(self.blacklisted())

    def test_one_read(self):
        """
        A reconnection reads its profile with both marks once: the
        blacklist entry, the offline mark and the keys the proof is
        checked against come from one call of the store.
        """
        self.go_offline()
        reads = count_start_reads(self)
        accepted = self.reconnect(reconnect_message(self.device, self.step()))
        self.assertIsInstance(accepted, Reconnected)
        self.assertEqual(reads, ["rotation_start"])

    def test_rotation_ends_spell_and_spends_step(self):
        """
        The rotation that follows commits, ends the offline spell and
        spends the step; both sides agree on the new key.
        """
        self.go_offline()
        accepted = self.reconnect(reconnect_message(self.device, self.step()))
        self.rotate_reconnected(accepted)
        self.assert_agreed()
        self.assertIsNone(self.store.offline_since("alice"))
        self.assertEqual(self.store.spent_offline_step("alice").step, accepted.step)
        self.check_rotation(self.device)

    def test_not_offline(self):
        """
        A client that noticed its silence before the server did may
        reconnect although its profile is not marked offline.
        """
        accepted = self.reconnect(reconnect_message(self.device, self.step()))
        self.assertEqual(accepted.step, self.step())
        self.assertIsNone(self.blacklisted())

    def test_previous_key(self):
        """
        A client that never got "done" of its last rotation holds the
        previous key: it reconnects with it, and the answer names both keys
        the profile holds for the location check.
        """
        stale = Device("alice", FIRST_KEY)
        self.rotate()
        self.go_offline()
        accepted = self.reconnect(reconnect_message(stale, self.step()))
        self.assertEqual(
            (accepted.key, accepted.previous), (self.device.key, FIRST_KEY)
        )
        self.assertTrue(opens_ok(stale, self.step(), accepted.ok))

    def test_skew_within_window(self):
        """
        A client whose step is up to two steps either side of the
        server's (its clock or the time it learnt was off) is accepted,
        with its own step.
        """
        self.go_offline()
        for offset in range(-DEFAULT_OFFLINE_WINDOW, DEFAULT_OFFLINE_WINDOW + 1):
            accepted = self.reconnect(
                reconnect_message(self.device, self.step(offset))
            )
            self.assertEqual(accepted.step, self.step(offset), offset)
        self.assertIsNone(self.blacklisted())

    def test_skew_outside_window(self):
        """
        Three steps either side is outside the window: for an offline
        profile the attempt fails, and blacklists it.
        """
        bob = enroll(self.store, self.master_key, "bob")
        self.go_offline("alice")
        self.go_offline("bob")
        for device, offset in ((self.device, -3), (bob, DEFAULT_OFFLINE_WINDOW + 1)):
            message = reconnect_message(device, self.step(offset))
            self.assertEqual(self.refused(message), "blacklisted")
            self.assertEqual(
                self.blacklisted(device.user), ("reconnect_failed", SOURCE)
            )

    def test_step_spent_once(self):
        """
        A step a committed rotation spent is never accepted again, even
        inside the window: once the profile is offline again, the same
        step, or an older one, blacklists it; a newer one would not have.
        """
        self.go_offline()
        accepted = self.reconnect(reconnect_message(self.device, self.step()))
        self.rotate_reconnected(accepted)
        self.go_offline()
        for offset in (-1, 0):
            self.refused(reconnect_message(self.device, self.step(offset)))
        self.assertEqual(self.blacklisted(), ("reconnect_failed", SOURCE))

    def test_newer_step_after_spent(self):
        """
        After a spent step the next one is accepted.
        """
        self.go_offline()
        accepted = self.reconnect(reconnect_message(self.device, self.step()))
        self.rotate_reconnected(accepted)
        self.go_offline()
        again = self.reconnect(reconnect_message(self.device, self.step(1)))
        self.assertEqual(again.step, self.step(1))

    def test_replayed_after_spent_not_offline(self):
        """
        The reconnection the legitimate client made, replayed after its
        rotation (the profile is online), is refused as
        C{reconnect_failed}, raised as that alert, and blacklists nothing.
        """
        self.go_offline()
        message = reconnect_message(self.device, self.step())
        self.rotate_reconnected(self.reconnect(message))
        before = self.state()
        self.assertEqual(self.refused(message, ELSEWHERE), "reconnect_failed")
        self.assertEqual(self.state(), before)
        [(_, user, source, reason)] = self.events("reconnect_failed")
        self.assertEqual((user, source), ("alice", ELSEWHERE))
        self.assertIn("the profile was not offline, so it stays enrolled", reason)
        self.assertEqual(self.events("blacklisted"), [])


class AttackTestsMixin(ReconnectionMixin):
    """
    The seed's attacks on a profile: credentials copied to another
    machine, a stale copy, stolen state used once the legitimate client
    is offline.
    """

    def assert_blacklisted(self, alert, source=ELSEWHERE):
        """
        C{alice} is blacklisted by C{alert} from C{source}; C{alert} (when
        it is not C{blacklisted} itself) and C{blacklisted} were raised
        once each, naming C{source}; and the legitimate client is refused
        from now on.
        """
        self.assertEqual(self.blacklisted(), (alert, source))
        expected = [alert, "blacklisted"] if alert != "blacklisted" else [alert]
        self.assertEqual(
            [
                (event, user, audited)
                for event, user, audited, _ in self.events()
                if event in ("clone_suspected", "reconnect_failed", "blacklisted")
            ],
            [(event, "alice", source) for event in expected],
        )
        [(_, _, _, reason)] = self.events("blacklisted")
        self.assertTrue(reason.startswith(f"blacklisted ({alert}): "), reason)
        self.assertEqual(
            self.refused(reconnect_message(self.device, self.step())), "blacklisted"
        )
        self.assertEqual(self.rotation_refused(self.device), "blacklisted")
        self.assertEqual(len(self.events("blacklisted_refused")), 2)

    def test_copied_machine_reconnects(self):
        """
        Credentials copied to another machine (another fingerprint), once
        the legitimate client is offline: the copy's offline key differs,
        its reconnection fails, and the profile is blacklisted.
        """
        copy = Device("alice", FIRST_KEY, fingerprint=OTHER_FINGERPRINT)
        self.go_offline()
        before = self.profile()
        self.assertEqual(
            self.refused(reconnect_message(copy, self.step()), ELSEWHERE),
            "blacklisted",
        )
        self.assertEqual(self.profile(), before)
        self.assert_blacklisted("reconnect_failed")

    def test_copied_machine_rotates_offline(self):
        """
        The copy skips the reconnection and rotates plainly: for an
        offline profile that is refused and raised as C{reconnect_failed},
        but blacklists nothing, since a plain rotation proves no key.
        """
        copy = Device("alice", FIRST_KEY, fingerprint=OTHER_FINGERPRINT)
        self.go_offline()
        before = self.state()
        self.assertEqual(self.rotation_refused(copy, ELSEWHERE), "reconnect_failed")
        self.assertEqual(self.state(), before)
        self.assertEqual(
            [(event, audited) for event, _, audited, _ in self.events()],
            [("reconnect_failed", ELSEWHERE)],
        )

    def test_copied_machine_reconnects_online(self):
        """
        The copy tries to reconnect while the profile is online (the
        legitimate client is connected): refused as C{reconnect_failed},
        raised as that alert, and the legitimate client goes on.
        """
        copy = Device("alice", FIRST_KEY, fingerprint=OTHER_FINGERPRINT)
        self.assertEqual(
            self.refused(reconnect_message(copy, self.step()), ELSEWHERE),
            "reconnect_failed",
        )
        self.assertIsNone(self.blacklisted())
        self.assertEqual(len(self.events("reconnect_failed")), 1)
        self.check_rotation(self.device)
        self.rotate()
        self.assert_agreed()

    def test_stale_copy_after_rotations(self):
        """
        Credentials copied, then the legitimate client rotated (twice, so
        the copied key is retired): once the client is offline the copy,
        even on the enrolled machine, is refused as C{clone_suspected}
        naming both places; a retired id proves no key, so nothing is
        blacklisted and the legitimate client still reconnects.
        """
        copy = Device("alice", FIRST_KEY)
        self.rotate()
        self.rotate()
        self.go_offline()
        self.assertEqual(
            self.refused(reconnect_message(copy, self.step()), ELSEWHERE),
            "unknown_key",
        )
        [(_, _, _, reason)] = self.events("clone_suspected")
        self.assertIn(keyschedule.key_id(FIRST_KEY), reason)
        self.assertIn(SOURCE, reason)
        self.assertIsNone(self.blacklisted())
        self.reconnect(reconnect_message(self.device, self.step()))

    def test_stale_copy_rotates_offline(self):
        """
        The stale copy rotating plainly for an offline profile is a second
        holder of the chain as much as when the profile is online: the
        offline rule lets its retired key id through, and the rotation
        rules refuse it as C{clone_suspected} naming both places (not
        C{reconnect_failed}); nothing is blacklisted and nothing changes.
        """
        copy = Device("alice", FIRST_KEY)
        self.rotate()
        self.rotate()
        self.go_offline()
        before = self.state()
        self.check_rotation(copy, ELSEWHERE)
        retired = keyschedule.key_id(FIRST_KEY)
        self.assertEqual(
            self.refusal(self.rotation.check_key, "alice", retired, ELSEWHERE, self.now()),
            "unknown_key",
        )
        self.assertEqual(self.events("reconnect_failed"), [])
        [clone] = [
            e for e in self.store.audit_events() if e.event == "clone_suspected"
        ]
        self.assertEqual((clone.username, clone.source), ("alice", ELSEWHERE))
        self.assertIn(retired, clone.reason)
        self.assertEqual(clone.locations, (ELSEWHERE, SOURCE))
        self.assertEqual(self.state(), before)

    def test_stale_copy_online(self):
        """
        The stale copy reconnecting while the profile is online: refused
        with C{unknown_key} and recorded as C{clone_suspected}, as the
        rotation rules record it, without blacklisting; the legitimate
        client goes on.
        """
        copy = Device("alice", FIRST_KEY)
        self.rotate()
        self.rotate()
        before = self.state()
        self.assertEqual(
            self.refused(reconnect_message(copy, self.step()), ELSEWHERE),
            "unknown_key",
        )
        self.assertEqual(self.state(), before)
        [(_, user, source, _)] = self.events("clone_suspected")
        self.assertEqual((user, source), ("alice", ELSEWHERE))
        self.rotate()
        self.assert_agreed()

    def test_window_moved_on(self):
        """
        An attacker who stole the state (and knows the fingerprint) and
        sealed a reconnection while the client was online, and uses it
        once the client is offline and the window has moved on: it fails
        and blacklists the profile.
        """
        stolen = reconnect_message(Device("alice", FIRST_KEY), self.step())
        self.clock.advance(DEFAULT_OFFLINE_STEP * (DEFAULT_OFFLINE_WINDOW + 1))
        self.go_offline()
        self.assertEqual(self.refused(stolen, ELSEWHERE), "blacklisted")
        self.assert_blacklisted("reconnect_failed")

    def test_superseded_key_after_rotation(self):
        """
        The legitimate client reconnected and rotated; an attacker
        replays its reconnection (named with the key it held then) once
        the client is offline again, inside the window: the key is
        superseded, so it is refused as C{clone_suspected}.
        """
        self.go_offline()
        message = reconnect_message(self.device, self.step())
        self.rotate_reconnected(self.reconnect(message))
        self.rotate()
        self.go_offline()
        self.assertEqual(self.refused(message, ELSEWHERE), "unknown_key")
        self.assertEqual(len(self.events("clone_suspected")), 1)
        self.assertIsNone(self.blacklisted())

    def test_stolen_key_replays_old_step(self):
        """
        The attacker holds the current key (a copy taken after the last
        rotation) and replays an offline derivation from a step the window
        has moved past: it proves the key, fails the offline proof, and so
        blacklists the profile (C{reconnect_failed}).
        """
        self.go_offline()
        stale = reconnect_message(self.device, self.step() - 3)
        self.assertEqual(self.refused(stale, ELSEWHERE), "blacklisted")
        self.assert_blacklisted("reconnect_failed")

    def test_wrong_proof(self):
        """
        A reconnection naming the profile's current key id with a proof
        that was not made with the key (someone who only read the id) is
        refused and raised as C{reconnect_failed}; nothing changes, even
        for an offline profile.
        """
        self.go_offline()
        good = reconnect_message(self.device, self.step())
        forged = wire.Reconnect(good.key_id, bytes(16), good.sealed, good.user)
        before = self.state()
        self.assertEqual(self.refused(forged, ELSEWHERE), "reconnect_failed")
        self.assertEqual(self.state(), before)
        [(_, _, audited, reason)] = self.events("reconnect_failed")
        self.assertEqual(audited, ELSEWHERE)
        self.assertIn("without proof", reason)

    def test_unknown_profile(self):
        """
        A reconnection for a user with no profile is C{unknown_key}; nothing
        is recorded.
        """
        message = reconnect_message(Device("carol", FIRST_KEY), self.step())
        self.assertEqual(self.refused(message, ELSEWHERE), "unknown_key")
        self.assertEqual(self.events(), [])
        self.assertIsNone(self.blacklisted("carol"))

    def test_unknown_key_id(self):
        """
        A reconnection naming a key id the offline profile never held is a
        guess: C{unknown_key}, nothing recorded, nothing blacklisted.
        """
        self.go_offline()
        before = self.state()
        guess = reconnect_message(Device("alice", bytes(32)), self.step())
        self.assertEqual(self.refused(guess, ELSEWHERE), "unknown_key")
        self.assertEqual(self.state(), before)
        self.assertEqual(self.events(), [])

    def test_garbage_not_offline(self):
        """
        Junk that opens under no key, naming the current key of a profile
        that is not offline: C{reconnect_failed} only.
        """
        message = wire.Reconnect(
            keyschedule.key_id(FIRST_KEY),
            keyschedule.reconnect_proof(FIRST_KEY, "alice", bytes(48)),
            bytes(48),
            "alice",
        )
        before = self.state()
        self.assertEqual(self.refused(message, ELSEWHERE), "reconnect_failed")
        self.assertEqual(self.state(), before)
        self.assertEqual(
            [event for event, _, _, _ in self.events()], ["reconnect_failed"]
        )


class CheckRotationTestsMixin(ReconnectionMixin):
    """
    L{Reconnection.check_rotation}: who may start a plain rotation.
    """

    def test_online(self):
        """
        An online profile rotates from any key id; nothing is recorded.
        """
        self.check_rotation(self.device)
        self.check_rotation(Device("alice", bytes(32)))
        self.assertEqual(self.events(), [])

    def test_one_read(self):
        """
        A plain rotation of an online profile reads the store once, for
        its blacklist entry, its offline mark and the profile the key
        check goes on with.
        """
        reads = count_start_reads(self)
        profile = self.check_rotation(self.device)
        self.assertEqual(reads, ["rotation_start"])
        self.assertEqual(profile, self.store.get_profile(self.device.user))

    def test_reconnected(self):
        """
        An offline profile rotates on a connection that reconnected.
        """
        self.go_offline()
        self.check_rotation(self.device, reconnected=True)
        self.assertIsNone(self.blacklisted())

    def test_held_keys_refused(self):
        """
        A plain rotation for an offline profile naming its current key or
        its unconfirmed previous key is refused as C{reconnect_failed},
        and blacklists nothing; the reason names the source and says the
        client should have reconnected.
        """
        named = {}
        for user, which in (("alice", "current"), ("bob", "previous")):
            device = self.device if user == "alice" else enroll(
                self.store, self.master_key, user
            )
            self.rotate(device)
            self.rotate(device)
            profile = self.profile(user)
            named[user] = {
                "current": profile.key_id,
                "previous": profile.previous_key_id,
            }[which]
            self.go_offline(user)
        for user, key_id in named.items():
            failure = failure_of(
                self,
                self.reconnection.check_rotation(
                    user, key_id, ELSEWHERE, self.now(), reconnected=False
                ),
                ReconnectRefused,
            )
            self.assertEqual(failure.value.reason, "reconnect_failed", user)
            self.assertIsNone(self.blacklisted(user))
        reasons = [reason for _, _, _, reason in self.events("reconnect_failed")]
        self.assertEqual(len(reasons), 2)
        for reason in reasons:
            self.assertIn(ELSEWHERE, reason)
            self.assertIn("reconnects with its offline key first", reason)

    def test_unknown_key_id_offline(self):
        """
        A key id the offline profile never held (or a user with no
        profile) proves nothing: it passes, for the rotation rules to
        refuse, and blacklists nothing.
        """
        self.go_offline()
        self.check_rotation(Device("alice", bytes(32)), ELSEWHERE)
        self.check_rotation(Device("carol", FIRST_KEY), ELSEWHERE)
        self.assertIsNone(self.blacklisted())
        self.assertEqual(self.events(), [])

    def test_blacklisted(self):
        """
        A blacklisted profile may not rotate, even on a reconnected
        connection; the attempt is recorded as C{blacklisted_refused}.
        """
        self.store.add_to_blacklist(
            BlacklistEntry("alice", NOW, "test", ELSEWHERE, "reconnect_failed")
        )
        for reconnected in (False, True):
            self.assertEqual(
                self.rotation_refused(self.device, reconnected=reconnected),
                "blacklisted",
            )
        self.assertEqual(
            self.events("blacklisted_refused"),
            [
                (
                    "blacklisted_refused",
                    "alice",
                    SOURCE,
                    f"a connection from {SOURCE} for a blacklisted profile "
                    f"was refused",
                )
            ]
            * 2,
        )

    def test_blacklisted_reconnect(self):
        """
        A blacklisted profile's valid reconnection is refused before any
        key is tried, and recorded.
        """
        self.store.add_to_blacklist(
            BlacklistEntry("alice", NOW, "test", ELSEWHERE, "reconnect_failed")
        )
        self.assertEqual(
            self.refused(reconnect_message(self.device, self.step())),
            "blacklisted",
        )
        self.assertEqual(
            [event for event, _, _, _ in self.events()], ["blacklisted_refused"]
        )


class BlacklistAdminTestsMixin(ReconnectionMixin):
    """
    L{Reconnection.blacklist_report} and L{Reconnection.unblock}.
    """

    def blacklist_alice(self):
        self.go_offline()
        copy = Device("alice", FIRST_KEY, fingerprint=OTHER_FINGERPRINT)
        self.refused(reconnect_message(copy, self.step()), ELSEWHERE)

    def test_report(self):
        """
        One row per blacklisted profile: user, ISO time, reason, source and
        the alert; empty when none is.
        """
        self.assertEqual(result_of(self, self.reconnection.blacklist_report()), [])
        self.clock.advance(20)
        self.blacklist_alice()
        [row] = result_of(self, self.reconnection.blacklist_report())
        self.assertEqual(
            {key: row[key] for key in ("user", "time", "source", "alert")},
            {
                "user": "alice",
                "time": "2023-11-14T22:13:40Z",
                "source": ELSEWHERE,
                "alert": "reconnect_failed",
            },
        )
        self.assertIn(ELSEWHERE, row["reason"])

    def test_unblock(self):
        """
        Unblocking lifts the entry and removes the profile (with its
        offline spell), recording C{unblocked}; the user may then enroll
        again and reconnect from scratch.
        """
        self.blacklist_alice()
        self.assertTrue(result_of(self, self.reconnection.unblock("alice", self.now())))
        self.assertEqual(
            self.state(), (None, None, None, None)
        )
        self.assertEqual(result_of(self, self.reconnection.blacklist_report()), [])
        [(_, user, source, reason)] = self.events("unblocked")
        self.assertEqual((user, source), ("alice", None))
        self.assertIn("must enroll again", reason)
        device = enroll(self.store, self.master_key, "alice")
        self.check_rotation(device)

    def test_unblock_names_operator(self):
        """
        The C{unblocked} record names the operator who lifted the entry.
        """
        self.blacklist_alice()
        result_of(
            self,
            self.reconnection.unblock(
                "alice", self.now(), "CN=it-bob (client certificate)"
            ),
        )
        [(_, _, _, reason)] = self.events("unblocked")
        self.assertTrue(reason.startswith("CN=it-bob (client certificate) lifted"))

    def test_unblock_not_blacklisted(self):
        """
        Unblocking a profile that is not blacklisted changes nothing and
        records nothing.
        """
        before = self.state()
        self.assertFalse(
            result_of(self, self.reconnection.unblock("alice", self.now()))
        )
        self.assertFalse(
            result_of(self, self.reconnection.unblock("carol", self.now()))
        )
        self.assertEqual(self.state(), before)
        self.assertEqual(self.events(), [])


class SecretTestsMixin(ReconnectionMixin):
    """
    No key, offline key, junk or sealed data reaches a log event or an
    audit record.
    """

    def secrets(self, *devices):
        """
        The byte strings that must never be written, as the hex, base64
        and Python forms a careless format would use.
        """
        raw = [JUNK, RECONNECT_JUNK]
        for device in devices:
            raw.append(device.key)
            raw.append(device.fingerprint)
            for offset in range(-3, 4):
                raw.append(offline_key_of(device, self.step(offset)))
            raw.append(reconnect_message(device, self.step()).sealed)
        forms = []
        for secret in raw:
            forms += [secret.hex(), base64.b64encode(secret).decode(), repr(secret)]
        return forms

    def test_nothing_secret_written(self):
        """
        A reconnection that succeeds, one that fails and blacklists, and the
        refusals after it write no secret to the log or the audit records;
        L{Reconnected}'s repr shows no key.
        """
        copy = Device("alice", FIRST_KEY, fingerprint=OTHER_FINGERPRINT)
        with capturedLogs() as events:
            self.go_offline()
            accepted = self.reconnect(reconnect_message(self.device, self.step()))
            self.rotate_reconnected(accepted)
            self.go_offline()
            self.refused(reconnect_message(copy, self.step(1)), ELSEWHERE)
            self.refused(reconnect_message(self.device, self.step(1)))
            self.assertEqual(self.rotation_refused(self.device), "blacklisted")
        written = [formatEvent(event) + repr(event) for event in events]
        written += [repr(event) for event in self.store.audit_events()]
        report = result_of(self, self.reconnection.blacklist_report())
        written += [repr(report), repr(accepted)]
        self.assertTrue(written)
        text = "\n".join(written)
        for secret in self.secrets(Device("alice", FIRST_KEY), self.device, copy):
            self.assertNotIn(secret, text)
        self.assertNotIn(repr(accepted.ok), repr(accepted))


class MemoryReconnectTests(ReconnectTestsMixin, MemoryStoreMixin, SynchronousTestCase):
    """
    Reconnecting over a L{MemoryStore}.
    """


class SQLiteReconnectTests(ReconnectTestsMixin, SQLiteStoreMixin, SynchronousTestCase):
    """
    Reconnecting over a L{SQLiteStore}.
    """


class MemoryAttackTests(AttackTestsMixin, MemoryStoreMixin, SynchronousTestCase):
    """
    The seed's attacks over a L{MemoryStore}.
    """


class SQLiteAttackTests(AttackTestsMixin, SQLiteStoreMixin, SynchronousTestCase):
    """
    The seed's attacks over a L{SQLiteStore}.
    """


class MemoryCheckRotationTests(
    CheckRotationTestsMixin, MemoryStoreMixin, SynchronousTestCase
):
    """
    Plain rotations of offline and blacklisted profiles over a
    L{MemoryStore}.
    """


class SQLiteCheckRotationTests(
    CheckRotationTestsMixin, SQLiteStoreMixin, SynchronousTestCase
):
    """
    Plain rotations of offline and blacklisted profiles over a
    L{SQLiteStore}.
    """


class MemoryBlacklistAdminTests(
    BlacklistAdminTestsMixin, MemoryStoreMixin, SynchronousTestCase
):
    """
    The blacklist report and unblocking over a L{MemoryStore}.
    """


class SQLiteBlacklistAdminTests(
    BlacklistAdminTestsMixin, SQLiteStoreMixin, SynchronousTestCase
):
    """
    The blacklist report and unblocking over a L{SQLiteStore}.
    """


class MemorySecretTests(SecretTestsMixin, MemoryStoreMixin, SynchronousTestCase):
    """
    No secret written, over a L{MemoryStore}.
    """


class SQLiteSecretTests(SecretTestsMixin, SQLiteStoreMixin, SynchronousTestCase):
    """
    No secret written, over a L{SQLiteStore}.
    """


class ReconnectionAlertTests(ReconnectionMixin, MemoryStoreMixin, SynchronousTestCase):
    """
    Alerts about a peer that only named a key id are gathered per source;
    those after a valid proof of the key go out at once, every time.
    """

    def start_server(self):
        super().start_server()
        self.sink = RecordingSink()
        self.reconnection = Reconnection(
            self.calls,
            self.rotation,
            AuditLog(self.store, [self.sink], clock=self.clock),
        )

    def repeat(self, times, attempt):
        """
        Make C{attempt} C{times}, then end the interval.

        @return: what the sink had before the interval ended, and after.
        """
        for _ in range(times):
            attempt()
        before = self.sink.counted()
        self.clock.advance(DEFAULT_INTERVAL)
        return before, self.sink.counted()

    def test_wrong_proof(self):
        """
        Twenty reconnections with a wrong proof: twenty records, two
        C{reconnect_failed} alerts.
        """
        self.go_offline()
        good = reconnect_message(self.device, self.step())
        forged = wire.Reconnect(good.key_id, bytes(16), good.sealed, good.user)
        before, after = self.repeat(20, lambda: self.refused(forged, ELSEWHERE))
        self.assertEqual(len(self.events("reconnect_failed")), 20)
        self.assertEqual(before, [("reconnect_failed", 1)])
        self.assertEqual(after, [("reconnect_failed", 1), ("reconnect_failed", 19)])

    def test_retired_key_named(self):
        """
        Twenty reconnections naming a retired key id: twenty
        C{clone_suspected} records, two alerts.
        """
        copy = Device("alice", FIRST_KEY)
        self.rotate()
        self.rotate()
        message = reconnect_message(copy, self.step())
        before, after = self.repeat(20, lambda: self.refused(message, ELSEWHERE))
        self.assertEqual(len(self.events("clone_suspected")), 20)
        self.assertEqual(after, [("clone_suspected", 1), ("clone_suspected", 19)])

    def test_plain_rotation_offline(self):
        """
        Twenty plain rotations naming an offline profile's key id: twenty
        C{reconnect_failed} records, two alerts.
        """
        self.go_offline()
        before, after = self.repeat(
            20, lambda: self.rotation_refused(self.device, ELSEWHERE)
        )
        self.assertEqual(len(self.events("reconnect_failed")), 20)
        self.assertEqual(after, [("reconnect_failed", 1), ("reconnect_failed", 19)])

    def test_proven_key_online(self):
        """
        A copy of the state on another machine proves the key but fails
        the offline key: each attempt is raised at once.
        """
        copy = Device("alice", FIRST_KEY, fingerprint=OTHER_FINGERPRINT)
        message = reconnect_message(copy, self.step())
        before, after = self.repeat(3, lambda: self.refused(message, ELSEWHERE))
        self.assertEqual(before, [("reconnect_failed", 1)] * 3)
        self.assertEqual(after, before)

    def test_proven_key_offline(self):
        """
        The same copy for an offline profile blacklists it; both alerts
        go out at once.
        """
        copy = Device("alice", FIRST_KEY, fingerprint=OTHER_FINGERPRINT)
        self.go_offline()
        self.refused(reconnect_message(copy, self.step()), ELSEWHERE)
        self.assertEqual(
            self.sink.counted(), [("reconnect_failed", 1), ("blacklisted", 1)]
        )
