"""
Tests for L{suto_server.store.postgres}: every shared store suite, run
against L{PostgresStore} on a real PostgreSQL server
(L{tests.support.postgres}), and what only a database server can get
wrong (a transaction half done, a row locked by another session).  The
life of the schema is tested in C{tests/store/postgres/}.
"""

from twisted.trial.unittest import SynchronousTestCase

from suto_server.store.postgres import PostgresStore
from tests.support.postgres import new_location
from tests.support.store_suite.accounts import AccountStoreTestsMixin
from tests.support.store_suite.audit import AuditStoreTestsMixin
from tests.support.store_suite.blacklist import BlacklistStoreTestsMixin
from tests.support.store_suite.keys import KeyStoreTestsMixin
from tests.support.store_suite.lifecycle import StoreTestsMixin
from tests.support.store_suite.moves import MoveStoreTestsMixin
from tests.support.store_suite.offline import OfflineStoreTestsMixin
from tests.support.store_suite.profiles import ProfileStoreTestsMixin
from tests.support.store_suite.rotation import RotationStoreTestsMixin
from tests.support.store_suite.windows import WindowStoreTestsMixin


class _OnPostgres:
    """
    Runs a shared store suite on a L{PostgresStore}.
    """

    def make_store(self):
        """
        @return: a L{PostgresStore} in a new schema of its own.
        """
        return PostgresStore.open(new_location(self))


class PostgresStoreTests(_OnPostgres, StoreTestsMixin, SynchronousTestCase):
    """
    The shared suite of the store's lifecycle, run against L{PostgresStore}.
    """


class PostgresAccountStoreTests(
    _OnPostgres, AccountStoreTestsMixin, SynchronousTestCase
):
    """
    The shared account store suite, run against L{PostgresStore}.
    """


class PostgresProfileStoreTests(
    _OnPostgres, ProfileStoreTestsMixin, SynchronousTestCase
):
    """
    The shared suite of profile records, run against L{PostgresStore}.
    """


class PostgresAuditStoreTests(_OnPostgres, AuditStoreTestsMixin, SynchronousTestCase):
    """
    The shared audit log suite, run against L{PostgresStore}.
    """


class PostgresKeyStoreTests(_OnPostgres, KeyStoreTestsMixin, SynchronousTestCase):
    """
    The shared suite of key confirmation and roll-back, run against
    L{PostgresStore}.
    """


class PostgresBlacklistStoreTests(
    _OnPostgres, BlacklistStoreTestsMixin, SynchronousTestCase
):
    """
    The shared blacklist suite, run against L{PostgresStore}.
    """


class PostgresWindowStoreTests(
    _OnPostgres, WindowStoreTestsMixin, SynchronousTestCase
):
    """
    The shared enrollment window suite, run against L{PostgresStore}.
    """


class PostgresRotationStoreTests(
    _OnPostgres, RotationStoreTestsMixin, SynchronousTestCase
):
    """
    The shared rotation store suite, run against L{PostgresStore}.
    """


class PostgresMoveStoreTests(_OnPostgres, MoveStoreTestsMixin, SynchronousTestCase):
    """
    The shared suite of moves, run against L{PostgresStore}.
    """


class PostgresOfflineStoreTests(
    _OnPostgres, OfflineStoreTestsMixin, SynchronousTestCase
):
    """
    The shared suite of offline spells, run against L{PostgresStore}.
    """
