"""
Tests for L{suto_client.pam.config}: the settings of C{/etc/suto/pam.toml}
and the ownership of the files it names.
"""

from __future__ import annotations

import os
import tomllib

from twisted.trial.unittest import SynchronousTestCase

from suto_client.pam.config import DEFAULT_DEADLINE, PamConfigError, load, parse
from tests.support.repository import ROOT

_MINIMAL = {
    "server": "192.0.2.7:8443",
    "pin": "AB:" * 31 + "AB",
    "certificate": "/etc/suto/host.crt",
    "key": "/etc/suto/host.key",
    "users": ["alice"],
}

_AS_ROOT = None if os.geteuid() == 0 else "the ownership checks apply only to root"


def _with(**changes) -> dict:
    document = dict(_MINIMAL)
    for name, value in changes.items():
        if value is None:
            document.pop(name, None)
        else:
            document[name] = value
    return document


class ParseTests(SynchronousTestCase):
    def refused(self, document: dict, words: str) -> None:
        with self.assertRaises(PamConfigError) as caught:
            parse(document, "pam.toml")
        self.assertIn(words, str(caught.exception))

    def test_minimal(self):
        """
        A server, a pin, the host's files and a user are enough; the
        deadline defaults to ten seconds and the offline policy is off.
        """
        config = parse(_with(), "pam.toml")
        self.assertEqual((config.host, config.port), ("192.0.2.7", 8443))
        self.assertEqual(config.pin, "ab" * 32)
        self.assertIsNone(config.ca)
        self.assertEqual(config.deadline, DEFAULT_DEADLINE)
        self.assertEqual(config.users, frozenset({"alice"}))
        self.assertIsNone(config.offline)

    def test_ipv6_server(self):
        """
        An IPv6 address is written in brackets, and kept without them.
        """
        config = parse(_with(server="[2001:db8::1]:8443"), "pam.toml")
        self.assertEqual((config.host, config.port), ("2001:db8::1", 8443))

    def test_bad_servers(self):
        """
        The port is required and must be a port.
        """
        for server in ("192.0.2.7", "192.0.2.7:0", "192.0.2.7:70000", ":8443", "host:http"):
            self.refused(_with(server=server), "'server' must be HOST:PORT")

    def test_exactly_one_trust(self):
        """
        The server is trusted by a CA bundle or a pin, not both, not none.
        """
        self.refused(_with(pin=None), "exactly one of 'ca'")
        self.refused(_with(ca="/etc/suto/ca.pem"), "exactly one of 'ca'")

    def test_bad_pin(self):
        """
        A pin that is not a SHA-256 fingerprint is refused.
        """
        self.refused(_with(pin="abc"), "'pin': a SHA-256 fingerprint is 64 hex digits")

    def test_deadline_bounds(self):
        """
        The deadline is a number of seconds from 1 to 60.
        """
        self.assertEqual(parse(_with(deadline=3), "pam.toml").deadline, 3.0)
        for deadline in (0.5, 61, float("inf"), float("nan"), True, "10"):
            with self.assertRaises(PamConfigError):
                parse(_with(deadline=deadline), "pam.toml")

    def test_someone_named(self):
        """
        A configuration that decides for nobody is refused: it says whom
        with users, a group or both.
        """
        self.refused(_with(users=None), "name the users it decides for")
        self.assertEqual(parse(_with(users=None, group="staff"), "pam.toml").group, "staff")

    def test_bad_users(self):
        """
        C{users} is a list of non-empty names.
        """
        for users in ("alice", [""], [1], ["a" * 300]):
            self.refused(_with(users=users), "'users' must be a list of user names")

    def test_unknown_setting(self):
        """
        A misspelt setting is refused rather than ignored.
        """
        self.refused(_with(deadlin=5), "unknown setting 'deadlin'")
        self.refused(_with(offline={"enabeld": True}), "unknown setting 'offline.enabeld'")

    def test_offline_off_by_default(self):
        """
        An offline table that does not enable the policy leaves it off.
        """
        self.assertIsNone(parse(_with(offline={"users": ["alice"]}), "pam.toml").offline)

    def test_offline(self):
        """
        The offline policy names its users, a grace (eight hours unless
        set, at most 72) and its stamp folder.
        """
        config = parse(_with(offline={"enabled": True, "users": ["alice"]}), "pam.toml")
        self.assertEqual(config.offline.users, frozenset({"alice"}))
        self.assertEqual(config.offline.grace, 8 * 3600.0)
        self.assertEqual(config.offline.stamps, "/var/lib/suto-pam")
        self.refused(_with(offline={"enabled": True}), "'offline.users' must list")
        self.refused(
            _with(offline={"enabled": True, "users": ["alice"], "grace": 73 * 3600}),
            "'offline.grace' must be between 60 and 259200 seconds",
        )
        self.refused(
            _with(offline={"enabled": True, "users": ["alice"], "stamps": "stamps"}),
            "'offline.stamps' must be an absolute path",
        )


