"""
Scheme identification, settings, the hashing policy and the two sides of
the salted challenge.
"""

import re

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from suto_server.core import libxcrypt, schemes
from suto_server.core.schemes import InvalidRounds, UnsupportedScheme

SHA512 = (
    "$6$abcdefghijklmnop$0aenUFHf897F9u0tURIHOeACWajSuVGa7jgJGyq.DKZm/WXl/IZFv"
    "PbneFydBjomEOgM.Sh1m0L3KsS1.H5b//"
)
SHA512_ROUNDS = (
    "$6$rounds=5000$abc$rvqzMBuMVukmply9mZJpW0wJMdDfgUKLDrSNxf9l66h/ytQiKNAdqH"
    "Sj5YPJpxWJpVjRXibQXRddCl9xYHQnd0"
)
SHA256 = "$5$abcdefghijklmnop$ieyonWfl7MR75BuN79Fkt2PqhPI43TsNZYGUObDGVI/"
MD5 = "$1$abcdefgh$G//4keteveJp0qb8z2DxG/"
BCRYPT = "$2b$05$abcdefghijklmnopqrstuuWG29KuyeAicPCJODk1zjyGvyQUU2awu"
YESCRYPT = "$y$j9T$abcdefghijklmnop$7asOTx5b6Exfl3myM6K0pLBn.I2hsEvu7G0F7NMfaO."

# Every hash above is of this password.
PASSWORD = "password"

RSALT = re.compile(r"\$6\$[A-Za-z0-9./]{16}")

NOT_AVAILABLE = None if libxcrypt.available() else "libxcrypt is not installed"


class IdentifyTests(SynchronousTestCase):
    """
    L{schemes.identify} names the scheme of usable hashes and refuses the
    rest with L{UnsupportedScheme}.
    """

    def test_schemes(self):
        """
        Each supported scheme is recognised, bcrypt under all its usual
        prefixes.
        """
        for password_hash, scheme in [
            (SHA512, "sha512_crypt"),
            (SHA512_ROUNDS, "sha512_crypt"),
            (SHA256, "sha256_crypt"),
            (MD5, "md5_crypt"),
            (BCRYPT, "bcrypt"),
            (BCRYPT.replace("$2b$", "$2a$"), "bcrypt"),
            (BCRYPT.replace("$2b$", "$2y$"), "bcrypt"),
            (YESCRYPT, "yescrypt"),
        ]:
            with self.subTest(scheme=scheme):
                self.assertEqual(schemes.identify(password_hash), scheme)
                self.assertIn(scheme, schemes.SCHEMES)

    def test_refused(self):
        """
        Locked and disabled entries, DES, unknown schemes, bare settings,
        malformed hashes and non-text are refused, each with its reason.
        """
        for password_hash, reason in [
            ("", "no password hash"),
            ("!", "locked"),
            ("*", "locked"),
            ("!!", "locked"),
            ("!" + SHA512, "locked"),
            ("*LK*", "locked"),
            ("abJnggxhB/yWI", "DES"),
            ("$9$abcdefgh$abcdefgh", "$9$"),
            ("$gy$j9T$abcdefgh$abcdefgh", "$gy$"),
            ("$6$abcdefghijklmnop", "without a digest"),
            (SHA512[:-1] + "!", "malformed sha512_crypt"),
            ("$6$rounds=10$abc$" + SHA512[-86:], "malformed sha512_crypt"),
            ("$2b$05$abcdefghijklmnopqrstuv" + BCRYPT[-31:], "non-canonical"),
            ("$2x$05$abcdefghijklmnopqrstuu" + BCRYPT[-31:], "malformed bcrypt"),
            (YESCRYPT[:-1], "malformed yescrypt"),
            ("not a hash", "crypt(3) format"),
            ("$6$" + "a" * 500, "crypt(3) format"),
            (None, "str"),
            (b"$6$salt$hash", "str"),
        ]:
            with self.subTest(reason=reason):
                error = self.assertRaises(
                    UnsupportedScheme, schemes.identify, password_hash
                )
                self.assertIn(reason, str(error))

    def test_cost_limit(self):
        """
        A hash costing more than L{schemes.MAX_ROUNDS} is refused, saying
        the limit and why; one at the limit is accepted.  yescrypt costs
        count on libxcrypt's scale (C{j9T} is 5, C{jET} 10, C{jFT} 11), and
        parameters not in gensalt's three-character form count as
        unbounded.  Only the setting is read: no hash is computed.
        """
        sha512 = "$6$rounds={}$abc$" + SHA512[-86:]
        yescrypt = "$y${}$abcdefghijklmnop$" + YESCRYPT[-43:]
        for password_hash, scheme in [
            (sha512.format(1_000_000), "sha512_crypt"),
            ("$5$rounds=1000000$abc$" + SHA256[-43:], "sha256_crypt"),
            (BCRYPT.replace("$05$", "$14$"), "bcrypt"),
            (yescrypt.format("jET"), "yescrypt"),
        ]:
            with self.subTest(accepted=password_hash[:12]):
                self.assertEqual(schemes.identify(password_hash), scheme)
        for password_hash, scheme, limit in [
            (sha512.format(1_000_001), "sha512_crypt", 1_000_000),
            (sha512.format(999_999_999), "sha512_crypt", 1_000_000),
            ("$5$rounds=999999999$abc$" + SHA256[-43:], "sha256_crypt", 1_000_000),
            (BCRYPT.replace("$05$", "$15$"), "bcrypt", 14),
            (BCRYPT.replace("$05$", "$31$"), "bcrypt", 14),
            (yescrypt.format("jFT"), "yescrypt", 10),
            (yescrypt.format("jzT"), "yescrypt", 10),
            (yescrypt.format("j9T5"), "yescrypt", 10),
            (yescrypt.format("j9T.1"), "yescrypt", 10),
        ]:
            with self.subTest(refused=password_hash[:12]):
                error = self.assertRaises(
                    UnsupportedScheme, schemes.identify, password_hash
                )
                self.assertIn(f"{scheme} hash costs more than allowed", str(error))
                self.assertIn(f"rounds={limit}", str(error))
                self.assertIn("about a second", str(error))
                self.assertNotIn("abc", str(error))

    def test_disabled(self):
        """
        Empty fields and the shadow(5) lock markers are disabled entries;
        hashes, however malformed, are not.
        """
        for field in ["", "!", "*", "!!", "*LK*", "!" + SHA512]:
            with self.subTest(field=field[:4]):
                self.assertTrue(schemes.is_disabled(field))
        for field in [SHA512, YESCRYPT, "abJnggxhB/yWI", "x"]:
            with self.subTest(field=field[:4]):
                self.assertFalse(schemes.is_disabled(field))

    def test_message_hides_hash(self):
        """
        A refusal never repeats the hash or its salt.
        """
        for password_hash in [
            "$9$secretsalt$secretdigest",
            "!" + SHA512,
            SHA512[:-1] + "!",
        ]:
            with self.subTest(password_hash=password_hash[:4]):
                error = self.assertRaises(
                    UnsupportedScheme, schemes.identify, password_hash
                )
                self.assertNotIn("secret", str(error))
                self.assertNotIn("abcdefghijklmnop", str(error))


