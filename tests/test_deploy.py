"""
Tests for C{deploy/}: the systemd units pass C{systemd-analyze verify},
carry the sandbox they promise and start twistd with a command line it
accepts; the example configuration files are accepted by the daemons they
configure.
"""

import configparser
import os
import re
import shlex
import shutil
import subprocess
import sys

from twisted.scripts._twistd_unix import ServerOptions
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from suto_client import tap as client_tap
from suto_server import tap
from suto_server.core import config, logformat
from suto_server.locations import Locations
from tests.support.repository import DEPLOY

INSTALLED_TWISTD = "/opt/suto/venv/bin/twistd"

#: unit file: (twistd subcommand, user, configuration file it names, the
#: example of that file, the options that read it)
UNITS = {
    "suto.service": (
        "suto",
        "suto",
        "/etc/suto/suto.toml",
        "suto.toml",
        tap.Options,
    ),
    "suto-client.service": (
        "suto-client",
        "suto-client",
        "/etc/suto/suto-client.toml",
        "suto-client.toml",
        client_tap.Options,
    ),
}

_COMMENTED_KEY = re.compile(r"^# ([a-z][a-z-]*) = (.*)$", re.MULTILINE)


def _unit(name):
    """
    The sections of a unit file, keys in their own case.
    """
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    parser.read(os.path.join(DEPLOY, name), encoding="utf-8")
    return parser


def _read(name):
    with open(os.path.join(DEPLOY, name), encoding="utf-8") as handle:
        return handle.read()


class VerifyTests(SynchronousTestCase):
    def verify(self, name, source=None):
        """
        Run C{systemd-analyze verify} on a copy of the unit whose twistd is
        this test run's own, as C{/opt/suto/venv} does not exist here.

        @param source: the unit file copied as C{name} (a template's, for
            an instance name); C{name} unless given.
        """
        analyze = shutil.which("systemd-analyze")
        if analyze is None:
            raise SkipTest("systemd-analyze is not installed")
        twistd = os.path.join(os.path.dirname(sys.executable), "twistd")
        if not os.access(twistd, os.X_OK):
            raise SkipTest(f"no twistd next to {sys.executable}")
        folder = self.mktemp()
        os.makedirs(folder)
        copy = os.path.join(folder, name)
        with open(copy, "w", encoding="utf-8") as handle:
            handle.write(_read(source or name).replace(INSTALLED_TWISTD, twistd))
        result = subprocess.run(
            [analyze, "verify", copy],
            capture_output=True,
            text=True,
            timeout=120,
        )
        output = result.stdout + result.stderr
        self.assertEqual(result.returncode, 0, output)
        # verify only warns about unknown keys and still exits 0; other
        # units of this system may draw warnings of their own.
        self.assertEqual(
            [line for line in output.splitlines() if name in line], []
        )

    def test_server(self):
        """
        C{suto.service} verifies without an error or a warning.
        """
        self.verify("suto.service")

    def test_client(self):
        """
        C{suto-client.service} verifies without an error or a warning.
        """
        self.verify("suto-client.service")


class UnitTests(SynchronousTestCase):
    def test_sandbox(self):
        """
        Both units run as their own user with no capability, a read-only
        system, a private /tmp, no privilege gain, and restart on failure
        with a pause and a limit.
        """
        for name, (_command, user, _path, _example, _options) in UNITS.items():
            service = _unit(name)["Service"]
            unit = _unit(name)["Unit"]
            with self.subTest(name):
                self.assertEqual(service["User"], user)
                self.assertEqual(service["Group"], user)
                self.assertEqual(service["StateDirectory"], user)
                self.assertEqual(service["ProtectSystem"], "strict")
                self.assertEqual(service["NoNewPrivileges"], "yes")
                self.assertEqual(service["PrivateTmp"], "yes")
                self.assertEqual(service["CapabilityBoundingSet"], "")
                self.assertEqual(service["AmbientCapabilities"], "")
                self.assertEqual(service["Restart"], "on-failure")
                self.assertRegex(service["RestartSec"], r"^[1-9][0-9]*s$")
                self.assertGreater(int(unit["StartLimitIntervalSec"]), 0)
                self.assertGreater(int(unit["StartLimitBurst"]), 0)

    def test_reload(self):
        """
        The server reloads its TLS certificates on SIGHUP, so its unit
        sends that on C{systemctl reload}; the agent has nothing to reload.
        """
        self.assertEqual(
            _unit("suto.service")["Service"]["ExecReload"],
            "/bin/kill -HUP $MAINPID",
        )
        self.assertNotIn("ExecReload", _unit("suto-client.service")["Service"])

    def test_command_line(self):
        """
        Each unit starts the installed twistd in the foreground, without a
        pidfile, logging through L{logformat.observer}, with the daemon's
        configuration file; twistd accepts that command line, with the
        example file in place of the installed one.
        """
        for name, (command, _user, path, example, _options) in UNITS.items():
            argv = shlex.split(_unit(name)["Service"]["ExecStart"])
            with self.subTest(name):
                self.assertEqual(argv[0], INSTALLED_TWISTD)
                self.assertEqual(argv[-3:], [command, "--config", path])
                argv[-1] = os.path.join(DEPLOY, example)
                options = ServerOptions()
                options.parseOptions(argv[1:])
                self.assertTrue(options["nodaemon"])
                self.assertEqual(options["pidfile"], "")
                self.assertIs(options["logger"], logformat.observer)
                self.assertEqual(options.subCommand, command)
                self.assertEqual(options.subOptions["config"], argv[-1])


