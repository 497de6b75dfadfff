"""
The agent's answer to a verification challenge on its live rotation
connection (docs/PROTOCOL.md §11.3), on the conversation and through the
rotation protocol over a StringTransport.
"""

from dataclasses import replace

from twisted.internet import task
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from suto_client import rotation_machine
from suto_client.rotation import RotationProtocol
from suto_client.rotation_machine import ClientRotation
from suto_client.rotation_outcome import RotationOutcome
from suto_server.core import keyschedule, wire
from suto_server.core.machine import Close, Send
from tests.support.client_rotation import (
    INTERVAL,
    PROFILE,
    TIMEOUT,
    ConversationFixture,
    Draws,
    FakeServer,
    Fingerprints,
    FixedRandom,
    pump,
)
from tests.support.key_vectors import CHECK_NONCE, KEY_1

#: The §11.3 exchange, for the profile alice holding the §7.7 key K1.
CHALLENGE = b"SUTO_VERIFY_gIGCg4SFhoeIiYqLjI2Ojw==\r\n"
ANSWER = b"SUTO_C_VERIFY_gIGCg4SFhoeIiYqLjI2Ojw==_iTWZ/KpdRU+sFj1dDsSNFA==\r\n"


def proof_of(profile, nonce=CHECK_NONCE):
    return wire.VerifyProof(
        nonce, keyschedule.verify_proof(profile.key, nonce, profile.user)
    )


class ConversationTests(ConversationFixture, SynchronousTestCase):
    def test_specification_bytes(self):
        """
        The answer to the §11.3 challenge under K1 is the §11.3 line.
        """
        key = bytes.fromhex(KEY_1)
        profile = replace(PROFILE, key=key, key_id=keyschedule.key_id(key))
        rotation = ClientRotation(profile, Fingerprints(), Draws())
        rotation.start()
        rotation.receive(wire.Version(wire.PROTOCOL_VERSION))
        decoder = wire.Decoder(wire.Framing.FRAMED)
        decoder.receive_data(CHALLENGE)
        [action] = rotation.receive(decoder.next_event())
        self.assertEqual(wire.encode(action.message, wire.Framing.FRAMED), ANSWER)

    def test_ready(self):
        """
        Between rotations the agent answers with the key it holds, and
        stays ready for the next rotation: ready on version 2, primed, the
        server's next share held, on version 3.
        """
        for version, state in (
            (2, rotation_machine.READY),
            (3, rotation_machine.PRIMED),
        ):
            self.setUp()
            self.server = FakeServer(version=version)
            self.converse(self.rotation.start())
            self.rotation.committed()
            actions = self.rotation.receive(wire.VerifyChallenge(CHECK_NONCE))
            self.assertEqual(actions, [Send(proof_of(self.rotation.profile))])
            self.assertEqual(self.rotation._state, state)

    def test_crossing(self):
        """
        A challenge crossing the agent's rotation, and one that follows
        the server's confirmation while the new key is being stored, are
        answered with the key the profile still holds; the rotation goes
        on and commits.
        """
        self.rotation.start()
        [send] = self.rotation.receive(wire.Version(wire.PROTOCOL_VERSION))
        actions = self.rotation.receive(wire.VerifyChallenge(CHECK_NONCE))
        self.assertEqual(actions, [Send(proof_of(PROFILE))])
        [ack] = self.rotation.receive(self.server.answer(send.message))
        [commit] = self.rotation.receive(self.server.acknowledge(ack.message))
        actions = self.rotation.receive(wire.VerifyChallenge(bytes(16)))
        self.assertEqual(actions, [Send(proof_of(PROFILE, bytes(16)))])
        self.rotation.committed()
        self.assertEqual(self.rotation.profile, commit.profile)
        self.assertEqual(self.rotation.profile.key, self.server.key)

    def test_out_of_place(self):
        """
        A challenge before the version exchange is over ends the
        conversation as an error.
        """
        self.rotation.start()
        actions = self.rotation.receive(wire.VerifyChallenge(CHECK_NONCE))
        self.assertIsInstance(actions[-1], Close)


class ProtocolTests(SynchronousTestCase):
    def test_live_connection(self):
        """
        On a connection that rotated, the agent writes the proof line as
        soon as the challenge arrives, under the key it just stored, and
        reports nothing more.
        """
        reports, server, transport = [], FakeServer(), StringTransport()
        protocol = RotationProtocol(
            ClientRotation(PROFILE, Fingerprints(), Draws()),
            clock=task.Clock(),
            interval=INTERVAL,
            timeout=TIMEOUT,
            random=FixedRandom(0.5),
            commit=lambda profile: None,
            report=reports.append,
        )
        protocol.makeConnection(transport)
        pump(protocol, transport, server)
        self.assertEqual([report.outcome for report in reports], [RotationOutcome.ROTATED])
        stored = replace(PROFILE, key=server.key)
        protocol.dataReceived(
            wire.encode(wire.VerifyChallenge(CHECK_NONCE), wire.Framing.FRAMED)
        )
        self.assertEqual(
            transport.value(), wire.encode(proof_of(stored), wire.Framing.FRAMED)
        )
        self.assertEqual(len(reports), 1)
        self.assertFalse(transport.disconnecting)
