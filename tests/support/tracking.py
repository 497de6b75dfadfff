# -*- test-case-name: tests.cluster.test_presence,tests.cluster.test_shared_presence -*-
"""
What port tracking (L{suto_server.rules.tracking.Tracking}) is given
besides the store, recorded for the tests of several processes: check
packets that end as the test says, and the audit records it makes.
"""

from twisted.internet.defer import succeed

from suto_server.net.checks import CheckResult


class RecordingChecks:
    """
    A check service whose checks end with C{result} (nobody answers, by
    default), recording where they went.
    """

    def __init__(self):
        self.sent = []
        self.result = CheckResult.SILENT

    def check(self, user, address, key, previous=None):
        self.sent.append(address)
        return succeed(self.result)


class RecordingAudit:
    """
    Records what would go to the audit log: the event, its source, its
    reason and whether it is unproven.
    """

    def __init__(self):
        self.records = []

    def record(self, now, event, user, source, reason, locations=(), *, unproven=False):
        self.records.append((event, source, reason, unproven))

    def events(self):
        return [record[0] for record in self.records]
