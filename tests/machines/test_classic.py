"""
The server's salted-challenge state machine, surrounded by nothing: each
test feeds messages and verification results and asserts the exact list of
actions that comes back.
"""

from twisted.trial.unittest import SynchronousTestCase

from suto_server.core import wire
from suto_server.machines.classic import (
    ClassicConversation,
    Close,
    Finish,
    Send,
    Verify,
)
from suto_server.rules.rendezvous import Verdict

FRAMED = wire.Framing.FRAMED
LEGACY = wire.Framing.LEGACY

SALT = "$6$abcdefghijklmnop"
RSALT = "$6$ABCDEFGHIJKLMNOP"
#: The final hash for password "correct horse" (docs/PROTOCOL.md, 5.3).
RESPONSE = (
    "$6$ABCDEFGHIJKLMNOP$dsXNFnlvg609Z5UZZjjoxahtP1DcdliNtT59B016iF3G3c/"
    "DTs3kcFzJL.ErCXMl0eQ5lrs3nV6YeMMduKAMY."
)

CANCELLED = [
    Close(),
    Finish(Verdict.CANCELLED, "the person declined on the device"),
]

#: Messages only a server sends: a client sending one is out of order.
SERVER_MESSAGES = (
    wire.SaltA(SALT, RSALT),
    wire.RSalt(RSALT),
    wire.Auth(True),
    wire.Auth(False),
    wire.Error(wire.ERROR_TIMEOUT),
)


class RSaltFactory:
    """
    Hands out predictable random salts and counts how many were drawn.
    """

    def __init__(self, *rsalts):
        self.rsalts = list(rsalts or [RSALT])
        self.drawn = 0

    def __call__(self):
        rsalt = self.rsalts[self.drawn]
        self.drawn += 1
        return rsalt


def violation(framing, code):
    """
    The actions that answer a protocol error with C{code}: the framed
    error message or, in legacy framing, C{SUTO_AUTH_0}; then close and
    end in error.
    """
    answer = wire.Error(code) if framing is FRAMED else wire.Auth(False)
    return [
        Send(answer),
        Close(),
        Finish(Verdict.ERROR, f"protocol error: {code}"),
    ]


