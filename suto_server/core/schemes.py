# -*- test-case-name: tests.core.test_schemes -*-
"""
Password hash schemes: which ones SUTO accepts, the settings a client needs,
the policy for new hashes, the most a hash may cost, and the two sides of
the salted challenge.

passlib recognises and parses the classic schemes and makes their settings;
C{$y$} (yescrypt), which passlib does not know, is recognised here and its
settings come from libxcrypt.  Every digest is computed by
L{suto_server.core.libxcrypt}, the same code the system's own logins use.

The challenge: the server sends the setting of the user's stored hash and a
fresh random salt C{rsalt}; the client answers
C{crypt(crypt(password, salt), rsalt)}; the server compares that with
C{crypt(stored_hash, rsalt)}.
"""

from __future__ import annotations

import math
import re
import secrets

from passlib.context import CryptContext
from passlib.hash import bcrypt, md5_crypt, sha256_crypt, sha512_crypt

from suto_server.core import libxcrypt

SCHEMES = ("sha512_crypt", "sha256_crypt", "md5_crypt", "bcrypt", "yescrypt")
DEFAULT_SCHEME = "sha512_crypt"

_PASSLIB_HANDLERS = {
    handler.name: handler for handler in (sha512_crypt, sha256_crypt, md5_crypt, bcrypt)
}
_CONTEXT = CryptContext(schemes=list(_PASSLIB_HANDLERS))

# Policy for new hashes.  5000 is crypt's own default for the SHA-2
# schemes, which then carry no "rounds=" field: SUTO 1.3.2 peers strip "="
# from what they read and could not use such a setting.  passlib's own
# default (656,000) would cost each login over half a second.
_DEFAULT_ROUNDS = {"sha512_crypt": 5000, "sha256_crypt": 5000, "bcrypt": 12}

# The most a hash may cost.  Every login of a user recomputes
# crypt(password, setting) on the user's device with the stored hash's own
# cost (the server's share, crypt(hash, rsalt), is fixed by its rsalt), so
# a cost of hundreds of millions of rounds, which passlib and libxcrypt
# accept, makes each login take minutes of a core there and then time out.
# Each limit keeps one hash to about a second of a core: 1,000,000 SHA-2
# rounds (0.3 s on a 2020s server core), bcrypt cost 14 (0.8 s), yescrypt
# cost 10 (0.8 s and 512 MiB).  Stored hashes above them are refused as
# unusable, like a scheme this system cannot compute.
MAX_ROUNDS = {
    "sha512_crypt": 1_000_000,
    "sha256_crypt": 1_000_000,
    "bcrypt": 14,
    "yescrypt": 10,
}

# A yescrypt hash of libxcrypt cost c has N * r = 2 ** (c + 12).
_YESCRYPT_COST_BASE = 12

_YESCRYPT = re.compile(r"\$y\$[./0-9A-Za-z]+\$[./0-9A-Za-z]*\$[./0-9A-Za-z]{43}")
# The cost fields of a yescrypt setting as libxcrypt's gensalt writes them:
# flavor, log2(N) - 1 and r - 1, one character each (values up to 47).
_YESCRYPT_PARAMS = re.compile(r"[./0-9A-Za-j]{3}")
_DES = re.compile(r"[./0-9A-Za-z]{13}")

# bcrypt writes its digest straight after the salt, with no "$" between.
_BCRYPT_DIGEST_LENGTH = bcrypt.checksum_size
# The last of bcrypt's 22 salt characters carries 4 unused bits; these are
# the characters with those bits clear.
_BCRYPT_CANONICAL_SALT_ENDINGS = frozenset(".Oeu")

# crypt(3)'s base-64 alphabet, in the order of its digit values.
_CRYPT_ALPHABET = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_RSALT_LENGTH = 16

_NOT_A_HASH = "not a password hash in any crypt(3) format"

