"""
What IT does with enrollment windows: the answer to opening one, where its
hellos go, the listing and cancelling, over the real enrollment rules with
a task.Clock and a recording hello sender.
"""

from ipaddress import ip_network

from twisted.internet import task
from twisted.internet.defer import fail, succeed
from twisted.logger import LogLevel, capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from suto_server.core import schemes
from suto_server.locations import WIDEST_PREFIX, Location, LocationError, Locations
from suto_server.net.discovery import HelloTarget
from suto_server.rules.enrollment import (
    PASSWORD_ALPHABET,
    Enrollment,
    EnrollmentRefused,
)
from suto_server.rules.windows import WindowDesk, hello_targets, too_wide
from suto_server.store.errors import ProfileExists, StoreError
from suto_server.store.memory import MemoryStore
from tests.support.coroutines import failure_of, result_of
from tests.support.enrollment import PASSWORD, device_payload
from tests.support.hello import RecordingHello
from tests.support.masterkey import new_master_key
from tests.support.pools import ImmediatePool

NOW = 1_700_000_000
PORT = 2020
LAB = Location(
    (ip_network("127.0.0.0/24"), ip_network("::1/128"), ip_network("fd00:1::/64")),
    "lab",
)


class HelloTargetsTests(SynchronousTestCase):
    """
    L{hello_targets} announces a window where a device can hear it.
    """

    def test_single_host(self):
        """
        A single host, of either family, is sent its hello directly.
        """
        for text in ("127.0.0.5/32", "::1/128"):
            network = ip_network(text)
            self.assertEqual(
                hello_targets(Location((network,)), PORT),
                (HelloTarget(str(network.network_address), PORT, (network,)),),
            )

    def test_ipv4_subnet(self):
        """
        An IPv4 subnet gets one hello to its directed broadcast address,
        answerable from that subnet only.
        """
        for text, broadcast in (
            ("127.0.0.0/24", "127.0.0.255"),
            ("127.0.9.4/30", "127.0.9.7"),
        ):
            network = ip_network(text)
            self.assertEqual(
                hello_targets(Location((network,)), PORT),
                (HelloTarget(broadcast, PORT, (network,), broadcast=True),),
            )

    def test_ipv6_subnet(self):
        """
        An IPv6 subnet, which has no broadcast, gets no hello.
        """
        self.assertEqual(
            hello_targets(Location((ip_network("fd00:1::/64"),)), PORT), ()
        )

    def test_too_wide_subnet(self):
        """
        An IPv4 subnet wider than L{WIDEST_PREFIX} (a /8, a /15) gets no
        hello: its broadcast would reach the whole range.  A /16 still gets
        one, and single hosts in the same location still get theirs.
        """
        wide = Location(
            (
                ip_network("127.0.0.0/8"),
                ip_network("127.0.0.0/15"),
                ip_network("127.0.0.5/32"),
            )
        )
        self.assertEqual(
            hello_targets(wide, PORT),
            (HelloTarget("127.0.0.5", PORT, (ip_network("127.0.0.5/32"),)),),
        )
        campus = ip_network("127.1.0.0/16")
        self.assertEqual(
            hello_targets(Location((campus,)), PORT),
            (HelloTarget("127.1.255.255", PORT, (campus,), broadcast=True),),
        )

    def test_too_wide(self):
        """
        L{too_wide} names the networks wider than L{WIDEST_PREFIX}: shorter
        than /16 for IPv4, than /48 for IPv6.
        """
        self.assertEqual(WIDEST_PREFIX, {4: 16, 6: 48})
        networks = [
            ip_network(text)
            for text in (
                "127.0.0.0/8", "127.0.0.0/16", "::1/128", "fd00::/32", "fd00::/48"
            )
        ]
        self.assertEqual(
            too_wide(Location(tuple(networks)).networks), (networks[0], networks[3])
        )
        self.assertEqual(too_wide(LAB.networks), ())

    def test_several(self):
        """
        Each network of a location gets its own target, in order.
        """
        self.assertEqual(
            hello_targets(LAB, PORT),
            (
                HelloTarget(
                    "127.0.0.255", PORT, (ip_network("127.0.0.0/24"),), broadcast=True
                ),
                HelloTarget("::1", PORT, (ip_network("::1/128"),)),
            ),
        )


