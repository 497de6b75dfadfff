"""
C{twistd suto}: command-line options and the service they describe.

With no options at all the server runs on its embedded defaults: a data
folder C{suto-data} in the working directory holding the SQLite store, a
self-signed ECDSA certificate made on first start and the admin socket;
a TLS listener on port 2021; hellos to UDP port 2020.  Every option may
also be set in a TOML file named by C{--config} (see L{suto_server.core.config}).
"""

from __future__ import annotations

import datetime
import os
import re
import socket

from twisted.internet.endpoints import quoteStringArgument, serverFromString
from twisted.logger import Logger
from twisted.python import usage
from twisted.web.client import Agent

from suto_server.audit.sinks.jsonfile import JsonFileSink
from suto_server.audit.sinks.syslog import SyslogSink, parse_address
from suto_server.audit.sinks.webhook import WebhookSink, check_url
from suto_server.core import timing, wire
from suto_server.core.config import ConfigurableOptions
from suto_server.cred.hashpool import DEFAULT_MAX_PENDING
from suto_server.cred.shadow import ShadowFile, ShadowFileError
from suto_server.locations import Locations
from suto_server.masterkey import MasterKey, MasterKeyError
from suto_server.net import certificate
from suto_server.net.checks import DEFAULT_CHECK_TIMEOUT
from suto_server.net.expiry import DEFAULT_WARN_DAYS, MAX_WARN_DAYS
from suto_server.net.tls import STOCK_PREFIX, TLSConfigurationError, server_endpoint
from suto_server.rules.limits import Limits, MaxStartups, Penalties
from suto_server.service import ReloadOnHangup, SutoServer
from suto_server.store.dbthread import DatabaseThread
from suto_server.store.errors import StoreError
from suto_server.store.sqlite import SQLiteStore

DEFAULT_DATA = "suto-data"
DATABASE_FILE = "suto.db"
ADMIN_SOCKET = "admin.sock"
MASTER_KEY_FILE = "master.key"
DEFAULT_PORT = 2021

log = Logger()


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