class SaltOfTests(SynchronousTestCase):
    """
    L{schemes.salt_of} gives the setting a client needs to recompute the
    stored hash.
    """

    def test_settings(self):
        """
        The setting is everything before the last C{"$"}, and for bcrypt,
        which has no C{"$"} before its digest, the first 29 characters.
        """
        for password_hash, setting in [
            (SHA512, "$6$abcdefghijklmnop"),
            (SHA512_ROUNDS, "$6$rounds=5000$abc"),
            (SHA256, "$5$abcdefghijklmnop"),
            (MD5, "$1$abcdefgh"),
            (BCRYPT, "$2b$05$abcdefghijklmnopqrstuu"),
            (YESCRYPT, "$y$j9T$abcdefghijklmnop"),
        ]:
            with self.subTest(setting=setting):
                self.assertEqual(schemes.salt_of(password_hash), setting)
        self.assertEqual(len(schemes.salt_of(SHA512)), 19)
        self.assertEqual(len(schemes.salt_of(BCRYPT)), 29)

    def test_unusable(self):
        """
        A hash that cannot be identified has no setting.
        """
        self.assertRaises(UnsupportedScheme, schemes.salt_of, "!" + SHA512)

    def test_recomputes(self):
        """
        Hashing the password with the setting gives back the stored hash.
        """
        if NOT_AVAILABLE:
            raise SkipTest(NOT_AVAILABLE)
        for password_hash in [SHA512, SHA512_ROUNDS, SHA256, MD5, BCRYPT, YESCRYPT]:
            with self.subTest(password_hash=password_hash[:4]):
                setting = schemes.salt_of(password_hash)
                self.assertEqual(libxcrypt.crypt(PASSWORD, setting), password_hash)


