# -*- test-case-name: tests.test_keyrules,tests.test_service -*-
"""
The rules that give devices keys and keep them: enrollment, rotation,
reconnection and port tracking, all under the one master key.

They come and go together: a server with a master key runs all of them
(and the check packets and the offline sweep they need), a server
without one runs none, and only TLS listeners offer them to devices.
"""

from __future__ import annotations

from dataclasses import dataclass

from twisted.cred.portal import Portal

from suto_server.cred.checkers import SaltedChallengeChecker
from suto_server.cred.realm import SutoRealm
from suto_server.net.checks import CheckService
from suto_server.phases.enrollment import EnrollmentRules
from suto_server.phases.rotation import RotationRules
from suto_server.rules.enrollment import Enrollment, WindowHashSource
from suto_server.rules.offline import OfflineWatch
from suto_server.rules.reconnection import Reconnection
from suto_server.rules.rotation import Rotation
from suto_server.rules.tracking import Tracking
from suto_server.settings import Alerting, EnrollmentSettings, Network, Timing


@dataclass(frozen=True)
class KeyRules:
    """
    The rules of a server with a master key.

    @ivar portal: checks enrollments' one-time password responses.
    """

    enrollment: Enrollment
    rotation: Rotation
    reconnection: Reconnection
    tracking: Tracking
    portal: Portal

    def phases(self, timing: Timing) -> dict:
        """
        What a TLS listener's factory takes to offer enrollment and
        rotation connections: its C{enrollment} and C{rotation} arguments.
        """
        return {
            "enrollment": EnrollmentRules(self.enrollment, self.portal),
            "rotation": RotationRules(
                self.rotation,
                self.reconnection,
                self.tracking,
                # An agent rotates every interval, up to 10% late by its
                # jitter; past that and the grace the connection is dead.
                idle_timeout=timing.idle_timeout,
            ),
        }


def key_rules(
    reactor,
    parent,
    *,
    store,
    calls,
    audit,
    live,
    hash_pool,
    committer,
    locations,
    settings: EnrollmentSettings,
    network: Network,
    timing: Timing,
    alerting: Alerting,
    paced=None,
    jobs=None,
) -> KeyRules:
    """
    Build the rules of a server with a master key (L{assemble}), running
    the services they need (check packets, the offline sweep) under
    C{parent}.

    @param paced: paces the check service's lines about the datagrams
        it receives (L{suto_server.rules.gate.ConnectionGate.paced}).
    @param jobs: where the offline sweep runs, which must run in one
        process of those sharing the store (the leader's
        L{suto_server.cluster.leadership.Leadership.jobs}); C{parent}
        unless given.

    The other parameters are L{assemble}'s.
    """
    # Checks go to the port the agents listen on for hellos.
    checks = CheckService(
        reactor,
        network.hello_port,
        network.check_timeout,
        network.hello_interface,
        paced=paced,
    )
    checks.setServiceParent(parent)
    OfflineWatch(
        reactor,
        calls,
        timing.rotation_interval,
        timing.rotation_grace,
        live.__contains__,
    ).setServiceParent(parent if jobs is None else jobs)
    return assemble(
        store=store,
        calls=calls,
        audit=audit,
        live=live,
        checks=checks,
        hash_pool=hash_pool,
        committer=committer,
        locations=locations,
        settings=settings,
        timing=timing,
        alerting=alerting,
    )


def assemble(
    *,
    store,
    calls,
    audit,
    live,
    checks,
    hash_pool,
    committer,
    locations,
    settings: EnrollmentSettings,
    timing: Timing,
    alerting: Alerting,
) -> KeyRules:
    """
    Put the rules of a server with a master key together, starting
    nothing: what L{key_rules} runs the daemon's rules with, and what
    C{bench/session_cost.py} times a rotation through.

    @param calls: the store's calls (L{suto_server.store.calls.IStoreCalls})
        the rules await.
    @param live: the live rotation connections (L{LiveSessions}).
    @param checks: sends the check packets that port tracking asks a
        profile's old location (L{CheckService}, running).
    @param hash_pool: computes the enrollments' one-time password hashes
        (L{suto_server.cred.hashpool.HashPool}).
    @param committer: the rotations' group commit.
    @param settings: enabled L{EnrollmentSettings}.
    """
    tracking = Tracking(calls, audit, live, checks, locations)
    rotation = Rotation(
        calls, settings.master_key, committer, audit, alerting.fingerprint_alert
    )
    reconnection = Reconnection(
        calls,
        rotation,
        audit,
        timing.offline_step,
        timing.offline_window,
    )
    enrollment = Enrollment(
        store,
        settings.master_key,
        hash_pool,
        settings.max_attempts,
        audit=audit,
        calls=calls,
    )
    portal = Portal(
        SutoRealm(), [SaltedChallengeChecker(WindowHashSource(calls), hash_pool)]
    )
    return KeyRules(enrollment, rotation, reconnection, tracking, portal)