# The $id$ prefixes proven computable by this system's libxcrypt.
_computable: set[str] = set()


class UnsupportedScheme(ValueError):
    """
    A password hash SUTO cannot use: a scheme it does not support (or this
    system cannot compute), a locked account, or a malformed hash.  The
    message names the scheme or prefix, never the hash.
    """


class InvalidRounds(ValueError):
    """
    A cost parameter the requested scheme does not accept.
    """


def _unrecognised(password_hash: str) -> UnsupportedScheme:
    """
    Explain why a hash passlib and the yescrypt pattern did not recognise
    is refused.
    """
    prefix = libxcrypt.prefix_of(password_hash)
    if prefix is not None:
        return UnsupportedScheme(f"unsupported password hash scheme {prefix}")
    if _DES.fullmatch(password_hash):
        return UnsupportedScheme("traditional DES crypt hashes are not supported")
    return UnsupportedScheme(_NOT_A_HASH)


def is_disabled(password_hash: str) -> bool:
    """
    Whether a password field holds no hash on purpose: empty (no password)
    or, by the shadow(5) convention, starting with C{"!"} or C{"*"} (a
    locked or disabled account, possibly still carrying its old hash).
    """
    return not password_hash or password_hash[0] in "!*"


def identify(password_hash: str) -> str:
    """
    Name the scheme of a stored hash, checking that it is a complete,
    well-formed hash of that scheme.

    @param password_hash: a crypt(3)-style hash, as kept in a store or a
        shadow file.
    @return: its scheme, one of L{SCHEMES}.
    @raise UnsupportedScheme: it is not a usable hash: empty or locked
        (see L{is_disabled}), traditional DES, an unknown or unsupported
        scheme, malformed, or costing more than L{MAX_ROUNDS}.
    """
    if not isinstance(password_hash, str):
        raise UnsupportedScheme("a password hash must be a str")
    if is_disabled(password_hash):
        raise UnsupportedScheme("the entry has no password hash or is locked")
    if not password_hash.isascii() or len(password_hash) > libxcrypt.MAX_SETTING_BYTES:
        raise UnsupportedScheme(_NOT_A_HASH)
    if password_hash.startswith("$y$"):
        if not _YESCRYPT.fullmatch(password_hash):
            raise UnsupportedScheme("malformed yescrypt hash")
        _check_stored_cost("yescrypt", _yescrypt_cost(password_hash))
        return "yescrypt"
    scheme = _CONTEXT.identify(password_hash)
    if scheme is None:
        raise _unrecognised(password_hash)
    if scheme == "bcrypt":
        _check_bcrypt_salt(password_hash)
    try:
        parsed = _PASSLIB_HANDLERS[scheme].from_string(password_hash)
    except ValueError:
        raise UnsupportedScheme(f"malformed {scheme} hash") from None
    if parsed.checksum is None:
        raise UnsupportedScheme(f"{scheme} setting without a digest")
    if scheme in MAX_ROUNDS:
        _check_stored_cost(scheme, parsed.rounds)
    return scheme


def _too_costly(scheme: str, rounds: float) -> str | None:
    """
    @return: why a cost of C{rounds} is refused for C{scheme}, naming the
        limit and what it costs; L{None} when it is within L{MAX_ROUNDS}.
    """
    limit = MAX_ROUNDS[scheme]
    if rounds <= limit:
        return None
    return (
        f"{scheme} is limited to rounds={limit} in SUTO: each login recomputes"
        f" the hash on the user's device, and that already costs about a"
        f" second of a core"
    )


def _check_stored_cost(scheme: str, rounds: float) -> None:
    """
    @raise UnsupportedScheme: a stored hash costs more than L{MAX_ROUNDS}.
    """
    refusal = _too_costly(scheme, rounds)
    if refusal is not None:
        raise UnsupportedScheme(f"{scheme} hash costs more than allowed: {refusal}")


