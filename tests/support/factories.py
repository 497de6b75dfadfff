"""
The server's connection factory as the phases' tests build it.

The enrollment and rotation phases are each driven through a framed
L{ServerFactory} over a L{StringTransport}; they differ only in the phase
rules they add, so both build the factory here: a classic challenge that
knows no account (only the phase under test can succeed), a fixed
C{rsalt} so every line is known, and the exchange timeout their tests
count down.
"""

from twisted.cred.portal import Portal
from twisted.internet.address import IPv4Address
from twisted.internet.defer import succeed
from twisted.internet.testing import StringTransport

from suto_server.core import wire
from suto_server.cred.checkers import SaltedChallengeChecker
from suto_server.cred.realm import SutoRealm
from suto_server.phases.classic import ClassicRules
from suto_server.phases.connection import ServerFactory
from tests.support.sources import DictSource

#: Seconds a connection may take to say what it wants.
EXCHANGE_TIMEOUT = 10
#: The server's half of every classic challenge.
RSALT = "$6$ABCDEFGHIJKLMNOP"


def framed_factory(clock, pool, rendezvous, **phases):
    """
    A framed factory on C{clock} whose classic challenge, hashed by
    C{pool} and waited for by C{rendezvous}, knows no account.

    @param phases: the rules of the other phases it serves
        (C{enrollment=}, C{rotation=}), as L{ServerFactory} takes them.
    """
    return ServerFactory(
        framing=wire.Framing.FRAMED,
        clock=clock,
        classic=ClassicRules(
            rendezvous,
            Portal(SutoRealm(), [SaltedChallengeChecker(DictSource({}), pool)]),
            lambda user: succeed(None),
            lambda: RSALT,
        ),
        exchange_timeout=EXCHANGE_TIMEOUT,
        **phases,
    )


def connected(factory, host):
    """
    A connection of C{factory}'s from C{host}, over a L{StringTransport}.

    @return: the protocol and its transport.
    """
    protocol = factory.buildProtocol(None)
    transport = StringTransport(peerAddress=IPv4Address("TCP", host, 40000))
    protocol.makeConnection(transport)
    return protocol, transport