class CoversTests(SynchronousTestCase):
    def test_listed(self):
        """
        A listed user is covered; anyone else is not.
        """
        config = parse(_with(users=["alice"]), "pam.toml")
        self.assertTrue(config.covers("alice"))
        self.assertFalse(config.covers("root"))

    def test_group(self):
        """
        A group covers its members, including those whose primary group it
        is (root's primary group is C{root}); a missing group covers nobody.
        """
        self.assertTrue(parse(_with(users=None, group="root"), "pam.toml").covers("root"))
        missing = parse(_with(users=None, group="no-such-group-here"), "pam.toml")
        self.assertFalse(missing.covers("root"))


class LoadTests(SynchronousTestCase):
    def setUp(self):
        self.folder = self.mktemp()
        os.makedirs(self.folder)
        self.certificate = self.write("host.crt", "")
        self.key = self.write("host.key", "")
        self.path = self.write(
            "pam.toml",
            'server = "192.0.2.7:8443"\n'
            f'pin = "{"ab" * 32}"\n'
            f'certificate = "{self.certificate}"\n'
            f'key = "{self.key}"\n'
            'users = ["alice"]\n',
        )

    def write(self, name: str, text: str) -> str:
        path = os.path.join(self.folder, name)
        with open(path, "w") as handle:
            handle.write(text)
        os.chmod(path, 0o600)
        return path

    def refused(self, words: str) -> None:
        with self.assertRaises(PamConfigError) as caught:
            load(self.path)
        self.assertIn(words, str(caught.exception))

    def test_loads(self):
        """
        A well-formed file whose files are root's loads.
        """
        self.assertEqual(load(self.path).key, self.key)

    def test_missing(self):
        """
        A missing file is refused, naming it.
        """
        self.path = os.path.join(self.folder, "absent.toml")
        self.refused(f"cannot read the configuration file {self.path!r}")

    def test_not_toml(self):
        """
        A file that is not TOML is refused.
        """
        self.write("pam.toml", "server = \n")
        self.refused(f"{self.path}:1: TOML syntax: Invalid value")

    def test_nested_too_deeply(self):
        """
        Brackets nested past what the parser can recurse are refused, not
        a traceback.
        """
        self.write("pam.toml", "x = " + "[" * 100_000)
        self.refused("TOML syntax: values nested too deeply")

    def test_too_large(self):
        """
        A file larger than the cap is refused without being parsed.
        """
        self.write("pam.toml", "#" * (2 * 1024 * 1024))
        self.refused("larger than")

    def test_writable_by_others(self):
        """
        A configuration others may write is refused, with its mode.
        """
        os.chmod(self.path, 0o666)
        self.refused("is writable by users other than root (mode 0666)")

    test_writable_by_others.skip = _AS_ROOT

    def test_not_root_owned(self):
        """
        A configuration owned by another user is refused.
        """
        os.chown(self.path, 65534, 65534)
        self.refused("is not owned by root")

    test_not_root_owned.skip = _AS_ROOT

    def test_key_readable_by_others(self):
        """
        The host's key must not be readable by every user.
        """
        os.chmod(self.key, 0o644)
        self.refused(f"the host key {self.key!r} is readable by every user")

    test_key_readable_by_others.skip = _AS_ROOT

    def test_certificate_group_writable(self):
        """
        The host's certificate must not be writable by its group.
        """
        os.chmod(self.certificate, 0o664)
        self.refused("the host certificate")

    test_certificate_group_writable.skip = _AS_ROOT


class ExampleTests(SynchronousTestCase):
    def test_example_parses(self):
        """
        C{deploy/pam.toml}, the example configuration, is valid as it
        stands, with the offline policy off.
        """
        with open(os.path.join(ROOT, "deploy", "pam.toml"), "rb") as handle:
            config = parse(tomllib.load(handle), "deploy/pam.toml")
        self.assertEqual((config.host, config.port), ("suto.example.com", 2443))
        self.assertEqual(config.group, "suto-users")
        self.assertIsNone(config.offline)