class WindowDeskTests(SynchronousTestCase):
    """
    L{WindowDesk} opens, lists and cancels windows for the admin API.
    """

    def setUp(self):
        self.clock = task.Clock()
        self.clock.advance(NOW)
        self.store = MemoryStore()
        self.pool = ImmediatePool()
        self.enrollment = Enrollment(self.store, new_master_key(self), self.pool)
        self.hello = RecordingHello()
        self.desk = WindowDesk(
            self.enrollment,
            Locations({"lab": LAB}),
            self.clock,
            self.hello,
            PORT,
            lambda: ["AB:CD"],
        )

    def open(self, location="127.0.0.5", timeout=100, password=PASSWORD, **kwargs):
        return self.successResultOf(
            self.desk.open("alice", location, timeout, password, **kwargs)
        )

    def enroll(self, password):
        """
        Enroll C{alice} from inside her window, as a device would.
        """
        window = result_of(self, self.enrollment.begin("alice", "127.0.0.5", NOW))
        sealed, _ = device_payload(password, schemes.salt_of(window.otp_hash), "alice")
        result_of(self, self.enrollment.complete(window, "127.0.0.5", sealed, NOW))

    def test_answer(self):
        """
        The answer tells IT the password (once), the location, the deadline
        in UTC and the certificate fingerprints to pin.
        """
        self.assertEqual(
            self.open(),
            {
                "user": "alice",
                "password": PASSWORD,
                "location": "127.0.0.5/32",
                "deadline": "2023-11-14T22:15:00Z",
                "fingerprints": ["AB:CD"],
                "warnings": [],
            },
        )
        window = self.store.get_window("alice")
        self.assertEqual(
            (window.networks, window.opened_at, window.deadline),
            (("127.0.0.5/32",), NOW, NOW + 100),
        )

    def test_generated_password(self):
        """
        Without a password the answer carries the generated one, which the
        window accepts.
        """
        password = self.open(password=None)["password"]
        self.assertTrue(set(password) <= set(PASSWORD_ALPHABET + "-"))
        self.enroll(password)
        self.assertIsNotNone(self.store.get_profile("alice"))

    def test_named_location(self):
        """
        A name from the locations file opens a window at its networks,
        recorded and described by name.
        """
        self.assertEqual(
            self.open("lab")["location"], "lab (127.0.0.0/24,::1/128,fd00:1::/64)"
        )
        window = self.store.get_window("alice")
        self.assertEqual(
            (window.location_name, window.networks),
            ("lab", ("127.0.0.0/24", "::1/128", "fd00:1::/64")),
        )

    def test_hellos(self):
        """
        The window is announced at each of its targets: unicast to a single
        host, directed broadcast to an IPv4 subnet, nothing to an IPv6
        subnet.
        """
        self.open("lab")
        self.assertEqual(
            self.hello.sent, [("alice", t) for t in hello_targets(LAB, PORT)]
        )
        self.assertEqual(len(self.hello.sent), 2)

    def test_hello_after_window(self):
        """
        The hello goes out only once the window is stored, so a device that
        answers it at once finds the window.
        """
        self.pool.hold = True
        d = self.desk.open("alice", "127.0.0.5", 100, PASSWORD)
        self.assertEqual(self.hello.sent, [])
        self.pool.release()
        self.successResultOf(d)
        self.assertEqual(len(self.hello.sent), 1)

    def test_hello_fails(self):
        """
        A hello that cannot be sent does not stop the others nor the
        window: the operator can run the enroll command on the device.
        """
        self.hello.error = OSError("network unreachable")
        with capturedLogs() as logged:
            self.assertEqual(self.open("lab")["password"], PASSWORD)
        self.assertEqual(len(self.hello.sent), 2)
        self.assertIsNotNone(self.store.get_window("alice"))
        warnings = [
            event for event in logged if event["log_level"] == LogLevel.warn
        ]
        self.assertEqual(len(warnings), 2)
        self.assertEqual(
            [(event["user"], event["error"]) for event in warnings],
            [("alice", "network unreachable")] * 2,
        )

    def test_unknown_location(self):
        """
        A location that resolves to nothing is refused at once: no window,
        no hello.
        """
        self.assertRaises(
            LocationError, self.desk.open, "alice", "kitchen", 100, PASSWORD
        )
        self.assertEqual((self.store.list_windows(), self.hello.sent), ([], []))

    def test_too_wide_refused(self):
        """
        A location with a network wider than L{WIDEST_PREFIX}, given as a
        CIDR or by name, is refused unless asked for as wide, with a
        message naming the network, the limits and the way out: no window,
        no hello, no audit record.
        """
        self.desk = WindowDesk(
            self.enrollment,
            Locations({"site": Location((ip_network("fd00::/32"),), "site")}),
            self.clock,
            self.hello,
            PORT,
            list,
        )
        for location, network in (
            ("127.0.0.0/8", "127.0.0.0/8"),
            ("site", "fd00::/32"),
        ):
            with self.subTest(location=location):
                error = self.assertRaises(
                    LocationError, self.desk.open, "alice", location, 100, PASSWORD
                )
                self.assertEqual(
                    str(error),
                    f"{network} is wider than an enrollment window may be (/16 "
                    f"for IPv4, /48 for IPv6): name the device's own network, or "
                    f"ask for a wide window (suto-admin enroll --wide), which "
                    f"sends that network no hello",
                )
        self.assertEqual(
            (self.store.list_windows(), self.hello.sent, self.store.audit_events()),
            ([], [], []),
        )

    def test_too_wide_on_request(self):
        """
        Asked for as wide, the window opens; the wide network gets no hello,
        a warning is logged and the audit record says it was on request.
        """
        with capturedLogs() as logged:
            answer = self.open("127.0.0.0/8,127.0.0.5", wide=True)
        self.assertEqual(answer["location"], "127.0.0.0/8,127.0.0.5/32")
        self.assertEqual(
            self.store.get_window("alice").networks, ("127.0.0.0/8", "127.0.0.5/32")
        )
        self.assertEqual(
            self.hello.sent,
            [("alice", HelloTarget("127.0.0.5", PORT, (ip_network("127.0.0.5/32"),)))],
        )
        warnings = [event for event in logged if event["log_level"] == LogLevel.warn]
        self.assertEqual(
            [(event["user"], event["networks"]) for event in warnings],
            [("alice", "127.0.0.0/8")],
        )
        [opened] = [
            event
            for event in self.store.audit_events()
            if event.event == "enrollment_window_opened"
        ]
        self.assertEqual(
            opened.reason,
            "at 127.0.0.0/8,127.0.0.5/32 for 100s, a wide location on request",
        )

    def test_wide_flag_without_wide_location(self):
        """
        Asking for a wide window at an ordinary location changes nothing:
        the hello goes out and the audit record does not call it wide.
        """
        self.open(wide=True)
        self.assertEqual(len(self.hello.sent), 1)
        self.assertEqual(
            [e.reason for e in self.store.audit_events()],
            ["at 127.0.0.5/32 for 100s"],
        )

    def test_profile_exists(self):
        """
        An enrolled user is refused at once unless the window replaces the
        profile; nothing is announced.
        """
        self.open()
        self.enroll(PASSWORD)
        self.hello.sent.clear()
        self.failureResultOf(
            self.desk.open("alice", "127.0.0.5", 100, PASSWORD), ProfileExists
        )
        self.assertEqual(self.hello.sent, [])
        self.assertTrue(self.open(replace=True))
        self.assertTrue(self.store.get_window("alice").replace)

    def test_list(self):
        """
        The listing shows each open window's location, the seconds left by
        the clock, its failed attempts and whether it replaces a profile.
        """
        self.open()
        self.clock.advance(30)
        failure_of(
            self, self.enrollment.begin("alice", "127.0.1.1", NOW + 30), EnrollmentRefused
        )
        self.assertEqual(
            result_of(self, self.desk.list()),
            [
                {
                    "user": "alice",
                    "location": "127.0.0.5/32",
                    "seconds_left": 70,
                    "attempts": 1,
                    "max_attempts": 5,
                    "replace": False,
                }
            ],
        )

    def test_list_prunes(self):
        """
        A window whose deadline passed is no longer listed.
        """
        self.open()
        self.clock.advance(100)
        self.assertEqual(result_of(self, self.desk.list()), [])
        self.assertIsNone(self.store.get_window("alice"))

    def test_cancel(self):
        """
        Cancelling closes the window; cancelling nothing says so.
        """
        self.open()
        self.assertTrue(result_of(self, self.desk.cancel("alice")))
        self.assertEqual(result_of(self, self.desk.list()), [])
        self.assertFalse(result_of(self, self.desk.cancel("alice")))


