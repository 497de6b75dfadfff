# -*- test-case-name: tests.client.test_failover_command -*-
"""
C{suto-client failover USER [HOST[:PORT] ...]}, and C{enroll --failover}:
the other servers of an enrolled profile's deployment, which the agent
turns to when its server cannot be reached (L{suto_client.failover}).

The list belongs to the agent, not to the enrollment: only the operator
knows which addresses of a deployment a machine can reach (behind which
NAT, through which firewall), and a server cannot vouch for its peers'
addresses any better than the operator who set them up.  The servers are
trusted as the enrolled one is, by its pin or CA bundle: one deployment
presents one certificate, or certificates of one CA.

Without addresses the command shows the profile's servers; C{--none}
clears the list.  The running agent reads the change within one rotation
interval and carries on from the profile's current key.
"""

from __future__ import annotations

from dataclasses import replace

from suto_client.account_commands import existing_state, parse_server
from suto_client.state import server_text
from suto_client.state_document import MAX_FAILOVER
from suto_client.statefile import save_state
from suto_server.core.commandline import CommandError, Streams


def failover_servers(
    enrolled: tuple[str, int], texts: list[str] | None
) -> tuple[tuple[str, int], ...]:
    """
    Read the failover servers an operator gave.

    @param enrolled: the profile's own server, which may not be among
        them.
    @param texts: C{HOST[:PORT]} strings, or L{None} for none.
    @return: the servers, in order.
    @raise CommandError: one cannot be read, is given twice or is the
        profile's own, or there are more than L{MAX_FAILOVER}.
    """
    servers = []
    for text in texts or ():
        server = parse_server(text)
        if server == enrolled or server in servers:
            raise CommandError(
                f"{server_text(*server)} is named twice: a failover server is "
                f"another server of the deployment"
            )
        servers.append(server)
    if len(servers) > MAX_FAILOVER:
        raise CommandError(f"at most {MAX_FAILOVER} failover servers")
    return tuple(servers)


def failover(args, io: Streams) -> int:
    state = existing_state(args.state)
    profile = state.profiles.get(args.user)
    if profile is None:
        raise CommandError(f"{args.user} is not enrolled here")
    if args.none and args.servers:
        raise CommandError("--none clears the list: give no server with it")
    if args.none or args.servers:
        servers = failover_servers(
            (profile.server_host, profile.server_port), args.servers
        )
        profile = replace(profile, failover=servers)
        state.profiles[args.user] = profile
        save_state(args.state, state)
    for host, port in profile.servers:
        io.say(server_text(host, port))
    return 0