def _yescrypt_cost(password_hash: str) -> float:
    """
    The cost of a well-formed yescrypt hash on libxcrypt's scale (its
    default is 5): C{log2(N * r) - 12}.  Parameters in any other form than
    gensalt's three characters (a p, t or g field, or a flavor or size
    beyond one character) count as unbounded: SUTO does not read them.
    """
    params = password_hash.split("$")[2]
    if not _YESCRYPT_PARAMS.fullmatch(params):
        return math.inf
    log2_n, r = (_CRYPT_ALPHABET.index(c) + 1 for c in params[1:])
    return log2_n + math.log2(r) - _YESCRYPT_COST_BASE


def _check_bcrypt_salt(password_hash: str) -> None:
    """
    Refuse a bcrypt hash whose salt has unused bits set.  libxcrypt clears
    them, so a client recomputing such a hash from its setting would never
    get it back.  (Checked before passlib parses the hash, which would
    only warn.)

    @raise UnsupportedScheme: the salt is not canonical.
    """
    salt_end = password_hash[-_BCRYPT_DIGEST_LENGTH - 1 : -_BCRYPT_DIGEST_LENGTH]
    if salt_end and salt_end not in _BCRYPT_CANONICAL_SALT_ENDINGS:
        raise UnsupportedScheme("bcrypt hash with a non-canonical salt")


def salt_of(password_hash: str) -> str:
    """
    The setting of a stored hash: what a client needs to recompute it from
    the password, and what the server sends as the password salt.

    @return: for bcrypt the hash without its 31-character digest (29
        characters for C{$2b$}), for the other schemes everything before
        the last C{"$"}.
    @raise UnsupportedScheme: see L{identify}.
    """
    if identify(password_hash) == "bcrypt":
        return password_hash[:-_BCRYPT_DIGEST_LENGTH]
    return password_hash[: password_hash.rindex("$")]


def ensure_computable(password_hash: str) -> str:
    """
    Check that this system can verify a stored hash, by computing one hash
    of its method through libxcrypt (once per C{$id$} prefix).  Meant for
    load time, so an unusable hash is reported when configured rather than
    at a user's login.

    @return: the hash's scheme.
    @raise UnsupportedScheme: see L{identify}; or libxcrypt here cannot
        compute the method.
    """
    scheme = identify(password_hash)
    prefix = libxcrypt.prefix_of(password_hash)
    if prefix not in _computable:
        try:
            libxcrypt.crypt("", salt_of(password_hash))
        except libxcrypt.CryptError as error:
            raise UnsupportedScheme(
                f"this system cannot compute {scheme} ({prefix}) hashes: {error}"
            ) from None
        _computable.add(prefix)
    return scheme


def _passlib_setting(scheme: str, rounds: int | None) -> str:
    """
    A fresh setting for one of the schemes passlib knows, following the
    rounds policy.

    @raise InvalidRounds: C{rounds} is outside the scheme's range, or given
        for md5_crypt, whose cost is fixed.
    """
    handler = _PASSLIB_HANDLERS[scheme]
    options = {}
    if scheme in _DEFAULT_ROUNDS:
        options["rounds"] = _DEFAULT_ROUNDS[scheme] if rounds is None else rounds
        if options["rounds"] < handler.min_rounds:
            raise InvalidRounds(
                f"{scheme} takes rounds from {handler.min_rounds} "
                f"to {MAX_ROUNDS[scheme]}"
            )
        _check_new_cost(scheme, options["rounds"])
    elif rounds is not None:
        raise InvalidRounds(f"{scheme} has a fixed cost and takes no rounds")
    record = handler.using(**options)(use_defaults=True)
    # passlib renders a setting only as part of a whole hash: give it a
    # placeholder digest, then cut the setting out as from any stored hash.
    record.checksum = handler.checksum_chars[0] * handler.checksum_size
    return salt_of(record.to_string())