class EnsureComputableTests(SynchronousTestCase):
    """
    L{schemes.ensure_computable} proves, once per method, that this system
    can compute a stored hash.
    """

    skip = NOT_AVAILABLE

    def setUp(self):
        self.patch(schemes, "_computable", set())

    def test_supported(self):
        """
        Every supported scheme is computable here, and its name returned.
        """
        for password_hash in [SHA512, SHA256, MD5, BCRYPT, YESCRYPT]:
            with self.subTest(password_hash=password_hash[:4]):
                self.assertEqual(
                    schemes.ensure_computable(password_hash),
                    schemes.identify(password_hash),
                )

    def test_unknown_prefix(self):
        """
        An unknown C{$9$} scheme is refused with a message naming it.
        """
        error = self.assertRaises(
            UnsupportedScheme, schemes.ensure_computable, "$9$abcdefgh$abcdefgh"
        )
        self.assertEqual(str(error), "unsupported password hash scheme $9$")

    def test_not_computable(self):
        """
        A hash passlib parses but libxcrypt cannot compute (the obsolete
        C{$2$} bcrypt) is refused, saying the system cannot compute it.
        """
        password_hash = "$2$05$abcdefghijklmnopqrstuu" + BCRYPT[-31:]
        self.assertEqual(schemes.identify(password_hash), "bcrypt")
        error = self.assertRaises(
            UnsupportedScheme, schemes.ensure_computable, password_hash
        )
        self.assertIn("cannot compute bcrypt ($2$)", str(error))

    def test_cached(self):
        """
        Each method is computed once; later hashes of it are not.
        """
        calls = []
        real_crypt = libxcrypt.crypt

        def counting_crypt(phrase, setting):
            calls.append(libxcrypt.prefix_of(setting))
            return real_crypt(phrase, setting)

        self.patch(libxcrypt, "crypt", counting_crypt)
        schemes.ensure_computable(SHA512)
        schemes.ensure_computable(SHA512_ROUNDS)
        schemes.ensure_computable(YESCRYPT)
        self.assertEqual(calls, ["$6$", "$y$"])


class HashPasswordTests(SynchronousTestCase):
    """
    L{schemes.hash_password} makes new hashes by the policy.
    """

    skip = NOT_AVAILABLE

    def test_round_trip(self):
        """
        Each scheme's hash is of that scheme and recomputes from the
        password with libxcrypt.
        """
        for scheme, rounds in [
            ("sha512_crypt", None),
            ("sha256_crypt", None),
            ("md5_crypt", None),
            ("bcrypt", 4),
            ("yescrypt", None),
        ]:
            with self.subTest(scheme=scheme):
                password_hash = schemes.hash_password("pässwörd", scheme, rounds)
                self.assertEqual(schemes.identify(password_hash), scheme)
                self.assertEqual(
                    libxcrypt.crypt("pässwörd", password_hash), password_hash
                )
                self.assertNotEqual(
                    libxcrypt.crypt("password", password_hash), password_hash
                )

    def test_fresh_salts(self):
        """
        Two hashes of the same password differ.
        """
        self.assertNotEqual(schemes.hash_password("x"), schemes.hash_password("x"))

    def test_default_scheme(self):
        """
        By default the hash is sha512_crypt at 5000 rounds, written without
        a C{rounds=} field so SUTO 1.3.2 peers can use its setting.
        """
        password_hash = schemes.hash_password(PASSWORD)
        self.assertEqual(schemes.DEFAULT_SCHEME, "sha512_crypt")
        self.assertRegex(password_hash, r"^\$6\$[./0-9A-Za-z]{16}\$[./0-9A-Za-z]{86}$")
        self.assertNotIn("=", password_hash)
        self.assertNotIn("rounds", schemes.hash_password(PASSWORD, "sha256_crypt"))

    def test_explicit_rounds(self):
        """
        A non-default cost is written into the hash.
        """
        self.assertTrue(
            schemes.hash_password(PASSWORD, "sha512_crypt", 10000).startswith(
                "$6$rounds=10000$"
            )
        )
        self.assertTrue(
            schemes.hash_password(PASSWORD, "bcrypt", 4).startswith("$2b$04$")
        )
        self.assertTrue(
            schemes.hash_password(PASSWORD, "yescrypt", 3).startswith("$y$j7T$")
        )

    def test_bcrypt_default_cost(self):
        """
        bcrypt defaults to cost 12.
        """
        self.assertTrue(schemes.hash_password(PASSWORD, "bcrypt").startswith("$2b$12$"))

    def test_invalid_rounds(self):
        """
        A cost outside the scheme's range, or any cost for md5_crypt, raises
        L{InvalidRounds}.
        """
        for scheme, rounds in [
            ("sha512_crypt", 999),
            ("sha256_crypt", 10**10),
            ("bcrypt", 3),
            ("bcrypt", 32),
            ("md5_crypt", 1000),
            ("yescrypt", 99),
            ("sha512_crypt", 1_000_001),
            ("sha256_crypt", 999_999_999),
            ("bcrypt", 15),
            ("yescrypt", 11),
            ("sha512_crypt", "5000"),
            ("sha512_crypt", True),
        ]:
            with self.subTest(scheme=scheme, rounds=rounds):
                self.assertRaises(
                    InvalidRounds, schemes.hash_password, PASSWORD, scheme, rounds
                )

    def test_cost_limit_message(self):
        """
        A cost above L{schemes.MAX_ROUNDS} is refused before any hashing,
        naming the limit and what it costs; the limit itself is accepted.
        """
        for scheme, limit in schemes.MAX_ROUNDS.items():
            with self.subTest(scheme=scheme):
                error = self.assertRaises(
                    InvalidRounds, schemes.new_setting, scheme, limit + 1
                )
                self.assertEqual(
                    str(error),
                    f"{scheme} is limited to rounds={limit} in SUTO: each login"
                    f" recomputes the hash on the user's device, and that"
                    f" already costs about a second of a core",
                )
        self.assertTrue(
            schemes.new_setting("sha512_crypt", 1_000_000).startswith(
                "$6$rounds=1000000$"
            )
        )

    def test_unknown_scheme(self):
        """
        A scheme outside L{schemes.SCHEMES} raises L{UnsupportedScheme}.
        """
        self.assertRaises(
            UnsupportedScheme, schemes.hash_password, PASSWORD, "des_crypt"
        )


