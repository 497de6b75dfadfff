# -*- test-case-name: tests.api.test_verifier,tests.api.test_verifier_off_reactor -*-
"""
The verification API's L{Verifier} as its tests build it: bob is the
account checked at its location, alice the enrolled device; a verify's
result is read at once, as the tests drive every wait themselves.
"""

import ipaddress

from suto_server.api.verifier import Verifier
from suto_server.locations import Location, Locations

#: bob's account hash.
HASH = "$6$abcdefghijklmnop$" + "x" * 86
#: The nonce of every challenge the fixed source of bytes gives.
NONCE = bytes(range(16))
#: bob's location, where an account check sends its hello.
TARGETS = Locations({"bob": Location((ipaddress.ip_network("192.0.2.7/32"),), "bob")})


def verifier_for(clock, calls, live, authenticator, **options):
    """
    A L{Verifier} for L{TARGETS} with hellos on port 2020; C{options} go
    to it as given.
    """
    return Verifier(clock, calls, live, authenticator, TARGETS, 2020, **options)


def fixed_bytes(size):
    """
    The source of bytes that makes every nonce L{NONCE}.
    """
    return NONCE[:size]


class Verifying:
    """
    A test of C{self.verifier}.
    """

    def verify(self, user, deadline=10):
        """
        @return: a list that receives the verify's answer.
        """
        results = []
        self.verifier.verify(user, deadline).addCallback(results.append)
        return results
