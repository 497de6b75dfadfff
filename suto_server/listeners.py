# -*- test-case-name: tests.test_service,tests.admin.test_console_link,tests.test_metrics_store_failures,tests.api.test_guard -*-
"""
The running server's listeners, each built from its settings: the device
listeners (their phases chosen by L{suto_server.phases.listeners}), the
web console, the admin API on its UNIX socket, the verification API and
the metrics.

L{ServerListeners} is a base of L{suto_server.service.SutoServer}, which
assembles the parts each listener serves (the gate, the rendezvous, the
rules, the audit log, the reports of L{suto_server.reports}) before
calling L{ServerListeners._listen_devices} and
L{ServerListeners._listen_http}.  Every listener is a
L{ListeningService} child of the server, opened before anything else is
served (L{suto_server.service.SutoServer.privilegedStartService}) and
listed in C{listeners} for the status report.
"""

from __future__ import annotations

from functools import partial

from suto_server.admin.api import admin_listener, admin_site
from suto_server.admin.httpbounds import ConnectionBounds
from suto_server.admin.httpjson import count_store_failures
from suto_server.api.callers import CallerLimits
from suto_server.api.guard import ApiRoot
from suto_server.api.site import PER_SOURCE as API_PER_SOURCE
from suto_server.api.site import ApiSite
from suto_server.api.verifier import Verifier
from suto_server.api.verify_resource import VerifyResource
from suto_server.console.signin import CertificateSignIn
from suto_server.console.site import PER_SOURCE as CONSOLE_PER_SOURCE
from suto_server.console.site import Console
from suto_server.core import schemes
from suto_server.cred.roles import ADMIN, RolePolicy
from suto_server.metrics import metrics_site
from suto_server.net.listening import ListeningService
from suto_server.phases.classic import ClassicRules, salt_lookup
from suto_server.phases.listeners import device_listeners
from suto_server.settings import Listeners, Timing, VerifyApiSettings
from suto_server.store.records import MAX_NAME


class ServerListeners:
    """
    The listeners of L{suto_server.service.SutoServer}.
    """

    def _listen_devices(
        self, listeners: Listeners, timing: Timing, portal, source, keys
    ) -> None:
        """
        Listen for the devices: on each of C{listeners}' device endpoints,
        the phases it offers, with the classic challenge checked through
        C{portal} against the hashes of C{source}, and the key phases of
        C{keys} (L{suto_server.keyrules}) when the server enrolls.
        """
        reactor = self._reactor
        for name, endpoint, factory in device_listeners(
            listeners.devices,
            listeners.legacy,
            clock=reactor,
            classic=ClassicRules(
                self.rendezvous, portal, salt_lookup(source), schemes.new_rsalt
            ),
            secure={} if keys is None else keys.phases(timing),
            exchange_timeout=timing.exchange_timeout,
            gate=self.gate,
            store_failed=self.metrics.store_failed,
        ):
            self._listen(name, endpoint, factory)

    def _listen_http(
        self, listeners: Listeners, roles: RolePolicy, verify_api: VerifyApiSettings
    ) -> None:
        """
        Listen for people and their programs, each where C{listeners} names
        an endpoint: the web console, the admin API, the verification API
        and the metrics.  The admin API's site is built when either of
        the two APIs listens: the verification API serves its resources
        to the C{admin} role.
        """
        reactor = self._reactor
        http = self._http
        self.console = None
        if listeners.console is not None:
            self.console = self._console(roles)
            if self.rotation is not None:
                self.rotation.observers.append(self.console.rotation_history.record)
            self._console_listener = self._listen(
                "console",
                listeners.console,
                ConnectionBounds(
                    self.console.site(http.request_deadline),
                    reactor,
                    per_source=CONSOLE_PER_SOURCE,
                    total=http.console_connections,
                ),
            )
            self._console_description = getattr(listeners.console, "description", "")
        admin = None
        if listeners.admin is not None or listeners.api is not None:
            admin = self._admin_site()
        if listeners.admin is not None:
            self._listen("admin API", listeners.admin, admin_listener(admin, reactor))
        if listeners.api is not None:
            self._listen("verification API", listeners.api, self._api_site(
                verify_api, roles, admin.resource
            ))
        if listeners.metrics is not None:
            self._listen(
                "metrics",
                listeners.metrics,
                metrics_site(self.metrics, reactor, http.request_deadline),
            )

    def _admin_site(self):
        hello_port = self._network.hello_port
        site = admin_site(
            self.authenticator,
            hello_port,
            self.status,
            self.reload_certificates,
            self.desk,
            self.audit,
            self.reconnection,
            self._reactor,
            clients=self.clients,
            history=self.history,
            console_link=None if self.console is None else self.console_link,
            deadline=self._http.request_deadline,
        )
        count_store_failures(site, partial(self.metrics.store_failed, "admin"))
        return site

    def _api_site(
        self, settings: VerifyApiSettings, roles: RolePolicy, admin
    ) -> ConnectionBounds:
        """
        The verification API's site: verdicts for the C{verify} role, the
        admin API's resources (C{admin}) for the C{admin} role.
        """
        if not roles.grants_any:
            self.log.warn(
                "the verification API grants no role to any certificate, so "
                "it refuses every request: grant one with --verify-ou, "
                "--admin-ou, --verify-subjects or --admin-subjects"
            )
        verifier = Verifier(
            self._reactor,
            self.calls,
            self.live,
            self.authenticator,
            settings.targets,
            self._network.hello_port,
            remote=self.verify_relay,
        )
        verify = VerifyResource(
            verifier,
            CallerLimits(settings.in_flight, settings.per_minute),
            roles,
            self.audit,
            self._reactor,
            (settings.min_deadline, settings.max_deadline),
        )
        root = ApiRoot(roles, verify, admin, self.audit, self._reactor)
        site = ApiSite(root, self._reactor, self._http.request_deadline)
        count_store_failures(site, partial(self.metrics.store_failed, "admin"))
        return ConnectionBounds(
            site,
            self._reactor,
            per_source=API_PER_SOURCE,
            total=self._http.api_connections,
        )

    def _console(self, roles: RolePolicy):
        """
        The web console, on the same reports and operations as the admin
        API.  A client certificate holding the C{admin} role signs an
        operator in, named by its subject as the verification API names
        its callers; with no C{admin} grant configured, only the login
        links do.
        """
        certificates = None
        if roles.admin:
            certificates = CertificateSignIn(
                partial(roles.holder_of, ADMIN, most=MAX_NAME)
            )
        return Console(
            self._reactor,
            status=self.status,
            counts=self.counts,
            rotations=lambda: self.metrics.registry.get_sample_value(
                "suto_rotations_total", {"result": "done"}
            )
            or 0,
            clients=self.clients,
            client=self.client,
            connected=self.live.users,
            history=self.history,
            audit=self.audit,
            desk=self.desk,
            reconnection=self.reconnection,
            certificates=certificates,
        )

    def console_link(self, operator: str) -> dict:
        """
        A one-time login link to the console for C{operator}, for
        C{suto-admin console-link}.

        @raise ValueError: the console does not listen on loopback (yet),
            where alone the links are accepted.
        """
        return self.console.links.link(
            operator,
            self._console_listener.address,
            self._console_description.startswith("ssl:"),
        )

    def _listen(self, name: str, endpoint, factory) -> ListeningService:
        service = ListeningService(name, endpoint, factory)
        service.setServiceParent(self)
        self.listeners.append(service)
        return service
