# -*- test-case-name: tests.cluster.test_relay,tests.store.postgres.test_outage,tests.store.postgres.test_notices -*-
"""
What the server processes sharing one PostgreSQL store tell each other
about pending classic authentications: notices on a channel of the
store's own (PostgreSQL's C{NOTIFY}), and claims that one session at a
time can hold (advisory locks).

A notice reaches every session listening on the channel when the
statement that sent it commits (here at once: the store's connection is
in autocommit mode), in the order sent; one sent while a listener was
away is lost to it, which the rendezvous bears (its requests time out).
The channel is named after the store's schema, so that stores in several
schemas of one database do not hear each other.  A claim is an advisory
lock on a random 63-bit key the request was given, held by the session
that took it until it is let go or the session ends.
"""

import psycopg
from psycopg import sql
from zope.interface import implementer

from suto_server.store.clustering import INoticeListener
from suto_server.store.postgres.session import (
    SHORT_STATEMENTS,
    as_store_error,
    connect,
)

#: The longest notice PostgreSQL carries, in bytes.
MAX_NOTICE = 7999

_CHANNEL = "SELECT 'suto_rendezvous_' || left(md5(current_schema()), 16)"


def _channel(connection) -> str:
    [(name,)] = connection.execute(_CHANNEL).fetchall()
    return name


class Notices:
    """
    The notices and claims part of L{suto_server.store.postgres.PostgresStore};
    see L{suto_server.store.clustering.IClusteredStore}.
    """

    def announce(self, notice):
        """
        See L{IClusteredStore.announce}.
        """
        if len(notice.encode("utf-8")) > MAX_NOTICE:
            raise ValueError("a notice is longer than PostgreSQL carries")
        with self._session("announcing to the other processes") as connection:
            connection.execute(
                f"SELECT pg_notify(({_CHANNEL}), %s)", (notice,)
            )

    def take_claim(self, key):
        """
        See L{IClusteredStore.take_claim}.
        """
        with self._session("claiming a request") as connection:
            [(taken,)] = connection.execute(
                "SELECT pg_try_advisory_lock(%s)", (key,)
            ).fetchall()
        return taken

    def release_claim(self, key):
        """
        See L{IClusteredStore.release_claim}.
        """
        with self._session("letting a claim go") as connection:
            connection.execute("SELECT pg_advisory_unlock(%s)", (key,))

    def notice_listener(self):
        """
        See L{IClusteredStore.notice_listener}.
        """
        if self._uri is None:
            raise ValueError("this store has no URI to connect to again")
        return NoticeListener(self._uri)


@implementer(INoticeListener)
class NoticeListener:
    """
    A session of its own listening on the store's channel, opened by
    L{listen} or the first L{receive}, and again after the server
    dropped it: a wait for notices on a session the server ended (it
    stopped, restarted or failed over) or the network lost (the
    session's keepalives and user timeout notice that within seconds)
    fails with L{StoreError}, and the next call listens on a new
    session, once the server is back.  The notices sent meanwhile are
    lost to this listener, as the rendezvous bears.
    """

    def __init__(self, uri: str) -> None:
        self._uri = uri
        self._connection = None

    def listen(self):
        """
        See L{INoticeListener.listen}.
        """
        if self._connection is not None:
            if not (self._connection.closed or self._connection.broken):
                return
            # The server ended the session since (it stopped, restarted
            # or failed over): listen on a new one.
            self.close()
        connection = connect(self._uri, statement_timeout=SHORT_STATEMENTS)
        try:
            with as_store_error("listening to the other processes"):
                connection.execute(
                    sql.SQL("LISTEN {}").format(sql.Identifier(_channel(connection)))
                )
        except BaseException:
            connection.close()
            raise
        self._connection = connection

    def receive(self, timeout):
        """
        See L{INoticeListener.receive}: it returns as soon as a notice
        arrives, with every other one already there.
        """
        self.listen()
        try:
            with as_store_error("listening to the other processes"):
                notices = self._connection.notifies(timeout=timeout, stop_after=1)
                heard = [notice.payload for notice in notices]
                if heard:
                    # And those that came with it or since, without waiting.
                    heard += [n.payload for n in self._connection.notifies(timeout=0)]
                return heard
        except BaseException:
            self.close()
            raise

    def close(self):
        """
        See L{INoticeListener.close}.
        """
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except psycopg.Error:
                pass
