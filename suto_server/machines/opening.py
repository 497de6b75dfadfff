# -*- test-case-name: tests.machines.test_opening -*-
"""
The opening of a server connection, as a sans-IO state machine: what
happens before a phase (classic, enrollment, rotation) takes over.

On the legacy listener (SUTO 1.3.2) there is no opening: the classic
challenge starts as soon as the connection is made.  On the framed
listener the device first sends the protocol version, which the server
echoes when it speaks it (2 or 3: L{wire.PROTOCOL_VERSIONS}) and keeps
for the phase; its next message chooses the phase: C{SUTO_C_ENROLL_<user>}
an enrollment, C{SUTO_C_ROTATE_} or C{SUTO_C_RECONNECT_} a rotation
connection, anything else the classic challenge (which then reads that
message itself).  Once, before choosing, a device that reconnects may ask
for the server's time::

    connecting --legacy-->  handed_over  (starts the classic challenge)
    connecting --framed-->  versioning
    versioning --version--> choosing     (echoes the version)
    choosing   --get_time--> timed       (tells the time)
    choosing, timed --enroll / rotate / other--> handed_over (starts it)
    versioning --wrong_version--> refused (ERROR_BAD_VERSION)
    versioning --anything else--> refused (ERROR_OUT_OF_ORDER)
    timed      --get_time--> refused     (ERROR_OUT_OF_ORDER)
    choosing, timed --unoffered--> refused (ERROR_UNKNOWN_MESSAGE)
    any open state --violation--> refused (ERROR_<CODE>)

Which phases a listener offers is decided before the machine: a message
asking for one it does not offer arrives as C{unoffered}.  After the
hand-over the connection feeds its messages to the phase, never here.
"""

from __future__ import annotations

from dataclasses import dataclass

from suto_server.core import wire
from suto_server.core.machine import Machine, Send, Table


@dataclass(frozen=True)
class Refuse:
    """
    End the connection before any phase, telling a framed peer C{code}.
    """

    code: str


@dataclass(frozen=True)
class StartClassic:
    """
    Start the classic challenge; it reads C{message} first, unless that
    is L{None} (the legacy listener, where the server speaks first).
    """

    message: object


@dataclass(frozen=True)
class StartEnrollment:
    """Start an enrollment of C{user}."""

    user: str


@dataclass(frozen=True)
class StartRotation:
    """Start a rotation connection with C{message} (its first)."""

    message: object


@dataclass(frozen=True)
class TellTime:
    """Send the server's time and offline time step."""


#: The phases a listener may offer besides the classic challenge.
ENROLLMENT = "enrollment"
ROTATION = "rotation"  # Rotation and reconnection.
TIME = "time"  # The server's time, for reconnecting devices.

#: The states.
CONNECTING = "connecting"  # The transport is not connected yet.
VERSIONING = "versioning"  # Waiting for the device's protocol version.
CHOOSING = "choosing"  # The version matched; the next message chooses.
TIMED = "timed"  # The server's time went out; it goes out once.
HANDED_OVER = "handed_over"  # A phase has the connection.
REFUSED = "refused"  # The connection is closing.

STATES = (CONNECTING, VERSIONING, CHOOSING, TIMED, HANDED_OVER, REFUSED)

#: The inputs.
LEGACY = "legacy"  # Connected on the legacy listener.
FRAMED = "framed"  # Connected on a framed listener.
VERSION = "version"  # SUTO_VERSION_ of this server's protocol version.
WRONG_VERSION = "wrong_version"  # SUTO_VERSION_ of another version.
ENROLL = "enroll"  # SUTO_C_ENROLL_, on a listener that enrolls.
ROTATE = "rotate"  # SUTO_C_ROTATE_ or SUTO_C_RECONNECT_, likewise.
GET_TIME = "get_time"  # SUTO_C_TIME, likewise.
UNOFFERED = "unoffered"  # One of those three where it is not offered.
OTHER = "other"  # Any other message: the classic challenge's.
VIOLATION = "violation"  # Bad bytes or silence.

INPUTS = (
    LEGACY,
    FRAMED,
    VERSION,
    WRONG_VERSION,
    ENROLL,
    ROTATE,
    GET_TIME,
    UNOFFERED,
    OTHER,
    VIOLATION,
)

_MESSAGES = (VERSION, WRONG_VERSION, ENROLL, ROTATE, GET_TIME, UNOFFERED, OTHER)


