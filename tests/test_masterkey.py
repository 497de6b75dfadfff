"""
Tests for L{suto_server.masterkey}: the master key file, and keys sealed
with it.
"""

import hashlib
import os
import shutil
import stat
from dataclasses import replace

from twisted.logger import capturedLogs
from twisted.trial.unittest import SynchronousTestCase

from suto_server import masterkey
from suto_server.masterkey import (
    MASTER_KEY_SIZE,
    SEALED_KEY_SIZE,
    MasterKey,
    MasterKeyError,
)
from suto_server.store.sqlite import SQLiteStore
from tests.support.store_suite.values import PROFILE, WINDOW

# A profile key unlike any other value the tests store.
KEY = hashlib.sha256(b"a profile key").digest()
KEY_ID = "0123456789abcdef" * 2


def _read_bytes(path):
    """
    @return: the contents of the file at C{path}.
    """
    with open(path, "rb") as f:
        return f.read()


def _write_bytes(path, data, mode=0o400):
    """
    Write C{data} to a new file at C{path} with C{mode}.
    """
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)


class MasterKeyFileTests(SynchronousTestCase):
    """
    L{MasterKey.load_or_create} creates the key file once and then only
    reads it.
    """

    def setUp(self):
        self.directory = self.mktemp()
        os.mkdir(self.directory)
        self.path = os.path.join(self.directory, "master.key")

    def test_create(self):
        """
        With no file at the path, a new random key is written there, mode
        0400, and nothing else is left in the folder; the creation is
        logged with the path but not the key.
        """
        with capturedLogs() as events:
            MasterKey.load_or_create(self.path)
        self.assertEqual(os.listdir(self.directory), ["master.key"])
        key = _read_bytes(self.path)
        self.assertEqual(len(key), MASTER_KEY_SIZE)
        self.assertNotEqual(key, bytes(MASTER_KEY_SIZE))
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o400)
        self.assertEqual([event["path"] for event in events], [self.path])
        self.assertNotIn(key.hex(), repr(events))
        self.assertNotIn(repr(key), repr(events))

    def test_reload(self):
        """
        Loading an existing file gives the same key (a key sealed before
        opens after), leaves the file exactly as it was and logs nothing.
        """
        first = MasterKey.load_or_create(self.path)
        before = os.stat(self.path)
        contents = _read_bytes(self.path)
        blob = first.seal_key("alice", KEY_ID, KEY)
        with capturedLogs() as events:
            second = MasterKey.load_or_create(self.path)
        self.assertEqual(second.open_key("alice", KEY_ID, blob), KEY)
        after = os.stat(self.path)
        self.assertEqual(
            (after.st_ino, after.st_mtime_ns),
            (before.st_ino, before.st_mtime_ns),
        )
        self.assertEqual(_read_bytes(self.path), contents)
        self.assertEqual(events, [])

    def test_distinct_keys(self):
        """
        Two new master keys differ: a key sealed with one does not open
        with the other.
        """
        other_path = os.path.join(self.directory, "other.key")
        first = MasterKey.load_or_create(self.path)
        second = MasterKey.load_or_create(other_path)
        self.assertNotEqual(_read_bytes(self.path), _read_bytes(other_path))
        blob = first.seal_key("alice", KEY_ID, KEY)
        self.assertRaises(
            MasterKeyError, second.open_key, "alice", KEY_ID, blob
        )

    def test_wrong_size(self):
        """
        A file that does not hold exactly 32 bytes is refused with an error
        naming the path and the size, and is left as it was: a master key
        is never replaced.
        """
        for size in [0, 1, MASTER_KEY_SIZE - 1, MASTER_KEY_SIZE + 1, 4096]:
            _write_bytes(self.path, b"k" * size)
            error = self.assertRaises(
                MasterKeyError, MasterKey.load_or_create, self.path
            )
            self.assertIn(self.path, str(error))
            self.assertIn(f"exactly {MASTER_KEY_SIZE} bytes", str(error))
            self.assertEqual(_read_bytes(self.path), b"k" * size)
            os.remove(self.path)

    def test_open_to_others(self):
        """
        A key file that other users could read or write is refused with an
        error saying how to fix it, and is left as it was.
        """
        for mode in [0o440, 0o404, 0o402, 0o644]:
            _write_bytes(self.path, KEY, mode)
            error = self.assertRaises(
                MasterKeyError, MasterKey.load_or_create, self.path
            )
            self.assertIn(f"chmod 0400 {self.path}", str(error))
            self.assertEqual(_read_bytes(self.path), KEY)
            os.remove(self.path)

    def test_owner_may_write(self):
        """
        A key file its owner may also write (0600, as a restore from
        backup may leave it) is accepted.
        """
        _write_bytes(self.path, KEY, 0o600)
        blob = MasterKey(KEY).seal_key("alice", KEY_ID, KEY)
        loaded = MasterKey.load_or_create(self.path)
        self.assertEqual(loaded.open_key("alice", KEY_ID, blob), KEY)

    def test_not_a_file(self):
        """
        A folder where the key file should be is refused with an error
        naming the path, and left alone.
        """
        os.mkdir(self.path)
        error = self.assertRaises(
            MasterKeyError, MasterKey.load_or_create, self.path
        )
        self.assertIn(self.path, str(error))
        self.assertEqual(os.listdir(self.path), [])

    def test_missing_folder(self):
        """
        A path in a folder that does not exist is refused with an error
        naming the path, and nothing is created.
        """
        path = os.path.join(self.directory, "absent", "master.key")
        error = self.assertRaises(
            MasterKeyError, MasterKey.load_or_create, path
        )
        self.assertIn(path, str(error))
        self.assertEqual(os.listdir(self.directory), [])

    def test_created_meanwhile(self):
        """
        When another process creates the key file between the check for
        one and the creation of a new one, its key is used and kept, not
        replaced, and no temporary file is left.
        """
        _write_bytes(self.path, KEY)
        real_read = masterkey._read
        calls = []

        def read_after_race(path):
            calls.append(path)
            if len(calls) == 1:
                raise FileNotFoundError(path)
            return real_read(path)

        self.patch(masterkey, "_read", read_after_race)
        loaded = MasterKey.load_or_create(self.path)
        blob = MasterKey(KEY).seal_key("alice", KEY_ID, KEY)
        self.assertEqual(loaded.open_key("alice", KEY_ID, blob), KEY)
        self.assertEqual(_read_bytes(self.path), KEY)
        self.assertEqual(os.listdir(self.directory), ["master.key"])
        self.assertEqual(calls, [self.path, self.path])


