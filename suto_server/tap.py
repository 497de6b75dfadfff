# -*- test-case-name: tests.test_tap -*-
"""
C{twistd suto}: command-line options and the service they describe.

With no options at all the server runs on its embedded defaults: a data
folder C{suto-data} in the working directory holding the SQLite store, a
self-signed ECDSA certificate made on first start and the admin socket;
a TLS listener on port 2021; hellos to UDP port 2020.  Every option may
also be set in a TOML file named by C{--config} (see L{suto_server.core.config}).
"""

from __future__ import annotations

import ipaddress
import os
import socket

from twisted.internet.endpoints import quoteStringArgument, serverFromString
from twisted.python import usage

from suto_server.audit.sinks import alert_sinks
from suto_server.audit.sinks.syslog import parse_address
from suto_server.audit.sinks.webhook import check_url
from suto_server.core import timing, wire
from suto_server.core.config import ConfigurableOptions
from suto_server.cred.hashpool import DEFAULT_MAX_PENDING
from suto_server.cred.shadow import ShadowFile, ShadowFileError
from suto_server.datafolder import (
    ADMIN_SOCKET,
    DATABASE_FILE,
    DEFAULT_DATA,
    MASTER_KEY_FILE,
    prepare_data_folder,
)
from suto_server.datalock import DataFolderLock, DataFolderLocked
from suto_server.locations import Locations
from suto_server.masterkey import MasterKey, MasterKeyError
from suto_server.net.checks import DEFAULT_CHECK_TIMEOUT
from suto_server.net.expiry import DEFAULT_WARN_DAYS, MAX_WARN_DAYS
from suto_server.net.listening import (
    DEFAULT_LISTEN,
    DEVICE_TYPES,
    METRICS_TYPES,
    admin_endpoint,
    option_endpoint,
    tls_listen,
)
from suto_server.net.served import ReloadOnHangup
from suto_server.net.tls import TLSConfigurationError, server_endpoint
from suto_server.rules.limits import MaxStartups, Penalties
from suto_server.service import SutoServer
from suto_server.settings import (
    Alerting,
    Capacity,
    EnrollmentSettings,
    Listeners,
    Network,
    Timing,
)
from suto_server.store.dbthread import DatabaseThread
from suto_server.store.errors import StoreError
from suto_server.store.open import open_store

#: Longest duration any seconds option takes: a week.  No limit or timer
#: needs more, and an unbounded one ("inf", "1e300") would push the offline
#: sweep's cut-off past what the store accepts as a time.
MAX_SECONDS = 7 * 24 * 3600


def _at_most_a_week(number: float) -> float:
    if number > MAX_SECONDS:
        raise ValueError(f"must be at most {MAX_SECONDS} (a week)")
    return number


def _positive(value: str) -> float:
    number = float(value)
    if not number > 0:
        raise ValueError("must be positive")
    return _at_most_a_week(number)


_positive.coerceDoc = "Seconds, greater than zero, at most a week."


def _seconds_or_off(value: str) -> float:
    number = float(value)
    if not number >= 0:
        raise ValueError("must be zero or more")
    return _at_most_a_week(number)


_seconds_or_off.coerceDoc = "Seconds, at most a week; 0 turns it off."


def _max_startups(value: str) -> MaxStartups:
    return MaxStartups.parse(value)


_max_startups.coerceDoc = "START:RATE:FULL, as OpenSSH's MaxStartups."


