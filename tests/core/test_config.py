"""
Tests for L{suto_server.core.config}: configuration files for C{twistd suto}
and C{twistd suto-client}, their precedence against the command line and
the built-in defaults, every kind of error with its line, and the
C{config check} commands of C{suto-admin} and C{suto-client}.
"""

import io
import os

from twisted.python import usage
from twisted.trial.unittest import SynchronousTestCase

from suto_client import cli
from suto_client import tap as client_tap
from suto_server import tap
from suto_server.admin import cli as admin
from suto_server.core import config
from suto_server.core.config import ConfigError, Problem
from suto_server.core.configurable import ConfigurableOptions
from suto_server.datafolder import DEFAULT_DATA
from suto_server.net.expiry import MAX_WARN_DAYS


def _positive(value: str) -> float:
    number = float(value)
    if not number > 0:
        raise ValueError("must be positive")
    return number


class _Options(ConfigurableOptions):
    """
    Options of every kind a daemon may have: a plain string, coerced
    numbers, a flag, and C{postOptions} checks of one value and of two
    together.
    """

    optParameters = [
        ["name", "n", "default-name", "A string."],
        ["port", "p", 2020, "A port.", int],
        ["delay", None, 5.0, "Seconds.", _positive],
        ["low", None, 1, "At most high.", int],
        ["high", None, 10, "At least low.", int],
    ]
    optFlags = [["verbose", "v", "Say more."]]

    def postOptions(self) -> None:
        if not 0 < self["port"] < 65536:
            raise usage.UsageError("--port must be 1-65535")
        if self["low"] > self["high"]:
            raise usage.UsageError("--low must not exceed --high")


class _MoreOptions(_Options):
    optParameters = [["extra", None, None, "An option added later."]]


class _FileMixin:
    def write(self, text, name="suto.toml", data=None):
        """
        Write a configuration file in a fresh folder and return its path.
        """
        folder = self.mktemp()
        os.makedirs(folder)
        path = os.path.join(folder, name)
        with open(path, "wb") as handle:
            handle.write(text.encode("utf-8") if data is None else data)
        return path

    def problems(self, text, options_class=_Options):
        path = self.write(text)
        return config.check(path, options_class)


