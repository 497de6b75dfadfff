# -*- test-case-name: tests.store.postgres.test_session,tests.store.postgres.test_outage -*-
"""
How every connection to PostgreSQL is opened (the store's on the reactor
thread, its siblings on the database thread, the leader lock's, the
notice listener's): the URI's checks, the failures callers see, and the
settings that keep a server or network gone away from hanging the
daemon.

A session left to libpq's and PostgreSQL's defaults waits for ever: a
connect to a host that drops packets waits for the kernel's TCP retries
(minutes), a statement sent to a host that vanished waits for an answer
for as long as the kernel retransmits (up to about 15 minutes on Linux),
and an idle session to a dead host is noticed after two hours of TCP
keepalive silence.  So, unless the operator's URI (or
C{PGCONNECT_TIMEOUT}, or the server's configuration for the session
settings) sets its own, which always wins:

 - L{CLIENT_DEFAULTS}, libpq's side: give up connecting to a host after
   5 seconds (then libpq tries the URI's next host); probe an idle
   connection after 5 seconds of silence, every 2 seconds, 3 times; and
   drop a connection whose sent data stays unacknowledged for 10
   seconds.  A call made while the server or its network is away thus
   fails with L{StoreError} within about 11 seconds at worst, and at once
   when the server's host answers that nothing listens.
 - L{SESSION_DEFAULTS}, the server's side of the same session: the same
   keepalives and user timeout, so the server ends the session of a SUTO
   host that vanished, and lets go the advisory locks it held (the
   leader's lock, a claim); no wait for a lock longer than 10 seconds
   (another process's row lock, held by a process that stopped, must not
   stall this one's rotations); and no session left idle inside a
   transaction for 60 seconds (the store never leaves one open between
   its calls, so such a session is one whose process hung, and its row
   locks are freed).

No C{statement_timeout} by default: the store's long statements are the
operator's own reads (C{audit verify}, C{store copy}, listings), which a
ceiling would cut, and what makes the daemon's short statements wait is
a lock or the network, both bounded above.  A connection whose every
statement is short (the leader lock's, the notice listener's) asks for
one in L{connect}.

The session settings are set in one round trip after connecting, each
only where C{pg_settings} says its value is still the built-in default,
so an operator's C{ALTER ROLE ... SET}, C{postgresql.conf} or the URI's
C{options} keep theirs.
"""

import os
import select
from contextlib import contextmanager

import psycopg
from psycopg import pq
from psycopg.conninfo import conninfo_to_dict

from suto_server.store.errors import StoreError

#: libpq's connection parameters SUTO sets unless the URI does.
CLIENT_DEFAULTS = {
    "connect_timeout": "5",
    "keepalives": "1",
    "keepalives_idle": "5",
    "keepalives_interval": "2",
    "keepalives_count": "3",
    "tcp_user_timeout": "10000",
}

#: The environment variables libpq reads for some of them: set, they win
#: as the URI would.
_CLIENT_ENVIRONMENT = {"connect_timeout": "PGCONNECT_TIMEOUT"}

#: The server's settings of each session SUTO sets where the server's
#: configuration left the built-in default.
SESSION_DEFAULTS = {
    "tcp_keepalives_idle": "5",
    "tcp_keepalives_interval": "2",
    "tcp_keepalives_count": "3",
    "tcp_user_timeout": "10000",
    "lock_timeout": "10s",
    "idle_in_transaction_session_timeout": "60s",
}

#: The C{statement_timeout} of a connection whose every statement is
#: short (the leader lock's try and check, the notice listener's naming
#: of its channel and C{LISTEN}): anything longer means a server too busy
#: or gone, which must not hold the thread that waits on it.
SHORT_STATEMENTS = "5s"

#: Lifts, for the rest of a read-only snapshot transaction, the idle
#: bound of L{SESSION_DEFAULTS}: such a transaction holds no row lock
#: for the bound to free, and the operator's long reads stream through
#: it (C{store copy} writes each table to its destination between two
#: reads of the source, for longer than a minute on a large audit log).
#: Only SUTO's own bound (the source C{session}: an operator's is
#: C{client}, C{user}, C{database} or C{configuration file}) is lifted.
SNAPSHOT_MAY_IDLE = (
    "SELECT set_config(name, '0', true) FROM pg_settings"
    " WHERE name = 'idle_in_transaction_session_timeout' AND source = 'session'"
)

# One statement setting each named setting still at its default.
_SET_DEFAULTS = (
    "SELECT set_config(s.name, d.setting, false)"
    " FROM pg_settings s JOIN unnest(%s::text[], %s::text[]) AS d(name, setting)"
    " ON s.name = d.name WHERE s.source = 'default'"
)


