"""
C{suto-admin init}, C{backup} and C{restore} (L{suto_server.admin.backup}),
run with injected streams on real data folders in temporary folders, with
no daemon: the daemon's side (a backup while it writes, a restore refused
while it runs) is in L{tests.admin.test_cli}.
"""

import fcntl
import os
import shutil
import sqlite3
import stat

from twisted.python.lockfile import FilesystemLock
from twisted.trial.unittest import SynchronousTestCase

from suto_server.admin import backup
from suto_server.admin.backup import KEY_FILES
from suto_server.datafolder import ADMIN_SOCKET, DATABASE_FILE, MASTER_KEY_FILE
from suto_server.datalock import LOCK_FILE, is_held
from suto_server.masterkey import MASTER_KEY_MODE, MasterKey
from suto_server.net import certificate
from suto_server.store.open import open_store
from suto_server.store.records import AuditEvent
from tests.support.admin import run_admin
from tests.support.store_suite.values import HASH, profile_for, window_for

NOW = 1_700_000_000.0


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def _read(path):
    with open(path, "rb") as handle:
        return handle.read()


class DataFolderCase(SynchronousTestCase):
    """
    A data folder made by C{suto-admin init} in C{self.data}, under the
    test's own folder C{self.base}.
    """

    def setUp(self):
        self.base = os.path.abspath(self.mktemp())
        os.mkdir(self.base)
        self.data = os.path.join(self.base, "data")
        code, _, err = run_admin("--data", self.data, "init")
        self.assertEqual((code, err), (0, ""))
        self.database = os.path.join(self.data, DATABASE_FILE)

    def admin(self, *argv):
        return run_admin("--data", self.data, *argv)

    def store(self, path=None):
        """
        @return: the store in C{path} (the data folder's by default),
            closed when the test ends.
        """
        store = open_store(path or self.database)
        self.addCleanup(store.close)
        return store

    def enroll(self, store, master_key, user="alice"):
        """
        Store a profile for C{user} whose key C{master_key} sealed.
        """
        key_id = "0123456789abcdef" * 2
        store.open_window(window_for(user))
        store.complete_enrollment(
            profile_for(
                user,
                key_id=key_id,
                key_sealed=master_key.seal_key(user, key_id, bytes(32)),
            )
        )


class InitTests(DataFolderCase):
    """
    C{suto-admin init} makes the data folder as the daemon's first start
    would, and only once.
    """

    def test_created(self):
        """
        The folder is mode 0700 and holds a store and a master key (mode
        0400, as the daemon makes it); the line printed names them.
        """
        self.assertEqual(_mode(self.data), 0o700)
        self.assertEqual(
            _mode(os.path.join(self.data, MASTER_KEY_FILE)), MASTER_KEY_MODE
        )
        self.assertEqual(self.store().list_users(), [])
        code, out, err = run_admin("--data", self.mktemp(), "init")
        self.assertEqual((code, out.count("\n"), err), (0, 1, ""))
        self.assertIn(DATABASE_FILE, out)
        self.assertIn(MASTER_KEY_FILE, out)

    def test_once(self):
        """
        A second C{init} of the same folder exits 1 with one line and
        changes nothing.
        """
        key = _read(os.path.join(self.data, MASTER_KEY_FILE))
        before = _read(self.database)
        code, out, err = self.admin("init")
        self.assertEqual(
            (code, out, err),
            (1, "", f"suto-admin: {self.data} already holds a store\n"),
        )
        self.assertEqual(_read(os.path.join(self.data, MASTER_KEY_FILE)), key)
        self.assertEqual(_read(self.database), before)

    def test_then_accounts(self):
        """
        The account commands work on the folder C{init} made.
        """
        code, _, err = run_admin(
            "--data", self.data, "user", "add", "dora", "--password-stdin",
            "--rounds", "1000", stdin="pw\n",
        )
        self.assertEqual((code, err), (0, ""))
        code, out, _ = self.admin("user", "list")
        self.assertEqual((code, out.splitlines()[1].split("\t")[0]), (0, "dora"))