class SessionTestsMixin:
    """
    Builders shared by every session test; C{framing} is set by each
    concrete class.
    """

    framing = None

    def make(self, salt=SALT, make_rsalt=None):
        """
        A fresh session for a user whose stored hash has C{salt}; its salt
        factory is kept as C{self.make_rsalt}.
        """
        self.make_rsalt = make_rsalt or RSaltFactory()
        return ClassicConversation(self.framing, salt, self.make_rsalt)

    def awaiting_request(self, salt=SALT):
        "A session waiting for SUTO_C_GET_SALTA or SUTO_C_GET_RSALT."
        return self.make(salt)

    def awaiting_hash(self, salt=SALT):
        """
        A session that sent its salts and waits for the final hash; a user
        with no usable hash can only get there by asking for the random
        salt alone.
        """
        session = self.awaiting_request(salt)
        session.receive(wire.GetSaltA() if salt else wire.GetRSalt())
        return session

    def verifying(self, salt=SALT):
        "A session waiting for the verification result."
        session = self.awaiting_hash(salt)
        session.receive(wire.CFHash(RESPONSE))
        return session

    def waiting_states(self):
        """
        The states where a client message is awaited, by name, as fresh
        sessions (the framed version exchange happens before the session).
        """
        return [
            ("awaiting_request", self.awaiting_request),
            ("awaiting_hash", self.awaiting_hash),
        ]

    def ended_sessions(self):
        """
        Sessions that reached a verdict in each way one can end.
        """
        accepted = self.verifying()
        accepted.verified(True)
        rejected = self.verifying()
        rejected.verified(False)
        busy = self.verifying()
        busy.unavailable("the hash pool is saturated")
        cancelled = self.awaiting_request()
        cancelled.receive(wire.AuthCancelled())
        broken = self.awaiting_request()
        broken.receive(wire.CFHash(RESPONSE))
        failed = self.awaiting_hash()
        failed.protocol_error(
            wire.ProtocolError(wire.ERROR_TIMEOUT, "the device went silent")
        )
        no_hash = self.awaiting_request(salt=None)
        no_hash.receive(wire.GetSaltA())
        return [accepted, rejected, busy, cancelled, broken, failed, no_hash]

    def test_salta_path(self):
        """
        Asking for both salts gets the stored hash's setting and a fresh
        random salt; the final hash is handed out for verification with
        that random salt; a match sends C{SUTO_AUTH_1}, closes and accepts.
        """
        session = self.awaiting_request()
        self.assertEqual(
            session.receive(wire.GetSaltA()), [Send(wire.SaltA(SALT, RSALT))]
        )
        self.assertEqual(
            session.receive(wire.CFHash(RESPONSE)), [Verify(RSALT, RESPONSE)]
        )
        self.assertEqual(
            session.verified(True),
            [Send(wire.Auth(True)), Close(), Finish(Verdict.ACCEPTED)],
        )

    def test_rsalt_path(self):
        """
        A device that knows the salt asks for the random salt only and
        goes on the same way.
        """
        session = self.awaiting_request()
        self.assertEqual(
            session.receive(wire.GetRSalt()), [Send(wire.RSalt(RSALT))]
        )
        self.assertEqual(
            session.receive(wire.CFHash(RESPONSE)), [Verify(RSALT, RESPONSE)]
        )
        self.assertEqual(
            session.verified(True),
            [Send(wire.Auth(True)), Close(), Finish(Verdict.ACCEPTED)],
        )

    def test_fresh_rsalt_per_session(self):
        """
        Each session draws its own random salt, once, when it sends it, and
        verifies against that one.
        """
        other = "$6$0123456789abcdef"
        factory = RSaltFactory(RSALT, other)
        first = self.make(make_rsalt=factory)
        second = self.make(make_rsalt=factory)
        self.assertEqual(factory.drawn, 0)
        first.receive(wire.GetRSalt())
        self.assertEqual(
            second.receive(wire.GetRSalt()), [Send(wire.RSalt(other))]
        )
        self.assertEqual(factory.drawn, 2)
        self.assertEqual(
            second.receive(wire.CFHash(RESPONSE)), [Verify(other, RESPONSE)]
        )

    def test_wrong_response(self):
        """
        A response that does not match sends C{SUTO_AUTH_0}, closes and
        rejects.
        """
        session = self.verifying()
        self.assertEqual(
            session.verified(False),
            [
                Send(wire.Auth(False)),
                Close(),
                Finish(Verdict.REJECTED, "wrong response"),
            ],
        )

    def test_unavailable(self):
        """
        When the response cannot be checked the device gets C{SUTO_AUTH_0}
        and the request ends in error with the given reason, not as a
        wrong password.
        """
        session = self.verifying()
        self.assertEqual(
            session.unavailable("the hash pool is saturated"),
            [
                Send(wire.Auth(False)),
                Close(),
                Finish(Verdict.ERROR, "the hash pool is saturated"),
            ],
        )

    def test_no_usable_hash(self):
        """
        Asking for the salt of a user who has no usable hash any more ends
        the exchange with C{SUTO_AUTH_0} and a rejection, without drawing a
        random salt.
        """
        session = self.awaiting_request(salt=None)
        self.assertEqual(
            session.receive(wire.GetSaltA()),
            [
                Send(wire.Auth(False)),
                Close(),
                Finish(
                    Verdict.REJECTED, "the user has no usable password hash"
                ),
            ],
        )
        self.assertEqual(self.make_rsalt.drawn, 0)

    def test_no_usable_hash_rsalt_path(self):
        """
        A device asking only for the random salt gets it even for a user
        with no usable hash: the verification, which finds no hash, gives
        the verdict, so the exchange does not reveal the account's state
        early.
        """
        session = self.awaiting_request(salt=None)
        self.assertEqual(
            session.receive(wire.GetRSalt()), [Send(wire.RSalt(RSALT))]
        )
        self.assertEqual(
            session.receive(wire.CFHash(RESPONSE)), [Verify(RSALT, RESPONSE)]
        )

    def test_out_of_order(self):
        """
        In every state that awaits a client message, any other message is
        answered as C{OUT_OF_ORDER} (C{SUTO_AUTH_0} in legacy framing),
        then the connection closes and the request ends in error.
        """
        expected = violation(self.framing, wire.ERROR_OUT_OF_ORDER)
        unexpected = {
            "awaiting_request": [
                wire.Version(wire.PROTOCOL_VERSION),
                wire.CFHash(RESPONSE),
            ],
            "awaiting_hash": [
                wire.Version(wire.PROTOCOL_VERSION),
                wire.GetSaltA(),
                wire.GetRSalt(),
            ],
        }
        for name, state in self.waiting_states():
            for message in unexpected[name] + list(SERVER_MESSAGES):
                with self.subTest(state=name, message=message):
                    self.assertEqual(state().receive(message), expected)

    def test_out_of_order_without_hash(self):
        """
        A salt request where none is expected is out of order, even for a
        user with no usable hash: order is checked before the account.
        """
        expected = violation(self.framing, wire.ERROR_OUT_OF_ORDER)
        for name, state in self.waiting_states():
            if name == "awaiting_request":
                continue
            with self.subTest(state=name):
                session = state(salt=None)
                self.assertEqual(session.receive(wire.GetSaltA()), expected)

    def test_pipelined(self):
        """
        A client message that arrives while the response is being checked
        breaks the lockstep: C{PIPELINED}, close, error.  Even a
        cancellation: the device already sent its answer.
        """
        expected = violation(self.framing, wire.ERROR_PIPELINED)
        for message in (
            wire.Version(wire.PROTOCOL_VERSION),
            wire.GetSaltA(),
            wire.GetRSalt(),
            wire.CFHash(RESPONSE),
            wire.AuthCancelled(),
        ):
            with self.subTest(message=message):
                self.assertEqual(self.verifying().receive(message), expected)

    def test_pipelined_any_message(self):
        """
        While the response is being checked, I{any} message is
        C{PIPELINED}, as the protocol table says: also messages only a
        server sends and a version the server does not speak.
        """
        expected = violation(self.framing, wire.ERROR_PIPELINED)
        for message in SERVER_MESSAGES + (wire.Version(1),):
            with self.subTest(message=message):
                self.assertEqual(self.verifying().receive(message), expected)


    def test_pipelined_without_hash(self):
        """
        A salt request while verifying a user with no usable hash is
        C{PIPELINED} too.
        """
        self.assertEqual(
            self.verifying(salt=None).receive(wire.GetSaltA()),
            violation(self.framing, wire.ERROR_PIPELINED),
        )

    def test_cancelled(self):
        """
        C{SUTO_AUTH_CANCELLED} in any state that awaits the client closes
        the connection, sends nothing and ends the request as cancelled.
        """
        for name, state in self.waiting_states():
            with self.subTest(state=name):
                self.assertEqual(
                    state().receive(wire.AuthCancelled()), CANCELLED
                )

    def test_protocol_error(self):
        """
        A decoder error in any state before the verdict is answered with
        its own code (C{SUTO_AUTH_0} in legacy framing), then close, error.
        """
        states = self.waiting_states() + [("verifying", self.verifying)]
        for name, state in states:
            with self.subTest(state=name):
                error = wire.ProtocolError(
                    wire.ERROR_BAD_CHARACTER, "a byte outside the alphabet"
                )
                self.assertEqual(
                    state().protocol_error(error),
                    violation(self.framing, wire.ERROR_BAD_CHARACTER),
                )

    def test_nothing_after_verdict(self):
        """
        Once a verdict is out, no message, result or error produces any
        further action, so a verdict is never sent or reported twice.
        """
        late_messages = [
            wire.Version(wire.PROTOCOL_VERSION),
            wire.Version(1),
            wire.GetSaltA(),
            wire.GetRSalt(),
            wire.CFHash(RESPONSE),
            wire.AuthCancelled(),
            *SERVER_MESSAGES,
        ]
        error = wire.ProtocolError(
            wire.ERROR_TIMEOUT, "the device went silent"
        )
        for session in self.ended_sessions():
            for message in late_messages:
                self.assertEqual(session.receive(message), [])
            self.assertEqual(session.verified(True), [])
            self.assertEqual(session.verified(False), [])
            self.assertEqual(session.unavailable("late"), [])
            self.assertEqual(session.protocol_error(error), [])


