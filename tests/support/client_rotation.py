"""
The endpoint's side of key rotation against a small server built from the
key schedule.

L{FakeServer} answers a L{ClientRotation} as the design says a server must,
in the version the client offers (3, with the primed rotation) or an
earlier one it is made to speak, with deterministic L{Draws} and counted
L{Fingerprints}, so a test knows every byte the client sends; the helpers
run a L{RotationFactory} over a L{StringTransport} against it. The
client's rotation and reconnection tests and the check of the machines
against docs/PROTOCOL.md share them.
"""

import base64
import os
import random

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from twisted.internet import error as internet_error
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure
from zope.interface import implementer

from suto_client.agent import Agent
from suto_client.rotation import RotationFactory
from suto_client.rotation_machine import ClientRotation
from suto_client.state import EnrolledProfile
from suto_server.core import keyschedule, wire
from suto_server.core.machine import Send
from tests.support.rotation import raw_public

USER = "alice"
SERVER = "192.0.2.10"
PIN = "ab" * 32
FINGERPRINT = bytes(range(32))
OTHER_FINGERPRINT = bytes(range(1, 33))
K0 = bytes(range(100, 132))
PROFILE = EnrolledProfile(
    user=USER,
    server_host=SERVER,
    server_port=2021,
    pin=PIN,
    key=K0,
    key_id=keyschedule.key_id(K0),
    generation=0,
    enrolled_at=1700000000.0,
)
C2S = keyschedule.Direction.CLIENT_TO_SERVER
S2C = keyschedule.Direction.SERVER_TO_CLIENT
INTERVAL = 60.0
TIMEOUT = 5.0


class Draws:
    """
    Deterministic randomness: the n-th draw is n repeated to the size
    asked for, so a test knows every junk and private key.
    """

    def __init__(self):
        self.sizes = []

    def __call__(self, size: int) -> bytes:
        self.sizes.append(size)
        return bytes([len(self.sizes)]) * size


class Fingerprints:
    """
    A fingerprint callable that counts its calls.
    """

    def __init__(self, value: bytes = FINGERPRINT):
        self.value = value
        self.calls = 0

    def __call__(self) -> bytes:
        self.calls += 1
        return self.value


class FixedRandom(random.Random):
    """
    A L{random.Random} whose every draw is C{fraction} of its range: 0 is
    the low end, values close to 1 the high end.
    """

    def __init__(self, fraction: float = 0.0):
        super().__init__()
        self.fraction = fraction

    def random(self) -> float:
        return self.fraction


