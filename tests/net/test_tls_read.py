"""
Tests for L{suto_server.net.tls_read}: the listener's settled TLS read
delivers what Twisted's own read path delivers, in every state, over real
OpenSSL connections in memory, and stops asking OpenSSL once it has
nothing more to give.

Each conversation runs twice on the same steps, once with
L{SettledReadTLSProtocol} and once with Twisted's C{TLSMemoryBIOProtocol},
each against a pyOpenSSL client of its own over memory BIOs (the bytes
differ, since each handshake makes its own keys, but the records do not):
what the protocol behind TLS received and how its connection ended, what
the client reads of the server's answers, and whether the transport was
told to close must be the same.
"""

from __future__ import annotations

import hashlib
import inspect
import os
import textwrap
from dataclasses import dataclass
from itertools import pairwise

from OpenSSL import SSL
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.protocols.tls import TLSMemoryBIOFactory, TLSMemoryBIOProtocol
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from bench.suto_server_process import make_identity
from bench.tls_read import Pair
from suto_server.net import tls_read
from suto_server.net.refusals import RefusingTLSFactory
from suto_server.net.tls import ReloadableServerTLS
from suto_server.net.tls_read import SettledReadTLSProtocol, settles

#: The SHA-256 of Twisted's C{TLSMemoryBIOProtocol._flushReceiveBIO}, the
#: loop L{SettledReadTLSProtocol._flushReceiveBIO} repeats (Twisted 26.10).
TWISTED_LOOP = "2105d14b4edd4c1de946ff49931adec36148b8d20f80c4702619c106d2749768"


class _App(Protocol):
    """
    The protocol behind TLS: keeps each delivery and how its connection
    ended, and does C{then} with its transport after each delivery.
    """

    def __init__(self, then=None) -> None:
        self.received: list[bytes] = []
        self.lost = None
        self._then = then

    def dataReceived(self, data: bytes) -> None:
        self.received.append(data)
        if self._then is not None:
            self._then(self.transport, data)

    def connectionLost(self, reason) -> None:
        self.lost = reason


def _echo(transport, data: bytes) -> None:
    transport.write(data[::-1])


def _lose(transport, data: bytes) -> None:
    transport.loseConnection()


def _abort(transport, data: bytes) -> None:
    transport.abortConnection()


def _lose_then_abort(transport, data: bytes) -> None:
    transport.loseConnection()
    transport.abortConnection()


@dataclass
class _Outcome:
    """
    What a conversation came to, as both read paths must agree on it.
    """

    received: list
    answers: list
    lost: type | None
    disconnecting: bool
    closes: int
    """Before the transport's end, as C{disconnecting}."""


class _Conversation(Pair):
    """
    A server protocol of class C{kind} over the listener's TLS settings, on
    a transport in memory, and a pyOpenSSL client, handshake done; the
    protocol behind TLS is an L{_App} doing C{then}.

    @ivar recvs: how many times, once the handshake was done, the server's
        connection was asked for application bytes, and how many of those
        raised C{WantReadError}.
    @ivar bio_reads: the same for the bytes to send.
    """

    def __init__(self, tls, kind, then=None, client_context=None) -> None:
        self.app = _App(then)
        factory = TLSMemoryBIOFactory(
            tls, False, Factory.forProtocol(lambda: self.app), Clock()
        )
        factory.protocol = kind
        super().__init__(factory, client_context)
        self.recvs = [0, 0]
        self.bio_reads = [0, 0]
        connection = self.server._tlsConnection
        for name, count in (("recv", self.recvs), ("bio_read", self.bio_reads)):
            setattr(connection, name, _counted(getattr(connection, name), count))

    def record(self, *messages: bytes) -> bytes:
        """
        @return: the client's records of C{messages}, one each.
        """
        out = b""
        for message in messages:
            self.client.sendall(message)
            out += self.sent()
        return out

    def close_notify(self) -> bytes:
        """
        @return: the client's close_notify alert.
        """
        self.client.shutdown()
        return self.sent()

    def feed(self, *chunks: bytes) -> None:
        """
        Give the server C{chunks}, one read each.
        """
        for chunk in chunks:
            self.server.dataReceived(chunk)

    def end(self, reason=ConnectionDone) -> _Outcome:
        """
        End the transport, as the reactor does when the TCP connection
        closes, and say what the conversation came to.
        """
        disconnecting = self.transport.disconnecting
        closes = self.transport.closes
        self.deliver()
        answers = []
        while True:
            try:
                answers.append(self.client.recv(65536))
            except SSL.WantReadError:
                break
            except SSL.ZeroReturnError:
                answers.append("close_notify")
                break
            except SSL.Error as error:
                answers.append(("alert", str(error)))
                break
        self.server.connectionLost(Failure(reason()))
        lost = self.app.lost
        return _Outcome(
            self.app.received,
            answers,
            None if lost is None else lost.type,
            disconnecting,
            closes,
        )


