# -*- test-case-name: tests.test_service,tests.test_tap -*-
"""
What the server is told to be, as a few frozen settings objects.

L{suto_server.service.SutoServer} takes these instead of one keyword per
option, grouped by what they configure: where it listens (L{Listeners}),
how it reaches devices (L{Network}), its timers (L{Timing}), whether it
enrolls and rotates keys (L{EnrollmentSettings}), how much load it takes
(L{Capacity}) and where alerts go (L{Alerting}); the roles client
certificates hold on the listeners that take them (the verification API,
the web console) are one L{suto_server.cred.roles.RolePolicy}, itself
frozen.  Each field's default is
the daemon's own, so tests name only what they change.  Whether the
server enrolls is never implied by a missing value: its callers pass
L{EnrollmentSettings} with a master key, or L{ENROLLMENT_OFF}.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from suto_server.core import timing
from suto_server.cred.hashpool import DEFAULT_MAX_PENDING
from suto_server.locations import Locations
from suto_server.masterkey import MasterKey
from suto_server.net.checks import DEFAULT_CHECK_TIMEOUT
from suto_server.net.expiry import DEFAULT_WARN_DAYS
from suto_server.rules.enrollment import DEFAULT_MAX_ATTEMPTS
from suto_server.rules.limits import MaxStartups, Penalties
from suto_server.rules.rotation_failures import DEFAULT_FAILURE_ALERT


@dataclass(frozen=True)
class Listeners:
    """
    The endpoint objects the server listens on; a listener not given is
    off.

    @ivar devices: the framed SUTO listeners; those on TLS endpoints also
        enroll, rotate and reconnect.
    @ivar legacy: the plaintext SUTO 1.3.2 listener.
    @ivar admin: the admin API.
    @ivar metrics: the Prometheus metrics page.
    @ivar api: the verification API (TLS with client certificates).
    @ivar console: the web console for IT.
    """

    devices: tuple = ()
    legacy: object = None
    admin: object = None
    metrics: object = None
    api: object = None
    console: object = None


@dataclass(frozen=True)
class Network:
    """
    How the server reaches devices and names where they are.

    @ivar hostname: the name sent in hellos.
    @ivar hello_port: the UDP port devices listen for hellos (and check
        packets) on.
    @ivar hello_interface: the local IPv4 address hellos are sent from.
    @ivar check_timeout: seconds the old location of a profile seen
        elsewhere has to answer its check packet.
    @ivar locations: the named enrollment places.
    """

    hostname: str = "suto"
    hello_port: int = 2020
    hello_interface: str = ""
    check_timeout: float = DEFAULT_CHECK_TIMEOUT
    locations: Locations = field(default_factory=Locations)


@dataclass(frozen=True)
class Timing:
    """
    The exchanges' timers, in seconds (the offline window in time steps).

    @ivar auth_timeout: how long a device has to connect back after a
        hello.
    @ivar exchange_timeout: how long a connected device may stay silent.
    @ivar rotation_interval: the time between an agent's key rotations.
    @ivar rotation_grace: the time past a due rotation before its
        connection counts as dead.
    @ivar offline_step: one time step of the offline key.
    @ivar offline_window: the time steps either side of the server's
        clock a reconnection may use.
    """

    auth_timeout: float = 5.0
    exchange_timeout: float = 10.0
    rotation_interval: float = timing.DEFAULT_ROTATION_INTERVAL
    rotation_grace: float = timing.DEFAULT_ROTATION_GRACE
    offline_step: int = timing.DEFAULT_OFFLINE_STEP
    offline_window: int = timing.DEFAULT_OFFLINE_WINDOW

    @property
    def idle_timeout(self) -> float:
        """
        How long a rotation connection may stay quiet between rotations.
        """
        return timing.silence_allowed(self.rotation_interval, self.rotation_grace)


@dataclass(frozen=True)
class EnrollmentSettings:
    """
    Enrollment, key rotation and reconnection, all under one master key.

    @ivar master_key: the L{MasterKey} sealing every profile's keys, or
        L{None} when the server only runs the classic challenge (then
        say so with L{ENROLLMENT_OFF}).
    @ivar max_attempts: failed attempts after which an enrollment window
        closes.
    """

    master_key: MasterKey | None
    max_attempts: int = DEFAULT_MAX_ATTEMPTS

    @property
    def enabled(self) -> bool:
        return self.master_key is not None


#: The server runs the classic challenge only: no enrollment, rotation or
#: reconnection, and no port tracking.
ENROLLMENT_OFF = EnrollmentSettings(master_key=None)


@dataclass(frozen=True)
class Capacity:
    """
    How much load the server takes before it refuses or answers busy.

    @ivar max_per_source: connections one source (an IPv6 /64) may hold
        at once; 0 for no limit.
    @ivar startups: the refusal of connections not yet past their first
        exchange, as OpenSSH's MaxStartups.
    @ivar penalties: the penalties sources earn by failing.
    @ivar login_grace: seconds a connection has to finish its first
        exchange; 0 turns it off.
    @ivar limit_log_interval: the least seconds between two log lines
        about refusing one source.
    @ivar hash_threads: the threads computing password hashes, or L{None}
        for one per core.
    @ivar hash_pending: hash computations waiting or running at most.
    """

    max_per_source: int = 32
    startups: MaxStartups = MaxStartups()
    penalties: Penalties = Penalties()
    login_grace: float = 30.0
    limit_log_interval: float = 60.0
    hash_threads: int | None = None
    hash_pending: int = DEFAULT_MAX_PENDING


@dataclass(frozen=True)
class Alerting:
    """
    Where alerts go and when some are raised.

    @ivar sinks: alert sinks besides the structured log, which is always
        on; those that are services run with the server.
    @ivar fingerprint_alert: rotations failing in a row on the client
        before C{fingerprint_mismatch}.
    @ivar cert_warn_days: the days before a TLS certificate's expiry from
        which it is warned about daily.
    """

    sinks: tuple = ()
    fingerprint_alert: int = DEFAULT_FAILURE_ALERT
    cert_warn_days: int = DEFAULT_WARN_DAYS


@dataclass(frozen=True)
class VerifyApiSettings:
    """
    The verification API served on L{Listeners.api}: how much one calling
    host may ask, and where the devices of accounts without a profile are.
    Who may call it is the server's
    L{suto_server.cred.roles.RolePolicy}, which the web console shares.

    @ivar in_flight: verifications one host may have in flight at once (a
        PAM stack asks once per login: a handful covers a busy host).
    @ivar per_minute: verifications one host may start per minute.
    @ivar min_deadline: the least seconds a caller's deadline is raised to.
    @ivar max_deadline: the most seconds a caller's deadline is cut to.
    @ivar targets: for each account without an enrolled profile, where
        its device is: a named location per user.
    """

    in_flight: int = 4
    per_minute: int = 30
    min_deadline: float = 1.0
    max_deadline: float = 30.0
    targets: Locations = field(default_factory=Locations)


@dataclass(frozen=True)
class HttpLimits:
    """
    The bounds on the clients of the HTTP listeners facing the network,
    the verification API and the web console
    (L{suto_server.admin.httpbounds}; their per-source bounds are their
    sites' own).

    @ivar request_deadline: seconds a whole request (head and body) may
        take to arrive, from the connection's start or the end of the
        previous answer, on those listeners and on the metrics listener
        and the admin socket too (the default is
        L{suto_server.admin.httpbounds.REQUEST_DEADLINE}).
    @ivar api_connections: connections the verification API holds at
        most, from all sources.
    @ivar console_connections: connections the web console holds at
        most, from all sources.
    """

    request_deadline: float = 10.0
    api_connections: int = 512
    console_connections: int = 256