class FakeServer:
    """
    The server's side of rotations, from the key schedule alone: it holds
    one profile's key and the fingerprint hash the profile was enrolled
    with, and commits a new key when the acknowledgement opens.

    On a version-3 connection its "done" carries its share for the next
    rotation, which it takes once, as the next rotation on the same
    connection (C{SUTO_C_ROTATE_PRIMED_}).

    @ivar version: the newest version it speaks.
    @ivar only: whether it speaks L{version} alone, as a server of the
        release before version 3 did: it answers any other version with
        C{SUTO_ERROR_BAD_VERSION}.
    @ivar agreed: the version of the connection under way: the one the
        client offered, or L{version} if that is older; L{version} until
        a client offers one.
    @ivar shares: the raw public keys of every share it sent, in order.
    @ivar received: every message it was sent, in order.
    """

    def __init__(
        self,
        key=K0,
        generation=0,
        fingerprint=FINGERPRINT,
        version=wire.PROTOCOL_VERSION,
        only=False,
    ):
        self.key = key
        self.only = only
        self.generation = generation
        self.fingerprint = fingerprint
        self.version = self.agreed = version
        self.pending = None
        self.primed = None
        self.shares = []
        self.received = []

    def receive(self, message) -> list:
        self.received.append(message)
        return self.reply(message)

    def reply(self, message) -> list:
        """
        The server's answers to C{message}.
        """
        if isinstance(message, wire.Version):
            if self.only and message.version != self.version:
                return [wire.Error(wire.ERROR_BAD_VERSION)]
            # A new connection: the share of the last one is gone.
            self.agreed = min(message.version, self.version)
            self.primed = None
            return [wire.Version(self.agreed)]
        if isinstance(message, wire.Rotate):
            return [self.answer(message)]
        if isinstance(message, wire.RotateAck):
            return [self.acknowledge(message)]
        if isinstance(message, wire.RotatePrimed):
            return [self.rotate_primed(message)]
        raise AssertionError(f"the server did not expect {message!r}")

    def answer(self, rotate: wire.Rotate):
        if self.primed is not None:
            return wire.Error(wire.ERROR_OUT_OF_ORDER)
        if not self.knows(rotate):
            return wire.Error(wire.ERROR_UNKNOWN_KEY)
        private = X25519PrivateKey.generate()
        self.derive(rotate, private)
        return wire.RotateOk(
            raw_public(private),
            keyschedule.seal(
                self.pending,
                b"ok",
                profile=USER,
                purpose="rotate-ok",
                direction=S2C,
                counter=0,
            ),
        )

    def rotate_primed(self, primed: wire.RotatePrimed):
        """
        A rotation from the share this connection's last "done" carried:
        the new key derived with its private key, the acknowledgement
        checked and the key committed as L{acknowledge} does.
        """
        if self.primed is None:
            return wire.Error(wire.ERROR_OUT_OF_ORDER)
        if not self.knows(primed):
            return wire.Error(wire.ERROR_UNKNOWN_KEY)
        private, self.primed = self.primed, None
        self.derive(primed, private)
        return self.acknowledge(wire.RotateAck(primed.sealed))

    def knows(self, rotation) -> bool:
        """
        Is C{rotation}'s key this profile's?
        """
        known = keyschedule.key_id(self.key)
        return rotation.user == USER and rotation.key_id == known

    def derive(self, rotation, private: X25519PrivateKey) -> None:
        """
        Hold the key that follows this one, from C{rotation}'s junk and
        public key and this side's C{private} half.
        """
        self.pending = keyschedule.next_key(
            self.key,
            rotation.junk,
            self.fingerprint,
            keyschedule.dh_shared_secret(private, rotation.public),
            USER,
            self.generation + 1,
        )

    def acknowledge(self, ack: wire.RotateAck):
        new, self.pending = self.pending, None
        generation = self.generation + 1
        try:
            plaintext = keyschedule.open_sealed(
                new,
                ack.sealed,
                profile=USER,
                purpose="rotate-ack",
                direction=C2S,
                counter=0,
            )
        except keyschedule.SealError:
            plaintext = None
        if plaintext != b"ack":
            return wire.Error(wire.ERROR_ROTATION_FAILED)
        self.key, self.generation = new, generation
        if self.agreed >= 3:
            self.primed = X25519PrivateKey.generate()
            self.shares.append(raw_public(self.primed))
            return sealed_share(new, self.shares[-1])
        return wire.RotateDone(
            keyschedule.seal(
                new,
                b"done",
                profile=USER,
                purpose="rotate-done",
                direction=S2C,
                counter=1,
            )
        )


def sealed_share(key: bytes, share: bytes) -> wire.RotateDoneNext:
    """
    A C{SUTO_ROTATE_DONE_NEXT_} carrying C{share}, sealed under C{key} as
    the server seals it.
    """
    return wire.RotateDoneNext(
        keyschedule.seal(
            key,
            share,
            profile=USER,
            purpose="rotate-done-next",
            direction=S2C,
            counter=1,
        )
    )


def rotated_profile(server: FakeServer, rotated_at=None) -> EnrolledProfile:
    """
    The profile a client must commit once C{server} holds a new key: the
    machine's commit, or (given C{rotated_at}) what the protocol stores,
    timed by its clock.
    """
    return EnrolledProfile(
        user=USER,
        server_host=SERVER,
        server_port=2021,
        pin=PIN,
        key=server.key,
        key_id=keyschedule.key_id(server.key),
        generation=server.generation,
        enrolled_at=PROFILE.enrolled_at,
        rotated_at=rotated_at,
    )


def secret_forms(*secrets: bytes) -> list[str]:
    """
    The ways a secret could show in a log line or a C{repr}: hex, base64
    and its Python representation.
    """
    forms = []
    for secret in secrets:
        forms += [
            secret.hex(),
            base64.b64encode(secret).decode(),
            repr(secret),
        ]
    return forms


def pump(protocol, transport: StringTransport, server: FakeServer, until=None) -> None:
    """
    Carry what the client wrote to C{server} and its answers back, until
    the client writes nothing more; then finish a close the client asked
    for.

    @param until: a message class: stop at the first message of it the
        client sends, which C{server} never receives (as when the server
        dies on receiving it); the connection is then left open.
    """
    decoder = wire.Decoder(wire.Framing.FRAMED)
    while transport.value():
        data = transport.value()
        transport.clear()
        decoder.receive_data(data)
        while (message := decoder.next_event()) is not wire.NEED_DATA:
            if until is not None and isinstance(message, until):
                return
            for reply in server.receive(message):
                protocol.dataReceived(wire.encode(reply, wire.Framing.FRAMED))
    if transport.disconnecting:
        protocol.connectionLost(Failure(internet_error.ConnectionDone()))


def converse(rotation: ClientRotation, server: FakeServer, actions: list) -> list:
    """
    Deliver each message C{rotation} sends to C{server} and each answer
    back, until the client asks for something else; return what it asked
    for.
    """
    others = []
    while actions:
        action, *actions = actions
        if isinstance(action, Send):
            for reply in server.receive(action.message):
                actions += rotation.receive(reply)
        else:
            others.append(action)
    return others