def _counted(method, count: list):
    """
    @return: C{method}, counting its calls in C{count[0]} and those that
        raised C{WantReadError} in C{count[1]}.
    """

    def counted(*args):
        count[0] += 1
        try:
            return method(*args)
        except SSL.WantReadError:
            count[1] += 1
            raise

    return counted


def _split(data: bytes, *at: int) -> list:
    """
    @return: C{data} cut at the offsets C{at}.
    """
    bounds = (0, *at, len(data))
    return [data[start:stop] for start, stop in pairwise(bounds)]


def _corrupt(record: bytes) -> bytes:
    """
    @return: C{record} with its last byte (of the AEAD tag) flipped.
    """
    return record[:-1] + bytes([record[-1] ^ 1])


def _settings(case: SynchronousTestCase) -> ReloadableServerTLS:
    """
    @return: the listener's TLS settings, with a certificate made for
        C{case}.
    """
    directory = case.mktemp()
    os.makedirs(directory)
    identity = make_identity(directory)
    return ReloadableServerTLS(identity.key, identity.cert)


class SameAsTwistedTests(SynchronousTestCase):
    """
    On the same steps, L{SettledReadTLSProtocol} comes to the same outcome
    as Twisted's C{TLSMemoryBIOProtocol}, and to the outcome each test
    expects.
    """

    def converse(self, steps, then=None, reason=ConnectionDone) -> _Outcome:
        """
        Run C{steps} (given a L{_Conversation}, the reads to feed it) with
        both read paths.

        @return: the settled read's outcome, once checked to be Twisted's.
        """
        tls = _settings(self)
        outcomes = []
        for kind in (SettledReadTLSProtocol, TLSMemoryBIOProtocol):
            conversation = _Conversation(tls, kind, then)
            for step in steps:
                conversation.feed(*step(conversation))
            outcomes.append(conversation.end(reason))
        settled, twisted = outcomes
        self.assertEqual(settled, twisted)
        return settled

    def test_one_record_a_read(self) -> None:
        """
        A record a read, each answered: each message is delivered as it
        arrives and the answers reach the client.
        """
        outcome = self.converse(
            [lambda c: [c.record(b"one")], lambda c: [c.record(b"two")]], then=_echo
        )
        self.assertEqual(outcome.received, [b"one", b"two"])
        self.assertEqual(outcome.answers, [b"eno", b"owt"])
        # The transport ended without a close_notify.
        self.assertIs(outcome.lost, ConnectionLost)

    def test_several_records_a_read(self) -> None:
        """
        Several records in one read are delivered one by one, in order.
        """
        outcome = self.converse([lambda c: [c.record(b"one", b"two", b"three")]])
        self.assertEqual(outcome.received, [b"one", b"two", b"three"])

    def test_partial_record(self) -> None:
        """
        A record cut across three reads (its header too) is delivered once
        whole.
        """
        outcome = self.converse([lambda c: _split(c.record(b"x" * 150), 3, 60)])
        self.assertEqual(outcome.received, [b"x" * 150])

    def test_record_and_a_half(self) -> None:
        """
        A read of a record and the start of the next delivers the first;
        the next read completes the second.
        """
        outcome = self.converse(
            [lambda c: _split(c.record(b"one", b"two"), 35)]
        )
        self.assertEqual(outcome.received, [b"one", b"two"])

    def test_byte_at_a_time(self) -> None:
        """
        Records arriving one byte a read are each delivered once whole.
        """
        outcome = self.converse(
            [lambda c: _split(data := c.record(b"one", b"two", b"3"), *range(1, len(data)))]
        )
        self.assertEqual(outcome.received, [b"one", b"two", b"3"])

    def test_large_message(self) -> None:
        """
        A message of several full records in one read is delivered a
        record at a time.
        """
        message = bytes(range(256)) * 160
        outcome = self.converse([lambda c: [c.record(message)]])
        self.assertEqual(b"".join(outcome.received), message)
        self.assertEqual([len(each) for each in outcome.received], [16384, 16384, 8192])

    def test_close_notify(self) -> None:
        """
        The peer's close_notify is answered with the server's and the
        transport told to close; the connection ends cleanly.
        """
        outcome = self.converse([lambda c: [c.record(b"one")], lambda c: [c.close_notify()]])
        self.assertEqual(outcome.received, [b"one"])
        self.assertEqual(outcome.answers, ["close_notify"])
        self.assertTrue(outcome.disconnecting)
        self.assertIs(outcome.lost, ConnectionDone)

    def test_record_and_close_notify(self) -> None:
        """
        A last record and the close_notify in one read: the record is
        delivered, then the connection closes.
        """
        outcome = self.converse([lambda c: [c.record(b"last") + c.close_notify()]])
        self.assertEqual(outcome.received, [b"last"])
        self.assertEqual(outcome.answers, ["close_notify"])
        self.assertTrue(outcome.disconnecting)

    def test_corrupt_record(self) -> None:
        """
        A record that fails its authentication ends the connection with
        OpenSSL's error and an alert to the peer.
        """
        outcome = self.converse([lambda c: [_corrupt(c.record(b"one"))]])
        self.assertEqual(outcome.received, [])
        self.assertEqual(outcome.answers[0][0], "alert")
        self.assertTrue(outcome.disconnecting)
        self.assertIs(outcome.lost, SSL.Error)

    def test_good_then_corrupt(self) -> None:
        """
        A good record and a bad one in one read: the first is delivered,
        then the connection fails.
        """
        outcome = self.converse(
            [lambda c: [c.record(b"one") + _corrupt(c.record(b"two"))]]
        )
        self.assertEqual(outcome.received, [b"one"])
        self.assertIs(outcome.lost, SSL.Error)

    def test_not_tls(self) -> None:
        """
        Bytes that are no TLS record, after the handshake, end the
        connection with OpenSSL's error.
        """
        outcome = self.converse([lambda c: [b"GET / HTTP/1.0\r\n\r\n"]])
        self.assertEqual(outcome.received, [])
        self.assertIs(outcome.lost, SSL.Error)

    def test_end_within_a_record(self) -> None:
        """
        The transport ending with part of a record unread: Twisted's own
        path reads to the end of the stream, which is a connection lost.
        """
        outcome = self.converse(
            [lambda c: [c.record(b"one")], lambda c: [c.record(b"two")[:10]]],
            reason=ConnectionLost,
        )
        self.assertEqual(outcome.received, [b"one"])
        self.assertIs(outcome.lost, ConnectionLost)

    def test_lose_while_reading(self) -> None:
        """
        The protocol closing its connection on the first of two records in
        one read still receives the second, and its close_notify goes out;
        the transport waits for the peer's.
        """
        outcome = self.converse([lambda c: [c.record(b"one", b"two")]], then=_lose)
        self.assertEqual(outcome.received, [b"one", b"two"])
        self.assertEqual(outcome.answers, ["close_notify"])
        self.assertFalse(outcome.disconnecting)

    def test_lose_then_abort_before_close_notify(self) -> None:
        """
        The protocol closing, then aborting, its connection on a record
        that came with the peer's close_notify: the abort's shutdown reads
        the close_notify, and the read after it ends TLS (the transport is
        told to close once more).
        """
        outcome = self.converse(
            [lambda c: [c.record(b"one") + c.close_notify()]], then=_lose_then_abort
        )
        self.assertEqual(outcome.received, [b"one"])
        self.assertEqual(outcome.answers, ["close_notify"])
        self.assertEqual(outcome.closes, 4)

    def test_record_left_at_the_end(self) -> None:
        """
        A whole record in OpenSSL's receive BIO when the transport ends
        (put there by no read of the protocol's) is delivered by Twisted's
        reading to the end of the stream, which then finds it unclosed.
        """

        def unread(conversation):
            conversation.server._tlsConnection.bio_write(conversation.record(b"one"))
            return []

        outcome = self.converse([unread])
        self.assertEqual(outcome.received, [b"one"])
        self.assertIs(outcome.lost, ConnectionLost)

    def test_abort_while_reading(self) -> None:
        """
        The protocol aborting its connection on the first of two records
        in one read receives nothing more.
        """
        outcome = self.converse([lambda c: [c.record(b"one", b"two")]], then=_abort)
        self.assertEqual(outcome.received, [b"one"])