class PrecedenceTests(_FileMixin, SynchronousTestCase):
    def test_no_file(self):
        """
        Without C{--config} the options keep their built-in defaults, so
        the zero-configuration start is unchanged.
        """
        options = tap.Options()
        options.parseOptions([])
        self.assertEqual(options["data"], DEFAULT_DATA)
        self.assertIsNone(options["config"])
        self.assertEqual(options["hello-port"], 2020)

    def test_file_over_defaults(self):
        """
        Values of the file replace the server's built-in defaults, coerced
        as the command line would coerce them; options the file leaves out
        keep their defaults.
        """
        path = self.write(
            'data = "/var/lib/suto"\nhello-port = 3020\nauth-timeout = 7\n'
        )
        options = tap.Options()
        options.parseOptions(["--config", path])
        self.assertEqual(options["data"], "/var/lib/suto")
        self.assertEqual(options["hello-port"], 3020)
        self.assertEqual(options["auth-timeout"], 7.0)
        self.assertIsInstance(options["auth-timeout"], float)
        self.assertEqual(options["exchange-timeout"], 10.0)
        self.assertEqual(options["config"], path)

    def test_flags_over_file(self):
        """
        An option given on the command line wins over the file, whether it
        comes before or after C{--config}, in long or short form.
        """
        path = self.write('data = "/var/lib/suto"\nhello-port = 3020\n')
        for argv in (
            ["--config", path, "--hello-port", "4020", "-d", "here"],
            ["--hello-port=4020", "--data", "here", f"--config={path}"],
        ):
            options = tap.Options()
            options.parseOptions(argv)
            self.assertEqual(options["hello-port"], 4020)
            self.assertEqual(options["data"], "here")

    def test_client(self):
        """
        The agent takes a file the same way: its values over the defaults,
        the command line over its values.
        """
        path = self.write('state = "/var/lib/suto-client/client.json"\ntimeout = 3\n')
        options = client_tap.Options()
        options.parseOptions(["--config", path, "--timeout", "4"])
        self.assertEqual(options["state"], "/var/lib/suto-client/client.json")
        self.assertEqual(options["timeout"], 4.0)

    def test_abbreviated(self):
        """
        C{--config} may be abbreviated, as every long option may.
        """
        path = self.write("port = 3000\n")
        options = _Options()
        options.parseOptions(["--conf", path])
        self.assertEqual(options["port"], 3000)

    def test_last_config_wins(self):
        """
        Of two C{--config}, the last is read, as the last of any repeated
        option counts.
        """
        first = self.write("port = 3000\n")
        second = self.write("port = 4000\n")
        options = _Options()
        options.parseOptions(["--config", first, "--config", second])
        self.assertEqual(options["port"], 4000)

    def test_flags(self):
        """
        A flag takes a boolean: C{true} sets it as C{-v} would, C{false}
        leaves it off.
        """
        for text, expected in (("verbose = true\n", 1), ("verbose = false\n", 0)):
            options = _Options()
            options.parseOptions(["--config", self.write(text)])
            self.assertEqual(options["verbose"], expected)

    def test_empty_file(self):
        """
        An empty file changes nothing.
        """
        options = _Options()
        options.parseOptions(["--config", self.write("")])
        self.assertEqual(options["port"], 2020)
        self.assertEqual(options["name"], "default-name")

    def test_keys_follow_options(self):
        """
        The keys a file may hold are the Options class's own: an option
        added to a subclass is accepted at once, and unknown to the class
        without it.
        """
        path = self.write('extra = "x"\n')
        self.assertEqual(config.load(path, _MoreOptions), {"extra": "x"})
        self.assertEqual(
            config.check(path, _Options), [Problem(1, "unknown key 'extra'")]
        )

    def test_problems_are_usage_errors(self):
        """
        A file with problems ends option parsing with a L{usage.UsageError}
        naming every problem with its line, so twistd prints them all
        instead of a traceback.
        """
        path = self.write('port = "x"\nbogus = 1\n')
        error = self.assertRaises(
            usage.UsageError, _Options().parseOptions, ["--config", path]
        )
        self.assertEqual(
            str(error).splitlines(),
            [
                f"{path}:1: port: bad value 'x': invalid literal for int() "
                f"with base 10: 'x'",
                f"{path}:2: unknown key 'bogus'",
            ],
        )

    def test_command_line_still_checked(self):
        """
        A valid file does not excuse a wrong command line.
        """
        path = self.write("port = 3000\n")
        self.assertRaises(
            usage.UsageError,
            _Options().parseOptions,
            ["--config", path, "--port", "0"],
        )
        self.assertRaises(
            usage.UsageError, _Options().parseOptions, ["--config", path, "--nope"]
        )


