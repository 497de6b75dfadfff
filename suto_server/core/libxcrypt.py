# -*- test-case-name: tests.core.test_libxcrypt -*-
"""
crypt(3) through the system's libxcrypt, called with ctypes.

This is the only module that touches libcrypt.  Every crypt-family hash
SUTO computes goes through L{crypt}, because a hash costs milliseconds and
must run in a thread without stalling the others: ctypes releases the GIL
for the duration of a C{CDLL} call, while the standard library's C{crypt}
module and passlib's builtin backends hold it.  C{crypt_rn} writes into a
buffer the caller owns, so each call brings its own and calls from several
threads never share state.

The library is loaded once, on first use; a system without libxcrypt gets
a L{CryptError} saying what to install instead of an import failure.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import re

# The sizes libxcrypt's <crypt.h> declares.  CRYPT_DATA_SIZE is
# sizeof(struct crypt_data), the scratch space crypt_rn needs.
CRYPT_DATA_SIZE = 32768
CRYPT_OUTPUT_SIZE = 384
CRYPT_MAX_PASSPHRASE_SIZE = 512
CRYPT_GENSALT_OUTPUT_SIZE = 192

# Both sizes count the terminating NUL.
MAX_PHRASE_BYTES = CRYPT_MAX_PASSPHRASE_SIZE - 1
MAX_SETTING_BYTES = CRYPT_OUTPUT_SIZE - 1

_MAX_COUNT = 2**32 - 1

_INSTALL_HINT = "install libxcrypt (Debian and Ubuntu: libcrypt1; Fedora: libxcrypt)"

# The "$id$" that opens a modular crypt setting.  Anything longer or
# stranger is not shown back in messages, since it may be a secret.
_PREFIX = re.compile(r"\$[0-9a-z]{1,8}\$")


class CryptError(ValueError):
    """
    libxcrypt refused to compute: the setting is invalid or of a method this
    system does not support, an input is out of bounds, or the library is
    not available.  The message never contains the phrase or the setting,
    only the setting's C{$id$} prefix.
    """


def prefix_of(setting: str) -> str | None:
    """
    Name the hashing method of a setting or hash without revealing the rest
    of it, for messages and for per-method caches.

    @param setting: a crypt setting or a complete hash.
    @return: its C{$id$} prefix (for example C{"$6$"} or C{"$2b$"}), or
        L{None} when it has none (traditional DES, or not a crypt setting).
    """
    match = _PREFIX.match(setting) if isinstance(setting, str) else None
    return match.group() if match else None


def _describe(setting: str) -> str:
    prefix = prefix_of(setting)
    return f"a {prefix} setting" if prefix else "a setting without a $id$ prefix"


def _candidates():
    """
    Library names to try, best first: whatever the linker would pick, then
    the sonames libxcrypt installs under.
    """
    found = ctypes.util.find_library("crypt")
    return [name for name in (found, "libcrypt.so.1", "libcrypt.so.2") if name]


@functools.cache
def _load():
    """
    Load libxcrypt and declare the two functions SUTO calls.

    @return: the loaded library, or a L{str} saying why there is none (so
        the failure is remembered and reported on every use).
    """
    reasons = []
    for name in _candidates():
        try:
            library = ctypes.CDLL(name, use_errno=True)
        except OSError as error:
            reasons.append(f"{name}: {error}")
            continue
        try:
            crypt_rn = library.crypt_rn
            crypt_gensalt_rn = library.crypt_gensalt_rn
        except AttributeError:
            reasons.append(f"{name} is not libxcrypt (it has no crypt_rn)")
            continue
        crypt_rn.argtypes = [
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_void_p,
            ctypes.c_int,
        ]
        crypt_rn.restype = ctypes.c_char_p
        crypt_gensalt_rn.argtypes = [
            ctypes.c_char_p,
            ctypes.c_ulong,
            ctypes.c_char_p,
            ctypes.c_int,
            ctypes.c_char_p,
            ctypes.c_int,
        ]
        crypt_gensalt_rn.restype = ctypes.c_char_p
        return library
    return "; ".join(reasons) or "no libcrypt found"


def _library():
    """
    @return: the loaded libxcrypt.
    @raise CryptError: it is not available.
    """
    library = _load()
    if isinstance(library, str):
        raise CryptError(f"libxcrypt is not available ({library}): {_INSTALL_HINT}")
    return library


def available() -> bool:
    """
    @return: whether libxcrypt could be loaded.
    """
    return not isinstance(_load(), str)


def _ascii_setting(setting: str, what: str) -> bytes:
    """
    Check and encode a setting or prefix.

    @raise CryptError: it is not an ASCII string within bounds.
    """
    if not isinstance(setting, str):
        raise CryptError(f"a {what} must be a str")
    if not setting.isascii() or "\0" in setting:
        raise CryptError(f"a {what} must be ASCII without NUL characters")
    if len(setting) > MAX_SETTING_BYTES:
        raise CryptError(f"a {what} must be at most {MAX_SETTING_BYTES} characters")
    return setting.encode("ascii")


def _phrase_bytes(phrase: str | bytes) -> bytes:
    """
    Check and encode a passphrase (UTF-8 when given as text).

    @raise CryptError: it is not text or bytes, holds a NUL (C would
        silently cut it there) or is longer than libxcrypt accepts.
    """
    if isinstance(phrase, str):
        try:
            phrase = phrase.encode("utf-8")
        except UnicodeEncodeError:
            raise CryptError("a passphrase must be valid Unicode") from None
    elif not isinstance(phrase, bytes):
        raise CryptError("a passphrase must be str or bytes")
    if b"\0" in phrase:
        raise CryptError("a passphrase must not contain NUL")
    if len(phrase) > MAX_PHRASE_BYTES:
        raise CryptError(f"a passphrase must be at most {MAX_PHRASE_BYTES} bytes")
    return phrase


def _refusal(action: str) -> CryptError:
    """
    Describe a call libxcrypt refused, with the reason it left in errno.
    """
    error = ctypes.get_errno()
    reason = os.strerror(error) if error else "no reason given"
    return CryptError(f"libxcrypt cannot {action} ({reason})")


def crypt(phrase: str | bytes, setting: str) -> str:
    """
    Hash C{phrase} with C{setting}, as crypt(3) does.  Blocks for as long
    as the method takes, with the GIL released; safe to call from several
    threads at once.

    @param phrase: the passphrase (text is encoded as UTF-8).
    @param setting: a crypt setting, or a complete hash whose setting part
        is used.
    @return: the complete hash.
    @raise CryptError: the setting is invalid or its method unsupported
        here, an input is out of bounds, or libxcrypt is missing.
    """
    encoded_phrase = _phrase_bytes(phrase)
    encoded_setting = _ascii_setting(setting, "setting")
    library = _library()
    data = ctypes.create_string_buffer(CRYPT_DATA_SIZE)
    ctypes.set_errno(0)
    result = library.crypt_rn(encoded_phrase, encoded_setting, data, CRYPT_DATA_SIZE)
    # crypt_rn reports failure with NULL; the "*" failure token belongs to
    # other entry points, but an implementation returning it is refused too.
    if result is None or result.startswith(b"*"):
        raise _refusal(f"hash with {_describe(setting)}")
    return result.decode("ascii")


def gensalt(prefix: str, rounds: int = 0) -> str:
    """
    Make a fresh setting for a method, with salt from the operating
    system's random number generator (libxcrypt reads it itself when given
    no random bytes).

    @param prefix: the method's C{$id$}, for example C{"$y$"}.
    @param rounds: the method's cost parameter, or 0 for libxcrypt's
        default.
    @return: the setting.
    @raise CryptError: the method is unsupported, C{rounds} is out of its
        range, or libxcrypt is missing.
    """
    encoded_prefix = _ascii_setting(prefix, "prefix")
    if isinstance(rounds, bool) or not isinstance(rounds, int):
        raise CryptError("rounds must be an int")
    if not 0 <= rounds <= _MAX_COUNT:
        raise CryptError(f"rounds must be between 0 and {_MAX_COUNT}")
    library = _library()
    output = ctypes.create_string_buffer(CRYPT_GENSALT_OUTPUT_SIZE)
    ctypes.set_errno(0)
    result = library.crypt_gensalt_rn(
        encoded_prefix, rounds, None, 0, output, CRYPT_GENSALT_OUTPUT_SIZE
    )
    if result is None or result.startswith(b"*"):
        raise _refusal(f"make {_describe(prefix)} with rounds={rounds}")
    return result.decode("ascii")
