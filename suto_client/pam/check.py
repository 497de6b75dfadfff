# -*- test-case-name: tests.client.pam.test_check -*-
"""
C{suto-pam --check [--user NAME]}: everything a login will need, tried
before anyone edits C{/etc/pam.d}.

Each step prints one line, C{ok} or C{FAILED}, with what it found; the
first failure ends the check, since every later step depends on it:

 1. the configuration: its file and the key and certificate files are
    root's and nobody else can write them, and every setting is valid;
 2. the host's certificate and key load and belong together, and the CA
    bundle (or pin) is usable; the certificate's expiry is shown;
 3. the server: a TLS connection both ways, with a deliberately empty
    request that the server refuses as malformed (HTTP 400), which proves
    it accepted the host's certificate without asking any device;
 4. with C{--user}: whether the configuration decides for that user, and
    a real verification, whose verdict is shown.

Exit statuses: 0 every step passed; 1 the configuration or a file is
wrong; 3 the server cannot be reached, TLS failed, or the server refuses
this host; 4 the user is not one the configuration decides for, or the
server did not accept them.
"""

from __future__ import annotations

import datetime
import os
import time
from typing import TextIO

from twisted.internet.defer import Deferred, inlineCallbacks

from suto_client.pam.config import PamConfig, PamConfigError, load
from suto_client.pam.login import decide, run_on_reactor
from suto_client.pam.verdict import Decision, judge
from suto_client.pam.verify import failure_decision, post, trust
from suto_client.tls import ClientTLSError, load_client_identity

#: Exit statuses of C{--check}.
PASSED, BAD_CONFIG, BAD_SERVER, NOT_ACCEPTED = 0, 1, 3, 4


def check(config_path: str, user: str | None, out: TextIO) -> int:
    """
    Run every step on the global reactor.

    @return: the exit status.
    """
    try:
        return run_on_reactor(lambda reactor: steps(reactor, config_path, user, out))
    except Exception as failure:
        _say(out, False, "check", f"unexpected failure: {failure!r}")
        return BAD_CONFIG


def _say(out: TextIO, passed: bool, step: str, detail: str) -> None:
    out.write(f"{'ok' if passed else 'FAILED':6} {step}: {detail}\n")
    out.flush()


@inlineCallbacks
def steps(reactor, config_path: str, user: str | None, out: TextIO) -> Deferred:
    """
    The steps, printed to C{out}.

    @return: a Deferred firing with the exit status.
    """
    try:
        config = load(config_path)
    except PamConfigError as failure:
        _say(out, False, "configuration", str(failure))
        return BAD_CONFIG
    _say(out, True, "configuration", _summary(config_path, config))
    try:
        creator = trust(config)
        identity = load_client_identity(config.certificate, config.key)
    except ClientTLSError as failure:
        _say(out, False, "host certificate", str(failure))
        return BAD_CONFIG
    expiry = identity.certificate.not_valid_after_utc
    left = expiry - datetime.datetime.now(datetime.UTC)
    _say(
        out,
        left.total_seconds() > 0,
        "host certificate",
        f"{identity.certificate.subject.rfc4514_string()}, valid until "
        f"{expiry:%Y-%m-%d %H:%M} UTC ({left.days} days left)",
    )
    if left.total_seconds() <= 0:
        return BAD_CONFIG
    where = f"{config.host}:{config.port}"
    answer = yield post(reactor, config, creator, {}).addErrback(
        failure_decision, config
    )
    if isinstance(answer, Decision):
        _say(out, False, "server", answer.reason)
        return BAD_SERVER
    code, body = answer
    if code != 400:
        decision = judge("", code, body)
        _say(out, False, "server", f"{where}: {decision.reason}")
        return BAD_SERVER
    _say(out, True, "server", f"{where}: TLS both ways; an empty request is refused as it should be")
    if user is None:
        return PASSED
    if not config.covers(user):
        _say(out, False, "user", f"{user!r} is not in 'users' nor in 'group'; suto-pam denies them")
        return NOT_ACCEPTED
    decision = yield decide(reactor, config, user, time.time, creator)
    _say(out, decision.accepted, "verify", f"{user}: {decision.verdict}: {decision.reason}")
    return PASSED if decision.accepted else NOT_ACCEPTED


def _summary(path: str, config: PamConfig) -> str:
    trusted = f"CA bundle {config.ca}" if config.ca else f"pin {config.pin}"
    who = ", ".join(sorted(config.users)) or "nobody listed"
    if config.group:
        who += f"; group {config.group}"
    offline = "off"
    if config.offline is not None:
        offline = f"on for {', '.join(sorted(config.offline.users))} (grace {config.offline.grace:g} s)"
    owners = (
        "its files are root's alone"
        if os.geteuid() == 0
        else "file ownership not checked (run --check as root)"
    )
    return (
        f"{path}: server {config.host}:{config.port}, trusted by {trusted}, "
        f"deadline {config.deadline:g} s, decides for {who}, offline {offline}; {owners}"
    )