class Opening(Machine):
    """
    @param offers: the phases this listener offers besides the classic
        challenge (L{ENROLLMENT}, L{ROTATION}, L{TIME}).
    """

    __slots__ = ("_offers", "_message", "_code", "version")

    def __init__(self, offers: frozenset = frozenset()) -> None:
        super().__init__()
        self._offers = offers
        self._message = None
        self._code = wire.ERROR_OUT_OF_ORDER
        #: The protocol version the device announced and the server
        #: echoed (one of L{wire.PROTOCOL_VERSIONS}); L{None} until then,
        #: and on the legacy framing, which has none.
        self.version = None

    def connected(self, framing: wire.Framing) -> list:
        return self._input(FRAMED if framing is wire.Framing.FRAMED else LEGACY)

    def receive(self, message) -> list:
        self._message = message
        self._code = wire.ERROR_OUT_OF_ORDER
        if isinstance(message, wire.Version):
            if message.version in wire.PROTOCOL_VERSIONS:
                return self._input(VERSION)
            return self._input(WRONG_VERSION)
        if isinstance(message, wire.Enroll):
            return self._offered(ENROLLMENT, ENROLL)
        if isinstance(message, (wire.Rotate, wire.Reconnect)):
            return self._offered(ROTATION, ROTATE)
        if isinstance(message, wire.GetTime):
            return self._offered(TIME, GET_TIME)
        return self._input(OTHER)

    def protocol_error(self, error: wire.ProtocolError) -> list:
        self._code = error.code
        return self._input(VIOLATION)

    def _offered(self, phase: str, symbol: str) -> list:
        return self._input(symbol if phase in self._offers else UNOFFERED)

    def _echo_version(self):
        self.version = self._message.version
        self._actions.append(Send(self._message))

    def _start_classic(self):
        self._actions.append(StartClassic(self._message))

    def _start_enrollment(self):
        self._actions.append(StartEnrollment(self._message.user))

    def _start_rotation(self):
        self._actions.append(StartRotation(self._message))

    def _tell_time(self):
        self._actions.append(TellTime())

    def _report_bad_version(self):
        self._code = wire.ERROR_BAD_VERSION

    def _report_unknown(self):
        self._code = wire.ERROR_UNKNOWN_MESSAGE

    def _refuse(self):
        self._actions.append(Refuse(self._code))


_O = Opening
_OPEN = (VERSIONING, CHOOSING, TIMED)
_CHOSEN = (CHOOSING, TIMED)

#: Every transition, C{{(state, input): (next state, outputs)}}.
TRANSITIONS = Table(
    STATES,
    INPUTS,
    (
        ((CONNECTING,), (LEGACY,), HANDED_OVER, (_O._start_classic,)),
        ((CONNECTING,), (FRAMED,), VERSIONING, ()),
        ((VERSIONING,), (VERSION,), CHOOSING, (_O._echo_version,)),
        (
            (VERSIONING,),
            (WRONG_VERSION,),
            REFUSED,
            (_O._report_bad_version, _O._refuse),
        ),
        (
            (VERSIONING,),
            (ENROLL, ROTATE, GET_TIME, UNOFFERED, OTHER),
            REFUSED,
            (_O._refuse,),
        ),
        (_CHOSEN, (VERSION, WRONG_VERSION, OTHER), HANDED_OVER, (_O._start_classic,)),
        (_CHOSEN, (ENROLL,), HANDED_OVER, (_O._start_enrollment,)),
        (_CHOSEN, (ROTATE,), HANDED_OVER, (_O._start_rotation,)),
        ((CHOOSING,), (GET_TIME,), TIMED, (_O._tell_time,)),
        ((TIMED,), (GET_TIME,), REFUSED, (_O._refuse,)),
        (_CHOSEN, (UNOFFERED,), REFUSED, (_O._report_unknown, _O._refuse)),
        (_OPEN, (VIOLATION,), REFUSED, (_O._refuse,)),
        # Nothing arrives before the connection is made, which it is once.
        ((CONNECTING,), (*_MESSAGES, VIOLATION), REFUSED, (_O._refuse,)),
        (_OPEN, (LEGACY, FRAMED), REFUSED, (_O._refuse,)),
        # The phase has the connection, or it is closing.
        ((HANDED_OVER,), INPUTS, HANDED_OVER, ()),
        ((REFUSED,), INPUTS, REFUSED, ()),
    ),
)
Opening.TABLE = TRANSITIONS
del _O