def _is_ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


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
        ["listen", "l", None,
         "Endpoint of the TLS listener (default: ssl:2021): ssl:, or tcp:, "
         "tcp6:, unix: for plaintext.  An ssl: listener without privateKey= "
         "serves the data folder's generated certificate."],
        ["legacy-listen", None, None,
         "Endpoint of a plaintext SUTO 1.3.2 listener for legacy peers, "
         "e.g. tcp:2021 (off unless given)."],
        ["admin", None, None,
         "UNIX socket of the admin API, which has no login of its own: "
         "unix:PATH:mode=600 (or 660); no other endpoint is served "
         "(default: admin.sock in the data folder)."],
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
        if self["hello-interface"] and not _is_ipv4(self["hello-interface"]):
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
        # only fail, and fail into the blacklist.
        if self["offline-step"] > timing.silence_allowed(
            self["rotation-interval"], self["rotation-grace"]
        ):
            raise usage.UsageError(
                "--offline-step must not be longer than a profile's allowed "
                f"silence (--rotation-interval x {1 + timing.JITTER:g} + "
                "--rotation-grace)"
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




def makeService(options: Options) -> SutoServer:
    """
    Build the server the options describe, on a data folder no other
    server uses: its lock is taken before anything in it is opened, and
    held while the server runs.  A configuration problem (folder in use,
    unreadable certificate, corrupt store, bad endpoint, bad shadow file)
    ends twistd with one clear line instead of a traceback.
    """
    from twisted.internet import reactor

    try:
        data = prepare_data_folder(options["data"])
        lock = DataFolderLock.acquire(data)
    except (DataFolderLocked, OSError) as error:
        raise SystemExit(f"suto: cannot start: {error}") from None
    try:
        server = _assemble(reactor, options, data)
    except BaseException:
        lock.release()
        raise
    lock.setServiceParent(server)
    ReloadOnHangup(reactor, server.reload_certificates).setServiceParent(server)
    return server


def _assemble(reactor, options: Options, data: str) -> SutoServer:
    """
    The server the options describe, on the locked data folder C{data}.

    @raise SystemExit: a configuration problem, in one line.
    """
    try:
        hostname = options["hostname"] or socket.gethostname()
        listeners = _listeners(reactor, options, data, hostname)
        extra_sources = [ShadowFile(options["shadow"])] if options["shadow"] else []
        network = Network(
            hostname=hostname,
            hello_port=options["hello-port"],
            hello_interface=options["hello-interface"],
            check_timeout=options["check-timeout"],
            locations=(
                Locations.from_file(options["locations"])
                if options["locations"]
                else Locations()
            ),
        )
        alerting = Alerting(
            sinks=tuple(
                alert_sinks(
                    reactor,
                    file=options["alert-file"],
                    webhook=options["alert-webhook"],
                    syslog=options["alert-syslog"],
                )
            ),
            fingerprint_alert=options["fingerprint-alert"],
            cert_warn_days=options["cert-warn-days"],
        )
        master_key = MasterKey.load_or_create(os.path.join(data, MASTER_KEY_FILE))
        store = open_store(os.path.join(data, DATABASE_FILE))
        server = SutoServer(
            reactor,
            store=store,
            enrollment=EnrollmentSettings(master_key, options["enroll-attempts"]),
            listeners=listeners,
            network=network,
            timing=options.timing,
            capacity=options.capacity,
            alerting=alerting,
            extra_sources=extra_sources,
            database=DatabaseThread(reactor, store),
        )
    except (
        StoreError,
        ShadowFileError,
        TLSConfigurationError,
        MasterKeyError,
        OSError,
        ValueError,
    ) as error:
        raise SystemExit(f"suto: cannot start: {error}") from None
    return server


def _listeners(reactor, options: Options, data: str, hostname: str) -> Listeners:
    """
    The endpoints the options describe, each refused with one line naming
    its option when it is not one that option takes (see
    L{suto_server.net.listening}).
    """
    listen = options["listen"] or DEFAULT_LISTEN
    if options["admin"] is None:
        admin_option = "the admin socket in --data"
        admin = (
            f"unix:{quoteStringArgument(os.path.join(data, ADMIN_SOCKET))}"
            ":mode=600:lockfile=1"
        )
    else:
        admin_option, admin = "--admin", options["admin"]

    def optional(name: str, types, parse):
        if not options[name]:
            return None
        return option_endpoint(reactor, f"--{name}", options[name], types, parse)

    return Listeners(
        devices=(
            option_endpoint(
                reactor, "--listen", listen, DEVICE_TYPES, server_endpoint,
                full=tls_listen(data, hostname, listen),
            ),
        ),
        legacy=optional("legacy-listen", DEVICE_TYPES, server_endpoint),
        admin=admin_endpoint(reactor, admin_option, admin),
        metrics=optional("metrics-listen", METRICS_TYPES, serverFromString),
    )
