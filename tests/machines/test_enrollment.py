"""
The server's enrollment conversation as a state machine: the exact actions
it asks for after each message or result, in every state.
"""

from twisted.trial.unittest import SynchronousTestCase

from suto_server.core import schemes, wire
from suto_server.machines.classic import Close, Send, Verify
from suto_server.machines.enrollment import Complete, EnrollmentConversation, Fail

SALT = "$6$abcdefghijklmnop"
RSALT = "$6$ABCDEFGHIJKLMNOP"
RESPONSE = schemes.client_response("one-time password", SALT, RSALT)
SEALED = bytes(range(80))
KEY_ID = "0123456789abcdef" * 2
CONFIRMATION = bytes(48)

# A message of each kind the device may send in this conversation, and one
# with no place in it.
HASH = wire.CFHash(RESPONSE)
DATA = wire.EnrollData(SEALED)
CANCEL = wire.AuthCancelled()
STRAY = wire.GetSaltA()


def violation(code):
    """
    What the machine asks for when the conversation breaks with C{code}.
    """
    return [
        Send(wire.Error(code)),
        Close(),
        Fail(f"protocol error: {code}", counted=False),
    ]


class EnrollmentSessionTests(SynchronousTestCase):
    """
    L{EnrollmentConversation} from its first reply to its end.
    """

    def setUp(self):
        self.session = EnrollmentConversation(SALT, lambda: RSALT)

    def awaiting_hash(self):
        "Bring the machine to the point where it waits for the response."
        self.session.start()

    def verifying(self):
        "Bring the machine to the point where the response is being checked."
        self.awaiting_hash()
        self.assertEqual(self.session.receive(HASH), [Verify(RSALT, HASH.hash)])

    def awaiting_data(self):
        "Bring the machine to the point where it waits for the sealed data."
        self.verifying()
        self.assertEqual(self.session.verified(True), [Send(wire.Auth(True))])

    def completing(self):
        "Bring the machine to the point where the profile is being committed."
        self.awaiting_data()
        self.assertEqual(self.session.receive(DATA), [Complete(SEALED)])

    def test_start(self):
        """
        The first reply carries the window's salt and a fresh random salt.
        """
        self.assertEqual(self.session.start(), [Send(wire.SaltA(SALT, RSALT))])

    def test_fresh_rsalt(self):
        """
        Each conversation draws its own random salt, once.
        """
        drawn = iter(["$6$" + c * 16 for c in "AB"])
        first = EnrollmentConversation(SALT, lambda: next(drawn))
        second = EnrollmentConversation(SALT, lambda: next(drawn))
        self.assertEqual(
            [first.start(), second.start()],
            [
                [Send(wire.SaltA(SALT, "$6$" + "A" * 16))],
                [Send(wire.SaltA(SALT, "$6$" + "B" * 16))],
            ],
        )

    def test_success(self):
        """
        Right password, data that opens: verify, C{SUTO_AUTH_1}, complete,
        then C{SUTO_ENROLLED_} and close.
        """
        self.completing()
        self.assertEqual(
            self.session.completed(KEY_ID, CONFIRMATION),
            [Send(wire.Enrolled(KEY_ID, CONFIRMATION)), Close()],
        )

    def test_wrong_password(self):
        """
        A response that does not match: C{SUTO_AUTH_0}, close, and a
        counted failure.
        """
        self.verifying()
        self.assertEqual(
            self.session.verified(False),
            [Send(wire.Auth(False)), Close(), Fail("wrong_password", counted=True)],
        )

    def test_bad_seal(self):
        """
        Data that does not open: C{SUTO_ERROR_BAD_SEAL} and close; the
        rules already counted and recorded it, so no L{Fail}.
        """
        self.completing()
        self.assertEqual(
            self.session.rejected("bad_seal"),
            [Send(wire.Error(wire.ERROR_BAD_SEAL)), Close()],
        )

    def test_window_closed(self):
        """
        A window that expired or went away meanwhile:
        C{SUTO_ERROR_WINDOW_CLOSED} and close.
        """
        for reason in ("expired", "no_window"):
            self.session = EnrollmentConversation(SALT, lambda: RSALT)
            self.completing()
            self.assertEqual(
                self.session.rejected(reason),
                [Send(wire.Error(wire.ERROR_WINDOW_CLOSED)), Close()],
            )

    def test_cancel_awaiting_hash(self):
        """
        C{SUTO_AUTH_CANCELLED} before the response closes, recorded as an
        uncounted C{cancelled}.
        """
        self.session.start()
        self.assertEqual(
            self.session.receive(CANCEL), [Close(), Fail("cancelled", counted=False)]
        )

    def test_cancel_awaiting_data(self):
        """
        C{SUTO_AUTH_CANCELLED} after C{SUTO_AUTH_1} closes the same way.
        """
        self.awaiting_data()
        self.assertEqual(
            self.session.receive(CANCEL), [Close(), Fail("cancelled", counted=False)]
        )

    def test_cancel_verifying(self):
        """
        C{SUTO_AUTH_CANCELLED} while the response is checked breaks
        lockstep: C{SUTO_ERROR_PIPELINED}.
        """
        self.verifying()
        self.assertEqual(self.session.receive(CANCEL), violation(wire.ERROR_PIPELINED))

    def test_cancel_completing(self):
        """
        C{SUTO_AUTH_CANCELLED} while the profile is committed breaks
        lockstep too.
        """
        self.completing()
        self.assertEqual(self.session.receive(CANCEL), violation(wire.ERROR_PIPELINED))

    def test_cancel_done(self):
        """
        C{SUTO_AUTH_CANCELLED} after the end does nothing.
        """
        self.completing()
        self.session.completed(KEY_ID, CONFIRMATION)
        self.assertEqual(self.session.receive(CANCEL), [])

    def test_out_of_order(self):
        """
        Data before the response, a response after C{SUTO_AUTH_1}, and
        messages with no place in enrollment are out of order.
        """
        cases = [
            (self.awaiting_hash, DATA),
            (self.awaiting_hash, STRAY),
            (self.awaiting_hash, wire.Version(2)),
            (self.awaiting_data, HASH),
            (self.awaiting_data, STRAY),
            (self.awaiting_data, wire.Enroll("alice")),
        ]
        for reach, message in cases:
            self.session = EnrollmentConversation(SALT, lambda: RSALT)
            reach()
            self.assertEqual(
                self.session.receive(message),
                violation(wire.ERROR_OUT_OF_ORDER),
                message,
            )

    def test_pipelined_verifying(self):
        """
        Any message while the response is checked is pipelined; the late
        verdict then does nothing.
        """
        for message in (HASH, DATA, STRAY):
            self.session = EnrollmentConversation(SALT, lambda: RSALT)
            self.verifying()
            self.assertEqual(
                self.session.receive(message), violation(wire.ERROR_PIPELINED)
            )
            self.assertEqual(self.session.verified(True), [])

    def test_pipelined_completing(self):
        """
        Any message while the profile is committed is pipelined; the late
        result then does nothing.
        """
        for message in (HASH, DATA, STRAY):
            self.session = EnrollmentConversation(SALT, lambda: RSALT)
            self.completing()
            self.assertEqual(
                self.session.receive(message), violation(wire.ERROR_PIPELINED)
            )
            self.assertEqual(self.session.completed(KEY_ID, CONFIRMATION), [])

    def test_protocol_error(self):
        """
        Bad bytes or a timeout in any state before the end: the error's
        code, close, an uncounted failure naming the code.
        """
        for reach in (
            self.awaiting_hash,
            self.verifying,
            self.awaiting_data,
            self.completing,
        ):
            self.session = EnrollmentConversation(SALT, lambda: RSALT)
            reach()
            self.assertEqual(
                self.session.protocol_error(
                    wire.ProtocolError(wire.ERROR_TIMEOUT, "silent")
                ),
                violation(wire.ERROR_TIMEOUT),
            )

    def test_unavailable(self):
        """
        A response that cannot be checked now (hash pool saturated):
        C{SUTO_ERROR_BUSY}, not counted as a wrong password.
        """
        self.verifying()
        self.assertEqual(
            self.session.unavailable("hash pool saturated"), violation(wire.ERROR_BUSY)
        )

    def test_nothing_after_done(self):
        """
        After each way the conversation ends, every further message or
        result asks for nothing.
        """
        endings = [
            lambda: (self.completing(), self.session.completed(KEY_ID, CONFIRMATION)),
            lambda: (self.verifying(), self.session.verified(False)),
            lambda: (self.completing(), self.session.rejected("bad_seal")),
            lambda: (self.awaiting_hash(), self.session.receive(CANCEL)),
            lambda: (self.awaiting_hash(), self.session.receive(DATA)),
        ]
        for end in endings:
            self.session = EnrollmentConversation(SALT, lambda: RSALT)
            end()
            late = [
                self.session.receive(HASH),
                self.session.receive(DATA),
                self.session.receive(CANCEL),
                self.session.receive(STRAY),
                self.session.verified(True),
                self.session.verified(False),
                self.session.completed(KEY_ID, CONFIRMATION),
                self.session.rejected("bad_seal"),
                self.session.unavailable("busy"),
                self.session.protocol_error(
                    wire.ProtocolError(wire.ERROR_BAD_FIELD, "bad")
                ),
            ]
            self.assertEqual(late, [[]] * len(late))

    def test_complete_repr(self):
        """
        L{Complete} shows how many bytes it carries, never the bytes.
        """
        text = repr([Complete(SEALED)])
        self.assertEqual(text, "[Complete(<80 bytes>)]")
        self.assertNotIn(SEALED.hex(), text)
        self.assertNotIn(repr(SEALED)[2:-1], text)