@contextmanager
def as_store_error(doing):
    """
    Turn a failure of PostgreSQL or of the connection to it into a
    L{StoreError}, so callers need to know only the store's errors.  Its
    message is one line (libpq adds hints on lines of their own), since
    the daemon's start and C{suto-admin} report a store error as one, and
    never the row a server's error quotes in its detail.

    @param doing: what was being done, for the message.
    """
    try:
        yield
    except psycopg.Error as e:
        # A server's error says what it refused in its primary message; its
        # detail may quote the refused row (a sealed key, a hash), which
        # must not reach the log.  An error of the client or the network
        # has no primary message: libpq's text names only the server.
        message = e.diag.message_primary or str(e)
        raise StoreError(f"{doing} failed: {' '.join(message.split())}") from e


def checked_location(uri):
    """
    @param uri: a libpq connection URI.
    @return: C{uri}, which names no password.
    @raise StoreError: it is not a connection URI libpq understands, or it
        carries a password (or a client key's C{sslpassword}), which would
        then show in the process list and the shell's history: the
        password belongs in a C{PGPASSFILE} (C{~/.pgpass}) or in
        C{PGPASSWORD}, which libpq reads itself.
    """
    try:
        parameters = conninfo_to_dict(uri)
    except psycopg.ProgrammingError:
        # libpq's message quotes the URI, password and all.
        raise StoreError("not a PostgreSQL connection URI libpq can read") from None
    if any("password" in name for name in parameters):
        raise StoreError(
            "the store's URI must not carry a password: put it in the file "
            "PGPASSFILE names (~/.pgpass by default) or in PGPASSWORD"
        )
    return uri


def client_settings(uri, environ=os.environ):
    """
    @return: the libpq parameters of L{CLIENT_DEFAULTS} that neither
        C{uri} nor the environment C{environ} sets.  (A service file's,
        C{PGSERVICE}'s, are not looked at: libpq lets the connection's
        own parameters win over them, so an operator who wants others
        puts them in the URI.)
    """
    given = conninfo_to_dict(uri)
    return {
        name: value
        for name, value in CLIENT_DEFAULTS.items()
        if name not in given and not environ.get(_CLIENT_ENVIRONMENT.get(name, ""))
    }


def _given_options(uri, environ=os.environ):
    """
    @return: the server options the operator gave a connection to
        C{uri}: the URI's, or else C{PGOPTIONS}'s, which libpq reads only
        when the URI gives none (an option passed when connecting
        replaces both, so a read-only connection adds its own to these;
        a service file's are not looked at, as in L{client_settings}).
    """
    return conninfo_to_dict(uri).get("options") or environ.get("PGOPTIONS", "")


def connect(uri, read_only=False, statement_timeout=None):
    """
    @param read_only: open a connection whose every transaction is read
        only.
    @param statement_timeout: the longest a statement may run on this
        connection (a PostgreSQL duration, C{"5s"}), where the server's
        configuration sets none; L{None} for no ceiling.
    @return: a connection to C{uri}, in autocommit mode, with
        L{CLIENT_DEFAULTS} and L{SESSION_DEFAULTS} where nobody set
        their own.
    @raise StoreError: the server cannot be reached or refuses us.
    """
    settings = client_settings(uri)
    if read_only:
        read_only_option = "-c default_transaction_read_only=on"
        settings["options"] = f"{_given_options(uri)} {read_only_option}"
    session = dict(SESSION_DEFAULTS)
    if statement_timeout is not None:
        session["statement_timeout"] = statement_timeout
    with as_store_error("connecting to the store"):
        connection = psycopg.connect(uri, autocommit=True, **settings)
        try:
            connection.execute(_SET_DEFAULTS, (list(session), list(session.values())))
        except BaseException:
            connection.close()
            raise
    return connection


def usable(connection):
    """
    Whether C{connection}, idle between two of the store's calls, may
    still carry a statement, found without a round trip.

    An idle session the server ended (a stop, a restart, a failover, an
    administrator's C{pg_terminate_backend}) has left its last words on
    the socket: an error message, then the end of the stream.  psycopg
    learns of them only when it next sends a statement, which would then
    fail although the server may be back by now; so whatever waits on
    the socket is read first (never blocking), and a connection that
    turns out closed is not usable.  An idle connection of the store
    expects nothing else (it listens to no channel), so this costs one
    C{poll} when all is well.

    @param connection: a psycopg connection not inside a statement.
    """
    if connection.closed or connection.broken:
        return False
    try:
        # poll, not select: a process holding a fleet's connections opens
        # this one above select's descriptor limit (1024), where select
        # fails, and every call would connect again.
        waiting = select.poll()
        waiting.register(connection.fileno(), select.POLLIN)
        # An error message, then the end of the stream: at most a few
        # reads, each of what is already there.
        for _ in range(3):
            if not waiting.poll(0):
                break
            connection.pgconn.consume_input()
    except (psycopg.Error, OSError, ValueError):
        return False
    return connection.pgconn.status == pq.ConnStatus.OK
