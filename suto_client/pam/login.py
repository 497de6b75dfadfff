# -*- test-case-name: tests.client.pam.test_login,tests.client.pam.test_main -*-
"""
One decision for C{pam_exec}: is C{PAM_USER} let in?

The order is what makes the helper fail closed.  The backstops are armed
with the longest deadline before anything can go wrong (the configuration
is not read yet), then with the configuration's; every failure on the way
(a configuration refused, a user it does not decide for, a key that does
not load, the server down or slow, any answer but "accepted") is a
L{Decision} denying, logged with its reason, and only an accepting one
gives exit status 0.

L{decide} is the part on a reactor, given a reactor and a clock so that
tests run it against a server of their own; L{authenticate} is the
process around it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.python.failure import Failure

from suto_client.pam import backstop, offline
from suto_client.pam.config import MAX_DEADLINE, PamConfig, PamConfigError, load
from suto_client.pam.report import Writer, report
from suto_client.pam.verdict import Decision, denied
from suto_client.pam.verify import verify

#: The exit status of an acceptance; every denial is L{backstop.DENIED}.
ACCEPTED = 0


def decide(
    reactor, config: PamConfig, user: str, now: Callable[[], float], creator=None
) -> Deferred:
    """
    Decide about C{user}: ask the server, let the offline policy look at a
    failure to reach it, and remember an acceptance for that policy.

    @param now: the wall clock, for the offline stamps.
    @param creator: the TLS settings, by default the configuration's.
    @return: a Deferred firing with a L{Decision}, never failing.
    """
    if not config.covers(user):
        return succeed(
            denied(
                "not_covered",
                "the configuration does not name this user; the PAM stack "
                "should not have run suto-pam for them",
            )
        )
    asked = verify(reactor, config, user, creator)

    def settle(decision: Decision) -> Decision:
        if decision.accepted:
            try:
                offline.record(config.offline, user, now())
            except OSError as failure:
                # The login is still good; only the offline grace is lost.
                return Decision(
                    True,
                    decision.verdict,
                    f"{decision.reason} (offline stamp not written: {failure.strerror})",
                )
            return decision
        return offline.admit(config.offline, user, decision, now())

    return asked.addCallback(settle)


def authenticate(config_path: str, environ: Mapping[str, str], write: Writer) -> int:
    """
    Decide for the user PAM names in C{environ}, on the global reactor,
    and log the decision.

    @return: L{ACCEPTED} or L{backstop.DENIED}.
    """
    user = environ.get("PAM_USER", "")
    service = environ.get("PAM_SERVICE", "?")

    def deny(kind: str, reason: str) -> None:
        report(write, user, service, denied(kind, reason))

    backstop.arm(MAX_DEADLINE, deny)
    try:
        decision = _decision(config_path, environ, user, deny)
    except Exception as failure:
        # Fail closed, and say so in the log rather than in a traceback.
        decision = denied("error", f"unexpected failure: {failure!r}")
    report(write, user, service, decision)
    return ACCEPTED if decision.accepted else backstop.DENIED


def _decision(config_path, environ, user, deny) -> Decision:
    if environ.get("PAM_TYPE") != "auth":
        return denied(
            "usage",
            f"suto-pam decides only in the auth stack (PAM_TYPE is "
            f"{environ.get('PAM_TYPE')!r})",
        )
    if not user:
        return denied("usage", "PAM named no user")
    try:
        config = load(config_path)
    except PamConfigError as failure:
        return denied("config", str(failure))
    backstop.arm(config.deadline, deny)
    return run_on_reactor(lambda reactor: decide(reactor, config, user, time.time))


def run_on_reactor(work: Callable[[object], Deferred]):
    """
    Run the global reactor until C{work(reactor)} has a result.  The
    reactor installs no signal handlers: the backstops own the signals.

    @return: the result.
    @raise Exception: what C{work} failed with.
    """
    from twisted.internet import reactor

    outcomes = []

    def start() -> None:
        done = maybeDeferred(work, reactor)
        done.addBoth(outcomes.append)
        done.addBoth(lambda _: reactor.stop())

    reactor.callWhenRunning(start)
    reactor.run(installSignalHandlers=False)
    (outcome,) = outcomes
    if isinstance(outcome, Failure):
        outcome.raiseException()
    return outcome