class AccountWarningTests(SynchronousTestCase):
    """
    A window for a user who cannot pass the classic challenge opens, with
    a warning in the answer and the log.
    """

    def desk(self, accounts):
        clock = task.Clock()
        clock.advance(NOW)
        self.store = MemoryStore()
        enrollment = Enrollment(self.store, new_master_key(self), ImmediatePool())
        return WindowDesk(
            enrollment,
            Locations({}),
            clock,
            RecordingHello(),
            PORT,
            lambda: [],
            has_account=lambda user: succeed(user in accounts),
        )

    def test_no_account(self):
        """
        No account: the window opens, and the answer and the log warn,
        naming the user and how to add the account.
        """
        desk = self.desk(set())
        with capturedLogs() as events:
            answer = self.successResultOf(
                desk.open("alice", "127.0.0.5", 100, PASSWORD)
            )
        [warning] = answer["warnings"]
        self.assertIn("alice has no account", warning)
        self.assertIn("suto-admin user add alice", warning)
        self.assertEqual(
            [e["user"] for e in events if e.get("log_level") == LogLevel.warn],
            ["alice"],
        )

    def test_account(self):
        """
        A user with an account is opened a window without a warning.
        """
        desk = self.desk({"alice"})
        answer = self.successResultOf(desk.open("alice", "127.0.0.5", 100, PASSWORD))
        self.assertEqual(answer["warnings"], [])

    def test_account_unreadable(self):
        """
        A store that cannot say whether the user has an account: the
        window is open all the same, and the answer and the log say the
        account could not be checked.
        """
        desk = self.desk(set())
        desk._has_account = lambda user: fail(StoreError("the database went away"))
        with capturedLogs() as events:
            answer = self.successResultOf(
                desk.open("alice", "127.0.0.5", 100, PASSWORD)
            )
        [warning] = answer["warnings"]
        self.assertIn("could not be checked", warning)
        self.assertEqual(
            [e["user"] for e in events if e.get("log_level") == LogLevel.warn],
            ["alice"],
        )
        self.assertIsNotNone(self.store.get_window("alice"))