def make_factory(
    clock, store, report, fingerprint, random=None
) -> RotationFactory:
    """
    A L{RotationFactory} for L{PROFILE} on C{clock}, with deterministic
    randomness: C{random}, or the shortest jitter.
    """
    return RotationFactory(
        PROFILE,
        clock=clock,
        interval=INTERVAL,
        timeout=TIMEOUT,
        store=store,
        report=report,
        fingerprint=fingerprint,
        random_bytes=Draws(),
        random=FixedRandom(0.0) if random is None else random,
    )


def connected(factory) -> tuple:
    """
    A protocol of C{factory} connected to L{SERVER} over a
    L{StringTransport}.

    @return: the protocol and its transport.
    """
    protocol = factory.buildProtocol(IPv4Address("TCP", SERVER, 2021))
    transport = StringTransport()
    protocol.makeConnection(transport)
    return protocol, transport


def refused_connection(factory: RotationFactory) -> None:
    """
    A connection of C{factory} that the server closes before it says
    anything, as it does over C{--max-startups}.
    """
    protocol, _ = connected(factory)
    protocol.connectionLost(Failure(internet_error.ConnectionDone()))


def run_connection(factory: RotationFactory, server: FakeServer) -> None:
    """
    Run one connection of C{factory} against C{server} until the client
    has nothing more to say, and close it.
    """
    protocol, transport = connected(factory)
    pump(protocol, transport, server)
    if not transport.disconnecting:
        protocol.connectionLost(Failure(internet_error.ConnectionDone()))


class FactoryFixture:
    """
    A L{RotationFactory} of L{PROFILE} on a L{Clock} at its enrollment,
    with counted fingerprints, talking to a L{FakeServer}; it records each
    (old, new) profile it stores and each report.  Mixed into the test
    cases of the factory.
    """

    def setUp(self):
        self.clock = Clock()
        self.clock.advance(PROFILE.enrolled_at)
        self.server = FakeServer()
        self.fingerprint = Fingerprints()
        self.stored = []
        self.reports = []
        self.factory = make_factory(
            self.clock,
            lambda old, new: self.stored.append((old, new)),
            self.reports.append,
            self.fingerprint,
        )

    def connection(self):
        run_connection(self.factory, self.server)


class ConversationFixture:
    """
    A L{ClientRotation} of C{profile} with counted fingerprints and
    deterministic draws, talking to a C{make_server()}; mixed into the
    test cases of the conversation.
    """

    profile = PROFILE
    make_server = FakeServer

    def setUp(self):
        self.draws = Draws()
        self.fingerprint = Fingerprints()
        self.rotation = ClientRotation(self.profile, self.fingerprint, self.draws)
        self.server = self.make_server()

    def converse(self, actions: list) -> list:
        return converse(self.rotation, self.server, actions)


def stop(agent: Agent) -> None:
    """
    Stop C{agent} unless the test did.
    """
    if agent.running:
        agent.stopService()


def start_agent(
    case, reactor, path, rotation_endpoint, fingerprint=FINGERPRINT, observer=None
) -> Agent:
    """
    Start an L{Agent} on C{reactor} rotating the profiles of the state file
    at C{path}, each over the endpoint C{rotation_endpoint(reactor,
    profile, timeout)} returns, with the shortest jitter and C{fingerprint};
    the test C{case} stops it when it ends.

    @param observer: if given, added as a rotation observer before the
        agent starts.
    """
    agent = Agent(
        reactor,
        path,
        hello_endpoint_port=0,
        hello_interface="127.0.0.1",
        timeout=TIMEOUT,
        rotation_interval=INTERVAL,
        fingerprint=lambda: fingerprint,
        random_bytes=os.urandom,
        random=FixedRandom(0.0),
        rotation_endpoint=rotation_endpoint,
    )
    if observer is not None:
        agent.add_rotation_observer(observer)
    agent.startService()
    case.addCleanup(stop, agent)
    return agent


@implementer(IStreamClientEndpoint)
class FakeEndpoint:
    """
    Records connection attempts; a test completes them with L{accept}.
    """

    def __init__(self):
        self.attempts = []

    def connect(self, factory):
        attempt = Deferred()
        self.attempts.append((factory, attempt))
        return attempt

    def accept(self):
        """
        Complete the oldest attempt over a L{StringTransport}.

        @return: the connected protocol and its transport.
        """
        factory, attempt = self.attempts.pop(0)
        protocol, transport = connected(factory)
        attempt.callback(protocol)
        return protocol, transport

    def refuse(self):
        """
        Fail the oldest attempt as a server that is down does.
        """
        _, attempt = self.attempts.pop(0)
        attempt.errback(Failure(internet_error.ConnectionRefusedError()))