class BackupTests(DataFolderCase):
    """
    C{suto-admin backup DEST} copies the store (with what is still in its
    write-ahead log), the master key and the TLS files into a new folder.
    """

    def setUp(self):
        super().setUp()
        for name in ("server.key", "server.crt"):
            with open(os.path.join(self.data, name), "wb") as handle:
                handle.write(name.encode())
        self.destination = os.path.join(self.base, "backup")

    def test_write_ahead_log(self):
        """
        While a connection holds writes not yet checkpointed into the
        file, a C{cp} of the file lacks them: C{audit verify --file} on
        that copy, which holds an account but no audit record, exits 1
        with one line.  The backup holds them all, and C{audit verify}
        counts them.
        """
        store = self.store()
        store.add_user("alice", HASH, NOW)
        checkpoint = sqlite3.connect(self.database)
        checkpoint.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        checkpoint.close()
        for second in range(3):
            store.append_audit(
                AuditEvent(NOW + second, "user_added", "alice", None, "")
            )
        self.assertGreater(os.path.getsize(self.database + "-wal"), 0)
        copy = os.path.join(self.base, "copy.db")
        shutil.copyfile(self.database, copy)
        code, out, err = self.admin("audit", "verify", "--file", copy)
        self.assertEqual((code, out, err.count("\n")), (1, "", 1))
        self.assertIn("no audit record in a store with accounts", err)

        code, out, err = self.admin("backup", self.destination)
        self.assertEqual((code, err), (0, ""))
        backed_up = os.path.join(self.destination, DATABASE_FILE)
        code, out, err = self.admin("audit", "verify", "--file", backed_up)
        self.assertEqual(
            (code, out, err),
            (
                0,
                "3 record(s), the last at 2023-11-14T22:13:22Z\n"
                "the audit log is intact\n",
                "",
            ),
        )

    def test_names(self):
        """
        The TLS files backed up are those the daemon generates, named here
        without loading the cryptography package.
        """
        self.assertEqual(
            KEY_FILES, (MASTER_KEY_FILE, certificate.KEY_FILE, certificate.CERT_FILE)
        )

    def test_files(self):
        """
        The backup folder is mode 0700 and holds the store, the master key
        and the TLS key and certificate, each mode 0600, and one line per
        file says so; the store is one file, without a write-ahead log.
        """
        code, out, err = self.admin("backup", self.destination)
        names = [DATABASE_FILE, MASTER_KEY_FILE, "server.key", "server.crt"]
        self.assertEqual(
            (code, out, err),
            (
                0,
                "".join(
                    f"wrote {os.path.join(self.destination, name)}\n"
                    for name in names
                ),
                "",
            ),
        )
        self.assertEqual(_mode(self.destination), 0o700)
        self.assertEqual(sorted(os.listdir(self.destination)), sorted(names))
        for name in names:
            self.assertEqual(_mode(os.path.join(self.destination, name)), 0o600)
        for name in names[1:]:
            self.assertEqual(
                _read(os.path.join(self.destination, name)),
                _read(os.path.join(self.data, name)),
            )

    def test_existing_destination(self):
        """
        A destination that exists, even empty, is refused with one line
        and left as it is.
        """
        os.mkdir(self.destination)
        code, out, err = self.admin("backup", self.destination)
        self.assertEqual((code, out, err.count("\n")), (1, "", 1))
        self.assertIn(self.destination, err)
        self.assertEqual(os.listdir(self.destination), [])

    def test_nothing_left_on_failure(self):
        """
        A data folder without a store gives no backup: exit 1, one line,
        and neither the destination nor a half-made folder beside it.
        """
        os.remove(self.database)
        code, out, err = self.admin("backup", self.destination)
        self.assertEqual((code, out, err.count("\n")), (1, "", 1))
        self.assertIn("init' or start the daemon", err)
        self.assertEqual(sorted(os.listdir(self.base)), ["data"])


