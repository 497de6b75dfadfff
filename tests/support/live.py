# -*- test-case-name: tests.api.test_verifier,tests.cluster.test_verify_relay -*-
"""
A live rotation connection whose challenges a test answers, for the
verifications asked of it.
"""

from twisted.internet import defer


class RecordingConnection:
    """
    A live rotation connection whose challenges the test answers.
    """

    def __init__(self):
        self.challenges = []
        self.cancelled = []

    def challenge(self, nonce):
        d = defer.Deferred(lambda d: self.cancelled.append(nonce))
        self.challenges.append((nonce, d))
        return d
