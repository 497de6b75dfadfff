"""
C{suto-pam} for real: Debian's C{pamtester} drives C{pam_exec.so} with the
helper, on a host that asks a real C{twistd suto} (with C{--api-listen})
about a user whose device runs a real, enrolled C{twistd suto-client}.

Each machine is a network namespace the test makes
(L{tests.support.netns}): the server, the device (and a second device),
and the host, linked to the server by veth pairs.  PAM reads a throwaway
service file: C{pamtester} runs in a private mount namespace where
C{/etc/pam.d}, C{/etc/passwd} and C{/etc/group} are copies made for the
test (the machine's own are never touched), holding the stack the README
gives: members of C{suto-users} are decided by C{suto-pam}, everyone else
(root, the break-glass account) skips it.

The server's API listener checks a host's certificate against the hosts'
CA and its revocation list (C{crlFile}): a host the operator revokes, and
reloads the server for, is refused during the handshake, as is a host whose
certificate another CA issued.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import time

from cryptography import x509
from twisted.trial.unittest import TestCase

from suto_server.net import certificate
from suto_server.store.records import BlacklistEntry
from suto_server.store.sqlite import SQLiteStore
from tests.support.folders import socket_folder
from tests.support.netns import Network, Process, SystemLog, require, with_files
from tests.support.pki import Authority, Files, crl_pem

PASSWORD = "alice's secret"
SERVER_TO_DEVICE, DEVICE = "10.231.1.1", "10.231.1.2"
SERVER_TO_HOST, HOST = "10.231.2.1", "10.231.2.2"
SERVER_TO_OTHER, OTHER_DEVICE = "10.231.3.1", "10.231.3.2"
API_PORT = 8443
#: The host's deadline in these tests, in seconds.
DEADLINE = 4
#: Seconds a daemon may take to start, or a step to finish.
WAIT = 30

_BIN = os.path.dirname(sys.executable)
_TWISTD = [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]


@functools.cache
def _twistd_supports_api() -> bool:
    """
    Whether this tree's server has the verification API.
    """
    help_text = subprocess.run(
        [*_TWISTD, "suto", "--help"], capture_output=True, text=True, timeout=60
    ).stdout
    return "--api-listen" in help_text


class PamEndToEndTests(TestCase):
    timeout = 180

    async def setUp(self):
        require(self, "pamtester")
        if not _twistd_supports_api():
            self.skipTest("verification API not available: twistd suto has no --api-listen")
        self.folder = socket_folder(self, "suto-pam-")
        self.files = Files(os.path.join(self.folder, "pki"))
        self.network = Network(self)
        for machine in ("server", "device", "other", "host"):
            self.network.machine(machine)
        self.network.link("server", SERVER_TO_DEVICE, "device", DEVICE)
        self.network.link("server", SERVER_TO_OTHER, "other", OTHER_DEVICE)
        self.network.link("server", SERVER_TO_HOST, "host", HOST)
        self.hosts = Authority("SUTO hosts CA")
        self.hosts_bundle = self.files.write("hosts-ca.pem", self.hosts.certificate)
        self.revoked = self.files.write_bytes("hosts-crl.pem", crl_pem(self.hosts.revocations()))
        self.data = os.path.join(self.folder, "data")
        await self.start_server()
        await self.admin("user", "add", "alice", "--password-stdin", stdin=PASSWORD + "\n")
        self.device = await self.start_device("device", SERVER_TO_DEVICE, enroll=True)
        self.certificate, self.key = self.host_identity("host-1", "suto-hosts")
        self.pam_files = self.make_pam_files()
        self.syslog = SystemLog.listen(self, os.path.join(self.folder, "log.sock"))

    # The machines.

    async def start_server(self):
        self.server = Process.start(
            self,
            self.network.command(
                "server", *_TWISTD, "--nodaemon", "--pidfile=", "suto",
                "--data", self.data,
                "--api-listen",
                f"ssl:{API_PORT}:caCerts={self.hosts_bundle}:requireClientCert=yes"
                f":crlFile={self.revoked}",
                "--verify-ou", "suto-hosts",
            ),
        )
        await self.server.wait_for(f":{API_PORT}", WAIT)
        with open(os.path.join(self.data, certificate.CERT_FILE), "rb") as handle:
            self.pin = certificate.describe(handle.read()).fingerprint.replace(":", "").lower()

    async def admin(self, *argv, stdin=""):
        output, status = await self.run_to_end(
            [os.path.join(_BIN, "suto-admin"), "--data", self.data, *argv], stdin
        )
        self.assertEqual(status, 0, output)
        return output

    async def run_to_end(self, argv, stdin=""):
        """
        Run C{argv} to its end, with C{stdin} as its input.

        @return: its output and its exit status.
        """
        process = Process.start(self, argv, stdin)
        reason = await process.ended()
        return process.output, reason.exitCode

    async def start_device(self, machine, server_address, enroll):
        """
        Give C{machine} alice's account (and, if C{enroll}, her enrolled
        profile, through a window the operator opens for its address),
        then start its agent and wait until it listens for hellos.
        """
        state = os.path.join(self.folder, f"{machine}.json")
        server = f"{server_address}:2021"
        client = os.path.join(_BIN, "suto-client")
        if enroll:
            address = DEVICE if machine == "device" else OTHER_DEVICE
            out = await self.admin("enroll", "alice", "--location", address)
            password = out.splitlines()[0].rsplit(": ", 1)[1]
            output, status = await self.run_to_end(
                self.network.command(
                    machine, client, "enroll", "--server", server, "--user", "alice",
                    "--pin", self.pin, "--password-stdin", "--state", state,
                ),
                password + "\n",
            )
            self.assertEqual(status, 0, output)
        output, status = await self.run_to_end(
            self.network.command(
                machine, client, "account", "add", "alice", "--server", server,
                "--pin", self.pin, "--password-stdin", "--state", state,
            ),
            PASSWORD + "\n",
        )
        self.assertEqual(status, 0, output)
        agent = Process.start(
            self,
            self.network.command(
                machine, *_TWISTD, "--nodaemon", "--pidfile=", "suto-client", "--state", state
            ),
        )
        await agent.wait_for("starting on 2020", WAIT)
        return agent

    def host_identity(self, name, unit, authority=None):
        """
        The host's certificate and key files, root's alone, issued in the
        organisational unit C{unit} by C{authority} (the hosts' CA).
        """
        key, issued = (authority or self.hosts).issue(name, client=True, units=(unit,))
        paths = (self.files.write(f"{name}.crt", issued), self.files.write(f"{name}.key", key))
        for path in paths:
            os.chmod(path, 0o600)
        return paths

    def make_pam_files(self):
        """
        The throwaway C{/etc/pam.d} (one service, the README's stack), and
        copies of C{/etc/passwd} and C{/etc/group} with alice in
        C{suto-users}.
        """
        pam_d = os.path.join(self.folder, "pam.d")
        os.makedirs(pam_d)
        with open(os.path.join(pam_d, "suto-test"), "w") as handle:
            handle.write(
                "auth [success=ignore default=1] pam_succeed_if.so quiet user ingroup suto-users\n"
                "auth [success=done default=die] pam_exec.so quiet seteuid "
                f"{os.path.join(_BIN, 'suto-pam')} --config {self.folder}/pam.toml\n"
                # Everyone outside suto-users: here the break-glass path.
                "auth required pam_permit.so\n"
            )
        files = {"/etc/pam.d": pam_d}
        for name, extra in (
            ("passwd", "alice:x:4242:4242:Alice:/nonexistent:/usr/sbin/nologin\n"),
            ("group", "alice:x:4242:\nsuto-users:x:4243:alice\n"),
        ):
            copy = os.path.join(self.folder, name)
            with open(f"/etc/{name}") as original, open(copy, "w") as handle:
                handle.write(original.read() + extra)
            files[f"/etc/{name}"] = copy
        return files

    def configure(self, **settings):
        """
        Write the host's C{/etc/suto/pam.toml}; C{settings} replace its
        values.
        """
        values = {
            "server": f"{SERVER_TO_HOST}:{API_PORT}",
            "pin": self.pin,
            "certificate": self.certificate,
            "key": self.key,
            "deadline": DEADLINE,
            # As the README configures it: the group the PAM stack tests.
            "group": "suto-users",
            **settings,
        }
        path = os.path.join(self.folder, "pam.toml")
        with open(path, "w") as handle:
            # These values are written the same in TOML as in JSON.
            handle.writelines(f"{name} = {json.dumps(value)}\n" for name, value in values.items())
        os.chmod(path, 0o600)

    async def login(self, user="alice", **settings):
        """
        C{pamtester suto-test USER authenticate} on the host.

        @return: its exit status (0 accepted), its output, the seconds it
            took, and the lines C{suto-pam} sent to syslog meanwhile.
        """
        self.configure(**settings)
        started = time.monotonic()
        before = len(self.syslog.lines)
        process = Process.start(
            self,
            self.network.command(
                "host",
                *with_files(
                    self.pam_files, "pamtester", "-v", "suto-test", user, "authenticate",
                    dev_log=os.path.join(self.folder, "log.sock"), scratch=self.folder,
                ),
            ),
        )
        reason = await process.ended()
        took = time.monotonic() - started
        lines = [line for line in self.syslog.lines[before:] if " suto-pam[" in line]
        return reason.exitCode, process.output, took, lines

    async def assertDenied(self, verdict, **settings):
        """
        alice's login is denied within the host's deadline and a second,
        and the one line C{suto-pam} logged (facility authpriv, priority
        warning) says why, with C{verdict}.

        @return: the seconds it took, and the reason logged.
        """
        status, output, took, lines = await self.login(**settings)
        self.assertNotEqual(status, 0, output)
        self.assertIn("System error", output)
        self.assertLess(took, DEADLINE + 1.5)
        self.assertEqual(len(lines), 1, lines)
        self.assertTrue(lines[0].startswith("<84>"), lines)
        prefix = f"denied user=alice service=suto-test verdict={verdict}: "
        self.assertIn(prefix, lines[0])
        return took, lines[0].split(prefix, 1)[1]

    # The tests.

    async def test_accepted(self):
        """
        With her enrolled device up, alice is let in.
        """
        status, output, _, lines = await self.login()
        self.assertEqual(status, 0, output)
        self.assertIn("successfully authenticated", output)
        self.assertEqual(len(lines), 1, lines)
        self.assertTrue(lines[0].startswith("<86>"), lines)
        self.assertIn("accepted user=alice service=suto-test verdict=accepted", lines[0])

    async def test_device_stopped(self):
        """
        With her device's agent stopped, alice is denied.
        """
        await self.device.kill()
        await self.assertDenied("device_offline")

    async def test_wrong_device(self):
        """
        Another machine holding alice's password, but not her enrolled
        device, cannot let her in: the server asks only the device it
        knows.
        """
        await self.device.kill()
        await self.start_device("other", SERVER_TO_OTHER, enroll=False)
        await self.assertDenied("device_offline")

    async def test_server_down(self):
        """
        With the server stopped, alice is denied at once.
        """
        await self.server.kill()
        took, reason = await self.assertDenied("unreachable")
        self.assertLess(took, DEADLINE)
        self.assertIn(f"cannot reach the server at {SERVER_TO_HOST}:{API_PORT}", reason)

    async def test_role_missing(self):
        """
        A host whose certificate lacks the verify role (another OU) is
        refused by the server, and alice denied.
        """
        certificate, key = self.host_identity("laptop-1", "staff")
        _, reason = await self.assertDenied("http", certificate=certificate, key=key)
        self.assertIn("HTTP 403", reason)

    async def test_host_from_another_ca(self):
        """
        A host whose certificate the server's CA did not issue is refused
        during the handshake, and alice denied.
        """
        certificate, key = self.host_identity("rogue-1", "suto-hosts", Authority("Rogue CA"))
        await self.assertDenied("tls", certificate=certificate, key=key)

    async def test_host_certificate_revoked(self):
        """
        Once the operator puts the host's certificate on the hosts' CRL and
        has the server reload, the host is refused during the handshake
        and alice denied, while the server logs the refusal; no restart.
        """
        status, output, _, _ = await self.login()
        self.assertEqual(status, 0, output)
        with open(self.certificate, "rb") as handle:
            host = x509.load_pem_x509_certificate(handle.read())
        self.files.write_bytes("hosts-crl.pem", crl_pem(self.hosts.revocations(host)))
        await self.admin("reload")
        await self.assertDenied("tls")
        await self.server.wait_for(
            f"verification API: the TLS handshake of a connection from {HOST} failed",
            WAIT,
        )

    async def test_blacklisted(self):
        """
        With alice's profile blacklisted, she is denied even though her
        device is up.
        """
        await self.server.kill()
        store = SQLiteStore.open(os.path.join(self.data, "suto.db"))
        try:
            store.add_to_blacklist(
                BlacklistEntry("alice", time.time(), "cloned key", DEVICE, "blacklisted")
            )
        finally:
            store.close()
        await self.start_server()
        await self.assertDenied("blacklisted")

    async def test_device_hangs(self):
        """
        A device that stops answering mid-way (its agent frozen) costs
        alice her login within the deadline, not a hung prompt.
        """
        self.device.signal(signal.SIGSTOP)
        await self.assertDenied("device_offline")

    async def test_server_hangs(self):
        """
        A server that accepts the connection and then freezes is outlasted
        by the helper's own deadline.
        """
        self.server.signal(signal.SIGSTOP)
        took, _ = await self.assertDenied("deadline")
        self.assertGreater(took, DEADLINE - 0.5)

    async def test_break_glass(self):
        """
        root is outside suto-users, so the stack never runs suto-pam for
        root: with the server down and pam.toml broken, root still gets
        the stack it had (here pam_permit).
        """
        await self.server.kill()
        status, output, _, lines = await self.login("root", deadline="not a number")
        self.assertEqual(status, 0, output)
        self.assertEqual(lines, [])

    async def check(self, *arguments, **settings):
        """
        C{suto-pam --check} on the host, as an operator runs it.

        @return: its exit status and its lines.
        """
        self.configure(**settings)
        output, status = await self.run_to_end(
            self.network.command(
                "host",
                *with_files(
                    self.pam_files, os.path.join(_BIN, "suto-pam"), "--check",
                    "--config", os.path.join(self.folder, "pam.toml"), *arguments,
                ),
            )
        )
        return status, output.splitlines()

    async def test_check(self):
        """
        C{suto-pam --check --user alice} passes every step against the
        real server: the configuration, the host's certificate, the
        server (which refuses an empty request as malformed), and a real
        verification of alice.
        """
        status, lines = await self.check("--user", "alice")
        self.assertEqual(status, 0, lines)
        self.assertEqual(
            [line.split(":")[0] for line in lines],
            ["ok     configuration", "ok     host certificate", "ok     server", "ok     verify"],
        )

    async def test_check_role_missing(self):
        """
        C{suto-pam --check} says so when the server refuses the host's
        certificate for lack of the verify role, with exit status 3.
        """
        certificate, key = self.host_identity("laptop-1", "staff")
        status, lines = await self.check(certificate=certificate, key=key)
        self.assertEqual(status, 3, lines)
        self.assertTrue(lines[-1].startswith("FAILED server: "), lines)
        self.assertIn("HTTP 403", lines[-1])

    async def test_pam_exec_has_no_ignore(self):
        """
        What the README's stack rests on: C{pam_exec} turns every non-zero
        exit status into C{PAM_SYSTEM_ERR}, even C{PAM_IGNORE}'s own number
        (25), so a helper cannot ask PAM to skip it and the scope must be
        written into the stack (C{pam_succeed_if}).
        """
        script, ran = os.path.join(self.folder, "exit-25"), os.path.join(self.folder, "ran")
        with open(script, "w") as handle:
            handle.write(f"#!/bin/sh\ntouch {ran}\nexit 25\n")
        os.chmod(script, 0o755)
        with open(os.path.join(self.pam_files["/etc/pam.d"], "exit-25"), "w") as handle:
            handle.write(
                f"auth [success=done ignore=ignore default=die] pam_exec.so quiet {script}\n"
                "auth required pam_deny.so\n"
            )
        process = Process.start(
            self, with_files(self.pam_files, "pamtester", "exit-25", "alice", "authenticate")
        )
        await process.ended()
        self.assertTrue(os.path.exists(ran))
        # Ignored, pam_deny would have answered "Authentication failure".
        self.assertIn("System error", process.output)