class ErrorTests(_FileMixin, SynchronousTestCase):
    def test_syntax(self):
        """
        A TOML syntax error is reported on its line, with its column;
        nothing after it can be read.
        """
        self.assertEqual(
            self.problems("port = 3000\nname = = 'x'\nbogus = 1\n"),
            [Problem(2, "TOML syntax: Invalid value (column 8)")],
        )

    def test_nested_too_deeply(self):
        """
        Arrays or inline tables nested deeper than the parser can recurse,
        well within L{config.MAX_CONFIG_BYTES}, are one syntax problem on
        no line, not a crash.
        """
        for value in ["[" * 5000 + "]" * 5000, "{x=" * 5000 + "1" + "}" * 5000]:
            with self.subTest(value=value[:3]):
                self.assertEqual(
                    self.problems(f"port = 3000\nname = {value}\n"),
                    [Problem(None, "TOML syntax: values nested too deeply")],
                )

    def test_duplicate_key(self):
        """
        A key given twice is a syntax error on its second line.
        """
        [problem] = self.problems("port = 3000\nport = 4000\n")
        self.assertEqual(problem.line, 2)
        self.assertIn("TOML syntax", problem.message)

    def test_unknown_key(self):
        """
        A key that names no option is an error on its line, not ignored;
        a near miss such as an underscore for a dash is pointed out.
        """
        self.assertEqual(
            self.problems("port = 3000\n\nverbosity = true\nlo_w = 2\n"),
            [
                Problem(3, "unknown key 'verbosity' (did you mean 'verbose'?)"),
                Problem(4, "unknown key 'lo_w' (did you mean 'low'?)"),
            ],
        )

    def test_unknown_table(self):
        """
        Options are top-level keys: a table is an unknown key, reported on
        its header line, whatever its contents.
        """
        self.assertEqual(
            self.problems("# server\n[suto]\nport = 3000\n"),
            [Problem(2, "unknown key 'suto'")],
        )

    def test_config_key(self):
        """
        A file cannot name another file with C{config}.
        """
        self.assertEqual(
            self.problems('config = "other.toml"\n'),
            [Problem(1, "unknown key 'config'")],
        )

    def test_wrong_type(self):
        """
        A value of the wrong TOML type is an error on its line: a string
        option takes a string, a flag a boolean, a coerced option a number
        or a string but never a boolean, an array, a table or a date.
        """
        self.assertEqual(
            self.problems(
                "name = 3\n"
                'verbose = "yes"\n'
                "port = true\n"
                "delay = [1]\n"
                "low = 1979-05-27\n"
                "high = {value = 3}\n"
            ),
            [
                Problem(1, "name: expected a string, not an integer"),
                Problem(2, "verbose: expected true or false, not a string"),
                Problem(3, "port: expected a number or a string, not a boolean"),
                Problem(4, "delay: expected a number or a string, not an array"),
                Problem(
                    5, "low: expected a number or a string, not a date or time"
                ),
                Problem(6, "high: expected a number or a string, not a table"),
            ],
        )

    def test_bad_value(self):
        """
        A value the option's coerce function refuses is an error on its
        line, with the function's reason.
        """
        self.assertEqual(
            self.problems('delay = -1\nport = 1.5\nlow = "two"\n'),
            [
                Problem(1, "delay: bad value -1: must be positive"),
                Problem(
                    2,
                    "port: bad value 1.5: invalid literal for int() with "
                    "base 10: '1.5'",
                ),
                Problem(
                    3,
                    "low: bad value 'two': invalid literal for int() with "
                    "base 10: 'two'",
                ),
            ],
        )

    def test_long_value_shortened(self):
        """
        A long refused value is shown shortened, so a message stays one
        readable line.
        """
        [problem] = self.problems(f'port = "{"9x" * 500}"\n')
        self.assertLess(len(problem.message), 200)
        self.assertIn("...", problem.message)

    def test_refused_by_post_options(self):
        """
        A value that C{postOptions} refuses is an error on its line, with
        its reason, like one the coerce function refuses.
        """
        self.assertEqual(
            self.problems("name = 'x'\nport = 70000\n"),
            [Problem(2, "port: --port must be 1-65535")],
        )

    def test_server_checks(self):
        """
        The server's own checks apply to its file: out-of-range values are
        reported each on its line.
        """
        self.assertEqual(
            self.problems(
                "hello-port = 0\ncert-warn-days = 0\nauth-timeout = 0\n",
                tap.Options,
            ),
            [
                Problem(1, "hello-port: --hello-port must be 1-65535"),
                Problem(
                    2,
                    f"cert-warn-days: --cert-warn-days must be 1-{MAX_WARN_DAYS}",
                ),
                Problem(3, "auth-timeout: bad value 0: must be positive"),
            ],
        )

    def test_conflict(self):
        """
        Values that are each fine but refused together are reported once,
        on no line.
        """
        self.assertEqual(
            self.problems("low = 5\nhigh = 3\n"),
            [Problem(None, "--low must not exceed --high")],
        )

    def test_every_error(self):
        """
        One check reports every problem of the file, in the order of its
        lines, so one edit can fix them all.
        """
        problems = self.problems(
            "bogus = 1\n"
            "port = 70000\n"
            "name = 3\n"
            "delay = 0\n"
            "[table]\n"
        )
        self.assertEqual([problem.line for problem in problems], [1, 2, 3, 4, 5])

    def test_quoted_and_dotted_keys(self):
        """
        The line of a key is found when it is quoted or dotted too.
        """
        self.assertEqual(
            self.problems('name = "x"\n"bogus" = 1\nother.part = 2\n'),
            [
                Problem(2, "unknown key 'bogus'"),
                Problem(3, "unknown key 'other'"),
            ],
        )

    def test_key_line_unknown(self):
        """
        A key written with an escape, whose line cannot be told, is still
        reported, on no line.
        """
        self.assertEqual(
            self.problems('name = "x"\n"bo\\u0067us" = 1\n'),
            [Problem(None, "unknown key 'bogus'")],
        )

    def test_missing_file(self):
        """
        A file that cannot be read is one problem, on no line.
        """
        path = os.path.join(self.mktemp(), "missing.toml")
        self.assertEqual(
            config.check(path, _Options),
            [Problem(None, "cannot read: No such file or directory")],
        )

    def test_too_large(self):
        """
        A file larger than L{config.MAX_CONFIG_BYTES} is refused unread.
        """
        path = self.write("", data=b"#" * (config.MAX_CONFIG_BYTES + 1))
        self.assertEqual(
            config.check(path, _Options),
            [Problem(None, f"larger than {config.MAX_CONFIG_BYTES} bytes")],
        )

    def test_not_utf8(self):
        """
        A file that is not UTF-8 is refused on the line of the first bad
        byte.
        """
        path = self.write("", data=b"port = 3000\n# caf\xe9\n")
        self.assertEqual(config.check(path, _Options), [Problem(2, "not UTF-8")])

    def test_load_raises(self):
        """
        L{config.load} raises L{ConfigError} carrying every problem, whose
        text is one C{PATH:LINE: message} line each.
        """
        path = self.write("bogus = 1\nport = 0\n")
        error = self.assertRaises(ConfigError, config.load, path, _Options)
        self.assertEqual(error.path, path)
        self.assertEqual(len(error.problems), 2)
        self.assertEqual(
            str(error),
            f"{path}:1: unknown key 'bogus'\n{path}:2: port: --port must be 1-65535",
        )
        self.assertIsInstance(error, ValueError)

    def test_describe(self):
        """
        A problem reads C{PATH:LINE: message}, or C{PATH: message} with no
        line.
        """
        self.assertEqual(Problem(3, "wrong").describe("a.toml"), "a.toml:3: wrong")
        self.assertEqual(Problem(None, "wrong").describe("a.toml"), "a.toml: wrong")