class RestoreTests(DataFolderCase):
    """
    C{suto-admin restore SRC} checks a backup, then puts it in place of
    the data folder's files, never while the daemon runs.
    """

    def setUp(self):
        super().setUp()
        self.master_key = MasterKey.load_or_create(
            os.path.join(self.data, MASTER_KEY_FILE)
        )
        store = self.store()
        store.add_user("alice", HASH, NOW)
        store.append_audit(AuditEvent(NOW, "user_added", "alice", None, ""))
        self.enroll(store, self.master_key)
        self.source = os.path.join(self.base, "backup")
        code, _, err = self.admin("backup", self.source)
        self.assertEqual((code, err), (0, ""))

    def test_restore(self):
        """
        The backup replaces the store and the master key, a stale
        write-ahead log of the replaced store goes, and one line per file
        says what was restored.
        """
        self.store().remove_user("alice")
        os.remove(os.path.join(self.data, MASTER_KEY_FILE))
        MasterKey.load_or_create(os.path.join(self.data, MASTER_KEY_FILE))
        with open(self.database + "-wal", "wb") as handle:
            handle.write(b"a log of another store")
        code, out, err = self.admin("restore", self.source)
        self.assertEqual(
            (code, out, err),
            (
                0,
                f"restored {self.database}\n"
                f"restored {os.path.join(self.data, MASTER_KEY_FILE)}\n",
                "",
            ),
        )
        self.assertFalse(os.path.exists(self.database + "-wal"))
        self.assertEqual(
            _mode(os.path.join(self.data, MASTER_KEY_FILE)), MASTER_KEY_MODE
        )
        self.assertEqual(
            _read(os.path.join(self.data, MASTER_KEY_FILE)),
            _read(os.path.join(self.source, MASTER_KEY_FILE)),
        )
        code, out, _ = self.admin("user", "list")
        self.assertEqual((code, out.splitlines()[1].split("\t")[0]), (0, "alice"))

    def test_folder_locked_while_restoring(self):
        """
        The data folder's lock is held while the files are put back, so a
        server started meanwhile stops at its start, and let go after.
        """
        held = []
        restore_files = backup.restore_files

        def watching(data, files):
            held.append(is_held(self.data))
            restore_files(data, files)

        self.patch(backup, "restore_files", watching)
        code, _, err = self.admin("restore", self.source)
        self.assertEqual((code, err), (0, ""))
        self.assertEqual(set(held), {True})
        self.assertFalse(is_held(self.data))

    def test_into_new_folder(self):
        """
        A data folder that is not there is made (mode 0700) to restore
        into.
        """
        data = os.path.join(self.base, "new")
        code, _, err = run_admin("--data", data, "restore", self.source)
        self.assertEqual((code, err), (0, ""))
        self.assertEqual(_mode(data), 0o700)
        users = self.store(os.path.join(data, DATABASE_FILE)).list_users()
        self.assertEqual([user.username for user in users], ["alice"])

    def assert_refused(self, message):
        """
        C{restore} exits 1 with one line holding C{message}, and the data
        folder is unchanged.
        """
        before = {
            name: _read(os.path.join(self.data, name))
            for name in (DATABASE_FILE, MASTER_KEY_FILE)
        }
        code, out, err = self.admin("restore", self.source)
        self.assertEqual((code, out, err.count("\n")), (1, "", 1))
        self.assertIn(message, err)
        for name, data in before.items():
            self.assertEqual(_read(os.path.join(self.data, name)), data)

    def test_broken_audit_log(self):
        """
        A backup whose audit log was edited is not restored.
        """
        connection = sqlite3.connect(os.path.join(self.source, DATABASE_FILE))
        with connection:
            connection.execute("UPDATE audit SET reason = 'edited'")
        connection.close()
        self.assert_refused("audit log")

    def test_other_master_key(self):
        """
        A backup whose master key does not open its profiles' keys is not
        restored.
        """
        os.remove(os.path.join(self.source, MASTER_KEY_FILE))
        MasterKey.load_or_create(os.path.join(self.source, MASTER_KEY_FILE))
        self.assert_refused("does not open the key of alice")

    def test_no_master_key(self):
        """
        A backup without a master key is not restored.
        """
        os.remove(os.path.join(self.source, MASTER_KEY_FILE))
        self.assert_refused("no master key")

    def test_data_folder_locked(self):
        """
        While the data folder's lock is held, as a running daemon holds
        it, nothing is restored; the lock file is only read.
        """
        path = os.path.join(self.data, LOCK_FILE)
        with open(path, "w") as handle:
            handle.write("4242\n")
        holder = open(path)
        self.addCleanup(holder.close)
        fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.assert_refused("is running")
        fcntl.flock(holder, fcntl.LOCK_UN)
        code, _, err = self.admin("restore", self.source)
        self.assertEqual((code, err), (0, ""))

    def test_daemon_running(self):
        """
        While the admin socket's lock is held, as a running daemon holds
        it, nothing is restored.
        """
        lock = FilesystemLock(os.path.join(self.data, ADMIN_SOCKET) + ".lock")
        self.assertTrue(lock.lock())
        self.addCleanup(lock.unlock)
        self.assert_refused("is running")
