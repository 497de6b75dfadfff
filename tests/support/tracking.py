# -*- test-case-name: tests.cluster.test_presence,tests.cluster.test_shared_presence,tests.rules.test_tracking -*-
"""
What port tracking (L{suto_server.rules.tracking.Tracking}) is given
besides the store, recorded for the tests of several processes: check
packets that end as the test says, and the audit records it makes;
and L{admit}, asking it about alice's connection as a phase does.
"""

from twisted.internet.defer import Deferred, succeed

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


def admit(tracking, store, key, address, connection, now, **options) -> list:
    """
    Ask C{tracking} whether C{connection} from C{address}, which presented
    C{key}, may serve alice as C{store} holds her, as a phase asks.

    @param options: L{Tracking.admit}'s keywords (C{proven}, C{previous}).
    @return: a list that receives the decision, or its failure, once made.
    """
    decisions = []
    Deferred.fromCoroutine(
        tracking.admit(
            store.get_profile("alice"), key, address, connection, now, **options
        )
    ).addBoth(decisions.append)
    return decisions
