# -*- test-case-name: tests.admin.test_api,tests.test_metrics -*-
"""
Connections to an HTTP listener's factory over L{StringTransport}s, timed
by a L{Clock}: what the tests of the bounds each listener puts on its
clients (L{suto_server.admin.httpbounds}) share.
"""

from __future__ import annotations

from twisted.internet.testing import StringTransport


def connect(factory, address):
    """
    @return: the channel C{factory} builds for a client at C{address} on
        a new L{StringTransport}, and that transport; C{(None, None)} when
        the factory refuses the connection.
    """
    channel = factory.buildProtocol(address)
    if channel is None:
        return None, None
    transport = StringTransport(peerAddress=address)
    channel.makeConnection(transport)
    return channel, transport


def assert_closed_at_deadline(testcase, factory, address, clock, deadline):
    """
    Check that a client of C{factory} at C{address} sending its request a
    byte every quarter of C{deadline}, never idle for long, is still
    connected after three bytes and closed unanswered once C{deadline}
    seconds have passed on C{clock} since it connected.
    """
    channel, transport = connect(factory, address)
    for byte in b"GET":
        channel.dataReceived(bytes([byte]))
        clock.advance(deadline / 4)
    testcase.assertFalse(transport.disconnecting)
    clock.advance(deadline / 4)
    testcase.assertTrue(transport.disconnecting)
    testcase.assertEqual(transport.value(), b"")