class Options(ConfigurableOptions):
    synopsis = "[options]"
    longdesc = (
        "Run the SUTO authentication server.  With no options it keeps its "
        "state in ./suto-data and listens with TLS on port 2021."
    )
    optParameters = [
        ["data", "d", DEFAULT_DATA, "Data folder (store, certificate, admin socket)."],
        ["listen", "l", None,
         "Endpoint of the TLS listener (default: ssl:2021).  An ssl: "
         "listener without privateKey= serves the data folder's "
         "generated certificate."],
        ["legacy-listen", None, None,
         "Endpoint of a plaintext SUTO 1.3.2 listener for legacy peers, "
         "e.g. tcp:2021 (off unless given)."],
        ["admin", None, None,
         "Endpoint of the admin API (default: a UNIX socket in the data folder)."],
        ["hostname", None, None, "Name sent in hellos (default: this host's name)."],
        ["hello-port", None, 2020, "UDP port devices listen for hellos on.", int],
        ["hello-interface", None, "", "Local IPv4 address hellos are sent from."],
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
         "Endpoint serving Prometheus metrics at /metrics, e.g. "
         "tcp:9464:interface=127.0.0.1 (off unless given)."],
        ["max-per-source", None, 32,
         "Connections one source address (an IPv6 /64) may hold at once; "
         "0 for no limit.", int],
        ["max-startups", None, MaxStartups(),
         "Connections not yet past their first exchange: past START refuse "
         "RATE percent of new ones, rising to all at FULL.", _max_startups],
        ["login-grace", None, 30.0,
         "Seconds a connection has to finish its first exchange, however "
         "busy it keeps.", _seconds_or_off],
        ["penalty-authfail", None, 5.0,
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


def prepare_data_folder(path: str) -> str:
    """
    Create the data folder (mode 0700: it holds keys and the admin socket)
    and return its absolute path.
    """
    path = os.path.abspath(path)
    os.makedirs(path, mode=0o700, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def tls_listen(data: str, hostname: str, description: str | None) -> str:
    """
    The TLS listener's description: the operator's, or port 2021.  An
    C{ssl:} listener given no private key serves the data folder's
    generated certificate (made now if missing), so binding one interface
    or IPv6 (C{ssl:2021:interface=\\:\\:1}) needs no certificate files.
    """
    if description is None:
        description = f"{STOCK_PREFIX}{DEFAULT_PORT}"
    if not description.startswith(STOCK_PREFIX) or _names_private_key(description):
        return description
    key, cert, created = certificate.ensure_self_signed(
        data, hostname, datetime.datetime.now(datetime.timezone.utc)
    )
    with open(cert, "rb") as handle:
        info = certificate.describe(handle.read())
    log.info(
        "{what} TLS certificate for {subject}, SHA-256 fingerprint "
        "{fingerprint}, valid until {not_after}",
        what="generated" if created else "using",
        subject=info.subject,
        fingerprint=info.fingerprint,
        not_after=info.not_after.isoformat(),
    )
    return (
        f"{description}:privateKey={quoteStringArgument(key)}"
        f":certKey={quoteStringArgument(cert)}"
    )


def _names_private_key(description: str) -> bool:
    """
    Does an C{ssl:} endpoint string give a private key, by name or as its
    second argument without a name (C{ssl:2021:server.pem})?  Arguments
    are separated by colons not escaped with a backslash.
    """
    arguments = re.split(r"(?<!\\):", description)[1:]
    unnamed = [argument for argument in arguments if "=" not in argument]
    return len(unnamed) > 1 or any(
        argument.startswith("privateKey=") for argument in arguments
    )


def admin_endpoint_description(data: str) -> str:
    path = quoteStringArgument(os.path.join(data, ADMIN_SOCKET))
    return f"unix:{path}:mode=600:lockfile=1"


def makeService(options: Options) -> SutoServer:
    """
    Build the server; a configuration problem (unreadable certificate,
    corrupt store, bad endpoint, bad shadow file) ends twistd with one
    clear line instead of a traceback.
    """
    from twisted.internet import reactor

    try:
        return _build(reactor, options)
    except (
        StoreError,
        ShadowFileError,
        TLSConfigurationError,
        MasterKeyError,
        OSError,
        ValueError,
    ) as error:
        raise SystemExit(f"suto: cannot start: {error}") from None


def alert_sinks(reactor, options: Options) -> list:
    """
    The alert sinks the options ask for, besides the structured log, which
    is always on.
    """
    sinks = []
    if options["alert-file"]:
        alert_file = JsonFileSink(os.path.abspath(options["alert-file"]))
        alert_file.check()
        sinks.append(alert_file)
    if options["alert-webhook"]:
        sinks.append(WebhookSink(options["alert-webhook"], Agent(reactor), reactor))
    if options["alert-syslog"]:
        sinks.append(SyslogSink(reactor, options["alert-syslog"]))
    return sinks


def limits(options: Options) -> Limits:
    """
    The per-source and global connection limits the options describe.
    """
    return Limits(
        max_per_source=options["max-per-source"],
        startups=options["max-startups"],
        penalties=Penalties(
            authfail=options["penalty-authfail"],
            grace=options["penalty-grace"],
            min=options["penalty-min"],
            max=options["penalty-max"],
            max_sources=options["penalty-sources"],
        ),
    )


def _build(reactor, options: Options) -> SutoServer:
    data = prepare_data_folder(options["data"])
    hostname = options["hostname"] or socket.gethostname()
    listen = tls_listen(data, hostname, options["listen"])
    admin = options["admin"] or admin_endpoint_description(data)
    extra_sources = [ShadowFile(options["shadow"])] if options["shadow"] else []
    locations = (
        Locations.from_file(options["locations"]) if options["locations"] else Locations()
    )
    sinks = alert_sinks(reactor, options)
    master_key = MasterKey.load_or_create(os.path.join(data, MASTER_KEY_FILE))
    store = SQLiteStore.open(os.path.join(data, DATABASE_FILE))
    server = SutoServer(
        reactor,
        store=store,
        extra_sources=extra_sources,
        listen=[server_endpoint(reactor, listen)],
        legacy_listen=(
            server_endpoint(reactor, options["legacy-listen"])
            if options["legacy-listen"]
            else None
        ),
        admin=serverFromString(reactor, admin),
        hostname=hostname,
        hello_port=options["hello-port"],
        hello_interface=options["hello-interface"],
        auth_timeout=options["auth-timeout"],
        exchange_timeout=options["exchange-timeout"],
        check_timeout=options["check-timeout"],
        hash_pool_size=options["hash-threads"],
        cert_warn_days=options["cert-warn-days"],
        master_key=master_key,
        locations=locations,
        max_enroll_attempts=options["enroll-attempts"],
        rotation_interval=options["rotation-interval"],
        rotation_grace=options["rotation-grace"],
        fingerprint_alert=options["fingerprint-alert"],
        offline_step=options["offline-step"],
        offline_window=options["offline-window"],
        sinks=sinks,
        metrics_listen=(
            serverFromString(reactor, options["metrics-listen"])
            if options["metrics-listen"]
            else None
        ),
        limits=limits(options),
        login_grace=options["login-grace"],
        limit_log_interval=options["limit-log-interval"],
        hash_pending=options["hash-pending"],
        database=DatabaseThread(reactor, store.sibling),
    )
    ReloadOnHangup(reactor, server.reload_certificates).setServiceParent(server)
    return server
