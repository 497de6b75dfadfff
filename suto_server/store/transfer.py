# -*- test-case-name: tests.store.test_transfer,tests.admin.test_storecopy -*-
"""
What a store offers besides its state (L{suto_server.store.interfaces}):
its whole content as rows, out and in, for C{suto-admin store copy}.
Only the SQL stores provide it (L{suto_server.store.sql.transfer});
the running server never uses it.
"""

from zope.interface import Interface


class IStoreTransfer(Interface):
    """
    A store's whole content as rows, out and in, for moving a deployment
    from one store to another (C{suto-admin store copy}).  The SQL stores
    provide it (L{suto_server.store.sql.transfer}); the tables it carries
    are named there, once, for every store.

    Threads: the admin command's one thread; a load replaces everything
    the store holds, so no daemon may be using it.
    """

    def schema_tables():
        """
        @return: the L{set} of the names of every table of the store's
            schema, the store's own bookkeeping tables included.
        """

    def dump():
        """
        Read every carried table, from one snapshot of the store.

        @return: an iterator of L{suto_server.store.sql.transfer.TableRows},
            one per carried table, parents before children; the snapshot
            ends when the iterator is exhausted or closed.
        @raise suto_server.store.errors.StoreError: the schema holds a
            table no copy carries (nothing is read), or reading failed.
        """

    def load(tables):
        """
        Replace the content of every carried table with C{tables}, in one
        transaction, the rows with their ids as given; the counters the
        store gives ids out from then follow the highest id loaded.

        @param tables: L{suto_server.store.sql.transfer.TableRows}, as
            L{dump} gives them (from this store or another).
        @raise ValueError: a table is not one a copy carries; nothing
            changed.
        @raise suto_server.store.errors.StoreError: a row does not fit
            the store's schema, or writing failed; nothing changed.
        """

    def count_rows():
        """
        @return: a L{dict} from the name of every carried table to how
            many rows it holds.
        """
