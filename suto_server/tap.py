# -*- test-case-name: tests.test_tap -*-
"""
C{twistd suto}: command-line options and the service they describe.

With no options at all the server runs on its embedded defaults: a data
folder C{suto-data} in the working directory holding the SQLite store
(unless C{--store} names a PostgreSQL database), a self-signed ECDSA
certificate made on first start and the admin socket; a TLS listener on
port 2021; hellos to UDP port 2020.  Every option may
also be set in a TOML file named by C{--config} (see L{suto_server.core.config}).
"""

from __future__ import annotations

from twisted.python import usage

from suto_server.audit.sinks.syslog import parse_address
from suto_server.audit.sinks.webhook import check_url
from suto_server.core import timing, wire
from suto_server.core.configurable import ConfigurableOptions, OptionProblem
from suto_server.core.optionvalues import MIN_TIMER, is_ip_address, seconds
from suto_server.cred.hashpool import DEFAULT_MAX_PENDING
from suto_server.cred.roles import PolicyError, RolePolicy
from suto_server.datafolder import DEFAULT_DATA
from suto_server.net.checks import DEFAULT_CHECK_TIMEOUT
from suto_server.net.expiry import DEFAULT_WARN_DAYS, MAX_WARN_DAYS
from suto_server.rules.limits import MaxStartups, Penalties
from suto_server.settings import Capacity, HttpLimits, Timing, VerifyApiSettings

#: Longest duration any seconds option takes: a week.  No limit or timer
#: needs more, and an unbounded one ("inf", "1e300") would push the offline
#: sweep's cut-off past what the store accepts as a time.
MAX_SECONDS = 7 * 24 * 3600

#: The seconds options: a timer of at least a millisecond (see
#: L{suto_server.core.optionvalues}), at most a week; some take 0 for off.
_positive = seconds(MIN_TIMER, MAX_SECONDS)
_seconds_or_off = seconds(MIN_TIMER, MAX_SECONDS, off=True)


def _max_startups(value: str) -> MaxStartups:
    return MaxStartups.parse(value)


_max_startups.coerceDoc = "START:RATE:FULL, as OpenSSH's MaxStartups."


def _store(value: str) -> str:
    # The store's module loads psycopg: only a server given --store pays.
    from suto_server.store.open import postgres_location

    return postgres_location(value)


_store.coerceDoc = (
    "A libpq URI naming no password: libpq reads it from PGPASSFILE "
    "(~/.pgpass) or PGPASSWORD."
)


