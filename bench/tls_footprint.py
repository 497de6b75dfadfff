"""
What OpenSSL itself holds for each idle server connection, with no
sockets, no Twisted and no SUTO code: the floor under the memory
scenario's figure per endpoint.

The server's own context (L{ReloadableServerTLS}, with the certificate
SUTO makes for itself) makes C{--connections} server connections over
memory BIOs, as Twisted's C{TLSMemoryBIOProtocol} does; the resident
memory (C{VmRSS}) is read when they are made, then after each has
finished a TLS 1.3 handshake with a client of this process and passed
one 121-byte record each way (the clients are freed as they finish).
The same is then measured in a new process for each of L{VARIANTS}, one
setting changed at a time, to show what each costs or spares an idle
connection.

Run from the repository root, with the project's virtualenv, under the
bench lock:

    flock /tmp/suto-bench.lock python bench/tls_footprint.py [--connections N]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
from functools import partial

if __package__ in (None, ""):
    # Run as a script: make the repository importable, as "python -m" would.
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from OpenSSL import SSL
from OpenSSL._util import lib

from bench.memory import resident_bytes
from bench.suto_server_process import make_identity
from suto_server.net.tls import ReloadableServerTLS

#: As long as a C{SUTO_C_ROTATE_} line, roughly.
RECORD = b"x" * 121


def move(source: SSL.Connection, sink: SSL.Connection) -> bool:
    """
    Move what C{source} wrote for its peer into C{sink}.

    @return: whether there was anything.
    """
    try:
        data = source.bio_read(65536)
    except SSL.WantReadError:
        return False
    sink.bio_write(data)
    return True


def handshake(server: SSL.Connection, client: SSL.Connection) -> None:
    """
    Run the handshake as Twisted's C{TLSMemoryBIOProtocol} drives it,
    each side's C{do_handshake} until it returns, rather than letting the
    first C{recv} finish it.  What was written in the turn that finished
    it stays unread: in TLS 1.3, the server's session tickets in its send
    BIO.
    """
    pending = [client, server]
    while pending:
        for side in list(pending):
            try:
                side.do_handshake()
            except SSL.WantReadError:
                continue
            pending.remove(side)
        if pending:
            _pump(server, client)


def _pump(one: SSL.Connection, other: SSL.Connection) -> None:
    """
    Move whatever either connection wrote into the other, until neither
    has anything left.
    """
    while move(one, other) or move(other, one):
        pass


def _converse(server: SSL.Connection, client: SSL.Connection) -> None:
    """
    Complete the handshake, then pass one record each way.
    """
    handshake(server, client)
    _pump(server, client)
    client.send(RECORD)
    _pump(server, client)
    server.recv(4096)
    server.send(RECORD)
    _pump(server, client)
    client.recv(4096)


#: One setting changed against the listener's connections, each measured
#: in a process of its own: what it is, then what it changes.
VARIANTS = {
    "no-release": "without SSL_MODE_RELEASE_BUFFERS",
    "kept-bios": "keeping the handshake's memory BIOs (plain pyOpenSSL connections)",
    "x25519": "with a client offering X25519 alone (no post-quantum key share)",
}


def measure(directory: str, connections: int, variant: str | None) -> dict:
    """
    @param variant: a key of L{VARIANTS}, or L{None} for the listener's
        connections as they are.
    @return: the resident bytes per server connection once made and after
        its conversation, in this process.
    """
    identity = make_identity(directory)
    tls = ReloadableServerTLS(identity.key, identity.cert)
    if variant == "no-release":
        # pyOpenSSL refuses to change a context it has made a connection
        # from (reading the certificate did); OpenSSL does not mind.
        lib.SSL_CTX_clear_mode(tls._context._context, lib.SSL_MODE_RELEASE_BUFFERS)
    make = tls.serverConnectionForTLS
    if variant == "kept-bios":
        make = partial(SSL.Connection, tls._context)
    client_context = SSL.Context(SSL.TLS_CLIENT_METHOD)
    if variant == "x25519":
        lib.SSL_CTX_set1_curves_list(client_context._context, b"X25519")
    gc.collect()
    start = resident_bytes(os.getpid())
    servers = [make(None) for _ in range(connections)]
    for server in servers:
        server.set_accept_state()
    gc.collect()
    made = resident_bytes(os.getpid())
    for server in servers:
        client = SSL.Connection(client_context, None)
        client.set_connect_state()
        _converse(server, client)
    gc.collect()
    idle = resident_bytes(os.getpid())
    return {
        "made_bytes": round((made - start) / connections),
        "idle_bytes": round((idle - start) / connections),
        "group": servers[0].get_group_name(),
    }


def main(argv: list | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--variant", choices=sorted(VARIANTS), help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="suto-bench-") as directory:
        if options.variant is not None:
            # The child: one measurement, as JSON.
            print(json.dumps(measure(directory, options.connections, options.variant)))
            return
        figures = measure(directory, options.connections, None)
    print(
        f"a new server connection (SSL_new, two memory BIOs): {figures['made_bytes']} B"
    )
    print(
        f"after a TLS 1.3 handshake ({figures['group']}) and one record each "
        f"way: {figures['idle_bytes']} B"
    )
    for variant, description in VARIANTS.items():
        child = subprocess.run(
            [
                sys.executable,
                __file__,
                "--connections",
                str(options.connections),
                "--variant",
                variant,
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        idle = json.loads(child.stdout)["idle_bytes"]
        figures[f"idle_bytes_{variant.replace('-', '_')}"] = idle
        print(f"the same {description}: {idle} B")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