class AnnouncementTests(SynchronousTestCase):
    """
    A running L{WindowDesk} announces each open window again every
    C{announce_every} seconds until the window closes.
    """

    def setUp(self):
        self.clock = task.Clock()
        self.clock.advance(NOW)
        self.store = MemoryStore()
        self.enrollment = Enrollment(self.store, new_master_key(self), ImmediatePool())
        self.hello = RecordingHello()
        self.desk = self.make_desk()
        self.desk.startService()
        self.addCleanup(self.stop)

    def make_desk(self):
        return WindowDesk(
            self.enrollment,
            Locations(),
            self.clock,
            self.hello,
            PORT,
            lambda: ["AB:CD"],
            announce_every=5,
        )

    def stop(self):
        if self.desk.running:
            self.desk.stopService()
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def open(self, timeout=12):
        self.successResultOf(self.desk.open("alice", "127.0.0.5", timeout, PASSWORD))

    def sent_after(self, seconds):
        self.hello.sent.clear()
        self.clock.advance(seconds)
        return len(self.hello.sent)

    def test_until_deadline(self):
        """
        A window is announced at once and then every 5 seconds while it is
        open; the announcement due at or past its deadline is not sent.
        """
        self.open(timeout=12)
        self.assertEqual(len(self.hello.sent), 1)
        self.assertEqual([self.sent_after(5), self.sent_after(5)], [1, 1])
        self.assertEqual(self.sent_after(5), 0)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_until_cancelled(self):
        """
        A cancelled window is announced no more.
        """
        self.open()
        result_of(self, self.desk.cancel("alice"))
        self.assertEqual(self.sent_after(5), 0)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_until_used(self):
        """
        A window closed by its enrollment is announced no more.
        """
        self.open()
        window = result_of(self, self.enrollment.begin("alice", "127.0.0.5", NOW))
        sealed, _ = device_payload(PASSWORD, schemes.salt_of(window.otp_hash), "alice")
        result_of(self, self.enrollment.complete(window, "127.0.0.5", sealed, NOW))
        self.assertEqual(self.sent_after(5), 0)

    def test_reopened(self):
        """
        A window cancelled and opened again has one announcement schedule,
        the new window's.
        """
        self.open()
        result_of(self, self.desk.cancel("alice"))
        self.clock.advance(1)
        self.open()
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.assertEqual(self.sent_after(5), 1)

    def test_stop(self):
        """
        Stopping the desk cancels every announcement due.
        """
        self.open()
        self.desk.stopService()
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_restart_resumes(self):
        """
        Windows kept across a restart are announced again at start, and
        until their original deadline.
        """
        self.open(timeout=12)
        self.desk.stopService()
        self.clock.advance(3)
        self.hello.sent.clear()
        self.desk = self.make_desk()
        self.desk.startService()
        [target] = hello_targets(Location((ip_network("127.0.0.5/32"),)), PORT)
        self.assertEqual(self.hello.sent, [("alice", target)])
        self.assertEqual([self.sent_after(5), self.sent_after(5)], [1, 0])

    def test_not_running(self):
        """
        A desk that is not running announces a window once, when it opens.
        """
        self.desk.stopService()
        self.open()
        self.assertEqual(len(self.hello.sent), 1)
        self.assertEqual(self.sent_after(5), 0)