class Options(ConfigurableOptions):
    synopsis = "[options]"
    longdesc = (
        "Run the SUTO authentication server.  With no options it keeps its "
        "state in ./suto-data and listens with TLS on port 2021.  A server "
        "that cannot serve (data folder in use, bad endpoint, port taken) "
        "exits 1 at start with one line naming the option."
    )
    optParameters = [
        ["data", "d", DEFAULT_DATA, "Data folder (store, certificate, admin socket)."],
        ["store", None, None,
         "PostgreSQL database of the store, postgresql://USER@HOST/DB "
         "(default: the SQLite file suto.db in the data folder)", _store],
        ["listen", "l", None,
         "Endpoint of the TLS listener (default: ssl:2021): ssl:, or tcp:, "
         "tcp6:, unix: for plaintext.  An ssl: listener without privateKey= "
         "serves the data folder's generated certificate."],
        ["legacy-listen", None, None,
         "Endpoint of a plaintext SUTO 1.3.2 listener for legacy peers, "
         "e.g. tcp:2021 (off unless given)."],
        ["admin", None, None,
         "UNIX socket of the admin API, which has no login of its own: "
         "unix:PATH:mode=600 (or 660), no other endpoint type; over the "
         "network, certificates with the admin role reach the same API on "
         "--api-listen (default: admin.sock in the data folder)."],
        ["hostname", None, None, "Name sent in hellos (default: this host's name)."],
        ["hello-port", None, 2020, "UDP port devices listen for hellos on.", int],
        ["hello-interface", None, "",
         "Local IPv4 address hellos are sent from (default: any)."],
        ["auth-timeout", None, 5.0,
         "Seconds a device has to connect back after a hello.", _positive],
        ["exchange-timeout", None, 10.0,
         "Seconds a connected device may stay silent.", _positive],
        ["check-timeout", None, DEFAULT_CHECK_TIMEOUT,
         "Seconds the old location of a profile seen elsewhere has to "
         "answer its check packet.", _positive],
        ["shadow", None, None,
         "Also accept users from this shadow(5)-format file."],
        ["hash-threads", None, None,
         "Threads computing password hashes (default: one per core).", int],
        ["cert-warn-days", None, DEFAULT_WARN_DAYS,
         "Warn daily once a TLS certificate has fewer days than this left.",
         int],
        ["locations", None, None,
         "Locations file naming enrollment places ('name: CIDR, CIDR')."],
        ["enroll-attempts", None, 5,
         "Failed attempts after which an enrollment window closes.", int],
        ["rotation-interval", None, timing.DEFAULT_ROTATION_INTERVAL,
         "Seconds between an agent's key rotations.", _positive],
        ["rotation-grace", None, timing.DEFAULT_ROTATION_GRACE,
         "Seconds past a due rotation before its connection counts as dead.",
         _positive],
        ["offline-step", None, timing.DEFAULT_OFFLINE_STEP,
         "Seconds in one time step of the offline key.", int],
        ["offline-window", None, timing.DEFAULT_OFFLINE_WINDOW,
         "Time steps either side of the server's clock a reconnection may use.",
         int],
        ["fingerprint-alert", None, 3,
         "Rotations failing in a row on the client before fingerprint_mismatch.",
         int],
        ["alert-file", None, None,
         "Also append alerts to this file, one JSON object a line."],
        ["alert-webhook", None, None,
         "Also POST alerts as JSON to this http:// or https:// URL.",
         check_url],
        ["alert-syslog", None, None,
         "Also send alerts to syslog at unix:PATH (e.g. unix:/dev/log) or "
         "udp:HOST:PORT.",
         parse_address],
        ["metrics-listen", None, None,
         "Endpoint serving Prometheus metrics at /metrics (tcp:, tcp6:, "
         "unix: or ssl:), e.g. tcp:9464:interface=127.0.0.1 (off unless "
         "given)."],
        ["console-listen", None, None,
         "Endpoint serving the web console for IT (tcp:, tcp6: or ssl:); a "
         "bare port listens on 127.0.0.1, where 'suto-admin console-link' "
         "signs in (off unless given).  ssl:...:caCerts=FILE also signs in "
         "client certificates from that CA holding the admin role; without "
         "privateKey= it serves the device listener's certificate."],
        ["max-per-source", None, 32,
         "Connections one source address (an IPv6 /64) may hold at once; "
         "0 for no limit.", int],
        ["max-startups", None, MaxStartups(),
         "Connections not yet past their first exchange: past START refuse "
         "RATE percent of new ones, rising to all at FULL.", _max_startups],
        ["login-grace", None, 30.0,
         "Seconds a connection has to finish its first exchange, however "
         "busy it keeps.", _seconds_or_off],
        ["penalty-authfail", None, 3.0,
         "Penalty seconds a source earns per failed authentication or "
         "enrollment.", _seconds_or_off],
        ["penalty-grace", None, 10.0,
         "Penalty seconds per connection dropped for the login grace time.",
         _seconds_or_off],
        ["penalty-min", None, 15.0,
         "Penalty at which a source is refused until it decays.", _positive],
        ["penalty-max", None, 600.0,
         "Most seconds a source is refused for.", _positive],
        ["penalty-sources", None, 65536,
         "Most sources with a penalty remembered.", int],
        ["limit-log-interval", None, 60.0,
         "Least seconds between two log lines about refusing one source.",
         _positive],
        ["hash-pending", None, DEFAULT_MAX_PENDING,
         "Hash computations waiting or running at most; past it a login is "
         "answered busy.", int],
        # The verification API (README, "The verification API").
        ["api-listen", None, None,
         "Endpoint of the verification API, ssl:PORT:caCerts=FILE:"
         "requireClientCert=yes (off unless given); without privateKey= it "
         "serves the device listener's certificate."],
        # The roles client certificates hold, on every listener taking
        # them (README, "Client certificate roles").
        ["verify-ou", None, "",
         "OU values (comma-separated) whose client certificates hold the "
         "verify role (POST /v1/verify on --api-listen)."],
        ["admin-ou", None, "",
         "OU values (comma-separated) whose client certificates hold the "
         "admin role: the admin API on --api-listen, and sign-in to the web "
         "console on an ssl: --console-listen with caCerts."],
        ["verify-subjects", None, "",
         "Subjects (RFC 4514, ';'-separated) holding the verify role."],
        ["admin-subjects", None, "",
         "Subjects (RFC 4514, ';'-separated) holding the admin role (the "
         "admin API and the web console)."],
        ["api-in-flight", None, VerifyApiSettings.in_flight,
         "Verifications one calling host may have in flight at once.", int],
        ["api-per-minute", None, VerifyApiSettings.per_minute,
         "Verifications one calling host may ask for per minute.", int],
        ["api-max-deadline", None, VerifyApiSettings.max_deadline,
         "Most seconds a verification may take, whatever its caller asks.",
         seconds(VerifyApiSettings.min_deadline, 300)],
        # The bounds on the clients of the HTTP listeners (README, "The
        # verification API", "The web console"; the deadline also holds
        # on --metrics-listen and the admin socket).
        ["http-request-deadline", None, HttpLimits.request_deadline,
         "Seconds a whole request (head and body) may take to arrive on "
         "--api-listen, --console-listen, --metrics-listen and --admin.",
         _positive],
        ["api-max-connections", None, HttpLimits.api_connections,
         "Connections the verification API holds at most, from all "
         "sources.", int],
        ["console-max-connections", None, HttpLimits.console_connections,
         "Connections the web console holds at most, from all sources.", int],
        ["verify-targets", None, None,
         "File of the devices of accounts without a profile, one "
         "'user: CIDR, CIDR' line each (the locations file's format)."],
    ]

    def postOptions(self) -> None:
        if not 0 < self["hello-port"] < 65536:
            raise usage.UsageError("--hello-port must be 1-65535")
        if self["hash-threads"] is not None and self["hash-threads"] < 1:
            raise usage.UsageError("--hash-threads must be at least 1")
        if not 1 <= self["cert-warn-days"] <= MAX_WARN_DAYS:
            raise usage.UsageError(f"--cert-warn-days must be 1-{MAX_WARN_DAYS}")
        if self["enroll-attempts"] < 1:
            raise usage.UsageError("--enroll-attempts must be at least 1")
        if self["hostname"] and not wire.is_valid_host(self["hostname"]):
            raise usage.UsageError(
                "--hostname must be 1 to 253 of A-Z a-z 0-9 . - (it travels in "
                "the SUTO hello)"
            )
        if self["hello-interface"] and not is_ip_address(
            self["hello-interface"], 4
        ):
            raise usage.UsageError(
                "--hello-interface must be an IPv4 address of this host (or "
                "empty for any)"
            )
        if self["offline-step"] < 1:
            raise usage.UsageError("--offline-step must be at least 1")
        if not 0 <= self["offline-window"] <= 10:
            raise usage.UsageError("--offline-window must be 0-10")
        # A profile that reconnected spends its step; its next offline
        # spell must fall in a later step, or its next reconnection could
        # only fail, and fail into the blacklist.  The agent marks itself
        # offline at its longest wait, before the server's grace, so the
        # step must fit in that wait, not in the server's allowance.
        if self["offline-step"] > timing.longest_wait(self["rotation-interval"]):
            raise usage.UsageError(
                "--offline-step must not be longer than the agent's offline "
                "deadline, its longest wait between rotations "
                f"(--rotation-interval x {1 + timing.JITTER:g} = "
                f"{timing.longest_wait(self['rotation-interval']):g} s)"
            )
        if self["fingerprint-alert"] < 1:
            raise usage.UsageError("--fingerprint-alert must be at least 1")
        if self["max-per-source"] < 0:
            raise usage.UsageError("--max-per-source must be 0 or more")
        if self["penalty-sources"] < 1:
            raise usage.UsageError("--penalty-sources must be at least 1")
        if self["penalty-max"] < self["penalty-min"]:
            raise usage.UsageError("--penalty-max must be at least --penalty-min")
        if self["hash-pending"] < 1:
            raise usage.UsageError("--hash-pending must be at least 1")
        self.roles = self._roles()
        self.verify_api = self._verify_api()
        for name in ("api-max-connections", "console-max-connections"):
            if self[name] < 1:
                raise usage.UsageError(f"--{name} must be at least 1")
        self.http = HttpLimits(
            request_deadline=self["http-request-deadline"],
            api_connections=self["api-max-connections"],
            console_connections=self["console-max-connections"],
        )
        self.timing = Timing(
            auth_timeout=self["auth-timeout"],
            exchange_timeout=self["exchange-timeout"],
            rotation_interval=self["rotation-interval"],
            rotation_grace=self["rotation-grace"],
            offline_step=self["offline-step"],
            offline_window=self["offline-window"],
        )
        self.capacity = Capacity(
            max_per_source=self["max-per-source"],
            startups=self["max-startups"],
            penalties=Penalties(
                authfail=self["penalty-authfail"],
                grace=self["penalty-grace"],
                min=self["penalty-min"],
                max=self["penalty-max"],
                max_sources=self["penalty-sources"],
            ),
            login_grace=self["login-grace"],
            limit_log_interval=self["limit-log-interval"],
            hash_threads=self["hash-threads"],
            hash_pending=self["hash-pending"],
        )

    def _roles(self) -> RolePolicy:
        """
        The roles client certificates hold, on the verification API and
        the web console alike.
        """
        try:
            return RolePolicy.from_options(
                verify_units=self["verify-ou"],
                admin_units=self["admin-ou"],
                verify_subjects=self["verify-subjects"],
                admin_subjects=self["admin-subjects"],
            )
        except PolicyError as error:
            raise usage.UsageError(f"the client certificate roles: {error}") from None

    def _verify_api(self) -> VerifyApiSettings:
        """
        The verification API's settings, but for the verify-targets file,
        which the start loads (L{suto_server.preflight}).
        """
        for name in ("api-in-flight", "api-per-minute"):
            if self[name] < 1:
                raise usage.UsageError(f"--{name} must be at least 1")
        return VerifyApiSettings(
            in_flight=self["api-in-flight"],
            per_minute=self["api-per-minute"],
            max_deadline=self["api-max-deadline"],
        )

    def start_problems(self) -> list[OptionProblem]:
        """
        What would stop the server at start besides these options' own
        rules: endpoints that do not parse, files that do not load (see
        L{suto_server.preflight}).
        """
        from suto_server.preflight import problems_before_start

        return problems_before_start(self)


def makeService(options: Options):
    """
    Build the server the options describe (see L{suto_server.startup}),
    which is imported only here, so that checking options stays cheap.
    """
    from suto_server.startup import start_server

    return start_server(options)
