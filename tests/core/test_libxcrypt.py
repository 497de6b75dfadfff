"""
crypt(3) through libxcrypt: known vectors, refusals, bounds, salts, and
calls from several threads at once.
"""

import ctypes.util
import threading

from passlib.hash import md5_crypt, sha256_crypt, sha512_crypt
from twisted.trial.unittest import SynchronousTestCase

from suto_server.core import libxcrypt
from suto_server.core.libxcrypt import CryptError

# (phrase, setting, hash).  The SHA-2 ones are the vectors of the
# SHA-crypt specification; the bcrypt one is OpenBSD's; the md5 and
# yescrypt ones were computed once with libxcrypt.
VECTORS = {
    "sha512_crypt": (
        "Hello world!",
        "$6$saltstring",
        "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJues"
        "I68u4OTLiBFdcbYEdFCoEOfaS35inz1",
    ),
    "sha256_crypt": (
        "Hello world!",
        "$5$saltstring",
        "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5",
    ),
    "md5_crypt": ("password", "$1$saltsalt", "$1$saltsalt$qjXMvbEw8oaL.CzflDtaK/"),
    "bcrypt": (
        "U*U",
        "$2a$05$CCCCCCCCCCCCCCCCCCCCC.",
        "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW",
    ),
    "bcrypt_2b": (
        "password",
        "$2b$04$abcdefghijklmnopqrstuu",
        "$2b$04$abcdefghijklmnopqrstuughE8Ev8uGFaUgY2cNEySvxngrb/Jzdm",
    ),
    "yescrypt": (
        "password",
        "$y$j9T$saltsaltsaltsalt",
        "$y$j9T$saltsaltsaltsalt$Uxvkjnhdr/2B6SINV1mXACdXVbd5kc899ms5aqhxMQD",
    ),
}

NOT_AVAILABLE = None if libxcrypt.available() else "libxcrypt is not installed"