def _check_new_cost(scheme: str, rounds: int) -> None:
    """
    @raise InvalidRounds: C{rounds} is above L{MAX_ROUNDS} for C{scheme}.
    """
    refusal = _too_costly(scheme, rounds)
    if refusal is not None:
        raise InvalidRounds(refusal)


def _yescrypt_setting(rounds: int | None) -> str:
    """
    A fresh yescrypt setting from libxcrypt.

    @raise InvalidRounds: libxcrypt does not accept C{rounds}, or it is
        above L{MAX_ROUNDS}.
    """
    if rounds is not None:
        _check_new_cost("yescrypt", rounds)
    try:
        return libxcrypt.gensalt("$y$", 0 if rounds is None else rounds)
    except libxcrypt.CryptError as error:
        raise InvalidRounds(f"yescrypt: {error}") from None


def new_setting(scheme: str = DEFAULT_SCHEME, rounds: int | None = None) -> str:
    """
    A fresh setting (scheme, cost and salt) following the rounds policy,
    for hashing a new password; computing the hash is left to the caller,
    so a server can do it in its hash pool.

    @param scheme: one of L{SCHEMES}.
    @param rounds: the cost; by default 5000 for the SHA-2 schemes (so no
        C{rounds=} field), 12 for bcrypt, libxcrypt's default for yescrypt;
        md5_crypt takes none; at most L{MAX_ROUNDS}.
    @raise UnsupportedScheme: C{scheme} is not one of L{SCHEMES}.
    @raise InvalidRounds: C{rounds} does not suit C{scheme}.
    """
    if scheme not in SCHEMES:
        raise UnsupportedScheme(f"unknown password hash scheme {scheme!r}")
    if rounds is not None and (isinstance(rounds, bool) or not isinstance(rounds, int)):
        raise InvalidRounds("rounds must be an int")
    if scheme == "yescrypt":
        return _yescrypt_setting(rounds)
    return _passlib_setting(scheme, rounds)


def hash_password(
    password: str, scheme: str = DEFAULT_SCHEME, rounds: int | None = None
) -> str:
    """
    Hash a new password with a fresh L{new_setting}.

    @return: the hash; C{libxcrypt.crypt(password, result) == result}.
    @raise UnsupportedScheme: C{scheme} is not one of L{SCHEMES}.
    @raise InvalidRounds: C{rounds} does not suit C{scheme}.
    @raise libxcrypt.CryptError: the password is out of bounds, or
        libxcrypt is missing.
    """
    return libxcrypt.crypt(password, new_setting(scheme, rounds))


def new_rsalt() -> str:
    """
    A fresh random salt for one challenge: C{"$6$"} and 16 characters of
    C{[A-Za-z0-9./]} (19 characters, the length SUTO 1.3.2 peers expect).
    One read of random bytes, each mapped onto the 64 characters: 256 is a
    multiple of 64, so every character is equally likely.
    """
    return "$6$" + "".join(
        _CRYPT_ALPHABET[byte % len(_CRYPT_ALPHABET)]
        for byte in secrets.token_bytes(_RSALT_LENGTH)
    )


def challenge_response(password_hash: str, rsalt: str) -> str:
    """
    C{crypt(password_hash, rsalt)}: what the server expects, and the last
    step of what the client sends.  Blocks: run it in a thread (the server
    does so through L{suto_server.cred.hashpool.HashPool}).

    @raise libxcrypt.CryptError: C{rsalt} is not a setting libxcrypt
        accepts.
    """
    return libxcrypt.crypt(password_hash, rsalt)


def client_response(password: str, salt: str, rsalt: str) -> str:
    """
    C{crypt(crypt(password, salt), rsalt)}: the client's answer to a
    challenge.  Blocks, as L{challenge_response} does.

    @raise libxcrypt.CryptError: a salt is not a setting libxcrypt accepts.
    """
    return challenge_response(libxcrypt.crypt(password, salt), rsalt)
