# -*- test-case-name: tests.end_to_end.test_tracking,tests.end_to_end.test_two_connections -*-
"""
Rotation endpoints whose connections leave from a loopback address of
the test's choosing, as an agent on a host with that address would.
"""

from twisted.internet.endpoints import TCP4ClientEndpoint, wrapClientTLS

from suto_client.protocol import account_trust
from suto_client.state import Account


def bound_to(address, port=None):
    """
    A rotation endpoint factory for L{suto_client.agent.Agent} whose
    connections leave from C{address}.

    @param port: the server port to reach, when not the profile's own
        (another server process of the same deployment).
    """

    def endpoint(reactor, profile, timeout):
        account = Account(
            user=profile.user,
            server_host=profile.server_host,
            server_port=profile.server_port if port is None else port,
            pin=profile.pin,
        )
        tcp = TCP4ClientEndpoint(
            reactor,
            account.server_host,
            account.server_port,
            timeout,
            bindAddress=(address, 0),
        )
        return wrapClientTLS(account_trust(account), tcp)

    return endpoint