class ReadsTests(SynchronousTestCase):
    """
    The settled read asks OpenSSL for application bytes only when it has
    some to give, on the listener's TLS 1.3 connections; every other
    connection is read by Twisted's path.
    """

    def conversation(self, kind=SettledReadTLSProtocol, **options) -> _Conversation:
        return _Conversation(_settings(self), kind, **options)

    def test_one_recv_a_record(self) -> None:
        """
        A record a read costs one C{recv} and no C{WantReadError}; several
        in one read one each; a partial record the one that finds it
        incomplete.
        """
        conversation = self.conversation()
        conversation.feed(conversation.record(b"one"))
        self.assertEqual(conversation.recvs, [1, 0])
        conversation.feed(conversation.record(b"two", b"three"))
        self.assertEqual(conversation.recvs, [3, 0])
        conversation.feed(*_split(conversation.record(b"four"), 10))
        self.assertEqual(conversation.recvs, [5, 1])
        self.assertEqual(conversation.app.received, [b"one", b"two", b"three", b"four"])

    def test_decrypted_bytes_left(self) -> None:
        """
        A record longer than one C{recv} takes is read to its end: what
        OpenSSL holds decrypted is asked for.
        """
        self.patch(tls_read, "READ_SIZE", 100)
        conversation = self.conversation()
        conversation.feed(conversation.record(b"x" * 150))
        self.assertEqual(conversation.app.received, [b"x" * 100, b"x" * 50])
        self.assertEqual(conversation.recvs, [2, 0])

    def test_twisted_reads_to_the_refusal(self) -> None:
        """
        Twisted's own path asks once more after every read, and is refused.
        """
        conversation = self.conversation(TLSMemoryBIOProtocol)
        conversation.feed(conversation.record(b"one"))
        conversation.feed(conversation.record(b"two", b"three"))
        self.assertEqual(conversation.recvs, [5, 2])
        self.assertEqual(conversation.bio_reads, [2, 2])

    def test_one_write_an_answer(self) -> None:
        """
        Each answer leaves as one write of one record, read from the send
        BIO once; a read that answers nothing writes nothing and does not
        read the empty send BIO.
        """
        conversation = self.conversation(then=_echo)
        conversation.feed(conversation.record(b"one"))
        self.assertEqual(conversation.transport.writes, 1)
        self.assertEqual(conversation.bio_reads, [1, 0])
        self.assertEqual(conversation.end().answers, [b"eno"])
        quiet = self.conversation()
        quiet.feed(quiet.record(b"one"))
        self.assertEqual(quiet.transport.writes, 0)
        self.assertEqual(quiet.bio_reads, [0, 0])

    def test_tls_1_2(self) -> None:
        """
        A TLS 1.2 connection is read by Twisted's path, and works.
        """
        context = SSL.Context(SSL.TLS_CLIENT_METHOD)
        context.set_max_proto_version(SSL.TLS1_2_VERSION)
        conversation = self.conversation(client_context=context, then=_echo)
        self.assertFalse(settles(conversation.server))
        conversation.feed(conversation.record(b"one"))
        self.assertEqual(conversation.recvs, [2, 1])
        self.assertEqual(conversation.end().answers, [b"eno"])

    def assert_twisted_path(self) -> None:
        """
        A listener's TLS 1.3 connection is read by Twisted's path, and
        works.
        """
        conversation = self.conversation(then=_echo)
        self.assertFalse(settles(conversation.server))
        conversation.feed(conversation.record(b"one"))
        self.assertEqual(conversation.recvs, [2, 1])
        self.assertEqual(conversation.end().answers, [b"eno"])

    def test_twisted_names_missing(self) -> None:
        """
        Were a name of Twisted's that the settled read uses gone, its
        connections would be read by Twisted's path.
        """
        self.patch(tls_read, "TWISTED_NAMES", (*tls_read.TWISTED_NAMES, "_gone"))
        self.assert_twisted_path()

    def test_openssl_names_missing(self) -> None:
        """
        Were a name of pyOpenSSL's that the settled read uses gone, its
        connections would be read by Twisted's path.
        """
        self.patch(tls_read, "OPENSSL_NAMES", (*tls_read.OPENSSL_NAMES, "_gone"))
        self.assert_twisted_path()

    def test_openssl_calls_missing(self) -> None:
        """
        Were a call of OpenSSL's that the settled read makes gone from
        pyOpenSSL's bindings, its connections would be read by Twisted's
        path.
        """
        self.patch(tls_read, "OPENSSL_CALLS", (*tls_read.OPENSSL_CALLS, "SSL_gone"))
        self.assert_twisted_path()

    def test_names_present(self) -> None:
        """
        Twisted and pyOpenSSL as installed have every name the settled read
        uses: a listener's TLS 1.3 connection settles.  This fails when an
        upgrade moves one.
        """
        conversation = self.conversation()
        self.assertTrue(settles(conversation.server))

    def test_listener_protocol(self) -> None:
        """
        The TLS listener's connections are read by the settled read.
        """
        factory = RefusingTLSFactory(
            _settings(self), False, Factory.forProtocol(_App)
        )
        self.assertTrue(issubclass(factory.protocol, SettledReadTLSProtocol))

    def test_twisted_loop_unchanged(self) -> None:
        """
        Twisted's read loop is the one L{SettledReadTLSProtocol} repeats;
        when an upgrade changes it, read the new one against the copy
        (same exceptions, same handling, same flush), then update
        L{TWISTED_LOOP}.
        """
        source = textwrap.dedent(inspect.getsource(TLSMemoryBIOProtocol._flushReceiveBIO))
        self.assertEqual(hashlib.sha256(source.encode()).hexdigest(), TWISTED_LOOP)
