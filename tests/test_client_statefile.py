"""
Tests for L{suto_client.statefile}: the agent's durable state.
"""

import json
import os
import stat
from unittest import mock

from twisted.trial.unittest import SynchronousTestCase

from suto_client.statefile import (
    Account,
    ClientState,
    StateFileError,
    load_state,
    save_state,
)

PIN = "ab" * 32


def sample_state() -> ClientState:
    return ClientState(
        {
            "alice": Account(
                user="alice",
                server_host="192.0.2.10",
                pin=PIN,
                password="alice's secret",
            ),
            "bob": Account(
                user="bob",
                server_host="2001:db8::1",
                server_port=3021,
                legacy=True,
                salt="$6$saltsaltsaltsalt$",
                salted_hash="$6$saltsaltsaltsalt$" + "h" * 86,
            ),
        }
    )


class StateFileTests(SynchronousTestCase):
    def setUp(self):
        self.directory = self.mktemp()
        os.makedirs(self.directory)
        self.path = os.path.join(self.directory, "client.json")

    def write_raw(self, data: bytes, mode: int = 0o600) -> None:
        with open(self.path, "wb") as stream:
            stream.write(data)
        os.chmod(self.path, mode)

    def test_missing_file_is_empty(self):
        """
        A state file that does not exist yet reads as no accounts.
        """
        self.assertEqual(load_state(self.path), ClientState())

    def test_round_trip(self):
        """
        What is saved is what is loaded, every field included.
        """
        save_state(self.path, sample_state())
        self.assertEqual(load_state(self.path), sample_state())

    def test_document_layout(self):
        """
        The file is a JSON object carrying a version number and the
        accounts keyed by user.
        """
        save_state(self.path, sample_state())
        with open(self.path, encoding="utf-8") as stream:
            document = json.load(stream)
        self.assertEqual(document["version"], 1)
        self.assertEqual(sorted(document["accounts"]), ["alice", "bob"])
        self.assertEqual(document["accounts"]["bob"]["server_port"], 3021)

    def test_mode_0600(self):
        """
        The file is readable by its owner only.
        """
        save_state(self.path, sample_state())
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode), 0o600)

    def test_creates_directory(self):
        """
        A missing parent directory is created, accessible to its owner only.
        """
        path = os.path.join(self.directory, "nested", "client.json")
        save_state(path, sample_state())
        self.assertEqual(load_state(path), sample_state())
        mode = os.stat(os.path.dirname(path)).st_mode
        self.assertEqual(stat.S_IMODE(mode) & 0o077, 0)

    def test_replace_leaves_no_temporary(self):
        """
        After saving twice, the directory holds the state file alone.
        """
        save_state(self.path, sample_state())
        save_state(self.path, ClientState())
        self.assertEqual(os.listdir(self.directory), ["client.json"])
        self.assertEqual(load_state(self.path), ClientState())

    def test_failed_replace_keeps_old_file(self):
        """
        If the final rename fails, the old file is intact, the temporary
        file is gone, and the failure is a L{StateFileError}.
        """
        save_state(self.path, sample_state())
        with mock.patch("os.replace", side_effect=OSError(5, "I/O error")):
            error = self.assertRaises(
                StateFileError, save_state, self.path, ClientState()
            )
        self.assertIn(self.path, str(error))
        self.assertEqual(os.listdir(self.directory), ["client.json"])
        self.assertEqual(load_state(self.path), sample_state())

    def test_passwords_not_in_repr(self):
        """
        Printing an account shows neither its password nor its salted
        hash.
        """
        text = repr(sample_state())
        self.assertNotIn("alice's secret", text)
        self.assertNotIn("h" * 86, text)

    def test_corrupt(self):
        """
        A file that is not JSON is an error naming the file.
        """
        self.write_raw(b"{not json")
        error = self.assertRaises(StateFileError, load_state, self.path)
        self.assertIn(self.path, str(error))

    def test_wrong_shape(self):
        """
        JSON that is not a state document, or an account with a field of
        the wrong kind, is an error naming the file.
        """
        valid = {
            "server_host": "192.0.2.1",
            "server_port": 2021,
            "pin": None,
            "legacy": True,
            "password": "pw",
            "salt": None,
            "salted_hash": None,
        }
        documents = [
            [],
            {"accounts": {}},
            {"version": 1, "accounts": []},
            {"version": 1, "accounts": {"a": "b"}},
            {"version": 1, "accounts": {"a": dict(valid, server_port=True)}},
            {"version": 1, "accounts": {"a": dict(valid, server_port=0)}},
            {"version": 1, "accounts": {"a": dict(valid, server_host="x.y")}},
            {"version": 1, "accounts": {"a": dict(valid, pin="abc")}},
            {"version": 1, "accounts": {"a": dict(valid, password=7)}},
            {"version": 1, "accounts": {"a": dict(valid, legacy="yes")}},
            {"version": 1, "accounts": {"": valid}},
        ]
        for document in documents:
            self.write_raw(json.dumps(document).encode())
            error = self.assertRaises(StateFileError, load_state, self.path)
            self.assertIn(self.path, str(error))

    def test_newer_version(self):
        """
        A file written by a newer version is refused, not misread.
        """
        self.write_raw(json.dumps({"version": 2, "accounts": {}}).encode())
        error = self.assertRaises(StateFileError, load_state, self.path)
        self.assertIn("newer", str(error))

    def test_too_permissive(self):
        """
        A file other users could read is refused: it holds credentials.
        """
        save_state(self.path, sample_state())
        os.chmod(self.path, 0o644)
        error = self.assertRaises(StateFileError, load_state, self.path)
        self.assertIn("0600", str(error))

    def test_too_large(self):
        """
        A file too large to be a state file is refused without parsing.
        """
        self.write_raw(b" " * (1024 * 1024 + 1))
        self.assertRaises(StateFileError, load_state, self.path)

    def test_unreadable(self):
        """
        A path that cannot be opened (here a directory) is an error naming
        it, not an arbitrary exception.
        """
        error = self.assertRaises(StateFileError, load_state, self.directory)
        self.assertIn(self.directory, str(error))