class ChallengeTests(SynchronousTestCase):
    """
    The random salt and the two sides of the salted challenge.
    """

    def test_rsalt_format(self):
        """
        A random salt is C{$6$} and 16 characters of the crypt alphabet.
        """
        for _ in range(50):
            self.assertRegex(schemes.new_rsalt(), RSALT)

    def test_rsalt_unique(self):
        """
        Random salts do not repeat.
        """
        salts = {schemes.new_rsalt() for _ in range(1000)}
        self.assertEqual(len(salts), 1000)

    def test_rsalt_alphabet(self):
        """
        A salt's characters come from all 64 of crypt(3)'s alphabet, each
        byte of randomness mapping onto one (256 is a multiple of 64, so
        none is favoured).
        """
        self.assertEqual(len(set(schemes._CRYPT_ALPHABET)), 64)
        seen = set("".join(schemes.new_rsalt()[3:] for _ in range(200)))
        self.assertEqual(seen, set(schemes._CRYPT_ALPHABET))

    def test_client_matches_server(self):
        """
        The client's answer from the password equals the server's
        computation from the stored hash, for every scheme; a wrong password
        does not.
        """
        if NOT_AVAILABLE:
            raise SkipTest(NOT_AVAILABLE)
        rsalt = schemes.new_rsalt()
        for password_hash in [SHA512, SHA512_ROUNDS, SHA256, MD5, BCRYPT, YESCRYPT]:
            with self.subTest(password_hash=password_hash[:4]):
                salt = schemes.salt_of(password_hash)
                expected = schemes.challenge_response(password_hash, rsalt)
                self.assertTrue(expected.startswith(rsalt + "$"))
                self.assertEqual(
                    schemes.client_response(PASSWORD, salt, rsalt), expected
                )
                self.assertNotEqual(
                    schemes.client_response("wrong", salt, rsalt), expected
                )

    def test_fresh_hash(self):
        """
        The relation holds for a newly made hash too, and differs per
        random salt.
        """
        if NOT_AVAILABLE:
            raise SkipTest(NOT_AVAILABLE)
        password_hash = schemes.hash_password(PASSWORD)
        salt = schemes.salt_of(password_hash)
        first, second = schemes.new_rsalt(), schemes.new_rsalt()
        self.assertEqual(
            schemes.client_response(PASSWORD, salt, first),
            schemes.challenge_response(password_hash, first),
        )
        self.assertNotEqual(
            schemes.challenge_response(password_hash, first),
            schemes.challenge_response(password_hash, second),
        )

    def test_bad_rsalt(self):
        """
        A random salt libxcrypt cannot use raises L{libxcrypt.CryptError}.
        """
        if NOT_AVAILABLE:
            raise SkipTest(NOT_AVAILABLE)
        self.assertRaises(
            libxcrypt.CryptError, schemes.challenge_response, SHA512, "$9$nothing"
        )
