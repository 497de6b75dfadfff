# -*- test-case-name: tests.client.test_cli -*-
"""
C{twistd suto-client}: command-line options and the agent they describe.

With no options the agent keeps its state in C{suto-client-data/client.json}
under the working directory, as the server keeps its own in C{suto-data},
listens for hellos on UDP port 2020 on every address, and rotates the key
of every enrolled profile each minute.  Accounts are managed with the
C{suto-client account} command, profiles enrolled with C{suto-client
enroll}.  Every option may also be set in a TOML file named by C{--config}
(see L{suto_server.core.config}).
"""

from __future__ import annotations

from twisted.application.service import IService
from twisted.python import usage

from suto_client.agent import DEFAULT_HELLO_PORT, Agent
from suto_client.statefile import DEFAULT_STATE_PATH
from suto_server.core.configurable import ConfigurableOptions
from suto_server.core.optionvalues import MIN_TIMER, is_ip_address, seconds
from suto_server.core.throttle import DEFAULT_LOG_INTERVAL
from suto_server.core.timing import DEFAULT_ROTATION_INTERVAL

#: Longest duration any seconds option of the agent takes: an hour.
MAX_SECONDS = 3600

#: The shortest interval between two key rotations: each is a connection
#: and a key agreement with the server, and the server's offline steps (a
#: second at least) must fit in one wait.
MIN_ROTATION_INTERVAL = 1.0

_seconds = seconds(MIN_TIMER, MAX_SECONDS)


class Options(ConfigurableOptions):
    synopsis = "[options]"
    longdesc = (
        "Run the SUTO endpoint agent: answer hellos from the configured "
        "servers by authenticating to them, and keep rotating the keys of "
        "enrolled profiles.  Add accounts with 'suto-client account add'."
    )
    optParameters = [
        ["state", "s", DEFAULT_STATE_PATH, "The agent's state file."],
        [
            "hello-port",
            None,
            DEFAULT_HELLO_PORT,
            "UDP port to receive hellos on.",
            int,
        ],
        [
            "hello-interface",
            None,
            "",
            "Local IP address to receive hellos on (default: all).",
        ],
        [
            "timeout",
            None,
            10.0,
            "Seconds allowed to connect, and then to authenticate or to "
            "rotate a key.",
            _seconds,
        ],
        [
            "rotation-interval",
            None,
            DEFAULT_ROTATION_INTERVAL,
            "Seconds between two rotations of an enrolled profile's key "
            "(each wait within 10%).",
            seconds(MIN_ROTATION_INTERVAL, MAX_SECONDS),
        ],
        [
            "limit-log-interval",
            None,
            DEFAULT_LOG_INTERVAL,
            "Least seconds between two log lines about hellos, checks or "
            "failed authentications from one source for one reason.",
            _seconds,
        ],
    ]

    def postOptions(self) -> None:
        if not 0 < self["hello-port"] < 65536:
            raise usage.UsageError("--hello-port must be 1-65535")
        # Bound only once the agent runs, where a name or a typo would end
        # it with a traceback.
        if self["hello-interface"] and not is_ip_address(self["hello-interface"]):
            raise usage.UsageError(
                "--hello-interface must be an IP address of this host (or "
                "empty for all)"
            )


def makeService(options: Options) -> IService:
    """
    Assemble the agent from parsed options.
    """
    from twisted.internet import reactor

    return Agent(
        reactor,
        options["state"],
        hello_endpoint_port=options["hello-port"],
        hello_interface=options["hello-interface"],
        timeout=options["timeout"],
        rotation_interval=options["rotation-interval"],
        log_interval=options["limit-log-interval"],
    )