class SealTests(SynchronousTestCase):
    """
    L{MasterKey.seal_key} and L{MasterKey.open_key}: a sealed key opens
    only with the same master key, username and key id.
    """

    def setUp(self):
        self.master = MasterKey(bytes(range(100, 132)))

    def test_round_trip(self):
        """
        A sealed key is L{SEALED_KEY_SIZE} bytes, does not contain the key,
        and opens to the key.
        """
        blob = self.master.seal_key("alice", KEY_ID, KEY)
        self.assertEqual(len(blob), SEALED_KEY_SIZE)
        self.assertNotIn(KEY, blob)
        self.assertEqual(self.master.open_key("alice", KEY_ID, blob), KEY)

    def test_notice_key(self):
        """
        The notice key is one per master key, 32 bytes, and neither the
        master key nor another master key's.
        """
        key = self.master.notice_key()
        self.assertEqual(len(key), 32)
        self.assertEqual(MasterKey(bytes(range(100, 132))).notice_key(), key)
        self.assertNotEqual(key, bytes(range(100, 132)))
        self.assertNotEqual(MasterKey(bytes(range(32))).notice_key(), key)

    def test_fresh_nonce(self):
        """
        Sealing the same key twice gives two different seals (a fresh
        nonce each time), both of which open.
        """
        blobs = [self.master.seal_key("alice", KEY_ID, KEY) for _ in range(2)]
        self.assertNotEqual(blobs[0][:12], blobs[1][:12])
        for blob in blobs:
            self.assertEqual(self.master.open_key("alice", KEY_ID, blob), KEY)

    def assert_cannot_open(self, master, username, key_id, blob):
        """
        Opening fails with L{MasterKeyError}, with the same message
        whatever the reason, naming no input.
        """
        error = self.assertRaises(
            MasterKeyError, master.open_key, username, key_id, blob
        )
        self.assertEqual(str(error), masterkey._CANNOT_OPEN)

    def test_bound_to_username(self):
        """
        A key sealed for one user does not open for another.
        """
        blob = self.master.seal_key("alice", KEY_ID, KEY)
        for username in ["bob", "Alice", "alice ", "alic"]:
            self.assert_cannot_open(self.master, username, KEY_ID, blob)

    def test_bound_to_key_id(self):
        """
        A key sealed under one key id does not open under another, so a
        seal copied onto another row does not open there.
        """
        blob = self.master.seal_key("alice", KEY_ID, KEY)
        for key_id in ["f" * 32, KEY_ID[:-1] + "0", KEY_ID[:-1]]:
            self.assert_cannot_open(self.master, "alice", key_id, blob)

    def test_binding_unambiguous(self):
        """
        Moving characters between the username and the key id does not
        give the same binding.
        """
        blob = self.master.seal_key("alice", KEY_ID, KEY)
        self.assert_cannot_open(self.master, "alice0", KEY_ID[1:], blob)

    def test_other_master_key(self):
        """
        A key sealed with one master key does not open with another.
        """
        blob = self.master.seal_key("alice", KEY_ID, KEY)
        other = MasterKey(bytes(range(1, 33)))
        self.assert_cannot_open(other, "alice", KEY_ID, blob)

    def test_tampered(self):
        """
        Changing any bit of a seal, or shortening or lengthening it, makes
        it fail to open.
        """
        blob = self.master.seal_key("alice", KEY_ID, KEY)
        for index in range(len(blob)):
            for bit in [0x01, 0x80]:
                tampered = bytearray(blob)
                tampered[index] ^= bit
                self.assert_cannot_open(
                    self.master, "alice", KEY_ID, bytes(tampered)
                )
        for changed in [blob[:-1], blob + b"\x00", b"", blob[12:]]:
            self.assert_cannot_open(self.master, "alice", KEY_ID, changed)

    def test_open_bad_arguments(self):
        """
        Malformed arguments to C{open_key} fail as any other seal that does
        not open, with L{MasterKeyError} and nothing else.
        """
        blob = self.master.seal_key("alice", KEY_ID, KEY)
        for username, key_id, sealed in [
            (None, KEY_ID, blob),
            (b"alice", KEY_ID, blob),
            ("", KEY_ID, blob),
            ("\ud800", KEY_ID, blob),
            ("alice", None, blob),
            ("alice", "", blob),
            ("alice", "k" * 65, blob),
            ("alice", KEY_ID, None),
            ("alice", KEY_ID, bytearray(blob)),
            ("alice", KEY_ID, blob.hex()),
        ]:
            self.assert_cannot_open(self.master, username, key_id, sealed)

    def test_seal_bad_arguments(self):
        """
        Malformed arguments to C{seal_key} raise L{MasterKeyError}.
        """
        for username, key_id, key in [
            (None, KEY_ID, KEY),
            ("", KEY_ID, KEY),
            ("a" * 256, KEY_ID, KEY),
            ("\ud800", KEY_ID, KEY),
            ("alice", 7, KEY),
            ("alice", "", KEY),
            ("alice", "k" * 65, KEY),
            ("alice", KEY_ID, KEY[:-1]),
            ("alice", KEY_ID, KEY + b"\x00"),
            ("alice", KEY_ID, bytearray(KEY)),
            ("alice", KEY_ID, None),
        ]:
            self.assertRaises(
                MasterKeyError, self.master.seal_key, username, key_id, key
            )

    def test_bad_master_key(self):
        """
        A master key of the wrong type or size is refused.
        """
        for key in [b"", bytes(31), bytes(33), bytearray(32), "k" * 32, None]:
            self.assertRaises(MasterKeyError, MasterKey, key)

    def test_repr(self):
        """
        A master key does not show its key when printed or logged.
        """
        key = bytes(range(100, 132))
        self.assertNotIn(key.hex(), repr(self.master))
        self.assertNotIn(repr(key), repr(self.master))
        self.assertNotIn(key.hex(), str(self.master))


