# -*- test-case-name: tests.test_preflight,tests.test_tap,tests.end_to_end.test_startup -*-
"""
The server C{twistd suto} runs, built from its options.

Only L{suto_server.tap.makeService} imports this module, and with it the
whole daemon, so that parsing and checking options (C{config check})
loads a small part of it.

A server that cannot serve must not look healthy.  Its data folder is
locked before anything in it is opened; then everything its options
name is checked at once (L{suto_server.preflight}), so that a bad
endpoint or file stops it with one line naming the option; then it is
assembled.
"""

from __future__ import annotations

import dataclasses
import os
import socket

from suto_server.audit.sinks import alert_sinks
from suto_server.datafolder import DATABASE_FILE, MASTER_KEY_FILE, prepare_data_folder
from suto_server.datalock import DataFolderLock, DataFolderLocked
from suto_server.masterkey import MasterKey, MasterKeyError
from suto_server.net.descriptions import DEFAULT_LISTEN, tls_listen
from suto_server.net.served import ReloadOnHangup
from suto_server.net.tls import TLSConfigurationError
from suto_server.preflight import check_start
from suto_server.restoration import finish_restore
from suto_server.service import SutoServer
from suto_server.settings import Alerting, EnrollmentSettings, Network
from suto_server.store.dbthread import DatabaseThread
from suto_server.store.errors import StoreError
from suto_server.store.open import open_store


def start_server(options) -> SutoServer:
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
        # A restore cut short by a crash is settled before anything in the
        # folder is opened: carried through if it was committed, else
        # undone, so the server never starts on half of each set.
        finish_restore(data)
    except OSError as error:
        lock.release()
        raise SystemExit(f"suto: cannot start: {error}") from None
    try:
        server = _assemble(reactor, options, data)
    except BaseException:
        lock.release()
        raise
    lock.setServiceParent(server)
    ReloadOnHangup(reactor, server.reload_certificates).setServiceParent(server)
    return server


def _assemble(reactor, options, data: str) -> SutoServer:
    """
    The server the options describe, on the locked data folder C{data}.

    @raise SystemExit: a configuration problem, in one line.
    """
    try:
        hostname = options["hostname"] or socket.gethostname()
        listen = tls_listen(data, hostname, options["listen"] or DEFAULT_LISTEN)
        checked = check_start(reactor, options, data, listen)
        if checked.problems:
            raise SystemExit(f"suto: cannot start: {checked.problems[0].message}")
        network = Network(
            hostname=hostname,
            hello_port=options["hello-port"],
            hello_interface=options["hello-interface"],
            check_timeout=options["check-timeout"],
            locations=checked.locations,
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
        store = open_store(options["store"] or os.path.join(data, DATABASE_FILE))
        server = SutoServer(
            reactor,
            store=store,
            enrollment=EnrollmentSettings(master_key, options["enroll-attempts"]),
            listeners=checked.listeners,
            network=network,
            timing=options.timing,
            capacity=options.capacity,
            alerting=alerting,
            verify_api=dataclasses.replace(
                options.verify_api, targets=checked.verify_targets
            ),
            roles=options.roles,
            http=options.http,
            extra_sources=checked.extra_sources,
            database=DatabaseThread(reactor, store),
        )
    except (
        StoreError,
        TLSConfigurationError,
        MasterKeyError,
        OSError,
        ValueError,
    ) as error:
        raise SystemExit(f"suto: cannot start: {error}") from None
    return server


