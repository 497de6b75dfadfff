"""
Tests for L{suto_client.statefile}: the agent's durable state.
"""

import json
import os
import stat
from unittest import mock

from twisted.trial.unittest import SynchronousTestCase

from suto_client.state import Account, ClientState, EnrolledProfile
from suto_client.statefile import StateFileError, load_state, save_state

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

    def test_tls_files_round_trip(self):
        """
        An account's CA bundle and client certificate paths are saved and
        loaded; an account written without them has none.
        """
        state = ClientState(
            {
                "carol": Account(
                    user="carol",
                    server_host="192.0.2.10",
                    ca="/etc/ssl/company-ca.pem",
                    client_cert="/etc/suto/client.crt",
                    client_key="/etc/suto/client.key",
                    password="pw",
                )
            }
        )
        save_state(self.path, state)
        self.assertEqual(load_state(self.path), state)
        entry = {
            "server_host": "192.0.2.1",
            "server_port": 2021,
            "pin": PIN,
            "legacy": False,
            "password": "pw",
            "salt": None,
            "salted_hash": None,
        }
        self.write_raw(
            json.dumps({"version": 1, "accounts": {"dave": entry}}).encode()
        )
        dave = load_state(self.path).accounts["dave"]
        self.assertEqual((dave.ca, dave.client_cert, dave.client_key), (None,) * 3)

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

    def test_nested_too_deeply(self):
        """
        A file nesting deeper than the JSON decoder recurses is an error
        naming the file, like any other file that is not JSON.
        """
        self.write_raw(b"[" * 100000)
        error = self.assertRaises(StateFileError, load_state, self.path)
        self.assertEqual(str(error), f"{self.path} is not valid JSON")

    def test_wrong_shape(self):
        """
        JSON that is not a state document, or an account with a field of
        the wrong kind or fields that contradict each other (a pin and a
        CA bundle, half a client certificate), is an error naming the file.
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
            {"version": 1, "accounts": {"a": dict(valid, pin=PIN, ca="/ca.pem")}},
            {"version": 1, "accounts": {"a": dict(valid, ca="")}},
            {"version": 1, "accounts": {"a": dict(valid, client_cert="/c.crt")}},
            {"version": 1, "accounts": {"a": dict(valid, client_key="/c.key")}},
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


KEY = bytes(range(32))


def sample_profile(**changes) -> EnrolledProfile:
    fields = dict(
        user="alice",
        server_host="192.0.2.10",
        server_port=2021,
        pin=PIN,
        key=KEY,
        key_id="0123456789abcdef" * 2,
        generation=0,
        enrolled_at=1700000000.5,
    )
    fields.update(changes)
    return EnrolledProfile(**fields)


class EnrolledProfileTests(SynchronousTestCase):
    def setUp(self):
        self.directory = self.mktemp()
        os.makedirs(self.directory)
        self.path = os.path.join(self.directory, "client.json")

    def write_document(self, document: object) -> None:
        with open(self.path, "w", encoding="utf-8") as stream:
            json.dump(document, stream)
        os.chmod(self.path, 0o600)

    def valid_entry(self) -> dict:
        return {
            "server_host": "192.0.2.10",
            "server_port": 2021,
            "pin": PIN,
            "key": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
            "key_id": "0123456789abcdef" * 2,
            "generation": 0,
            "enrolled_at": 1700000000.5,
        }

    def test_round_trip(self):
        """
        Profiles are saved and loaded with every field, next to the
        accounts.
        """
        state = sample_state()
        state.profiles = {
            "alice": sample_profile(),
            "bob": sample_profile(
                user="bob",
                server_host="2001:db8::1",
                generation=3,
                rotated_at=1700000100.25,
                offline_since=1700000300.0,
            ),
        }
        save_state(self.path, state)
        self.assertEqual(load_state(self.path), state)

    def test_trust_round_trip(self):
        """
        A profile trusting its server through a CA bundle, with a client
        certificate, is saved and loaded with those paths; a pinned
        profile without a client certificate is written without them, so
        it reads the same as in files from before them.
        """
        state = ClientState(
            profiles={
                "alice": sample_profile(
                    pin=None,
                    ca="/etc/suto/ca.pem",
                    client_cert="/etc/suto/client.crt",
                    client_key="/etc/suto/client.key",
                ),
                "bob": sample_profile(
                    user="bob",
                    client_cert="/etc/suto/bob.crt",
                    client_key="/etc/suto/bob.key",
                ),
            }
        )
        save_state(self.path, state)
        self.assertEqual(load_state(self.path), state)
        save_state(self.path, ClientState(profiles={"alice": sample_profile()}))
        with open(self.path, encoding="utf-8") as stream:
            entry = json.load(stream)["profiles"]["alice"]
        self.assertFalse({"ca", "client_cert", "client_key"} & set(entry))

    def test_invalid_trust(self):
        """
        The rules of accounts hold for profiles: a pin and a CA bundle
        exclude each other, a client certificate needs its key and the
        key its certificate, and paths are non-empty strings; a profile
        needs a pin or a CA bundle.  Each message names the profile.
        """
        valid = self.valid_entry()
        cases = [
            (dict(valid, ca="/ca.pem"), "pin and ca exclude each other"),
            (dict(valid, pin=None), "neither a pin nor a ca"),
            (dict(valid, client_cert="/c.crt"), "go together"),
            (dict(valid, client_key="/c.key"), "go together"),
            (dict(valid, pin=None, ca=""), "non-empty string"),
            (dict(valid, client_cert=7, client_key="/c.key"), "non-empty"),
        ]
        for entry, reason in cases:
            self.write_document(
                {"version": 1, "accounts": {}, "profiles": {"alice": entry}}
            )
            error = self.assertRaises(StateFileError, load_state, self.path)
            self.assertIn("profile 'alice'", str(error))
            self.assertIn(reason, str(error))

    def test_times_of_rotation_and_offline_spell(self):
        """
        The time of the last rotation and of going offline are written
        only once they happened, and a whole number loads as a float; the
        time the current key was agreed on is the last rotation's, or
        enrollment's before any.
        """
        self.assertEqual(sample_profile().last_agreed, 1700000000.5)
        entry = dict(self.valid_entry(), rotated_at=1700000060, offline_since=1700000200)
        self.write_document(
            {"version": 1, "accounts": {}, "profiles": {"alice": entry}}
        )
        profile = load_state(self.path).profiles["alice"]
        self.assertEqual(
            (profile.rotated_at, profile.offline_since, profile.last_agreed),
            (1700000060.0, 1700000200.0, 1700000060.0),
        )
        self.assertIs(type(profile.offline_since), float)

    def test_document_layout(self):
        """
        A profile is stored under C{"profiles"} by user, with its key in
        standard base64.
        """
        state = ClientState(profiles={"alice": sample_profile()})
        save_state(self.path, state)
        with open(self.path, encoding="utf-8") as stream:
            document = json.load(stream)
        self.assertEqual(document["version"], 1)
        self.assertEqual(document["profiles"], {"alice": self.valid_entry()})

    def test_failover_round_trip(self):
        """
        A profile's failover servers are saved as C{[address, port]}
        pairs, in order, and loaded back, their addresses canonical; a
        profile without them writes no C{"failover"} (as above).
        """
        servers = (("192.0.2.11", 2021), ("2001:db8::2", 2022))
        state = ClientState(profiles={"alice": sample_profile(failover=servers)})
        save_state(self.path, state)
        with open(self.path, encoding="utf-8") as stream:
            entry = json.load(stream)["profiles"]["alice"]
        self.assertEqual(entry["failover"], [list(server) for server in servers])
        self.assertEqual(load_state(self.path), state)
        entry["failover"] = [["2001:DB8:0::2", 2022]]
        self.write_document({"version": 1, "accounts": {}, "profiles": {"alice": entry}})
        self.assertEqual(
            load_state(self.path).profiles["alice"].servers,
            (("192.0.2.10", 2021), ("2001:db8::2", 2022)),
        )

    def test_invalid_failover(self):
        """
        A failover list that is not a short list of distinct
        C{[address, port]} pairs, other than the profile's own server, is
        refused.
        """
        valid = self.valid_entry()
        for failover in [
            "192.0.2.11",
            [["192.0.2.11"]],
            [["suto.example", 2021]],
            [["192.0.2.11", "2021"]],
            [["192.0.2.11", True]],
            [["192.0.2.11", 0]],
            [[None, 2021]],
            [["192.0.2.10", 2021]],
            [["192.0.2.11", 2021], ["192.0.2.11", 2021]],
            [["192.0.2.11", port] for port in range(1, 18)],
        ]:
            entry = dict(valid, failover=failover)
            self.write_document(
                {"version": 1, "accounts": {}, "profiles": {"alice": entry}}
            )
            error = self.assertRaises(StateFileError, load_state, self.path)
            self.assertIn("failover", str(error))

    def test_absent_profiles(self):
        """
        A file written before enrollment existed, without C{"profiles"},
        loads with no profiles.
        """
        self.write_document({"version": 1, "accounts": {}})
        self.assertEqual(load_state(self.path).profiles, {})

    def test_whole_seconds(self):
        """
        A completion time stored as a whole number loads as a float.
        """
        entry = dict(self.valid_entry(), enrolled_at=1700000000)
        self.write_document(
            {"version": 1, "accounts": {}, "profiles": {"alice": entry}}
        )
        profile = load_state(self.path).profiles["alice"]
        self.assertEqual(profile.enrolled_at, 1700000000.0)
        self.assertIs(type(profile.enrolled_at), float)

    def test_key_not_in_repr(self):
        """
        Printing a profile does not show its key.
        """
        text = repr(sample_profile())
        self.assertNotIn(repr(KEY), text)
        self.assertNotIn(KEY.hex(), text)

    def test_invalid(self):
        """
        A profile entry with a missing field or one of the wrong kind or
        form (including a key that is not the canonical base64 of 32
        bytes) is an error naming the file, never an arbitrary exception.
        """
        valid = self.valid_entry()
        invalid_entries = [
            "entry",
            dict(valid, server_host="suto.example"),
            dict(valid, server_host=None),
            dict(valid, server_port=True),
            dict(valid, server_port=70000),
            dict(valid, pin=None),
            dict(valid, pin="abc"),
            dict(valid, key="not base64!"),
            dict(valid, key="AAEC"),
            dict(valid, key=valid["key"].rstrip("=")),
            dict(valid, key=valid["key"][:-2] + "9="),
            dict(valid, key=7),
            dict(valid, key_id="0123456789ABCDEF" * 2),
            dict(valid, key_id="0123"),
            dict(valid, generation=-1),
            dict(valid, generation=False),
            dict(valid, generation=2**64),
            dict(valid, enrolled_at="yesterday"),
            dict(valid, enrolled_at=-1),
            dict(valid, enrolled_at=float("inf")),
            dict(valid, rotated_at="soon"),
            dict(valid, rotated_at=None),
            dict(valid, offline_since=-5),
            dict(valid, offline_since=True),
            {key: value for key, value in valid.items() if key != "key"},
        ]
        documents = [
            {"version": 1, "accounts": {}, "profiles": []},
            {"version": 1, "accounts": {}, "profiles": {"al ice": valid}},
        ] + [
            {"version": 1, "accounts": {}, "profiles": {"alice": entry}}
            for entry in invalid_entries
        ]
        for document in documents:
            self.write_document(document)
            error = self.assertRaises(StateFileError, load_state, self.path)
            self.assertIn(self.path, str(error))
