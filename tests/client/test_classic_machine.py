"""
Tests for L{suto_client.classic_machine}: the agent's side of the classic
challenge, as exact sequences of messages and actions, without I/O.
"""

from twisted.trial.unittest import SynchronousTestCase

from suto_client.classic_machine import ClientClassic, ComputeHash, Finish, Outcome
from suto_server.core import wire
from suto_server.core.machine import Close, Send

SALT = "$6$saltsaltsaltsalt$"
RSALT = "$6$rsaltrsaltrsalt1"
RESPONSE = RSALT + "$" + "r" * 86

FRAMED = wire.Framing.FRAMED
LEGACY = wire.Framing.LEGACY


class ClientSessionTests(SynchronousTestCase):
    def test_salta_path_framed(self):
        """
        Without a cached salted hash, a framed exchange is: VERSION both
        ways, GET_SALTA, SALTA, a hash computed from both salts, CF_HASH,
        AUTH_1, and the connection closed with an accepted outcome.
        """
        session = ClientClassic(FRAMED, cached=False)
        self.assertEqual(session.start(), [Send(wire.Version(2))])
        self.assertEqual(
            session.receive(wire.Version(2)), [Send(wire.GetSaltA())]
        )
        self.assertEqual(
            session.receive(wire.SaltA(SALT, RSALT)),
            [ComputeHash(SALT, RSALT)],
        )
        self.assertEqual(
            session.hashed(RESPONSE), [Send(wire.CFHash(RESPONSE))]
        )
        self.assertEqual(
            session.receive(wire.Auth(True)),
            [Close(), Finish(Outcome.ACCEPTED)],
        )

    def test_rsalt_path_legacy(self):
        """
        With a cached salted hash, a legacy exchange skips the version and
        asks for the random salt only; the hash is computed without a
        password salt.
        """
        session = ClientClassic(LEGACY, cached=True)
        self.assertEqual(session.start(), [Send(wire.GetRSalt())])
        self.assertEqual(
            session.receive(wire.RSalt(RSALT)), [ComputeHash(None, RSALT)]
        )
        self.assertEqual(
            session.hashed(RESPONSE), [Send(wire.CFHash(RESPONSE))]
        )
        self.assertEqual(
            session.receive(wire.Auth(True)),
            [Close(), Finish(Outcome.ACCEPTED)],
        )

    def test_rejected(self):
        """
        AUTH_0 after the hash ends the exchange as rejected.
        """
        session = ClientClassic(LEGACY, cached=True)
        session.start()
        session.receive(wire.RSalt(RSALT))
        session.hashed(RESPONSE)
        self.assertEqual(
            session.receive(wire.Auth(False)),
            [
                Close(),
                Finish(
                    Outcome.REJECTED, "the server refused the authentication"
                ),
            ],
        )

    def test_rejected_instead_of_salts(self):
        """
        A server with no usable hash for the user answers the salts request
        with AUTH_0: that too is a rejection.
        """
        session = ClientClassic(LEGACY, cached=False)
        session.start()
        actions = session.receive(wire.Auth(False))
        self.assertEqual(actions[-1].outcome, Outcome.REJECTED)

    def test_server_error(self):
        """
        A framed server's ERROR ends the exchange at any point, naming the
        code.
        """
        session = ClientClassic(FRAMED, cached=False)
        session.start()
        session.receive(wire.Version(2))
        self.assertEqual(
            session.receive(wire.Error("TIMEOUT")),
            [Close(), Finish(Outcome.ERROR, "the server reported TIMEOUT")],
        )

    def test_versions_spoken(self):
        """
        The classic challenge announces the earliest version this release
        speaks (version 3 changed only the rotation), so that servers of
        either release answer it; it goes on when the server echoes it and
        keeps the answer, and a server answering a newer version than
        announced breaks the protocol.
        """
        session = ClientClassic(FRAMED, cached=False)
        self.assertEqual(
            session.start(), [Send(wire.Version(wire.PROTOCOL_VERSIONS[0]))]
        )
        self.assertIsNone(session.version)
        self.assertEqual(session.receive(wire.Version(2)), [Send(wire.GetSaltA())])
        self.assertEqual(session.version, 2)
        session = ClientClassic(FRAMED, cached=False)
        session.start()
        [close, finish] = session.receive(wire.Version(3))
        self.assertEqual(close, Close())
        self.assertEqual(finish.outcome, Outcome.ERROR)

    def test_version_mismatch(self):
        """
        A server answering with another version is an error; nothing more
        is sent.
        """
        session = ClientClassic(FRAMED, cached=False)
        session.start()
        self.assertEqual(
            session.receive(wire.Version(4)),
            [Close(), Finish(Outcome.ERROR, "the server speaks version 4")],
        )

    def test_salts_before_version(self):
        """
        A framed server skipping the version exchange breaks the protocol.
        """
        session = ClientClassic(FRAMED, cached=False)
        session.start()
        self.assertEqual(
            session.receive(wire.SaltA(SALT, RSALT)),
            [
                Close(),
                Finish(Outcome.ERROR, "unexpected SaltA from the server"),
            ],
        )

    def test_wrong_salts_reply(self):
        """
        RSALT in answer to GET_SALTA (and SALTA to GET_RSALT) is
        unexpected: the client must not guess which hash to use.
        """
        session = ClientClassic(LEGACY, cached=False)
        session.start()
        self.assertEqual(
            session.receive(wire.RSalt(RSALT)),
            [
                Close(),
                Finish(Outcome.ERROR, "unexpected RSalt from the server"),
            ],
        )
        session = ClientClassic(LEGACY, cached=True)
        session.start()
        self.assertEqual(
            session.receive(wire.SaltA(SALT, RSALT)),
            [
                Close(),
                Finish(Outcome.ERROR, "unexpected SaltA from the server"),
            ],
        )

    def test_accepted_without_hash(self):
        """
        AUTH_1 before any hash was sent is not believed: it is an error.
        """
        session = ClientClassic(LEGACY, cached=True)
        session.start()
        self.assertEqual(
            session.receive(wire.Auth(True)),
            [
                Close(),
                Finish(Outcome.ERROR, "unexpected Auth from the server"),
            ],
        )

    def test_message_while_hashing(self):
        """
        The server must wait for the hash (lockstep); anything it sends
        meanwhile is an error, and the late hash is then dropped.
        """
        session = ClientClassic(LEGACY, cached=True)
        session.start()
        session.receive(wire.RSalt(RSALT))
        self.assertEqual(
            session.receive(wire.Auth(False)),
            [
                Close(),
                Finish(Outcome.ERROR, "unexpected Auth from the server"),
            ],
        )
        self.assertEqual(session.hashed(RESPONSE), [])

    def test_message_for_servers(self):
        """
        A message only clients send, arriving from the server, is an error.
        """
        session = ClientClassic(LEGACY, cached=True)
        session.start()
        self.assertEqual(
            session.receive(wire.GetRSalt()),
            [
                Close(),
                Finish(Outcome.ERROR, "unexpected GetRSalt from the server"),
            ],
        )

    def test_decoder_error(self):
        """
        Malformed bytes end the exchange with the decoder's code.
        """
        session = ClientClassic(LEGACY, cached=True)
        session.start()
        error = wire.ProtocolError(wire.ERROR_UNKNOWN_MESSAGE, "unknown")
        self.assertEqual(
            session.protocol_error(error),
            [
                Close(),
                Finish(Outcome.ERROR, "protocol error: UNKNOWN_MESSAGE"),
            ],
        )

    def test_hash_failed(self):
        """
        A hash that cannot be computed ends the exchange as an error.
        """
        session = ClientClassic(LEGACY, cached=False)
        session.start()
        session.receive(wire.SaltA(SALT, RSALT))
        self.assertEqual(
            session.hash_failed("could not compute the response"),
            [Close(), Finish(Outcome.ERROR, "could not compute the response")],
        )

    def test_malformed_hash(self):
        """
        A computed response the wire cannot carry ends the exchange as an
        error instead of being sent.
        """
        session = ClientClassic(LEGACY, cached=False)
        session.start()
        session.receive(wire.SaltA(SALT, RSALT))
        self.assertEqual(
            session.hashed("not a hash"),
            [
                Close(),
                Finish(Outcome.ERROR, "the computed response is malformed"),
            ],
        )

    def test_connection_lost(self):
        """
        Losing the connection before the verdict is an error; there is
        nothing left to close.
        """
        session = ClientClassic(FRAMED, cached=False)
        session.start()
        self.assertEqual(
            session.connection_lost("the connection was lost"),
            [Finish(Outcome.ERROR, "the connection was lost")],
        )

    def test_timeout(self):
        """
        A timeout drops the connection at once and ends as a timeout.
        """
        session = ClientClassic(FRAMED, cached=False)
        session.start()
        self.assertEqual(
            session.timed_out(),
            [
                Close(abort=True),
                Finish(Outcome.TIMEOUT, "the server did not answer in time"),
            ],
        )

    def test_abandon(self):
        """
        Abandoning drops the connection and ends as an error with the
        given reason.
        """
        session = ClientClassic(FRAMED, cached=False)
        self.assertEqual(
            session.abandon("stopping"),
            [Close(abort=True), Finish(Outcome.ERROR, "stopping")],
        )

    def test_nothing_after_the_end(self):
        """
        Once finished, nothing the server or the clock does has any effect.
        """
        session = ClientClassic(LEGACY, cached=True)
        session.start()
        session.receive(wire.RSalt(RSALT))
        session.hashed(RESPONSE)
        session.receive(wire.Auth(True))
        self.assertEqual(
            session.receive(wire.Auth(False))
            + session.receive(wire.GetSaltA())
            + session.connection_lost("closed")
            + session.timed_out()
            + session.abandon("stopping"),
            [],
        )