class CrossOptionTests(_FileMixin, SynchronousTestCase):
    """
    A value the daemon refuses only against another of the file's values
    is reported on its line with the file's numbers, not the defaults'.
    """

    def test_file_numbers(self):
        """
        An offline step longer than the file's own rotation interval
        allows is refused naming that interval's deadline; a step that
        fits the file's interval passes.
        """
        problems = self.problems(
            "rotation-interval = 100\noffline-step = 111\n", tap.Options
        )
        self.assertEqual(len(problems), 1)
        self.assertEqual(problems[0].line, 2)
        self.assertIn("= 110 s", problems[0].message)
        self.assertEqual(
            self.problems(
                "rotation-interval = 100\noffline-step = 90\n", tap.Options
            ),
            [],
        )


class CheckCommandTests(_FileMixin, SynchronousTestCase):
    def admin(self, *argv):
        stdout, stderr = io.StringIO(), io.StringIO()
        code = admin.main(list(argv), stdout=stdout, stderr=stderr)
        return code, stdout.getvalue(), stderr.getvalue()

    def client(self, *argv):
        stdout, stderr = io.StringIO(), io.StringIO()
        code = cli.main(list(argv), stdout=stdout, stderr=stderr)
        return code, stdout.getvalue(), stderr.getvalue()

    def test_admin_ok(self):
        """
        C{suto-admin config check} accepts a file the server accepts and
        exits 0.
        """
        path = self.write('data = "/var/lib/suto"\nlegacy-listen = "tcp:2022"\n')
        self.assertEqual(self.admin("config", "check", path), (0, f"{path}: ok\n", ""))

    def test_admin_problems(self):
        """
        C{suto-admin config check} prints every problem with its line and
        exits 1.
        """
        path = self.write("hello-port = 0\nstate = 'x'\n")
        code, out, err = self.admin("config", "check", path)
        self.assertEqual(code, 1)
        self.assertEqual(out, "")
        self.assertEqual(
            err.splitlines(),
            [
                f"{path}:1: hello-port: --hello-port must be 1-65535",
                f"{path}:2: unknown key 'state'",
                f"suto-admin: 2 problem(s) in {path}",
            ],
        )

    def test_client_ok(self):
        """
        C{suto-client config check} accepts a file the agent accepts and
        exits 0.
        """
        path = self.write('state = "/var/lib/suto-client/client.json"\n')
        self.assertEqual(
            self.client("config", "check", path), (0, f"{path}: ok\n", "")
        )

    def test_client_problems(self):
        """
        C{suto-client config check} checks against the agent's options, not
        the server's: a server key is unknown to it.  Every problem is
        printed and it exits 1.
        """
        path = self.write("data = 'x'\ntimeout = 0\n")
        code, out, err = self.client("config", "check", path)
        self.assertEqual(code, 1)
        self.assertEqual(out, "")
        self.assertEqual(
            err.splitlines(),
            [
                f"{path}:1: unknown key 'data'",
                f"{path}:2: timeout: bad value 0: must be positive",
                f"suto-client: 2 problem(s) in {path}",
            ],
        )

    def test_client_examples(self):
        """
        C{suto-client config check} refuses what would stop the agent or
        leave it a timer it cannot honour: a hello interface that is no IP
        address (the agent died with a traceback binding it), a timeout
        of 1e-300, a rotation interval under a second, an infinite one;
        each at its line.  The agent's start refuses the same file with
        a usage error.
        """
        path = self.write(
            'hello-interface = "eth0"\n'
            "timeout = 1e-300\n"
            "rotation-interval = 0.5\n"
            'limit-log-interval = "inf"\n'
        )
        code, out, err = self.client("config", "check", path)
        self.assertEqual((code, out), (1, ""))
        self.assertEqual(
            err.splitlines(),
            [
                f"{path}:1: hello-interface: --hello-interface must be an IP "
                "address of this host (or empty for all)",
                f"{path}:2: timeout: bad value 1e-300: must be at least 0.001",
                f"{path}:3: rotation-interval: bad value 0.5: must be at least 1",
                f"{path}:4: limit-log-interval: bad value 'inf': must be at "
                "most 3600",
                f"suto-client: 4 problem(s) in {path}",
            ],
        )
        self.assertRaises(
            usage.UsageError, client_tap.Options().parseOptions, ["--config", path]
        )

    def test_client_addresses(self):
        """
        The agent receives hellos on any IPv4 or IPv6 address literal, or
        on all addresses when none is given.
        """
        for address in ["", "192.0.2.1", "::1"]:
            path = self.write(f'hello-interface = "{address}"\n')
            self.assertEqual(self.client("config", "check", path)[0], 0)