class FramedSessionTests(SessionTestsMixin, SynchronousTestCase):
    """
    The TLS listener's framing (its version exchange is the protocol's).
    """

    framing = FRAMED

    def test_full_exchange(self):
        """
        The whole framed exchange, from version to verdict, yields exactly
        these actions in this order.
        """
        session = self.make()
        actions = (
            session.receive(wire.GetSaltA())
            + session.receive(wire.CFHash(RESPONSE))
            + session.verified(True)
        )
        self.assertEqual(
            actions,
            [
                Send(wire.SaltA(SALT, RSALT)),
                Verify(RSALT, RESPONSE),
                Send(wire.Auth(True)),
                Close(),
                Finish(Verdict.ACCEPTED),
            ],
        )

    def test_second_version(self):
        """
        A version message after the version exchange, even the right one,
        is out of order.
        """
        session = self.awaiting_request()
        self.assertEqual(
            session.receive(wire.Version(2)),
            violation(FRAMED, wire.ERROR_OUT_OF_ORDER),
        )


class LegacySessionTests(SessionTestsMixin, SynchronousTestCase):
    """
    SUTO 1.3.2's framing: no version exchange, and errors answered with
    C{SUTO_AUTH_0} because the framing cannot name them.
    """

    framing = LEGACY

    def test_full_exchange(self):
        """
        The 1.3.2 exchange starts with the salt request: no version is sent,
        and the actions are exactly these.
        """
        session = self.make()
        actions = (
            session.receive(wire.GetSaltA())
            + session.receive(wire.CFHash(RESPONSE))
            + session.verified(True)
        )
        self.assertEqual(
            actions,
            [
                Send(wire.SaltA(SALT, RSALT)),
                Verify(RSALT, RESPONSE),
                Send(wire.Auth(True)),
                Close(),
                Finish(Verdict.ACCEPTED),
            ],
        )

    def test_version_is_out_of_order(self):
        """
        A version message has no place in the legacy exchange: any version
        is out of order, answered C{SUTO_AUTH_0}.
        """
        for version in (1, 2):
            self.assertEqual(
                self.make().receive(wire.Version(version)),
                violation(LEGACY, wire.ERROR_OUT_OF_ORDER),
            )


class VerifyTests(SynchronousTestCase):
    """
    The verification request carries the peer's final hash, which must not
    reach a log.
    """

    def test_repr_hides_response(self):
        """
        Neither C{repr} nor C{str} of a L{Verify}, alone or inside a list of
        actions, shows the response or the random salt.
        """
        action = Verify(RSALT, RESPONSE)
        secret_part = RESPONSE[len(RSALT) + 1 :]
        for text in (repr(action), str(action), repr([action])):
            self.assertNotIn(secret_part, text)
            self.assertNotIn(RSALT, text)
            self.assertIn("redacted", text)

    def test_compares_by_value(self):
        """
        Hiding the response from C{repr} does not change equality, which
        still sees both fields.
        """
        self.assertEqual(Verify(RSALT, RESPONSE), Verify(RSALT, RESPONSE))
        self.assertNotEqual(
            Verify(RSALT, RESPONSE), Verify(RSALT, RESPONSE[:-1] + "x")
        )