class CryptTests(SynchronousTestCase):
    """
    L{libxcrypt.crypt} computes every supported method and refuses what it
    cannot compute with L{CryptError}.
    """

    skip = NOT_AVAILABLE

    def test_vectors(self):
        """
        Each method gives its known hash, from the bare setting and from the
        complete hash alike.
        """
        for name, (phrase, setting, expected) in VECTORS.items():
            with self.subTest(name):
                self.assertEqual(libxcrypt.crypt(phrase, setting), expected)
                self.assertEqual(libxcrypt.crypt(phrase, expected), expected)

    def test_matches_passlib(self):
        """
        The SHA-2 and md5 vectors agree with passlib's own implementations.
        """
        for name, handler in [
            ("sha512_crypt", sha512_crypt),
            ("sha256_crypt", sha256_crypt),
            ("md5_crypt", md5_crypt),
        ]:
            with self.subTest(name):
                phrase, setting, expected = VECTORS[name]
                self.assertTrue(
                    handler.verify(phrase, libxcrypt.crypt(phrase, setting))
                )
                self.assertTrue(handler.verify(phrase, expected))

    def test_bytes_phrase(self):
        """
        A phrase given as text is hashed as its UTF-8 bytes.
        """
        setting = "$6$abcdefghijklmnop"
        self.assertEqual(
            libxcrypt.crypt("pässwörd", setting),
            libxcrypt.crypt("pässwörd".encode("utf-8"), setting),
        )

    def test_unsupported_settings(self):
        """
        Settings libxcrypt cannot use raise L{CryptError}.
        """
        for setting in [
            "$9$abcdefgh",
            "!",
            "*",
            "",
            "$6$ab:cd",
            "$2b$05$short",
            "$y$$x",
        ]:
            with self.subTest(setting=setting):
                self.assertRaises(CryptError, libxcrypt.crypt, "password", setting)

    def test_error_hides_setting(self):
        """
        A refusal names the method prefix but not the rest of the setting,
        which may be a stored hash.
        """
        error = self.assertRaises(
            CryptError, libxcrypt.crypt, "phrase", "$9$secretsalt"
        )
        self.assertIn("$9$", str(error))
        self.assertNotIn("secretsalt", str(error))
        self.assertNotIn("phrase", str(error))

    def test_bad_phrases(self):
        """
        A phrase holding NUL (which C would silently cut), too long for
        libxcrypt, or of the wrong type raises L{CryptError}.
        """
        setting = "$6$abcdefghijklmnop"
        longest = "a" * libxcrypt.MAX_PHRASE_BYTES
        self.assertTrue(libxcrypt.crypt(longest, setting).startswith(setting))
        for phrase in ["pass\0word", longest + "a", "\udc80", 42, None]:
            with self.subTest(phrase=repr(phrase)[:20]):
                self.assertRaises(CryptError, libxcrypt.crypt, phrase, setting)

    def test_bad_setting_types(self):
        """
        A setting that is not ASCII text within bounds raises L{CryptError}.
        """
        for setting in [b"$6$abc", None, "$6$é", "$6$a\0b", "$6$" + "a" * 400]:
            with self.subTest(setting=repr(setting)[:20]):
                self.assertRaises(CryptError, libxcrypt.crypt, "password", setting)

    def test_concurrent_calls(self):
        """
        Threads hashing at once get the same results as one thread hashing
        in turn: no state is shared between calls.
        """
        settings = ["$6$abcdefghijklmnop", "$y$j9T$saltsaltsaltsalt"]
        work = [(f"phrase {n}", settings[n % 2]) for n in range(40)]
        expected = [libxcrypt.crypt(phrase, setting) for phrase, setting in work]
        results = [None] * len(work)

        def compute(indexes):
            for index in indexes:
                results[index] = libxcrypt.crypt(*work[index])

        threads = [
            threading.Thread(target=compute, args=(range(start, len(work), 4),))
            for start in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.assertEqual(results, expected)


class GensaltTests(SynchronousTestCase):
    """
    L{libxcrypt.gensalt} makes fresh settings from the OS random generator.
    """

    skip = NOT_AVAILABLE

    def test_yescrypt(self):
        """
        A yescrypt setting has the default parameters and a fresh salt each
        time, and hashes.
        """
        first, second = libxcrypt.gensalt("$y$"), libxcrypt.gensalt("$y$")
        self.assertTrue(first.startswith("$y$j9T$"))
        self.assertNotEqual(first, second)
        self.assertTrue(libxcrypt.crypt("password", first).startswith(first + "$"))

    def test_rounds(self):
        """
        An explicit cost appears in the setting.
        """
        self.assertTrue(libxcrypt.gensalt("$6$", 10000).startswith("$6$rounds=10000$"))
        self.assertTrue(libxcrypt.gensalt("$2b$", 4).startswith("$2b$04$"))

    def test_refused(self):
        """
        Unknown methods, costs out of range and bad arguments raise
        L{CryptError}.
        """
        for prefix, rounds in [
            ("$9$", 0),
            ("$2b$", 40),
            ("$6$", -1),
            ("$6$", 2**64),
            ("$6$", "5000"),
            ("$6$", True),
            (b"$6$", 0),
        ]:
            with self.subTest(prefix=prefix, rounds=rounds):
                self.assertRaises(CryptError, libxcrypt.gensalt, prefix, rounds)


class PrefixTests(SynchronousTestCase):
    """
    L{libxcrypt.prefix_of} names a setting's method and nothing more.
    """

    def test_prefixes(self):
        """
        The C{$id$} is returned; settings without a plausible one give
        L{None}.
        """
        for setting, prefix in [
            ("$6$salt$hash", "$6$"),
            ("$2b$05$salt", "$2b$"),
            ("$y$j9T$salt$hash", "$y$"),
            ("$6$", "$6$"),
            ("abJnggxhB/yWI", None),
            ("$secret-without-end", None),
            ("$SECRET$x", None),
            ("", None),
            (None, None),
        ]:
            with self.subTest(setting=setting):
                self.assertEqual(libxcrypt.prefix_of(setting), prefix)


class MissingLibraryTests(SynchronousTestCase):
    """
    Without libxcrypt the module still imports, and every use says what to
    install.
    """

    def use_candidates(self, names):
        """
        Make the loader try only C{names}, forgetting what it loaded before.
        """
        self.patch(libxcrypt, "_candidates", lambda: names)
        libxcrypt._load.cache_clear()
        self.addCleanup(libxcrypt._load.cache_clear)

    def test_missing(self):
        """
        No library: L{libxcrypt.available} is false and calls raise a
        L{CryptError} naming the package.
        """
        self.use_candidates(["libsuto-no-such-library.so.9"])
        self.assertFalse(libxcrypt.available())
        error = self.assertRaises(CryptError, libxcrypt.crypt, "x", "$6$salt")
        self.assertIn("libcrypt1", str(error))
        self.assertRaises(CryptError, libxcrypt.gensalt, "$y$")

    def test_not_libxcrypt(self):
        """
        A libcrypt without C{crypt_rn} (not libxcrypt) is refused with the
        reason.
        """
        self.use_candidates([ctypes.util.find_library("c")])
        self.assertFalse(libxcrypt.available())
        error = self.assertRaises(CryptError, libxcrypt.crypt, "x", "$6$salt")
        self.assertIn("not libxcrypt", str(error))
