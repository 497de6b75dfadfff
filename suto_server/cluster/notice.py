# -*- test-case-name: tests.cluster.test_relay,tests.cluster.test_presence -*-
"""
The notices the server processes sharing a store send each other about
pending classic authentications (L{suto_server.cluster.relay}),
verifications of a live connection
(L{suto_server.cluster.verify_relay}) and the live connections
themselves (L{suto_server.cluster.presence}), and the checking of one heard.

A notice is a JSON object: C{node}, the random id of the process that
sent it; C{op}, what happened (C{open}, C{heard}, C{claimed}, C{done},
C{here}; C{verify}, C{holding}, C{verified}; C{live}); C{key}, the
request's or announcement's 63-bit key (0 for C{here}); and what that
op carries.  Each is checked whole before anything is done with it, so that a
process of another version, or a mistake, cannot make a relay act on
half a notice.

A notice travels sealed (L{seal_notice}): an HMAC-SHA256 tag, in hex,
under a key derived from the deployment's master key
(L{suto_server.masterkey.MasterKey.notice_key}), in front of its JSON.
PostgreSQL lets any role that can connect to the database send a
notice on any channel and hear every one, so a reporting or backup role
could otherwise claim and accept a pending classic authentication, close
every live rotation connection or have a reconnection refused as a
clone.  A notice without the tag is dropped (L{open_notice}).  A
replayed one gains nothing: the answers are bound to a request's random
key and nonce, and a C{live} notice closes only a connection that
became live before it.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from hashlib import sha256

from suto_server.core.keyschedule import CHECK_NONCE_SIZE
from suto_server.core.wire.grammar import is_valid_user
from suto_server.rules.rendezvous import Verdict

#: The longest reason a C{done} notice carries.
MAX_REASON = 500

#: How a live connection's challenge ended, as a C{verified} notice says:
#: the proof matched, did not, the connection gave no answer, or it had
#: too many challenges waiting.
PROOF_OUTCOMES = ("matched", "mismatched", "no_answer", "busy")

# The longest notice read (PostgreSQL carries no longer ones), and the
# widest its other fields may be.
_MAX_TEXT = 8000
_NODE = 64
_MAX_NETWORKS = 64
_MAX_TIMEOUT = 3600.0
_KEYS = range(2**63)


class BadNotice(ValueError):
    """
    A notice that is not one a SUTO process sends.
    """


#: The length of the hex tag in front of a sealed notice.
TAG_SIZE = 2 * sha256().digest_size


def _tag(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode("utf-8"), sha256).hexdigest()


def seal_notice(key: bytes, text: str) -> str:
    """
    @param key: the deployment's notice key.
    @return: the notice C{text} as it goes on the channel, under its tag.
    """
    return _tag(key, text) + text


def open_notice(key: bytes, sealed: str) -> str:
    """
    @return: the notice that C{sealed}, as heard on the channel, carries.
    @raise BadNotice: it is too long, or its tag is not the one C{key}
        gives it.
    """
    if len(sealed) > _MAX_TEXT:
        raise BadNotice("too long")
    tag, text = sealed[:TAG_SIZE], sealed[TAG_SIZE:]
    if not hmac.compare_digest(tag.encode("utf-8"), _tag(key, text).encode("ascii")):
        raise BadNotice("not sealed by a process of this deployment")
    return text


def _verdict(value) -> Verdict:
    try:
        return Verdict(value)
    except ValueError:
        raise BadNotice("unknown verdict") from None


def _address(value) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadNotice("a source must be an address")
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise BadNotice("a source must be an address") from None
    return value


def parse_notice(text: str) -> dict:
    """
    @return: the notice C{text} holds, its fields checked.
    @raise BadNotice: it is not one a SUTO process sends.
    """
    if len(text) > _MAX_TEXT:
        raise BadNotice("too long")
    try:
        notice = json.loads(text)
    except ValueError:
        raise BadNotice("not JSON") from None
    if not isinstance(notice, dict):
        raise BadNotice("not an object")
    if not _is_node(notice.get("node")) or notice.get("key") not in _KEYS:
        raise BadNotice("no sender or no key")
    if isinstance(notice["key"], bool):
        raise BadNotice("no sender or no key")
    op = notice.get("op")
    if op == "open":
        networks = notice.get("networks")
        timeout = notice.get("timeout")
        if not is_valid_user(notice.get("user")):
            raise BadNotice("not a user name")
        if not (
            isinstance(networks, list)
            and 0 < len(networks) <= _MAX_NETWORKS
            and all(isinstance(each, str) for each in networks)
        ):
            raise BadNotice("no networks")
        try:
            notice["networks"] = [ipaddress.ip_network(n, strict=False) for n in networks]
        except ValueError:
            raise BadNotice("not a network") from None
        _timeout(timeout)
    elif op in ("heard", "here"):
        pass
    elif op == "claimed":
        if _address(notice.get("source")) is None:
            raise BadNotice("no source")
    elif op == "done":
        notice["verdict"] = _verdict(notice.get("verdict"))
        reason = notice.get("reason")
        if not isinstance(reason, str) or len(reason) > MAX_REASON:
            raise BadNotice("no reason")
        _address(notice.get("source"))
    elif op == "verify":
        if not is_valid_user(notice.get("user")):
            raise BadNotice("not a user name")
        notice["nonce"] = _nonce(notice.get("nonce"))
        _timeout(notice.get("timeout"))
    elif op in ("holding", "verified"):
        if not _is_node(notice.get("to")):
            raise BadNotice("no addressee")
        notice["nonce"] = _nonce(notice.get("nonce"))
        if op == "verified":
            if notice.get("outcome") not in PROOF_OUTCOMES:
                raise BadNotice("unknown outcome")
            _address(notice.get("device"))
    elif op == "live":
        if not is_valid_user(notice.get("user")):
            raise BadNotice("not a user name")
        if _address(notice.get("device")) is None:
            raise BadNotice("no device")
    else:
        raise BadNotice("unknown op")
    return notice


def _is_node(value) -> bool:
    return isinstance(value, str) and 0 < len(value) <= _NODE


def _timeout(value) -> None:
    if not (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and 0 < value <= _MAX_TIMEOUT
    ):
        raise BadNotice("no timeout")


def _nonce(value) -> bytes:
    """
    @return: the challenge's nonce a verification notice carries in hex.
    """
    if not isinstance(value, str) or len(value) != 2 * CHECK_NONCE_SIZE:
        raise BadNotice("no nonce")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise BadNotice("no nonce") from None