class KeysAtRestTests(SynchronousTestCase):
    """
    Keys in the store are sealed: the database alone yields none.
    """

    def test_copied_database(self):
        """
        A copy of the database, opened where the master key is not, holds
        the sealed key but not the key, and the sealed key does not open
        with any other master key; with the original master key it does.
        """
        data = self.mktemp()
        os.mkdir(data)
        master = MasterKey.load_or_create(os.path.join(data, "master.key"))
        profile = replace(
            PROFILE, key_sealed=master.seal_key("alice", PROFILE.key_id, KEY)
        )
        store = SQLiteStore.open(os.path.join(data, "suto.db"))
        store.open_window(WINDOW)
        store.complete_enrollment(profile)
        store.close()

        elsewhere = self.mktemp()
        os.mkdir(elsewhere)
        shutil.copy(os.path.join(data, "suto.db"), elsewhere)
        self.assertFalse(
            KEY in _read_bytes(os.path.join(elsewhere, "suto.db"))
        )
        copy = SQLiteStore.open(os.path.join(elsewhere, "suto.db"))
        self.addCleanup(copy.close)
        copied = copy.get_profile("alice")
        self.assertEqual(copied, profile)
        other = MasterKey.load_or_create(os.path.join(elsewhere, "master.key"))
        self.assertRaises(
            MasterKeyError,
            other.open_key,
            "alice",
            copied.key_id,
            copied.key_sealed,
        )
        self.assertEqual(
            master.open_key("alice", copied.key_id, copied.key_sealed), KEY
        )