def _besides_production_files(problems):
    """
    The problems of an example but those of the production files and
    folders it names (under /etc/suto and /var/lib/suto), and of the
    production database server (C{db.example.com}), which C{config check}
    opens or connects to and a test machine does not have.
    """
    absent = re.compile(
        r"/(etc|var/lib)/suto/\S+.*: "
        r"(No such file or directory|its folder does not exist)$"
        r"|^--store: connecting to the store failed: .*'db\.example\.com'"
    )
    return [problem for problem in problems if not absent.search(problem.message)]


class ExampleTests(SynchronousTestCase):
    def test_accepted(self):
        """
        Each example configuration file is accepted by the options of the
        daemon it configures.
        """
        for _name, (_command, _user, _path, example, options) in UNITS.items():
            with self.subTest(example):
                self.assertEqual(
                    _besides_production_files(
                        config.check(os.path.join(DEPLOY, example), options)
                    ),
                    [],
                )

    def test_commented_keys_accepted(self):
        """
        The options an example leaves commented out are accepted too once
        uncommented, so the examples cannot drift from the options.
        """
        for _name, (_command, _user, _path, example, options) in UNITS.items():
            keys = _COMMENTED_KEY.findall(_read(example))
            folder = self.mktemp()
            os.makedirs(folder)
            uncommented = os.path.join(folder, example)
            with open(uncommented, "w", encoding="utf-8") as handle:
                handle.writelines(f"{key} = {value}\n" for key, value in keys)
            with self.subTest(example):
                self.assertNotEqual(keys, [])
                self.assertEqual(
                    _besides_production_files(config.check(uncommented, options)),
                    [],
                )

    def test_state_in_state_directory(self):
        """
        The examples keep state where the units' C{StateDirectory} is.
        """
        server = config.load(os.path.join(DEPLOY, "suto.toml"), tap.Options)
        client = config.load(
            os.path.join(DEPLOY, "suto-client.toml"), client_tap.Options
        )
        self.assertEqual(server["data"], "/var/lib/suto")
        self.assertEqual(
            os.path.dirname(client["state"]), "/var/lib/suto-client"
        )

    def test_production_choices(self):
        """
        The server example uses the company CA's certificate, a locations
        file, and no plaintext legacy listener.
        """
        server = config.load(os.path.join(DEPLOY, "suto.toml"), tap.Options)
        self.assertTrue(server["listen"].startswith("ssl:2021:"))
        self.assertIn("certKey=/etc/suto/tls/fullchain.pem", server["listen"])
        self.assertEqual(server["locations"], "/etc/suto/locations.txt")
        self.assertNotIn("legacy-listen", server)

    def test_locations(self):
        """
        The example locations file is read by the server's own reader.
        """
        locations = Locations.from_file(os.path.join(DEPLOY, "locations.txt"))
        self.assertEqual(locations.name_of("10.2.3.17"), "bldg2-f3-jack17")
        self.assertEqual(locations.name_of("2001:db8:9::1"), "lab-east")


class TemplateUnitTests(SynchronousTestCase):
    """
    C{suto@.service}, one of several server processes on a host: what
    C{suto.service} is, but for its own data and runtime folders.
    """

    def test_verifies(self):
        """
        An instance of it verifies without an error or a warning.
        """
        VerifyTests.verify(self, "suto@1.service", source="suto@.service")

    def test_same_as_single(self):
        """
        Its sandbox and restart settings are C{suto.service}'s; only the
        folders, which are the instance's own, differ.
        """
        single = dict(_unit("suto.service")["Service"])
        template = dict(_unit("suto@.service")["Service"])
        own = {"ExecStart", "StateDirectory", "RuntimeDirectory", "WorkingDirectory"}
        self.assertEqual(
            {k: v for k, v in template.items() if k not in own},
            {k: v for k, v in single.items() if k not in own},
        )
        self.assertEqual(template["StateDirectory"], "suto/%i")
        self.assertEqual(template["WorkingDirectory"], "/var/lib/suto/%i")

    def test_instance_data(self):
        """
        Each instance starts twistd with the shared configuration file
        and a data folder of its own, which wins over the file's.
        """
        argv = shlex.split(_unit("suto@.service")["Service"]["ExecStart"])
        self.assertEqual(
            argv[-5:],
            ["suto", "--config", "/etc/suto/suto.toml", "--data", "/var/lib/suto/%i"],
        )
        argv[-3] = os.path.join(DEPLOY, "suto.toml")
        argv[-1] = "/var/lib/suto/7"
        options = ServerOptions()
        options.parseOptions(argv[1:])
        self.assertEqual(options.subOptions["data"], "/var/lib/suto/7")
