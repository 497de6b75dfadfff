"""
Password hashes from a shadow(5)-format file: parsing, locked and expired
entries, refusals that name the line, and reloading when the file changes.
"""

import builtins
import os

from twisted.logger import capturedLogs
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from suto_server.core import libxcrypt
from suto_server.cred.interfaces import IPasswordHashSource
from suto_server.cred.shadow import ShadowFile, ShadowFileError
from tests.support.shadow import line

SHA512 = (
    "$6$abcdefghijklmnop$0aenUFHf897F9u0tURIHOeACWajSuVGa7jgJGyq.DKZm/WXl/IZFv"
    "PbneFydBjomEOgM.Sh1m0L3KsS1.H5b//"
)
YESCRYPT = "$y$j9T$abcdefghijklmnop$7asOTx5b6Exfl3myM6K0pLBn.I2hsEvu7G0F7NMfaO."
DES = "abJnggxhB/yWI"

# 2024-01-01 is day 19723.
DAY = 19723
NOW = DAY * 86400 + 3600


class ShadowFileTests(SynchronousTestCase):
    """
    L{ShadowFile} serves the usable hashes of a shadow file.
    """

    skip = None if libxcrypt.available() else "libxcrypt is not installed"

    def setUp(self):
        self.path = os.path.abspath(self.mktemp())
        self.mtime = 1_700_000_000

    def write(self, *lines):
        """
        Replace the file's contents, each time with a later modification
        time, so a change is seen even within the clock's resolution.
        """
        with open(self.path, "w", encoding="utf-8") as stream:
            stream.write("".join(lines))
        self.mtime += 1
        os.utime(self.path, (self.mtime, self.mtime))

    def load(self, *lines):
        self.write(*lines)
        return ShadowFile(self.path, now=lambda: NOW)

    def assert_refused(self, number, *lines):
        """
        Loading C{lines} fails, naming line C{number}, and never a hash.

        @return: the error message.
        """
        self.write(*lines)
        error = self.assertRaises(ShadowFileError, ShadowFile, self.path)
        message = str(error)
        self.assertIn(f"line {number}", message)
        for secret in ["abcdefghijklmnop", "0aenUFHf897", DES]:
            self.assertNotIn(secret, message)
        return message

    def test_interface(self):
        """
        It provides L{IPasswordHashSource}.
        """
        self.assertTrue(
            verifyObject(IPasswordHashSource, self.load(line("alice", SHA512)))
        )

    def test_hashes(self):
        """
        Users with real hashes get them; unknown users get L{None}.
        """
        shadow = self.load(line("alice", SHA512), line("bob", YESCRYPT))
        self.assertEqual(shadow.hash_for("alice"), SHA512)
        self.assertEqual(shadow.hash_for("bob"), YESCRYPT)
        self.assertIsNone(shadow.hash_for("carol"))

    def test_short_lines(self):
        """
        Lines may stop after the hash; missing fields are empty.
        """
        shadow = self.load(f"alice:{SHA512}\n", f"bob:{YESCRYPT}:19000")
        self.assertEqual(shadow.hash_for("alice"), SHA512)
        self.assertEqual(shadow.hash_for("bob"), YESCRYPT)

    def test_locked_entries(self):
        """
        Locked, disabled and empty entries are kept but have no usable hash.
        """
        shadow = self.load(
            line("bang", "!"),
            line("star", "*"),
            line("double", "!!"),
            line("locked", "!" + SHA512),
            line("empty", ""),
            line("alice", SHA512),
        )
        for user in ["bang", "star", "double", "locked", "empty"]:
            with self.subTest(user=user):
                self.assertIsNone(shadow.hash_for(user))
        self.assertEqual(shadow.hash_for("alice"), SHA512)

    def test_expired_account(self):
        """
        From its expiry day on an account has no usable hash; before it, or
        with a negative expiry, it has.
        """
        shadow = self.load(
            line("past", SHA512, DAY - 1),
            line("today", SHA512, DAY),
            line("future", SHA512, DAY + 1),
            line("never", SHA512, -1),
        )
        self.assertIsNone(shadow.hash_for("past"))
        self.assertIsNone(shadow.hash_for("today"))
        self.assertEqual(shadow.hash_for("future"), SHA512)
        self.assertEqual(shadow.hash_for("never"), SHA512)

    def test_unsupported_hash(self):
        """
        A hash this system cannot verify refuses the file, naming the line,
        the user and the scheme.
        """
        message = self.assert_refused(2, line("alice", SHA512), line("bob", DES))
        self.assertIn("bob", message)
        self.assertIn("DES", message)
        message = self.assert_refused(1, line("carol", "$9$abcdefghijklmnop$x"))
        self.assertIn("carol", message)
        self.assertIn("$9$", message)

    def test_too_costly_hash(self):
        """
        A hash costing more than SUTO allows refuses the file, naming the
        line, the user and the limit, as a hash of an unusable scheme does.
        """
        costly = "$6$rounds=999999999$abc$" + SHA512[-86:]
        message = self.assert_refused(2, line("alice", SHA512), line("bob", costly))
        self.assertIn("bob", message)
        self.assertIn("rounds=1000000", message)
        self.assertNotIn("abc$", message)

    def test_malformed_lines(self):
        """
        Lines without a hash field, with too many fields, with a date that
        is not a number, or with a bad user name refuse the file.
        """
        for bad in [
            "alice\n",
            "alice:" + SHA512 + ":1:2:3:4:5:6:7:8\n",
            "alice:" + SHA512 + ":soon::::::\n",
            ":" + SHA512 + "\n",
            "al ice:" + SHA512 + "\n",
        ]:
            with self.subTest(bad=bad[:12]):
                self.assert_refused(2, line("bob", "!"), bad)

    def test_not_utf8(self):
        """
        A line that is not UTF-8 refuses the file.
        """
        with open(self.path, "wb") as stream:
            stream.write(b"alice:!\n\xff\xfe:!\n")
        error = self.assertRaises(ShadowFileError, ShadowFile, self.path)
        self.assertIn("line 2", str(error))

    def test_duplicate_user(self):
        """
        A user listed twice refuses the file, naming both lines.
        """
        message = self.assert_refused(
            3, line("alice", SHA512), line("bob", "!"), line("alice", "!")
        )
        self.assertIn("line 1", message)

    def test_blank_lines(self):
        """
        Empty lines are skipped and the numbering still follows the file.
        """
        self.assert_refused(3, line("alice", SHA512), "\n", line("bob", DES))

    def test_missing_file(self):
        """
        A file that cannot be read raises L{ShadowFileError}.
        """
        self.assertRaises(ShadowFileError, ShadowFile, self.path)

    def test_reload(self):
        """
        A changed file is read again at the next lookup.
        """
        shadow = self.load(line("alice", SHA512))
        self.write(line("alice", "!"), line("bob", YESCRYPT))
        self.assertIsNone(shadow.hash_for("alice"))
        self.assertEqual(shadow.hash_for("bob"), YESCRYPT)

    def test_replaced_file(self):
        """
        A file replaced by renaming another over it is read again, even with
        the same size and modification time.
        """
        shadow = self.load(line("alice", SHA512))
        replacement = self.path + ".new"
        with open(replacement, "w") as stream:
            stream.write(line("bobby", SHA512))
        os.utime(replacement, (self.mtime, self.mtime))
        os.rename(replacement, self.path)
        self.assertEqual(shadow.hash_for("bobby"), SHA512)
        self.assertIsNone(shadow.hash_for("alice"))

    def test_bad_reload_keeps_contents(self):
        """
        When the changed file does not load the previous contents stay in
        use, and the problem is logged once, without any hash.
        """
        shadow = self.load(line("alice", SHA512))
        self.write(line("alice", YESCRYPT), line("bob", DES))
        with capturedLogs() as events:
            self.assertEqual(shadow.hash_for("alice"), SHA512)
            self.assertEqual(shadow.hash_for("alice"), SHA512)
        self.assertEqual(len(events), 1)
        self.assertEqual(events[0]["log_level"].name, "error")
        self.assertIn("line 2", events[0]["error"])
        for value in map(str, events[0].values()):
            self.assertNotIn(DES, value)
            self.assertNotIn(YESCRYPT, value)

    def test_recovers_after_bad_reload(self):
        """
        Once the file is fixed, the next lookup uses the new contents.
        """
        shadow = self.load(line("alice", SHA512))
        self.write(line("bob", DES))
        with capturedLogs():
            shadow.hash_for("alice")
        self.write(line("bob", YESCRYPT))
        self.assertEqual(shadow.hash_for("bob"), YESCRYPT)
        self.assertIsNone(shadow.hash_for("alice"))

    def test_removed_file(self):
        """
        A file that disappears leaves the previous contents in use, with the
        problem logged.
        """
        shadow = self.load(line("alice", SHA512))
        os.remove(self.path)
        with capturedLogs() as events:
            self.assertEqual(shadow.hash_for("alice"), SHA512)
        self.assertEqual(len(events), 1)
        self.assertIn("cannot read", events[0]["error"])

    def test_unchanged_file_not_reread(self):
        """
        An unchanged file is not parsed again.
        """
        shadow = self.load(line("alice", SHA512))
        opened = []
        real_open = open

        def recording_open(*args, **kwargs):
            opened.append(args[0])
            return real_open(*args, **kwargs)

        self.patch(builtins, "open", recording_open)
        shadow.hash_for("alice")
        shadow.hash_for("alice")
        self.assertEqual(opened, [])
