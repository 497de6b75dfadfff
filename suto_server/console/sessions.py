# -*- test-case-name: tests.console.test_sessions -*-
"""
The console's signed-in operators.

A session starts when an operator signs in and is named by a random id
in a cookie (C{HttpOnly}, C{SameSite=Strict}, C{Secure} on TLS).  It ends
when it has been idle for L{IDLE} seconds, or L{LIFETIME} seconds after
it began however busy it is, or when the operator signs out.  Ids are
kept only as their SHA-256, so a session table seen in a memory dump
names no cookie.  Each session has its own CSRF token, which every form
carries and every POST must give back (compared in constant time).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

#: The session cookie's name.
COOKIE = b"suto_console"

#: Seconds a session may stay unused.
IDLE = 15 * 60.0

#: Seconds a session lasts at most.
LIFETIME = 8 * 3600.0

#: Most sessions at once; starting one more ends the oldest.
MOST_SESSIONS = 64


@dataclass
class Session:
    """
    One signed-in operator.

    @ivar operator: the printable subject the audit log names.
    @ivar csrf: the token every form of this session carries.
    """

    operator: str
    csrf: str
    started: float
    used: float = field(compare=False)

    def accepts(self, token) -> bool:
        """
        @return: whether C{token}, a form's CSRF field, is this session's.
        """
        if not isinstance(token, str):
            return False
        return hmac.compare_digest(token.encode("utf-8"), self.csrf.encode("ascii"))


def _digest(session_id: str) -> bytes:
    return hashlib.sha256(session_id.encode("utf-8")).digest()


class Sessions:
    """
    The table of sessions.

    @param clock: the L{IReactorTime} expiry is read from.
    """

    def __init__(self, clock, idle: float = IDLE, lifetime: float = LIFETIME) -> None:
        self._clock = clock
        self._idle = idle
        self._lifetime = lifetime
        self._sessions: dict[bytes, Session] = {}

    def start(self, operator: str) -> tuple[str, Session]:
        """
        @return: a new session's id (for the cookie, never kept) and the
            session.
        """
        self._forget_expired()
        while len(self._sessions) >= MOST_SESSIONS:
            del self._sessions[next(iter(self._sessions))]
        now = self._clock.seconds()
        session_id = secrets.token_urlsafe(32)
        session = Session(operator, secrets.token_urlsafe(32), now, now)
        self._sessions[_digest(session_id)] = session
        return session_id, session

    def find(self, session_id) -> Session | None:
        """
        @return: the live session C{session_id} names, marked used now, or
            L{None}.
        """
        if not isinstance(session_id, str):
            return None
        self._forget_expired()
        session = self._sessions.get(_digest(session_id))
        if session is not None:
            session.used = self._clock.seconds()
        return session

    def end(self, session_id: str) -> None:
        self._sessions.pop(_digest(session_id), None)

    def _forget_expired(self) -> None:
        now = self._clock.seconds()
        for digest, session in list(self._sessions.items()):
            if (
                now - session.used >= self._idle
                or now - session.started >= self._lifetime
            ):
                del self._sessions[digest]

    def __len__(self) -> int:
        return len(self._sessions)


def session_cookie(session_id: str, secure: bool) -> bytes:
    """
    @return: the C{Set-Cookie} value naming C{session_id}: only this
        site's own requests send it back, no script reads it, and on TLS
        it never goes over plain HTTP.
    """
    flags = b"; Path=/; HttpOnly; SameSite=Strict" + (b"; Secure" if secure else b"")
    return COOKIE + b"=" + session_id.encode("ascii") + flags


def cleared_cookie(secure: bool) -> bytes:
    """
    @return: the C{Set-Cookie} value that removes the session cookie.
    """
    return session_cookie("", secure) + b"; Max-Age=0"
