"""
The wire codec on its own: exact bytes, round trips, independence from how
the stream is split, and the error code for every kind of bad input.
"""

import base64
import string

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from suto_server.core import wire
from suto_server.core.wire import (
    MAX_LEGACY_BUFFER,
    MAX_LINE,
    NEED_DATA,
    Auth,
    AuthCancelled,
    CFHash,
    Check,
    CheckProof,
    Decoder,
    Enroll,
    EnrollData,
    Enrolled,
    Error,
    Framing,
    GetRSalt,
    GetSaltA,
    GetTime,
    Hello,
    HelloForm,
    ProtocolError,
    Reconnect,
    ReconnectOk,
    Rotate,
    RotateAck,
    RotateDone,
    RotateDoneNext,
    RotateOk,
    RotatePrimed,
    RSalt,
    SaltA,
    ServerTime,
    VerifyChallenge,
    VerifyProof,
    Version,
    can_enroll,
    encode,
    encode_check,
    encode_check_proof,
    encode_hello,
    grammar,
    parse_datagram,
    parse_hello,
    stream,
)

LEGACY = Framing.LEGACY
FRAMED = Framing.FRAMED

SALT = "$6$abcdefghijklmnop"
RSALT = "$6$ABCDEFGHIJKLMNOP"
HASH = RSALT + "$" + "x" * 86
KEY_ID = "0123456789abcdef" * 2
# Bytes whose base64 uses every character class: 0xfbefbe is "++++" and
# 0xffffff is "////".
SEALED_DATA = b"\xfb\xef\xbe" * 13 + b"\xff" * 39 + bytes(2)
CONFIRMATION = bytes(range(48))
# 32 bytes of junk whose base64 is "+" * 40 + "//8=", and two X25519 public
# keys (any 32 bytes travel).
JUNK = b"\xfb\xef\xbe" * 10 + b"\xff\xff"
CLIENT_PUBLIC = bytes(range(32))
SERVER_PUBLIC = bytes(range(32, 64))
# The 16-byte tag of a seal of "ok", "ack" or "done" follows its plaintext.
SEALED_OK = b"ok" + bytes(range(16))
SEALED_ACK = b"ack" + bytes(range(16))
SEALED_DONE = b"done" + bytes(range(16))

# One of every TCP message type, with realistic field values.
LEGACY_EXAMPLES = [
    GetSaltA(),
    GetRSalt(),
    SaltA(SALT, RSALT),
    SaltA("$y$j9T$saltsaltsaltsaltsalt", RSALT),
    SaltA("$2b$05$" + "a" * 22, RSALT),
    SaltA("$6$rounds=10000$salt", RSALT),
    RSalt(RSALT),
    CFHash(HASH),
    Auth(True),
    Auth(False),
    AuthCancelled(),
]
FRAMED_EXAMPLES = LEGACY_EXAMPLES + [
    Version(wire.PROTOCOL_VERSION),
    Version(999),
    Error(wire.ERROR_TOO_LONG),
    Error(wire.ERROR_BAD_SEAL),
    Enroll("bob"),
    Enroll("DATA"),
    Enroll("data_bob"),
    EnrollData(SEALED_DATA),
    Enrolled(KEY_ID, CONFIRMATION),
    Enrolled(KEY_ID, bytes(16)),
    Enrolled(KEY_ID, bytes(64)),
    Rotate(KEY_ID, JUNK, CLIENT_PUBLIC, "bob"),
    Rotate(KEY_ID, JUNK, CLIENT_PUBLIC, "ops_team_lead"),
    Rotate(KEY_ID, bytes(32), bytes(32), "_"),
    Rotate("ac" * 16, JUNK, CLIENT_PUBLIC, "x" * 64),
    RotateOk(SERVER_PUBLIC, SEALED_OK),
    RotateOk(SERVER_PUBLIC, bytes(64)),
    RotateAck(SEALED_ACK),
    RotateAck(bytes(16)),
    RotateDone(SEALED_DONE),
    RotateDone(bytes(64)),
    RotatePrimed(KEY_ID, JUNK, CLIENT_PUBLIC, SEALED_ACK, "bob"),
    RotatePrimed("ac" * 16, bytes(32), bytes(32), bytes(64), "x_" * 32),
    RotateDoneNext(CONFIRMATION),
    GetTime(),
    ServerTime(1700000000, 30),
    ServerTime(999999999999, 99999),
    ServerTime(1, 1),
    Reconnect(KEY_ID, bytes(range(16)), bytes(range(48)), "bob"),
    Reconnect(KEY_ID, bytes(16), bytes(48), "x" * 64),
    Reconnect(KEY_ID, bytes(range(16)), bytes(range(48)), "bob", bytes(16)),
    Reconnect(KEY_ID, bytes(16), bytes(48), "x_" * 32, bytes(range(16, 32))),
    ReconnectOk(SEALED_OK),
    ReconnectOk(bytes(64)),
    VerifyChallenge(bytes(range(0x80, 0x90))),
    VerifyProof(bytes(range(0x80, 0x90)), bytes(16)),
]
# The framed-only messages, which legacy framing cannot carry.
FRAMED_ONLY_EXAMPLES = FRAMED_EXAMPLES[len(LEGACY_EXAMPLES) :]

# Strategies that generate only valid field values.
_ALNUM = string.ascii_letters + string.digits
_CRYPT64 = _ALNUM + "./"
salts = st.text(_CRYPT64 + "$=,", min_size=1, max_size=79).map("$".__add__)
rsalts = st.text(_CRYPT64, min_size=16, max_size=16).map("$6$".__add__)
hashes = st.builds(
    "$6${}${}".format,
    st.text(_CRYPT64, min_size=16, max_size=16),
    st.text(_CRYPT64, min_size=86, max_size=86),
)
users = st.builds(
    str.__add__,
    st.sampled_from(_ALNUM + "._"),
    st.text(_ALNUM + "._-", max_size=63),
)
hosts = st.text(_ALNUM + ".-", min_size=1, max_size=253)
key_ids = st.text("0123456789abcdef", min_size=32, max_size=32)
keys = st.binary(min_size=32, max_size=32)
seals = st.binary(min_size=16, max_size=64)
legacy_messages = st.one_of(
    st.just(GetSaltA()),
    st.just(GetRSalt()),
    st.builds(SaltA, salts, rsalts),
    st.builds(RSalt, rsalts),
    st.builds(CFHash, hashes),
    st.builds(Auth, st.booleans()),
    st.just(AuthCancelled()),
)
framed_messages = st.one_of(
    legacy_messages,
    st.builds(Version, st.integers(1, 999)),
    st.builds(
        Error,
        st.text(string.ascii_uppercase + string.digits + "_", min_size=1, max_size=32),
    ),
    st.builds(Enroll, users.filter(can_enroll)),
    st.builds(EnrollData, st.binary(min_size=80, max_size=80)),
    st.builds(Enrolled, key_ids, seals),
    st.builds(Rotate, key_ids, keys, keys, users.filter(can_enroll)),
    st.builds(RotateOk, keys, seals),
    st.builds(RotateAck, seals),
    st.builds(RotateDone, seals),
    st.builds(RotatePrimed, key_ids, keys, keys, seals, users.filter(can_enroll)),
    st.builds(RotateDoneNext, st.binary(min_size=48, max_size=48)),
    st.just(GetTime()),
    st.builds(ServerTime, st.integers(1, 10**12 - 1), st.integers(1, 99999)),
    st.builds(
        Reconnect,
        key_ids,
        st.binary(min_size=16, max_size=16),
        st.binary(min_size=48, max_size=48),
        users.filter(can_enroll),
        st.none() | st.binary(min_size=16, max_size=16),
    ),
    st.builds(ReconnectOk, seals),
    st.builds(VerifyChallenge, st.binary(min_size=16, max_size=16)),
    st.builds(
        VerifyProof,
        st.binary(min_size=16, max_size=16),
        st.binary(min_size=16, max_size=16),
    ),
)
hellos = st.one_of(
    st.builds(Hello, users, hosts, st.sampled_from([HelloForm.PLUS, HelloForm.DOLLAR])),
    st.builds(Hello, users, st.none(), st.just(HelloForm.UDP_HELLO)),
)
nonces = st.binary(min_size=16, max_size=16)
checks = st.builds(Check, nonces, users.filter(can_enroll))
check_proofs = st.builds(CheckProof, nonces, nonces)


def encode_datagram(message):
    """
    The datagram of a hello, check or check proof.
    """
    if isinstance(message, Check):
        return encode_check(message)
    if isinstance(message, CheckProof):
        return encode_check_proof(message)
    return encode_hello(message)


def decode_chunks(framing, chunks, max_line=MAX_LINE):
    """
    Feed C{chunks} to a new decoder, draining it after each one as a
    transport would, and hold it to its cap all along: it never keeps
    more than L{Decoder.cap} bytes, and no message it decodes is longer.

    @return: every message decoded, in order.
    @raise ProtocolError: the decoder rejected the stream.
    @raise AssertionError: the decoder broke its cap.
    """
    decoder = Decoder(framing, max_line)
    messages = []
    for chunk in chunks:
        decoder.receive_data(chunk)
        if decoder.buffered > decoder.cap:
            raise AssertionError(
                f"{decoder.buffered} bytes buffered, past the cap {decoder.cap}"
            )
        while (event := decoder.next_event()) is not NEED_DATA:
            length = len(encode(event, framing).removesuffix(b"\r\n"))
            if length > decoder.cap:
                raise AssertionError(
                    f"decoded a {length}-byte message, past the cap {decoder.cap}"
                )
            messages.append(event)
    return messages


def one_byte_at_a_time(data):
    return [data[index : index + 1] for index in range(len(data))]


def split_at(data, cuts):
    """
    Cut C{data} at every offset in C{cuts}.
    """
    bounds = [0, *sorted(cuts), len(data)]
    return [data[start:end] for start, end in zip(bounds, bounds[1:])]


def outcome(framing, chunks, max_line=MAX_LINE):
    """
    @return: C{(messages, None)} when C{chunks} decode, else
        C{(None, code)} with the error's code.
    """
    try:
        return decode_chunks(framing, chunks, max_line), None
    except ProtocolError as error:
        return None, error.code


class ErrorAssertionsMixin:
    def assert_protocol_error(self, code, function, *args):
        """
        Assert that C{function(*args)} raises L{ProtocolError} with C{code}.

        @return: the error.
        """
        error = self.assertRaises(ProtocolError, function, *args)
        self.assertEqual(error.code, code)
        return error

    def assert_stream_error(self, code, framing, data):
        """
        Assert that C{data} is rejected with C{code}, fed whole and one
        byte at a time.
        """
        for chunks in [[data], one_byte_at_a_time(data)]:
            self.assert_protocol_error(code, decode_chunks, framing, chunks)


class LegacyBytesTests(SynchronousTestCase):
    """
    Legacy encoding is byte-exact: 1.3.2 peers check lengths.
    """

    def test_fixed_messages(self):
        """
        Messages without fields are their bare tags.
        """
        self.assertEqual(encode(GetSaltA(), LEGACY), b"SUTO_C_GET_SALTA")
        self.assertEqual(encode(GetRSalt(), LEGACY), b"SUTO_C_GET_RSALT")
        self.assertEqual(encode(AuthCancelled(), LEGACY), b"SUTO_AUTH_CANCELLED")

    def test_salta_is_50_bytes(self):
        """
        With a 16-character SHA-512 salt, C{SUTO_SALTA_<salt>_<rsalt>} is
        exactly 50 bytes, the length the Android client accepts.
        """
        data = encode(SaltA(SALT, RSALT), LEGACY)
        self.assertEqual(data, b"SUTO_SALTA_$6$abcdefghijklmnop_$6$ABCDEFGHIJKLMNOP")
        self.assertEqual(len(data), 50)

    def test_rsalt_is_30_bytes(self):
        """
        C{SUTO_RSALT_<rsalt>} is exactly 30 bytes.
        """
        data = encode(RSalt(RSALT), LEGACY)
        self.assertEqual(data, b"SUTO_RSALT_$6$ABCDEFGHIJKLMNOP")
        self.assertEqual(len(data), 30)

    def test_auth_is_11_bytes(self):
        """
        Both verdicts are exactly 11 bytes.
        """
        self.assertEqual(encode(Auth(True), LEGACY), b"SUTO_AUTH_1")
        self.assertEqual(encode(Auth(False), LEGACY), b"SUTO_AUTH_0")

    def test_cf_hash_is_119_bytes(self):
        """
        C{SUTO_CF_HASH_<hash>} is exactly 119 bytes.
        """
        data = encode(CFHash(HASH), LEGACY)
        self.assertEqual(data, b"SUTO_CF_HASH_" + HASH.encode())
        self.assertEqual(len(data), 119)

    def test_framed_appends_crlf(self):
        """
        Framed encoding is the legacy bytes plus CRLF.
        """
        for message in LEGACY_EXAMPLES:
            self.assertEqual(
                encode(message, FRAMED), encode(message, LEGACY) + b"\r\n"
            )
        self.assertEqual(encode(Version(2), FRAMED), b"SUTO_VERSION_2\r\n")
        self.assertEqual(encode(Error("TIMEOUT"), FRAMED), b"SUTO_ERROR_TIMEOUT\r\n")


class EncodeTests(SynchronousTestCase):
    """
    L{encode} refuses what a framing cannot carry, as a programming error.
    """

    def test_framed_only_messages_in_legacy(self):
        """
        L{Version}, L{Error}, and the enrollment and rotation messages do
        not exist in legacy framing.
        """
        for message in FRAMED_ONLY_EXAMPLES:
            self.assertRaises(ValueError, encode, message, LEGACY)

    def test_hello_is_not_a_tcp_message(self):
        """
        A L{Hello} travels by UDP only.
        """
        for framing in Framing:
            self.assertRaises(ValueError, encode, Hello("bob", "desk"), framing)


class LayoutLookupTests(SynchronousTestCase):
    """
    The tables the decoder and L{encode} look layouts up in hold exactly
    the layouts of L{stream.LAYOUTS}, ordered so the first match is the
    one the grammar means.
    """

    def test_longest_tag_first(self):
        """
        Each framing's layouts are all there, and a tag that extends
        another (C{SUTO_C_ROTATE_ACK_} and C{SUTO_C_ROTATE_}) comes first,
        so the first tag a line starts with is the longest it starts with.
        """
        for framing, layouts in stream.LAYOUTS.items():
            ordered = stream._LONGEST_FIRST[framing]
            self.assertEqual(sorted(ordered, key=id), sorted(layouts, key=id))
            for index, layout in enumerate(ordered):
                for later in ordered[index + 1 :]:
                    self.assertFalse(later.tag.startswith(layout.tag))

    def test_layouts_by_kind(self):
        """
        Each message type maps to its own layouts, and only to them.
        """
        for framing, layouts in stream.LAYOUTS.items():
            table = stream._BY_KIND[framing]
            for layout in layouts:
                self.assertIn(layout, table[layout.kind])
            self.assertEqual(
                sum(len(found) for found in table.values()), len(layouts)
            )
            for kind, found in table.items():
                self.assertTrue(all(layout.kind is kind for layout in found))


class RoundTripTests(SynchronousTestCase):
    """
    Decoding what was encoded gives back an equal message.
    """

    def test_legacy_every_type(self):
        """
        Every legacy message type survives a legacy round trip.
        """
        for message in LEGACY_EXAMPLES:
            decoded = decode_chunks(LEGACY, [encode(message, LEGACY)])
            self.assertEqual(decoded, [message])

    def test_framed_every_type(self):
        """
        Every message type, including the framed-only ones, survives a
        framed round trip.
        """
        for message in FRAMED_EXAMPLES:
            decoded = decode_chunks(FRAMED, [encode(message, FRAMED)])
            self.assertEqual(decoded, [message])

    @given(framed_messages)
    def test_framed_generated(self, message):
        """
        Any valid message survives a framed round trip.
        """
        self.assertEqual(decode_chunks(FRAMED, [encode(message, FRAMED)]), [message])

    @given(legacy_messages)
    def test_legacy_generated(self, message):
        """
        Any valid legacy message survives a legacy round trip.
        """
        self.assertEqual(decode_chunks(LEGACY, [encode(message, LEGACY)]), [message])


class SplitIndependenceTests(SynchronousTestCase):
    """
    A stream decodes to the same messages however it is cut into chunks.
    """

    @given(st.lists(legacy_messages, max_size=12), st.data())
    def test_legacy(self, messages, data):
        """
        Concatenated legacy messages, cut anywhere, whole or one byte at a
        time, decode to the same list.
        """
        stream = b"".join(encode(message, LEGACY) for message in messages)
        cuts = data.draw(st.lists(st.integers(0, len(stream))))
        for chunks in [[stream], split_at(stream, cuts), one_byte_at_a_time(stream)]:
            self.assertEqual(decode_chunks(LEGACY, chunks), messages)

    @given(st.lists(framed_messages, max_size=12), st.data())
    def test_framed(self, messages, data):
        """
        Concatenated framed lines, cut anywhere, whole or one byte at a
        time, decode to the same list.
        """
        stream = b"".join(encode(message, FRAMED) for message in messages)
        cuts = data.draw(st.lists(st.integers(0, len(stream))))
        for chunks in [[stream], split_at(stream, cuts), one_byte_at_a_time(stream)]:
            self.assertEqual(decode_chunks(FRAMED, chunks), messages)

    @given(
        st.lists(
            st.tuples(legacy_messages, st.text("\r\n").map(str.encode)),
            max_size=8,
        ),
        st.data(),
    )
    def test_legacy_line_endings_between_messages(self, pairs, data):
        """
        CR and LF bytes between legacy messages are skipped, wherever the
        stream is cut.
        """
        stream = b"".join(encode(message, LEGACY) + gap for message, gap in pairs)
        cuts = data.draw(st.lists(st.integers(0, len(stream))))
        for chunks in [split_at(stream, cuts), one_byte_at_a_time(stream)]:
            self.assertEqual(
                decode_chunks(LEGACY, chunks), [message for message, _ in pairs]
            )

    def test_framed_bare_lf(self):
        """
        A framed line may end in a bare LF.
        """
        self.assertEqual(
            decode_chunks(FRAMED, [b"SUTO_C_GET_RSALT\nSUTO_AUTH_1\r\n"]),
            [GetRSalt(), Auth(True)],
        )


class LegacyDecoderTests(ErrorAssertionsMixin, SynchronousTestCase):
    """
    Without terminators, the legacy decoder decides from the grammar alone
    when a message is complete and when it can no longer be one.
    """

    def test_incomplete_prefixes_need_data(self):
        """
        Every proper prefix of a valid message, the shared C{SUTO_AUTH_}
        included, returns L{NEED_DATA} and raises nothing.
        """
        for message in LEGACY_EXAMPLES:
            data = encode(message, LEGACY)
            for end in range(len(data)):
                decoder = Decoder(LEGACY)
                decoder.receive_data(data[:end])
                self.assertIs(decoder.next_event(), NEED_DATA)

    def test_auth_variants(self):
        """
        After C{SUTO_AUTH_}, C{1}, C{0} and C{CANCELLED} are three different
        messages; anything else is unknown.
        """
        self.assertEqual(
            decode_chunks(LEGACY, [b"SUTO_AUTH_1SUTO_AUTH_0SUTO_AUTH_CANCELLED"]),
            [Auth(True), Auth(False), AuthCancelled()],
        )
        self.assert_stream_error(wire.ERROR_UNKNOWN_MESSAGE, LEGACY, b"SUTO_AUTH_2")
        self.assert_stream_error(wire.ERROR_UNKNOWN_MESSAGE, LEGACY, b"SUTO_AUTH_CX")

    def test_rejects_without_waiting(self):
        """
        The byte that makes a prefix impossible is rejected at once, even
        though more bytes could follow.
        """
        decoder = Decoder(LEGACY)
        decoder.receive_data(b"SUTO_C_GET_")
        self.assert_protocol_error(
            wire.ERROR_UNKNOWN_MESSAGE, decoder.receive_data, b"X"
        )

    def test_unknown_message(self):
        """
        A stream that does not start with a known tag is rejected.
        """
        self.assert_stream_error(wire.ERROR_UNKNOWN_MESSAGE, LEGACY, b"HELLO")
        self.assert_stream_error(
            wire.ERROR_UNKNOWN_MESSAGE, LEGACY, b"SUTO_C_GET_PASSWORD"
        )

    def test_framed_only_messages_are_unknown(self):
        """
        C{SUTO_VERSION_}, C{SUTO_ERROR_}, and the enrollment and rotation
        messages are not legacy messages, with or without their line
        ending.
        """
        for message in FRAMED_ONLY_EXAMPLES:
            line = encode(message, FRAMED)
            for data in [line, line.removesuffix(b"\r\n")]:
                self.assert_stream_error(wire.ERROR_UNKNOWN_MESSAGE, LEGACY, data)

    def test_hello_is_unknown_on_tcp(self):
        """
        A UDP hello arriving on a TCP connection is not a message there.
        """
        self.assert_stream_error(
            wire.ERROR_UNKNOWN_MESSAGE, LEGACY, encode_hello(Hello("bob", "desk"))
        )

    def test_short_rsalt(self):
        """
        A random salt shorter than 19 characters runs into the next
        message, whose C{_} is not a salt character.
        """
        self.assert_stream_error(
            wire.ERROR_BAD_FIELD, LEGACY, b"SUTO_RSALT_$6$ABCDEFGHSUTO_AUTH_1"
        )

    def test_long_rsalt(self):
        """
        A 20th random salt character starts a message that does not exist.
        """
        self.assert_stream_error(
            wire.ERROR_UNKNOWN_MESSAGE, LEGACY, encode(RSalt(RSALT), LEGACY) + b"Q"
        )

    def test_rsalt_without_sha512_prefix(self):
        """
        A random salt must start with C{$6$}.
        """
        self.assert_stream_error(
            wire.ERROR_BAD_FIELD, LEGACY, b"SUTO_RSALT_$5$ABCDEFGHIJKLMNOP"
        )

    def test_salt_too_long(self):
        """
        A password salt longer than 80 characters is rejected as too long.
        """
        self.assert_stream_error(
            wire.ERROR_TOO_LONG, LEGACY, b"SUTO_SALTA_$" + b"a" * 80
        )

    def test_empty_salt(self):
        """
        C{SUTO_SALTA__...} has no password salt.
        """
        self.assert_stream_error(
            wire.ERROR_BAD_FIELD, LEGACY, b"SUTO_SALTA__" + RSALT.encode()
        )

    def test_salt_with_foreign_character(self):
        """
        A character of the SUTO alphabet that a salt may not hold ends the
        salt where no C{_} follows.
        """
        self.assert_stream_error(
            wire.ERROR_BAD_FIELD, LEGACY, b"SUTO_SALTA_$6$ab@c_" + RSALT.encode()
        )

    def test_cf_hash_with_wrong_shape(self):
        """
        A final hash whose 20th character is not C{$} is rejected.
        """
        self.assert_stream_error(
            wire.ERROR_BAD_FIELD, LEGACY, b"SUTO_CF_HASH_" + RSALT.encode() + b"x"
        )

    def test_bytes_outside_the_alphabet(self):
        """
        Non-ASCII bytes, NUL and spaces are bad characters wherever they
        appear: in a tag, in a field, or between messages.
        """
        for bad in [b"\xe9", b"\x00", b" "]:
            self.assert_stream_error(wire.ERROR_BAD_CHARACTER, LEGACY, bad)
            self.assert_stream_error(
                wire.ERROR_BAD_CHARACTER, LEGACY, b"SUTO_RS" + bad
            )
            self.assert_stream_error(
                wire.ERROR_BAD_CHARACTER, LEGACY, b"SUTO_RSALT_$6$ABC" + bad
            )
            self.assert_stream_error(
                wire.ERROR_BAD_CHARACTER, LEGACY, b"SUTO_AUTH_1" + bad
            )

    def test_line_ending_inside_a_message(self):
        """
        Only CR and LF between messages are skipped, never inside one.
        """
        self.assert_stream_error(
            wire.ERROR_BAD_CHARACTER, LEGACY, b"SUTO_AUTH\r\n_1"
        )

    def test_line_endings_do_not_accumulate(self):
        """
        Skipped line endings are dropped at once, so an endless run of them
        never fills the buffer.
        """
        decoder = Decoder(LEGACY)
        for _ in range(MAX_LEGACY_BUFFER):
            decoder.receive_data(b"\r\n")
        decoder.receive_data(b"SUTO_AUTH_1")
        self.assertEqual(decoder.next_event(), Auth(True))

    def test_buffer_cap(self):
        """
        A stream of valid salt characters that never ends is rejected as
        too long well before L{MAX_LEGACY_BUFFER} bytes are buffered.
        """
        decoder = Decoder(LEGACY)
        decoder.receive_data(b"SUTO_SALTA_$")
        received = len(b"SUTO_SALTA_$")
        with self.assertRaises(ProtocolError) as caught:
            while received <= MAX_LEGACY_BUFFER:
                decoder.receive_data(b"a")
                received += 1
        self.assertEqual(caught.exception.code, wire.ERROR_TOO_LONG)
        self.assertLess(received, MAX_LEGACY_BUFFER)


class FramedDecoderTests(ErrorAssertionsMixin, SynchronousTestCase):
    """
    The framed decoder reads one message per line, with a bounded line.
    """

    def test_partial_line_needs_data(self):
        """
        A line without its ending is not decoded yet, even when it already
        holds a whole message.
        """
        decoder = Decoder(FRAMED)
        decoder.receive_data(b"SUTO_AUTH_1\r")
        self.assertIs(decoder.next_event(), NEED_DATA)
        decoder.receive_data(b"\n")
        self.assertEqual(decoder.next_event(), Auth(True))

    def test_empty_line(self):
        """
        An empty line is not a message.
        """
        self.assert_stream_error(wire.ERROR_UNKNOWN_MESSAGE, FRAMED, b"\r\n")
        self.assert_stream_error(wire.ERROR_UNKNOWN_MESSAGE, FRAMED, b"\n")

    def test_unknown_message(self):
        """
        Unknown tags and truncated tags are unknown messages.
        """
        self.assert_stream_error(wire.ERROR_UNKNOWN_MESSAGE, FRAMED, b"SUTO_HELLO\r\n")
        self.assert_stream_error(wire.ERROR_UNKNOWN_MESSAGE, FRAMED, b"SUTO_AUTH_\r\n")

    def test_trailing_bytes(self):
        """
        A line holds exactly one message: more fitting characters make a
        field too long, anything else after it is malformed.
        """
        self.assert_stream_error(
            wire.ERROR_UNKNOWN_MESSAGE, FRAMED, b"SUTO_AUTH_1X\r\n"
        )
        self.assert_stream_error(
            wire.ERROR_TOO_LONG, FRAMED, b"SUTO_RSALT_" + RSALT.encode() + b"Q\r\n"
        )
        self.assert_stream_error(
            wire.ERROR_BAD_FIELD, FRAMED, b"SUTO_RSALT_" + RSALT.encode() + b"@\r\n"
        )

    def test_short_rsalt(self):
        """
        A random salt shorter than 19 characters is a bad field.
        """
        self.assert_stream_error(
            wire.ERROR_BAD_FIELD, FRAMED, b"SUTO_RSALT_$6$ABCDEFGHIJKLMNO\r\n"
        )

    def test_truncated_salta(self):
        """
        C{SUTO_SALTA_} with a salt but no random salt is a bad field.
        """
        self.assert_stream_error(wire.ERROR_BAD_FIELD, FRAMED, b"SUTO_SALTA_$6$ab\r\n")
        self.assert_stream_error(
            wire.ERROR_BAD_FIELD, FRAMED, b"SUTO_SALTA_$6$ab_\r\n"
        )

    def test_version_field(self):
        """
        Versions are 1 to 999 without leading zeros.
        """
        self.assertEqual(
            decode_chunks(FRAMED, [b"SUTO_VERSION_1\r\nSUTO_VERSION_999\r\n"]),
            [Version(1), Version(999)],
        )
        for bad in [b"0", b"01", b"", b"x", b"-1"]:
            self.assert_stream_error(
                wire.ERROR_BAD_FIELD, FRAMED, b"SUTO_VERSION_" + bad + b"\r\n"
            )
        self.assert_stream_error(
            wire.ERROR_TOO_LONG, FRAMED, b"SUTO_VERSION_1000\r\n"
        )

    def test_error_code_field(self):
        """
        Error codes are upper-case and at most 32 characters.
        """
        self.assert_stream_error(
            wire.ERROR_BAD_FIELD, FRAMED, b"SUTO_ERROR_lower\r\n"
        )
        self.assert_stream_error(
            wire.ERROR_TOO_LONG, FRAMED, b"SUTO_ERROR_" + b"A" * 33 + b"\r\n"
        )

    def test_stray_carriage_return(self):
        """
        A CR inside a line, or two before its LF, is a bad character.
        """
        self.assert_stream_error(
            wire.ERROR_BAD_CHARACTER, FRAMED, b"SUTO_AUTH\r_1\r\n"
        )
        self.assert_stream_error(
            wire.ERROR_BAD_CHARACTER, FRAMED, b"SUTO_AUTH_1\r\r\n"
        )

    def test_bytes_outside_the_alphabet(self):
        """
        Non-ASCII bytes, NUL and spaces are bad characters, in a tag or in
        a field.
        """
        for bad in [b"\xe9", b"\x00", b" "]:
            self.assert_stream_error(
                wire.ERROR_BAD_CHARACTER, FRAMED, bad + b"\r\n"
            )
            self.assert_stream_error(
                wire.ERROR_BAD_CHARACTER, FRAMED, b"SUTO_CF" + bad + b"\r\n"
            )
            self.assert_stream_error(
                wire.ERROR_BAD_CHARACTER, FRAMED, b"SUTO_VERSION_2" + bad + b"\r\n"
            )

    def test_line_of_max_length(self):
        """
        A line of exactly C{max_line} bytes, CR included or not yet
        followed by its LF, is accepted; the cap is checked against the
        line itself, whatever it holds.
        """
        line = encode(GetSaltA(), LEGACY)
        decoder = Decoder(FRAMED, max_line=len(line))
        decoder.receive_data(line + b"\r")
        decoder.receive_data(b"\n")
        self.assertEqual(decoder.next_event(), GetSaltA())

    def test_endless_line(self):
        """
        A line longer than C{max_line} is rejected by L{Decoder.receive_data}
        as soon as it is longer, before any line ending arrives.
        """
        decoder = Decoder(FRAMED)
        decoder.receive_data(b"A" * MAX_LINE)
        self.assert_protocol_error(wire.ERROR_TOO_LONG, decoder.receive_data, b"A")

    def test_long_complete_line(self):
        """
        A complete line longer than C{max_line} is too long, even if it
        arrives in one chunk with its ending.
        """
        self.assert_protocol_error(
            wire.ERROR_TOO_LONG,
            decode_chunks,
            FRAMED,
            [encode(GetSaltA(), FRAMED)],
            10,
        )

    def test_max_line_parameter(self):
        """
        C{max_line} sets the cap.
        """
        decoder = Decoder(FRAMED, max_line=10)
        decoder.receive_data(b"SUTO_C_GET")
        self.assertIs(decoder.next_event(), NEED_DATA)
        self.assert_protocol_error(wire.ERROR_TOO_LONG, decoder.receive_data, b"_")


class EnrollmentBytesTests(SynchronousTestCase):
    """
    The enrollment messages are byte-exact framed lines, their sealed
    fields in standard base64 with padding.
    """

    def test_enroll(self):
        """
        C{SUTO_C_ENROLL_<user>} names the user as a hello does.
        """
        self.assertEqual(encode(Enroll("bob"), FRAMED), b"SUTO_C_ENROLL_bob\r\n")

    def test_enroll_data_is_127_bytes(self):
        """
        80 sealed bytes travel as 108 base64 characters, C{+} and C{/}
        included, making a 127-byte line before its CRLF.
        """
        data = encode(EnrollData(SEALED_DATA), FRAMED)
        self.assertEqual(
            data,
            b"SUTO_C_ENROLL_DATA_" + b"+" * 52 + b"/" * 52 + b"AAA=\r\n",
        )
        self.assertEqual(len(data), 127 + 2)

    def test_enrolled(self):
        """
        C{SUTO_ENROLLED_<key_id>_<sealed>}: the key id, an underscore and
        the sealed bytes, padded with C{==} when their length calls for it.
        """
        self.assertEqual(
            encode(Enrolled(KEY_ID, bytes(16)), FRAMED),
            b"SUTO_ENROLLED_" + KEY_ID.encode() + b"_" + b"A" * 22 + b"==\r\n",
        )

    def test_decodes_to_the_same_bytes(self):
        """
        The decoder turns the base64 back into exactly the bytes sealed.
        """
        [data, enrolled] = decode_chunks(
            FRAMED,
            [
                encode(EnrollData(SEALED_DATA), FRAMED),
                encode(Enrolled(KEY_ID, CONFIRMATION), FRAMED),
            ],
        )
        self.assertEqual(data.sealed, SEALED_DATA)
        self.assertEqual(enrolled.key_id, KEY_ID)
        self.assertEqual(enrolled.sealed, CONFIRMATION)

    def test_repr_hides_the_sealed_bytes(self):
        """
        C{repr()} shows how many bytes are sealed, never the bytes nor
        their base64, so that logging a message copies nothing that could
        be checked against a guessed password.
        """
        sealed = b"S" * 80
        cases = [
            (EnrollData(sealed), "EnrollData(sealed=<80 bytes>)"),
            (
                Enrolled(KEY_ID, sealed[:48]),
                f"Enrolled(key_id={KEY_ID!r}, sealed=<48 bytes>)",
            ),
        ]
        for message, expected in cases:
            self.assertEqual(repr(message), expected)
            self.assertNotIn("SSS", repr(message))
            self.assertNotIn("U1NT", repr(message))


class SealedFieldTests(ErrorAssertionsMixin, SynchronousTestCase):
    """
    Sealed fields accept only the canonical base64 of a value of the right
    size; everything else is a bad field, or too long when it has more
    base64 characters than the largest value needs.
    """

    def assert_enroll_data_error(self, code, text):
        self.assert_stream_error(
            code, FRAMED, b"SUTO_C_ENROLL_DATA_" + text + b"\r\n"
        )

    def assert_enrolled_error(self, code, text, key_id=KEY_ID.encode()):
        self.assert_stream_error(
            code, FRAMED, b"SUTO_ENROLLED_" + key_id + b"_" + text + b"\r\n"
        )

    def test_non_canonical_padding_bits(self):
        """
        Base64 whose unused bits before the padding are not zero spells the
        same bytes a second way, and is rejected.
        """
        self.assert_enroll_data_error(wire.ERROR_BAD_FIELD, b"A" * 106 + b"B=")
        self.assert_enrolled_error(wire.ERROR_BAD_FIELD, b"A" * 21 + b"B==")

    def test_misplaced_or_missing_padding(self):
        """
        Padding must be present, at the end, and as long as the length of
        the value requires.
        """
        for text in [
            b"A" * 107,
            b"A" * 105 + b"=A=",
            b"A" * 50 + b"==" + b"A" * 56,
            b"=" + b"A" * 107,
            b"A" * 104 + b"A===",
        ]:
            self.assert_enroll_data_error(wire.ERROR_BAD_FIELD, text)
        self.assert_enrolled_error(wire.ERROR_BAD_FIELD, b"A" * 22)
        self.assert_enrolled_error(wire.ERROR_BAD_FIELD, b"A" * 22 + b"=")

    def test_wrong_number_of_bytes(self):
        """
        Well-formed base64 of a value of the wrong size is rejected: 79 or
        81 bytes of enrollment data, a confirmation under 16 or over 64
        bytes.
        """
        self.assert_enroll_data_error(wire.ERROR_BAD_FIELD, b"A" * 106 + b"==")
        self.assert_enroll_data_error(wire.ERROR_BAD_FIELD, b"A" * 108)
        self.assert_enroll_data_error(wire.ERROR_BAD_FIELD, b"A" * 104)
        self.assert_enroll_data_error(wire.ERROR_TOO_LONG, b"A" * 112)
        self.assert_enroll_data_error(wire.ERROR_BAD_FIELD, b"")
        self.assert_enrolled_error(wire.ERROR_BAD_FIELD, b"A" * 20)
        self.assert_enrolled_error(wire.ERROR_BAD_FIELD, b"A" * 87 + b"=")
        self.assert_enrolled_error(wire.ERROR_BAD_FIELD, b"A" * 88)
        self.assert_enrolled_error(wire.ERROR_TOO_LONG, b"A" * 92)

    def test_characters_outside_base64(self):
        """
        The URL-safe alphabet's C{-} and C{_}, and other SUTO characters,
        are bad fields; bytes outside the SUTO alphabet are bad characters.
        """
        for bad in [b"-", b"_", b".", b"$", b"@"]:
            self.assert_enroll_data_error(
                wire.ERROR_BAD_FIELD, b"A" * 50 + bad + b"A" * 53 + b"AAA="
            )
        for bad in [b"!", b" ", b"\x00", b"\xe9"]:
            self.assert_enroll_data_error(
                wire.ERROR_BAD_CHARACTER, b"A" * 50 + bad + b"A" * 53 + b"AAA="
            )
            self.assert_enrolled_error(
                wire.ERROR_BAD_CHARACTER, b"A" * 10 + bad + b"A" * 11 + b"=="
            )

    def test_key_id(self):
        """
        The key id is exactly 32 lower-case hexadecimal digits, followed by
        an underscore.
        """
        sealed = b"A" * 22 + b"=="
        for key_id in [
            KEY_ID.upper().encode(),
            KEY_ID[:-1].encode(),
            KEY_ID[:-1].encode() + b"g",
            b"",
        ]:
            self.assert_enrolled_error(wire.ERROR_BAD_FIELD, sealed, key_id)
        self.assert_enrolled_error(
            wire.ERROR_TOO_LONG, sealed, KEY_ID.encode() + b"0"
        )
        self.assert_stream_error(
            wire.ERROR_BAD_FIELD,
            FRAMED,
            b"SUTO_ENROLLED_" + KEY_ID.encode() + sealed + b"\r\n",
        )

    def test_input_is_not_echoed(self):
        """
        A rejected sealed field does not appear in the error.
        """
        decoder = Decoder(FRAMED)
        error = self.assertRaises(
            ProtocolError,
            decoder.receive_data,
            b"SUTO_C_ENROLL_DATA_" + b"SECRET" * 18 + b"\r\n",
        )
        self.assertEqual(error.code, wire.ERROR_BAD_FIELD)
        self.assertNotIn("SECRET", str(error))
        self.assertNotIn("SECRET", repr(error))


class EnrollPrefixTests(ErrorAssertionsMixin, SynchronousTestCase):
    """
    C{SUTO_C_ENROLL_DATA_} extends C{SUTO_C_ENROLL_}; the longer tag always
    wins, so users whose names start with C{DATA_} cannot enroll.
    """

    def test_data_tag_wins(self):
        """
        A line that starts with C{SUTO_C_ENROLL_DATA_} is enrollment data,
        even when the rest would be a valid user name: C{DATA_x} is read as
        one base64 character, far too short.
        """
        self.assert_stream_error(
            wire.ERROR_BAD_FIELD, FRAMED, b"SUTO_C_ENROLL_DATA_x\r\n"
        )
        self.assertEqual(
            decode_chunks(FRAMED, [encode(EnrollData(SEALED_DATA), FRAMED)]),
            [EnrollData(SEALED_DATA)],
        )

    def test_data_user_cannot_be_built(self):
        """
        C{Enroll("DATA_x")}, which could never be read back, cannot be
        built, so no peer can send it.
        """
        self.assert_protocol_error(wire.ERROR_BAD_FIELD, Enroll, "DATA_x")

    def test_similar_users_enroll(self):
        """
        Only the exact prefix C{DATA_} is reserved: C{DATA}, C{data_x} and
        C{DATAx} are users like any other.
        """
        for user in ["DATA", "data_x", "DATAx", "xDATA_"]:
            line = b"SUTO_C_ENROLL_" + user.encode() + b"\r\n"
            self.assertEqual(encode(Enroll(user), FRAMED), line)
            self.assertEqual(decode_chunks(FRAMED, [line]), [Enroll(user)])

    def test_can_enroll(self):
        """
        L{can_enroll} is the hello user grammar without the C{DATA_}
        prefix, and refuses anything that is not a string.
        """
        for name in ["bob", "DATA", "data_x", "a" * 64]:
            self.assertTrue(can_enroll(name), name)
        for name in ["DATA_x", "DATA_", "-bob", "", "a" * 65, b"bob", None]:
            self.assertFalse(can_enroll(name), name)

    def test_enroll_user_grammar(self):
        """
        The user of C{SUTO_C_ENROLL_} follows the hello grammar.
        """
        self.assert_stream_error(
            wire.ERROR_BAD_FIELD, FRAMED, b"SUTO_C_ENROLL_-bob\r\n"
        )
        self.assert_stream_error(
            wire.ERROR_BAD_FIELD, FRAMED, b"SUTO_C_ENROLL_\r\n"
        )
        self.assert_stream_error(
            wire.ERROR_TOO_LONG, FRAMED, b"SUTO_C_ENROLL_" + b"b" * 65 + b"\r\n"
        )
        self.assert_stream_error(
            wire.ERROR_UNKNOWN_MESSAGE, FRAMED, b"SUTO_C_ENROLL\r\n"
        )


def rotate_line(
    key_id=KEY_ID.encode(),
    junk=b"+" * 40 + b"//8=",
    public=b"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
    user=b"bob",
):
    """
    A C{SUTO_C_ROTATE_} line from the text of its fields, by default those
    of C{Rotate(KEY_ID, JUNK, CLIENT_PUBLIC, "bob")}.
    """
    return b"SUTO_C_ROTATE_" + b"_".join([key_id, junk, public, user]) + b"\r\n"


def rotate_ok_line(
    public=b"ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=", sealed=b"A" * 22 + b"=="
):
    """
    A C{SUTO_ROTATE_OK_} line from the text of its fields, by default
    those of C{RotateOk(SERVER_PUBLIC, bytes(16))}.
    """
    return b"SUTO_ROTATE_OK_" + public + b"_" + sealed + b"\r\n"


# Where each 32-byte field of the rotation messages sits: a function from
# its text to a line.
KEY_FIELD_LINES = [
    lambda text: rotate_line(junk=text),
    lambda text: rotate_line(public=text),
    lambda text: rotate_line(public=text, user=b"ops_team"),
    lambda text: rotate_ok_line(public=text),
]
# Where each 16-to-64-byte sealed field of the rotation messages sits.
SEAL_FIELD_LINES = [
    lambda text: rotate_ok_line(sealed=text),
    lambda text: b"SUTO_C_ROTATE_ACK_" + text + b"\r\n",
    lambda text: b"SUTO_ROTATE_DONE_" + text + b"\r\n",
]


class RotationBytesTests(SynchronousTestCase):
    """
    The rotation messages are byte-exact framed lines: the key id in hex,
    junk, public keys and seals in standard base64 with padding, the user
    last.
    """

    def test_rotate(self):
        """
        C{SUTO_C_ROTATE_<key_id>_<junk>_<public>_<user>}: 32 bytes of junk
        and a 32-byte public key are 44 base64 characters each, C{+}, C{/}
        and one C{=} included.
        """
        self.assertEqual(
            encode(Rotate(KEY_ID, JUNK, CLIENT_PUBLIC, "bob"), FRAMED),
            b"SUTO_C_ROTATE_0123456789abcdef0123456789abcdef_"
            + b"+" * 40
            + b"//8=_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=_bob\r\n",
        )
        self.assertEqual(
            encode(Rotate(KEY_ID, JUNK, CLIENT_PUBLIC, "bob"), FRAMED), rotate_line()
        )

    def test_rotate_ok(self):
        """
        C{SUTO_ROTATE_OK_<public>_<sealed>}: the server's public key, an
        underscore and the seal.
        """
        self.assertEqual(
            encode(RotateOk(SERVER_PUBLIC, SEALED_OK), FRAMED),
            b"SUTO_ROTATE_OK_ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="
            b"_b2sAAQIDBAUGBwgJCgsMDQ4P\r\n",
        )

    def test_rotate_ack_and_done(self):
        """
        C{SUTO_C_ROTATE_ACK_<sealed>} and C{SUTO_ROTATE_DONE_<sealed>}
        carry only their seal, padded as its length requires.
        """
        self.assertEqual(
            encode(RotateAck(SEALED_ACK), FRAMED),
            b"SUTO_C_ROTATE_ACK_YWNrAAECAwQFBgcICQoLDA0ODw==\r\n",
        )
        self.assertEqual(
            encode(RotateDone(SEALED_DONE), FRAMED),
            b"SUTO_ROTATE_DONE_ZG9uZQABAgMEBQYHCAkKCwwNDg8=\r\n",
        )

    def test_longest_lines_fit(self):
        """
        The longest rotation and reconnection messages, with a
        64-character user or a 64-byte seal, are at most 231 bytes before
        their CRLF, well within L{MAX_LINE}, and read back.
        """
        longest = [
            (Reconnect(KEY_ID, bytes(16), bytes(48), "u" * 64, bytes(16)), 231),
            (Reconnect(KEY_ID, bytes(16), bytes(48), "u" * 64), 204),
            (Rotate(KEY_ID, JUNK, CLIENT_PUBLIC, "u" * 64), 201),
            (RotateOk(SERVER_PUBLIC, bytes(64)), 148),
            (RotateAck(bytes(64)), 106),
            (RotateDone(bytes(64)), 105),
        ]
        for message, length in longest:
            data = encode(message, FRAMED)
            self.assertEqual(len(data), length + 2)
            self.assertLessEqual(length, MAX_LINE)
            self.assertEqual(decode_chunks(FRAMED, [data]), [message])

    def test_decodes_to_the_same_bytes(self):
        """
        The decoder turns the base64 back into exactly the bytes sent.
        """
        [rotate, ok, ack, done] = decode_chunks(
            FRAMED,
            [
                rotate_line(),
                encode(RotateOk(SERVER_PUBLIC, SEALED_OK), FRAMED),
                encode(RotateAck(SEALED_ACK), FRAMED),
                encode(RotateDone(SEALED_DONE), FRAMED),
            ],
        )
        self.assertEqual(
            (rotate.key_id, rotate.junk, rotate.public, rotate.user),
            (KEY_ID, JUNK, CLIENT_PUBLIC, "bob"),
        )
        self.assertEqual((ok.public, ok.sealed), (SERVER_PUBLIC, SEALED_OK))
        self.assertEqual(ack.sealed, SEALED_ACK)
        self.assertEqual(done.sealed, SEALED_DONE)

    def test_repr_hides_junk_and_sealed_bytes(self):
        """
        C{repr()} shows how many bytes of junk and seal a message carries,
        never the bytes nor their base64; key ids, public keys and users
        are shown.
        """
        junk = b"J" * 32
        cases = [
            (
                Rotate(KEY_ID, junk, CLIENT_PUBLIC, "bob"),
                f"Rotate(key_id={KEY_ID!r}, junk=<32 bytes>,"
                f" public={CLIENT_PUBLIC!r}, user='bob')",
            ),
            (
                RotateOk(SERVER_PUBLIC, b"S" * 18),
                f"RotateOk(public={SERVER_PUBLIC!r}, sealed=<18 bytes>)",
            ),
            (RotateAck(b"S" * 19), "RotateAck(sealed=<19 bytes>)"),
            (RotateDone(b"S" * 20), "RotateDone(sealed=<20 bytes>)"),
        ]
        for message, expected in cases:
            self.assertEqual(repr(message), expected)
            for hidden in ["JJJ", "SkpK", "SSS", "U1NT"]:
                self.assertNotIn(hidden, repr(message))


class RotationFieldTests(ErrorAssertionsMixin, SynchronousTestCase):
    """
    Junk, public keys and seals accept only the canonical base64 of a
    value of the right size, wherever they sit in a line.
    """

    def assert_key_field_error(self, code, text):
        for line in KEY_FIELD_LINES:
            self.assert_stream_error(code, FRAMED, line(text))

    def assert_seal_field_error(self, code, text):
        for line in SEAL_FIELD_LINES:
            self.assert_stream_error(code, FRAMED, line(text))

    def test_canonical_fields_decode(self):
        """
        The helpers' lines are valid with canonical fields, so every error
        below comes from the one field changed.
        """
        for line in KEY_FIELD_LINES:
            self.assertEqual(len(decode_chunks(FRAMED, [line(b"A" * 43 + b"=")])), 1)
        for line in SEAL_FIELD_LINES:
            self.assertEqual(len(decode_chunks(FRAMED, [line(b"A" * 22 + b"==")])), 1)

    def test_non_canonical_padding_bits(self):
        """
        Base64 whose unused bits before the padding are not zero spells the
        same bytes a second way, and is rejected.
        """
        self.assert_key_field_error(wire.ERROR_BAD_FIELD, b"A" * 42 + b"B=")
        self.assert_key_field_error(wire.ERROR_BAD_FIELD, b"+" * 40 + b"//9=")
        self.assert_seal_field_error(wire.ERROR_BAD_FIELD, b"A" * 21 + b"B==")
        self.assert_seal_field_error(wire.ERROR_BAD_FIELD, b"A" * 26 + b"B=")

    def test_misplaced_or_missing_padding(self):
        """
        Padding must be present, at the end, and as long as the length of
        the value requires.
        """
        for text in [
            b"A" * 43,
            b"A" * 42 + b"=A",
            b"=" + b"A" * 43,
            b"A" * 20 + b"==" + b"A" * 22,
            b"A" * 41 + b"===",
        ]:
            self.assert_key_field_error(wire.ERROR_BAD_FIELD, text)
        for text in [
            b"A" * 22,
            b"A" * 22 + b"=",
            b"A" * 23 + b"==",
            b"A" * 21 + b"=A=",
        ]:
            self.assert_seal_field_error(wire.ERROR_BAD_FIELD, text)

    def test_wrong_number_of_bytes(self):
        """
        Well-formed base64 of a value of the wrong size is rejected: junk
        or a public key of 31 or 33 bytes, a seal under 16 or over 64
        bytes; more characters than the largest value needs are too long.
        """
        self.assert_key_field_error(wire.ERROR_BAD_FIELD, b"A" * 40 + b"AA==")
        self.assert_key_field_error(wire.ERROR_BAD_FIELD, b"A" * 44)
        self.assert_key_field_error(wire.ERROR_BAD_FIELD, b"")
        self.assert_key_field_error(wire.ERROR_TOO_LONG, b"A" * 48)
        self.assert_seal_field_error(wire.ERROR_BAD_FIELD, b"A" * 20)
        self.assert_seal_field_error(wire.ERROR_BAD_FIELD, b"A" * 87 + b"=")
        self.assert_seal_field_error(wire.ERROR_BAD_FIELD, b"A" * 88)
        self.assert_seal_field_error(wire.ERROR_BAD_FIELD, b"")
        self.assert_seal_field_error(wire.ERROR_TOO_LONG, b"A" * 92)

    def test_characters_outside_base64(self):
        """
        The URL-safe alphabet's C{-} and C{_}, and other SUTO characters,
        are bad fields; bytes outside the SUTO alphabet are bad characters.
        """
        for bad in [b"-", b"_", b".", b"$", b"@"]:
            self.assert_key_field_error(
                wire.ERROR_BAD_FIELD, b"A" * 20 + bad + b"A" * 22 + b"="
            )
            self.assert_seal_field_error(
                wire.ERROR_BAD_FIELD, b"A" * 10 + bad + b"A" * 11 + b"=="
            )
        for bad in [b"!", b" ", b"\x00", b"\xe9"]:
            self.assert_key_field_error(
                wire.ERROR_BAD_CHARACTER, b"A" * 20 + bad + b"A" * 22 + b"="
            )
            self.assert_seal_field_error(
                wire.ERROR_BAD_CHARACTER, b"A" * 10 + bad + b"A" * 11 + b"=="
            )

    def test_trailing_bytes(self):
        """
        Nothing may follow the last seal: another field is a bad field,
        more base64 makes the seal too long.
        """
        for line in SEAL_FIELD_LINES:
            self.assert_stream_error(
                wire.ERROR_BAD_FIELD, FRAMED, line(b"A" * 22 + b"==_bob")
            )
            self.assert_stream_error(
                wire.ERROR_TOO_LONG, FRAMED, line(b"A" * 88 + b"AAAA")
            )

    def test_key_id(self):
        """
        The key id of C{SUTO_C_ROTATE_} is exactly 32 lower-case
        hexadecimal digits, followed by an underscore.
        """
        for key_id in [
            KEY_ID.upper().encode(),
            KEY_ID[:-1].encode(),
            KEY_ID[:-1].encode() + b"g",
            b"",
        ]:
            self.assert_stream_error(
                wire.ERROR_BAD_FIELD, FRAMED, rotate_line(key_id=key_id)
            )
        self.assert_stream_error(
            wire.ERROR_TOO_LONG, FRAMED, rotate_line(key_id=KEY_ID.encode() + b"0")
        )

    def test_missing_fields(self):
        """
        A line that ends before its last field, or lacks a separator, is a
        bad field.
        """
        for line in [
            rotate_line()[: -len(b"_bob\r\n")] + b"\r\n",
            rotate_line()[: -len(b"bob\r\n")] + b"\r\n",
            rotate_line(key_id=KEY_ID.encode() + b"+" * 40 + b"//8="),
            rotate_ok_line()[: -len(b"_" + b"A" * 22 + b"==\r\n")] + b"\r\n",
            b"SUTO_C_ROTATE_ACK_\r\n",
            b"SUTO_ROTATE_DONE_\r\n",
        ]:
            self.assert_stream_error(wire.ERROR_BAD_FIELD, FRAMED, line)

    def test_input_is_not_echoed(self):
        """
        A rejected junk or sealed field does not appear in the error.
        """
        lines = [
            rotate_line(junk=b"SECRET" * 7 + b"AB"),
            rotate_line(junk=b"SECRET" * 7 + b"A-"),
            b"SUTO_C_ROTATE_ACK_" + b"SECRET" * 4 + b"A\r\n",
            b"SUTO_ROTATE_DONE_" + b"SECRET" * 16 + b"\r\n",
        ]
        for line in lines:
            decoder = Decoder(FRAMED)
            error = self.assertRaises(ProtocolError, decoder.receive_data, line)
            self.assertIn(error.code, [wire.ERROR_BAD_FIELD, wire.ERROR_TOO_LONG])
            self.assertNotIn("SECRET", str(error))
            self.assertNotIn("SECRET", repr(error))


class RotateUserTests(ErrorAssertionsMixin, SynchronousTestCase):
    """
    The user of C{SUTO_C_ROTATE_} comes last and runs to the end of the
    line, so user names with underscores travel intact; it follows the
    enrollment grammar of L{can_enroll}.
    """

    def test_users_with_underscores(self):
        """
        Underscores in the user, even ones that make it look like more
        fields, belong to the user.
        """
        for user in [
            "ops_team_lead",
            "_",
            "a__b_",
            KEY_ID + "_bob",
            "A" * 40 + "_bob",
        ]:
            message = Rotate(KEY_ID, JUNK, CLIENT_PUBLIC, user)
            line = rotate_line(user=user.encode())
            self.assertEqual(encode(message, FRAMED), line)
            self.assertEqual(decode_chunks(FRAMED, [line]), [message])

    def test_user_grammar(self):
        """
        An empty user, one that does not start as a hello user does, one
        with a character users may not hold, or one starting with
        C{DATA_} (which could never have enrolled) is a bad field; 65
        characters are too long.
        """
        for user in [b"", b"-bob", b"bob@desk", b"bob+", b"DATA_x", b"DATA_"]:
            self.assert_stream_error(
                wire.ERROR_BAD_FIELD, FRAMED, rotate_line(user=user)
            )
        self.assert_stream_error(
            wire.ERROR_TOO_LONG, FRAMED, rotate_line(user=b"b" * 65)
        )
        self.assert_stream_error(
            wire.ERROR_BAD_CHARACTER, FRAMED, rotate_line(user=b"bob smith")
        )

    def test_users_that_can_enroll(self):
        """
        Every user that can enroll can rotate, C{DATA} and C{data_x}
        included.
        """
        for user in ["DATA", "data_x", "xDATA_", "b" * 64]:
            self.assertTrue(can_enroll(user))
            message = Rotate(KEY_ID, JUNK, CLIENT_PUBLIC, user)
            self.assertEqual(
                decode_chunks(FRAMED, [encode(message, FRAMED)]), [message]
            )


class RotatePrefixTests(ErrorAssertionsMixin, SynchronousTestCase):
    """
    C{SUTO_C_ROTATE_ACK_} extends C{SUTO_C_ROTATE_}; the longer tag always
    wins, which loses no rotation because key ids are lower-case hex.
    """

    def test_ack_tag_wins(self):
        """
        A line that starts with C{SUTO_C_ROTATE_ACK_} is an
        acknowledgement, even when the rest would be a rotation's fields.
        """
        self.assertEqual(
            decode_chunks(FRAMED, [encode(RotateAck(SEALED_ACK), FRAMED)]),
            [RotateAck(SEALED_ACK)],
        )
        self.assert_stream_error(
            wire.ERROR_BAD_FIELD,
            FRAMED,
            b"SUTO_C_ROTATE_ACK_" + rotate_line()[len(b"SUTO_C_ROTATE_") :],
        )

    def test_hex_key_ids_starting_like_ack(self):
        """
        Key ids that start with C{a} or C{ac}, the lower-case neighbours
        of C{ACK_}, are read as rotations.
        """
        for key_id in ["a" * 32, "ac" * 16, "acc" + "0" * 29, "ac0" + "f" * 29]:
            message = Rotate(key_id, JUNK, CLIENT_PUBLIC, "bob")
            self.assertEqual(
                decode_chunks(FRAMED, [encode(message, FRAMED)]), [message]
            )

    def test_ack_key_id_cannot_be_built(self):
        """
        No key id can start with C{ACK_}, so no L{Rotate} is lost to the
        longer tag.
        """
        self.assert_protocol_error(
            wire.ERROR_BAD_FIELD,
            Rotate,
            "ACK_" + KEY_ID[4:],
            JUNK,
            CLIENT_PUBLIC,
            "bob",
        )

    def test_near_tags(self):
        """
        C{SUTO_C_ROTATE_} followed by anything but C{ACK_} is a rotation,
        here with a bad key id; shorter or unknown neighbours of the
        rotation tags are unknown messages.
        """
        for line in [
            b"SUTO_C_ROTATE_ACK\r\n",
            b"SUTO_C_ROTATE_ack_" + b"A" * 22 + b"==\r\n",
            b"SUTO_C_ROTATE_DONE_" + b"A" * 22 + b"==\r\n",
        ]:
            self.assert_stream_error(wire.ERROR_BAD_FIELD, FRAMED, line)
        for line in [
            b"SUTO_C_ROTATE\r\n",
            b"SUTO_ROTATE_\r\n",
            b"SUTO_ROTATE_OK\r\n",
            b"SUTO_ROTATE_DONE\r\n",
            b"SUTO_ROTATE_ACK_" + b"A" * 22 + b"==\r\n",
        ]:
            self.assert_stream_error(wire.ERROR_UNKNOWN_MESSAGE, FRAMED, line)


class PrimedRotationBytesTests(ErrorAssertionsMixin, SynchronousTestCase):
    """
    The primed rotation's messages (protocol version 3): a rotation that
    carries its acknowledgement, and the final word that carries the
    server's next share, sealed.
    """

    def test_rotate_primed(self):
        """
        C{SUTO_C_ROTATE_PRIMED_<key_id>_<junk>_<public>_<sealed>_<user>}:
        the fields of C{SUTO_C_ROTATE_}, the acknowledgement's seal before
        the user, which comes last as it may contain C{_}.
        """
        message = RotatePrimed(KEY_ID, JUNK, CLIENT_PUBLIC, SEALED_ACK, "a_b")
        data = encode(message, FRAMED)
        self.assertEqual(
            data,
            b"SUTO_C_ROTATE_PRIMED_0123456789abcdef0123456789abcdef_"
            + b"+" * 40
            + b"//8=_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
            + b"_YWNrAAECAwQFBgcICQoLDA0ODw==_a_b\r\n",
        )
        self.assertEqual(decode_chunks(FRAMED, [data]), [message])

    def test_rotate_done_next(self):
        """
        C{SUTO_ROTATE_DONE_NEXT_<sealed>}: exactly 48 bytes, a 32-byte
        public key and its tag, 64 base64 characters without padding.
        """
        data = encode(RotateDoneNext(CONFIRMATION), FRAMED)
        self.assertEqual(
            data,
            b"SUTO_ROTATE_DONE_NEXT_"
            + base64.b64encode(CONFIRMATION)
            + b"\r\n",
        )
        self.assertEqual(len(data), len(b"SUTO_ROTATE_DONE_NEXT_") + 64 + 2)
        self.assertEqual(decode_chunks(FRAMED, [data]), [RotateDoneNext(CONFIRMATION)])

    def test_share_length(self):
        """
        A share sealed in anything but 48 bytes cannot be built; read, a
        shorter one is C{BAD_FIELD}, a longer one C{TOO_LONG}, as for every
        base64 field.
        """
        for length, code in (
            (16, wire.ERROR_BAD_FIELD),
            (47, wire.ERROR_BAD_FIELD),
            (49, wire.ERROR_TOO_LONG),
            (64, wire.ERROR_TOO_LONG),
        ):
            self.assert_protocol_error(
                wire.ERROR_BAD_FIELD, RotateDoneNext, bytes(length)
            )
            self.assert_stream_error(
                code,
                FRAMED,
                b"SUTO_ROTATE_DONE_NEXT_" + base64.b64encode(bytes(length)) + b"\r\n",
            )

    def test_longer_tags_win(self):
        """
        C{SUTO_C_ROTATE_PRIMED_} extends C{SUTO_C_ROTATE_} and
        C{SUTO_ROTATE_DONE_NEXT_} extends C{SUTO_ROTATE_DONE_}; neither
        takes a message of the shorter tag, because key ids are lower-case
        hexadecimal and base64 has no C{_}.
        """
        for message in (
            Rotate("ab" * 16, JUNK, CLIENT_PUBLIC, "PRIMED_bob"),
            RotateDone(b"\x34\x41\x13" + bytes(13)),
        ):
            self.assertEqual(
                decode_chunks(FRAMED, [encode(message, FRAMED)]), [message]
            )
        self.assert_stream_error(
            wire.ERROR_BAD_FIELD,
            FRAMED,
            b"SUTO_C_ROTATE_PRIMED_" + rotate_line()[len(b"SUTO_C_ROTATE_") :],
        )
        self.assert_stream_error(
            wire.ERROR_BAD_FIELD,
            FRAMED,
            encode(RotateDone(SEALED_DONE), FRAMED).replace(
                b"_DONE_", b"_DONE_NEXT_"
            ),
        )

    def test_longest_line_fits(self):
        """
        The longest primed rotation, a 64-byte seal and a 64-character
        user, is 297 bytes before its CRLF, within L{MAX_LINE}.
        """
        message = RotatePrimed(KEY_ID, JUNK, CLIENT_PUBLIC, bytes(64), "u" * 64)
        data = encode(message, FRAMED)
        self.assertEqual(len(data), 297 + 2)
        self.assertLessEqual(297, MAX_LINE)
        self.assertEqual(decode_chunks(FRAMED, [data]), [message])

    def test_repr_hides_junk_and_seals(self):
        """
        As for a rotation, C{repr()} counts the junk and the seals and
        shows neither, the sealed share included.
        """
        primed = RotatePrimed(KEY_ID, b"J" * 32, CLIENT_PUBLIC, b"S" * 19, "bob")
        self.assertEqual(
            repr(primed),
            f"RotatePrimed(key_id={KEY_ID!r}, junk=<32 bytes>,"
            f" public={CLIENT_PUBLIC!r}, sealed=<19 bytes>, user='bob')",
        )
        self.assertEqual(
            repr(RotateDoneNext(b"S" * 48)), "RotateDoneNext(sealed=<48 bytes>)"
        )


class DeadDecoderTests(ErrorAssertionsMixin, SynchronousTestCase):
    """
    After an error a decoder never recovers.
    """

    def test_every_call_raises_the_same_error(self):
        """
        Both methods raise the first error again, whatever bytes follow,
        valid or not.
        """
        for framing in Framing:
            decoder = Decoder(framing)
            first = self.assert_protocol_error(
                wire.ERROR_BAD_CHARACTER, decoder.receive_data, b"\x00\n"
            )
            for data in [encode(GetSaltA(), framing), b"\x00"]:
                self.assertIs(
                    self.assertRaises(ProtocolError, decoder.receive_data, data),
                    first,
                )
            self.assertIs(self.assertRaises(ProtocolError, decoder.next_event), first)

    def test_drops_messages_received_with_the_error(self):
        """
        Messages that arrived in the same chunk as the offending byte are
        not delivered.
        """
        decoder = Decoder(LEGACY)
        self.assert_protocol_error(
            wire.ERROR_UNKNOWN_MESSAGE, decoder.receive_data, b"SUTO_AUTH_1SUTO_X"
        )
        self.assert_protocol_error(wire.ERROR_UNKNOWN_MESSAGE, decoder.next_event)


class ErrorMessageTests(SynchronousTestCase):
    """
    L{ProtocolError} is machine-readable and never quotes its input.
    """

    def test_fields(self):
        """
        The code and the detail are kept, and both appear in C{str()}.
        """
        error = ProtocolError(wire.ERROR_TOO_LONG, "line is too long")
        self.assertEqual(error.code, wire.ERROR_TOO_LONG)
        self.assertEqual(str(error), "TOO_LONG: line is too long")

    def test_input_is_not_echoed(self):
        """
        A malformed hash that could be secret does not appear in the error.
        """
        secret = b"$6$SECRETSECRETSECR$" + b"S" * 40
        for framing in Framing:
            decoder = Decoder(framing)
            error = self.assertRaises(
                ProtocolError,
                decoder.receive_data,
                b"SUTO_CF_HASH_" + secret + b"\x00\r\n",
            )
            self.assertNotIn("SECRET", str(error))
            self.assertNotIn("SECRET", repr(error))


class MessageValidationTests(ErrorAssertionsMixin, SynchronousTestCase):
    """
    A message with an invalid field cannot be built, so it can be neither
    decoded nor sent.
    """

    def test_invalid_fields(self):
        """
        Each field's grammar is enforced by the constructor, with
        L{wire.ERROR_BAD_FIELD}.
        """
        cases = [
            (SaltA, "6$abc", RSALT),
            (SaltA, "$", RSALT),
            (SaltA, "$6$ab_cd", RSALT),
            (SaltA, "$" + "a" * 80, RSALT),
            (SaltA, "$6$abcdefghijklmn\u00e9", RSALT),
            (SaltA, SALT, RSALT[:-1]),
            (RSalt, RSALT + "A"),
            (RSalt, "$5$ABCDEFGHIJKLMNOP"),
            (RSalt, "$6$ABCDEFGHIJKLMNO_"),
            (RSalt, b"$6$ABCDEFGHIJKLMNOP"),
            (CFHash, HASH[:-1]),
            (CFHash, HASH.replace("$", "x", 3)),
            (Auth, 1),
            (Auth, None),
            (Version, 0),
            (Version, 1000),
            (Version, True),
            (Version, "2"),
            (Error, "lower"),
            (Error, ""),
            (Error, "A" * 33),
            (Enroll, "DATA_x"),
            (Enroll, "DATA_"),
            (Enroll, "-bob"),
            (Enroll, ""),
            (Enroll, "b" * 65),
            (Enroll, b"bob"),
            (EnrollData, bytes(79)),
            (EnrollData, bytes(81)),
            (EnrollData, bytearray(80)),
            (EnrollData, "A" * 108),
            (Enrolled, KEY_ID.upper(), CONFIRMATION),
            (Enrolled, KEY_ID[:-1], CONFIRMATION),
            (Enrolled, KEY_ID + "0", CONFIRMATION),
            (Enrolled, KEY_ID[:-1] + "g", CONFIRMATION),
            (Enrolled, KEY_ID, bytes(15)),
            (Enrolled, KEY_ID, bytes(65)),
            (Enrolled, KEY_ID, None),
            (Rotate, KEY_ID.upper(), JUNK, CLIENT_PUBLIC, "bob"),
            (Rotate, KEY_ID[:-1], JUNK, CLIENT_PUBLIC, "bob"),
            (Rotate, KEY_ID, bytes(31), CLIENT_PUBLIC, "bob"),
            (Rotate, KEY_ID, bytes(33), CLIENT_PUBLIC, "bob"),
            (Rotate, KEY_ID, bytearray(32), CLIENT_PUBLIC, "bob"),
            (Rotate, KEY_ID, "A" * 43 + "=", CLIENT_PUBLIC, "bob"),
            (Rotate, KEY_ID, JUNK, bytes(31), "bob"),
            (Rotate, KEY_ID, JUNK, bytes(33), "bob"),
            (Rotate, KEY_ID, JUNK, None, "bob"),
            (Rotate, KEY_ID, JUNK, CLIENT_PUBLIC, "DATA_x"),
            (Rotate, KEY_ID, JUNK, CLIENT_PUBLIC, "-bob"),
            (Rotate, KEY_ID, JUNK, CLIENT_PUBLIC, ""),
            (Rotate, KEY_ID, JUNK, CLIENT_PUBLIC, "b" * 65),
            (Rotate, KEY_ID, JUNK, CLIENT_PUBLIC, "bob@desk"),
            (Rotate, KEY_ID, JUNK, CLIENT_PUBLIC, b"bob"),
            (RotateOk, bytes(31), SEALED_OK),
            (RotateOk, bytes(33), SEALED_OK),
            (RotateOk, SERVER_PUBLIC, bytes(15)),
            (RotateOk, SERVER_PUBLIC, bytes(65)),
            (RotateAck, bytes(15)),
            (RotateAck, bytes(65)),
            (RotateAck, bytearray(SEALED_ACK)),
            (RotateAck, None),
            (RotateDone, bytes(15)),
            (RotateDone, bytes(65)),
            (RotateDone, "A" * 24),
            (Hello, "-bob", "desk"),
            (Hello, "bob@x", "desk"),
            (Hello, "", "desk"),
            (Hello, "b" * 65, "desk"),
            (Hello, "bob", None),
            (Hello, "bob", "de_sk"),
            (Hello, "bob", "d" * 254),
            (Hello, "bob", "desk", HelloForm.UDP_HELLO),
            (Hello, "bob", "desk", "+"),
        ]
        for kind, *args in cases:
            self.assert_protocol_error(wire.ERROR_BAD_FIELD, kind, *args)

    def test_valid_settings(self):
        """
        The password settings of the common crypt schemes are valid salts.
        """
        for salt in [
            "$6$saltsaltsaltsalt",
            "$y$j9T$saltsaltsaltsaltsalt.",
            "$2b$05$" + "a" * 22,
            "$6$rounds=10000$salt",
            "$" + "a" * 79,
        ]:
            self.assertEqual(SaltA(salt, RSALT).salt, salt)

    def test_messages_are_immutable(self):
        """
        Decoded messages cannot be altered after validation.
        """
        message = RSalt(RSALT)
        self.assertRaises(AttributeError, setattr, message, "rsalt", "x")


class HelloTests(ErrorAssertionsMixin, SynchronousTestCase):
    """
    UDP hellos in all three spellings.
    """

    def test_plus(self):
        """
        C{SUTO_<user>@<host>+}, what 1.3.2 desktops send, is what
        L{encode_hello} writes by default.
        """
        hello = Hello("bob", "desk.example.com")
        self.assertEqual(encode_hello(hello), b"SUTO_bob@desk.example.com+")
        self.assertEqual(parse_hello(b"SUTO_bob@desk.example.com+"), hello)

    def test_dollar(self):
        """
        C{SUTO_<user>@<host>$} round-trips.
        """
        hello = Hello("bob", "desk", HelloForm.DOLLAR)
        self.assertEqual(encode_hello(hello), b"SUTO_bob@desk$")
        self.assertEqual(parse_hello(b"SUTO_bob@desk$"), hello)

    def test_udp_hello(self):
        """
        C{SUTO_UDP_HELLO_<user>} round-trips and names no host.
        """
        hello = Hello("bob", None, HelloForm.UDP_HELLO)
        self.assertEqual(encode_hello(hello), b"SUTO_UDP_HELLO_bob")
        self.assertEqual(parse_hello(b"SUTO_UDP_HELLO_bob"), hello)

    def test_user_looking_like_udp_hello(self):
        """
        The final C{+} or C{$} decides the spelling, so a user named
        C{UDP_HELLO_bob} is read as a user.
        """
        self.assertEqual(
            parse_hello(b"SUTO_UDP_HELLO_bob@desk+"),
            Hello("UDP_HELLO_bob", "desk"),
        )

    @given(hellos)
    def test_round_trip(self, hello):
        """
        Any valid hello survives a round trip.
        """
        self.assertEqual(parse_hello(encode_hello(hello)), hello)

    def test_bad_hellos(self):
        """
        Each kind of malformed hello is rejected with its code.
        """
        cases = [
            (wire.ERROR_UNKNOWN_MESSAGE, b"HELLO_bob@desk+"),
            (wire.ERROR_UNKNOWN_MESSAGE, b"SUTO_bob@desk"),
            (wire.ERROR_UNKNOWN_MESSAGE, b""),
            (wire.ERROR_BAD_FIELD, b"SUTO_bob+"),
            (wire.ERROR_BAD_FIELD, b"SUTO_@desk+"),
            (wire.ERROR_BAD_FIELD, b"SUTO_bob@+"),
            (wire.ERROR_BAD_FIELD, b"SUTO_-bob@desk+"),
            (wire.ERROR_BAD_FIELD, b"SUTO_bob@x@desk+"),
            (wire.ERROR_BAD_FIELD, b"SUTO_UDP_HELLO_"),
            (wire.ERROR_BAD_CHARACTER, b"SUTO_b\xc3\xb6b@desk+"),
            (wire.ERROR_BAD_CHARACTER, b"SUTO_bob@desk+\x00"),
            (wire.ERROR_BAD_CHARACTER, b"SUTO_bob @desk+"),
            (wire.ERROR_BAD_CHARACTER, b"SUTO_bob@desk+\r\n"),
            (wire.ERROR_TOO_LONG, b"SUTO_bob@" + b"d" * 400 + b"+"),
        ]
        for code, datagram in cases:
            self.assert_protocol_error(code, parse_hello, datagram)


# A nonce and a proof whose base64 use every character class: 0xfbefbe is
# "++++" and 0xffffff is "////".
NONCE = b"\xfb\xef\xbe" * 5 + b"\xff"
PROOF = bytes(range(16))
PADDING = b"-" * 25


class CheckBytesTests(ErrorAssertionsMixin, SynchronousTestCase):
    """
    The check packet and its answer, byte for byte.
    """

    def test_check(self):
        """
        C{SUTO_CHECK_<nonce>_<padding>_<user>}: the nonce in base64, 25
        dashes of padding, and the user last, underscores and all.
        """
        check = Check(NONCE, "ops_team")
        datagram = b"SUTO_CHECK_++++++++++++++++++++/w==_" + PADDING + b"_ops_team"
        self.assertEqual(encode_check(check), datagram)
        self.assertEqual(parse_datagram(datagram), check)

    def test_check_proof(self):
        """
        C{SUTO_CHECK_OK_<nonce>_<proof>}: 63 bytes, whatever the values.
        """
        answer = CheckProof(NONCE, PROOF)
        datagram = (
            b"SUTO_CHECK_OK_++++++++++++++++++++/w==_AAECAwQFBgcICQoLDA0ODw=="
        )
        self.assertEqual(encode_check_proof(answer), datagram)
        self.assertEqual(len(datagram), 63)
        self.assertEqual(parse_datagram(datagram), answer)

    def test_answer_never_longer_than_check(self):
        """
        An answer is never longer than the check it answers, even for the
        shortest user, so an agent cannot amplify traffic; the padding is
        no longer than that needs.
        """
        answer = encode_check_proof(CheckProof(NONCE, PROOF))
        shortest = encode_check(Check(NONCE, "a"))
        self.assertEqual(len(shortest), len(answer))
        for length in range(1, 65):
            check = encode_check(Check(NONCE, "u" * length))
            self.assertGreaterEqual(len(check), len(answer))

    @given(st.one_of(hellos, checks, check_proofs))
    def test_round_trip(self, message):
        """
        Every hello, check and answer survives a round trip through
        L{parse_datagram}.
        """
        self.assertEqual(parse_datagram(encode_datagram(message)), message)

    def test_hellos_unchanged(self):
        """
        L{parse_datagram} reads hellos as L{parse_hello} does, including
        those of users whose names start like a check, and rejects what
        it rejects with the same code.
        """
        for datagram in [
            b"SUTO_bob@desk+",
            b"SUTO_CHECK_bob@desk+",
            b"SUTO_CHECK_OK_bob@desk$",
            b"SUTO_UDP_HELLO_CHECK_bob",
        ]:
            self.assertEqual(parse_datagram(datagram), parse_hello(datagram))
        for datagram in [b"", b"SUTO_bob@desk", b"SUTO_b\xc3\xb6b@desk+"]:
            code = self.assertRaises(ProtocolError, parse_hello, datagram).code
            self.assert_protocol_error(code, parse_datagram, datagram)

    def test_not_tcp_messages(self):
        """
        Checks and answers travel only as datagrams: no framing encodes
        them, and no decoder reads them.
        """
        for message in (Check(NONCE, "bob"), CheckProof(NONCE, PROOF)):
            for framing in Framing:
                self.assertRaises(ValueError, encode, message, framing)
            datagram = encode_datagram(message)
            self.assert_protocol_error(
                wire.ERROR_UNKNOWN_MESSAGE,
                decode_chunks,
                FRAMED,
                [datagram + b"\r\n"],
            )

    def test_invalid_messages(self):
        """
        A check or answer with a nonce or proof of the wrong size or type,
        or a check for a user who cannot enroll, cannot be built.
        """
        for build in [
            lambda: Check(NONCE[:-1], "bob"),
            lambda: Check(NONCE + b"\x00", "bob"),
            lambda: Check(NONCE.hex(), "bob"),
            lambda: Check(NONCE, ""),
            lambda: Check(NONCE, "DATA_bob"),
            lambda: Check(NONCE, "bob@desk"),
            lambda: Check(NONCE, "x" * 65),
            lambda: CheckProof(NONCE, PROOF[:-1]),
            lambda: CheckProof(NONCE, PROOF + b"\x00"),
            lambda: CheckProof(None, PROOF),
        ]:
            self.assert_protocol_error(wire.ERROR_BAD_FIELD, build)


class CheckParseTests(ErrorAssertionsMixin, SynchronousTestCase):
    """
    Every kind of malformed check or answer is rejected with its code, and
    the error never quotes the datagram.
    """

    check = b"SUTO_CHECK_++++++++++++++++++++/w==_" + PADDING + b"_bob"
    answer = b"SUTO_CHECK_OK_++++++++++++++++++++/w==_AAECAwQFBgcICQoLDA0ODw=="

    def test_bad_datagrams(self):
        """
        Truncated, padded wrongly, over-long, non-canonical or foreign
        datagrams are refused.
        """
        check, answer = self.check, self.answer
        cases = [
            (wire.ERROR_BAD_FIELD, b"SUTO_CHECK_"),
            (wire.ERROR_BAD_FIELD, b"SUTO_CHECK_OK_"),
            (wire.ERROR_BAD_FIELD, check[: -len(b"_bob")]),
            (wire.ERROR_BAD_FIELD, check[: -len(b"bob")]),
            (wire.ERROR_BAD_FIELD, check.replace(PADDING, PADDING[1:])),
            (wire.ERROR_BAD_FIELD, check.replace(PADDING, PADDING + b"-")),
            (wire.ERROR_BAD_FIELD, check.replace(PADDING + b"_", b"")),
            (wire.ERROR_BAD_FIELD, check.replace(b"_bob", b"_-bob")),
            (wire.ERROR_BAD_FIELD, check.replace(b"/w==", b"/x==")),
            (wire.ERROR_BAD_FIELD, check.replace(b"/w==", b"/w=_")),
            (wire.ERROR_BAD_FIELD, answer[:-1]),
            (wire.ERROR_BAD_FIELD, answer.replace(b"Dw==", b"Dx==")),
            (wire.ERROR_BAD_FIELD, answer.replace(b"==_", b"_")),
            (wire.ERROR_BAD_FIELD, answer + b"_bob"),
            (wire.ERROR_TOO_LONG, answer + b"A"),
            (wire.ERROR_TOO_LONG, check.replace(b"/w==", b"/w==AAAA")),
            (wire.ERROR_TOO_LONG, check + b"b" * 64),
            (wire.ERROR_TOO_LONG, check + b"b" * 400),
            (wire.ERROR_BAD_CHARACTER, check + b"\r\n"),
            (wire.ERROR_BAD_CHARACTER, answer.replace(b"AAEC", b"AA\xc3\xb6")),
            (wire.ERROR_BAD_CHARACTER, b"SUTO_CHECK_ " + check[11:]),
            (wire.ERROR_UNKNOWN_MESSAGE, b"SUTO_CHECKS_" + check[11:]),
        ]
        for code, datagram in cases:
            self.assert_protocol_error(code, parse_datagram, datagram)

    def test_hello_parser_rejects_them(self):
        """
        L{parse_hello} alone reads no check or answer, so a listener that
        only knows hellos drops them.
        """
        for datagram in (self.check, self.answer):
            self.assert_protocol_error(
                wire.ERROR_UNKNOWN_MESSAGE, parse_hello, datagram
            )

    def test_input_is_not_echoed(self):
        """
        The error for a bad field does not quote the datagram.
        """
        error = self.assertRaises(
            ProtocolError, parse_datagram, self.answer.replace(b"Dw==", b"Dx==")
        )
        self.assertNotIn("Dx", str(error))
        self.assertNotIn("AAEC", str(error))


def mutated(stream):
    """
    A strategy for C{stream} with one byte replaced, inserted or deleted,
    to reach the decoder's error paths more often than random bytes do.
    """
    return st.tuples(
        st.integers(0, len(stream)), st.integers(0, 2), st.binary(max_size=1)
    ).map(
        lambda edit: stream[: edit[0]]
        + (b"" if edit[1] == 0 else edit[2])
        + stream[edit[0] + (edit[1] != 1) :]
    )


legacy_streams = st.lists(legacy_messages, max_size=4).map(
    lambda messages: b"".join(encode(message, LEGACY) for message in messages)
)
framed_streams = st.lists(framed_messages, max_size=4).map(
    lambda messages: b"".join(encode(message, FRAMED) for message in messages)
)
fuzz_input = st.one_of(
    st.binary(max_size=600),
    legacy_streams.flatmap(mutated),
    framed_streams.flatmap(mutated),
)


class FuzzRuleTests(SynchronousTestCase):
    """
    Any input either decodes or raises L{ProtocolError}; never anything
    else.
    """

    @settings(max_examples=300)
    @given(fuzz_input, st.one_of(st.just(MAX_LINE), st.integers(1, 160)))
    def test_decoder(self, data, max_line):
        """
        Fed whole or one byte at a time, every input ends the same way in
        both framings: the same messages, or an error with the same code.
        Along the way the decoder never holds more than its cap, nor
        decodes a longer message (L{decode_chunks} checks), whether the
        cap is the default or short enough for valid messages to pass it.
        """
        for framing in Framing:
            whole = outcome(framing, [data], max_line)
            bytewise = outcome(framing, one_byte_at_a_time(data), max_line)
            if whole[1] is None:
                self.assertEqual(bytewise, whole)
            else:
                self.assertEqual(bytewise[1], whole[1])

    @given(
        st.one_of(
            st.binary(max_size=400), hellos.map(encode_hello).flatmap(mutated)
        )
    )
    def test_parse_hello(self, datagram):
        """
        Every datagram is a hello that encodes back to the same bytes, or
        is rejected with L{ProtocolError}.
        """
        try:
            hello = parse_hello(datagram)
        except ProtocolError:
            return
        self.assertEqual(encode_hello(hello), datagram)

    @given(
        st.one_of(
            st.binary(max_size=400),
            st.one_of(hellos, checks, check_proofs)
            .map(encode_datagram)
            .flatmap(mutated),
        )
    )
    def test_parse_datagram(self, datagram):
        """
        Every datagram is a hello, check or answer that encodes back to
        the same bytes, or is rejected with L{ProtocolError}.
        """
        try:
            message = parse_datagram(datagram)
        except ProtocolError:
            return
        self.assertEqual(encode_datagram(message), datagram)


def _all_fields():
    """
    Every field grammar the codec reads, from its layouts.
    """
    fields = {}
    for layouts in stream.LAYOUTS.values():
        for layout in layouts:
            for part in layout.parts:
                if not isinstance(part, bytes):
                    fields[part.name] = part
    return sorted(fields.values(), key=lambda field: field.name)


def _allows(field, index, byte):
    """
    The field's grammar, one position at a time: what the matches in
    C{Field.measure} and C{Field.accepts} must agree with.
    """
    if index < len(field.head):
        return byte in field.head[index]
    return index < field.max_length and byte in field.tail


def _measure_bytewise(field, data, start, bounded, final):
    """
    C{Field.measure} written as a walk over the bytes, the reference for
    the matching one.
    """
    end = start
    while end < len(data) and (bounded or end - start < field.max_length):
        byte = data[end]
        if not _allows(field, end - start, byte):
            if end - start >= field.max_length and byte in field.tail:
                raise wire.ProtocolError(wire.ERROR_TOO_LONG, "too long")
            if end - start < field.min_length:
                raise grammar.reject(byte, wire.ERROR_BAD_FIELD, "bad")
            return end
        end += 1
    if end - start == field.max_length and not bounded:
        return end
    if not final:
        return wire.NEED_DATA
    if end - start < field.min_length:
        raise wire.ProtocolError(wire.ERROR_BAD_FIELD, "too short")
    return end


def _outcome(call):
    try:
        return call()
    except wire.ProtocolError as error:
        return ("error", error.code)


_FIELDS = _all_fields()


class FieldMatchingTests(SynchronousTestCase):
    """
    The fields' regular-expression matching says what a byte-by-byte walk
    of their grammar says, for any bytes.
    """

    @settings(max_examples=1500, deadline=None)
    @given(
        st.sampled_from(_FIELDS),
        st.data(),
        st.integers(0, 3),
        st.booleans(),
        st.booleans(),
    )
    def test_measure(self, field, draw, start, bounded, final):
        """
        For any field, start, boundedness and finality, both agree on the
        end or on the error; the bytes are mostly the field's own, so
        that long valid runs, runs past the maximum and runs cut short
        all occur.
        """
        prefix = draw.draw(st.binary(max_size=3))
        head = [draw.draw(st.sampled_from(sorted(allowed))) for allowed in field.head]
        own = st.sampled_from(sorted(set(field.tail)))
        body = draw.draw(
            st.lists(
                st.one_of(own, own, own, own, st.integers(0, 255)),
                max_size=field.max_length + 4,
            )
        )
        data = prefix + bytes(head) + bytes(body)
        start = min(start, len(prefix))
        self.assertEqual(
            _outcome(lambda: field.measure(data, start, bounded, final)),
            _outcome(lambda: _measure_bytewise(field, data, start, bounded, final)),
        )

    @settings(max_examples=2000, deadline=None)
    @given(
        st.sampled_from([f for f in _FIELDS if type(f) is grammar.Field]),
        st.lists(st.sampled_from(sorted(set(grammar.ALPHABET))), max_size=300),
    )
    def test_accepts(self, field, raw):
        """
        A text value is accepted exactly when its every byte is allowed
        where it stands and its length is within the field's bounds.
        """
        text = bytes(raw).decode("ascii")
        if field.kind is not str:
            return
        expected = field.min_length <= len(raw) <= field.max_length and all(
            _allows(field, index, byte) for index, byte in enumerate(raw)
        )
        self.assertEqual(field.accepts(text), expected)


def _read_outcome(call):
    """
    What reading a line gives: the message and where it ends, or the
    error's code and text.
    """
    try:
        return call()
    except wire.ProtocolError as error:
        return ("error", error.code, str(error))


_FRAMED_LAYOUTS = stream.LAYOUTS[wire.Framing.FRAMED]


class LineMatchingTests(SynchronousTestCase):
    """
    A framed line is matched whole by one regular expression before it is
    walked part by part: both say the same of any line.
    """

    def test_every_layout_matched(self):
        """
        Every framed layout has its whole-line pattern: no field of any
        can run into the separator after it.
        """
        for layout in _FRAMED_LAYOUTS:
            self.assertIsNotNone(layout._line, layout.tag)

    def test_valid_lines(self):
        """
        The lines the encoder writes are read by the pattern to the
        message encoded, as the walk reads them.
        """
        for message in (
            wire.Rotate("0" * 32, bytes(32), bytes(range(32)), "alice_1"),
            wire.RotateAck(bytes(range(48))),
            wire.RotateOk(bytes(32), bytes(18)),
            wire.Version(2),
            wire.Error(wire.ERROR_BUSY),
        ):
            line = wire.encode(message, wire.Framing.FRAMED)[:-2]
            [layout] = [
                layout for layout in _FRAMED_LAYOUTS if layout.describes(message)
            ]
            self.assertIsNotNone(layout._line.fullmatch(line, len(layout.tag)))
            self.assertEqual(layout.read(line, 0, True), (message, len(line)))
            self.assertEqual(layout.walk(line, 0, True), (message, len(line)))

    @settings(max_examples=3000, deadline=None)
    @given(st.sampled_from(_FRAMED_LAYOUTS), st.data())
    def test_any_line(self, layout, draw):
        """
        For any line after a layout's tag, mostly each field's own bytes
        (often only those, so that many lines match the pattern) and the
        separators, with runs past a field's maximum, cut short, and stray
        bytes, the pattern and the walk agree on the message or on the
        error.
        """
        line = layout.tag
        for part in layout.parts:
            if isinstance(part, bytes):
                if draw.draw(st.integers(0, 9)):
                    line += part
                continue
            length = draw.draw(
                st.one_of(
                    st.integers(part.min_length, part.max_length),
                    st.integers(0, part.max_length + 3),
                )
            )
            clean = draw.draw(st.integers(0, 3))
            for index in range(length):
                allowed = part.head[index] if index < len(part.head) else part.tail
                own = st.sampled_from(sorted(set(allowed)))
                byte = own if clean else st.one_of(own, own, own, st.integers(0, 255))
                line += bytes([draw.draw(byte)])
        self.assertEqual(
            _read_outcome(lambda: layout.read(line, 0, True)),
            _read_outcome(lambda: layout.walk(line, 0, True)),
        )


class PenaltyCodeTests(SynchronousTestCase):
    """
    C{SUTO_ERROR_PENALTY_<seconds>}: the code a penalised source is told,
    within the error code grammar.
    """

    def test_round_trip(self):
        """
        The seconds are rounded up to whole ones, at least 1, and read
        back; the code encodes as a framed error line.
        """
        for seconds, code in ((17.2, "PENALTY_18"), (0.01, "PENALTY_1"), (600, "PENALTY_600")):
            self.assertEqual(wire.penalty_code(seconds), code)
            self.assertEqual(wire.penalty_seconds(code), int(code.split("_")[1]))
        self.assertEqual(
            wire.encode(wire.Error(wire.penalty_code(18)), wire.Framing.FRAMED),
            b"SUTO_ERROR_PENALTY_18\r\n",
        )
        self.assertEqual(wire.penalty_code(10**12), "PENALTY_9999999")

    def test_not_a_penalty(self):
        """
        Other codes, and malformed penalty codes, name no seconds.
        """
        for code in ("BUSY", "PENALTY", "PENALTY_", "PENALTY_X", "PENALTY_12345678"):
            self.assertIsNone(wire.penalty_seconds(code))


class ReconnectFormsTests(ErrorAssertionsMixin, SynchronousTestCase):
    """
    The two forms of the reconnection: C{SUTO_C_RECONNECT_N_} with an
    attempt nonce, and the first form, C{SUTO_C_RECONNECT_}, without one.
    """

    NONCE = base64.b64encode(bytes(range(16)))
    PROOF = base64.b64encode(bytes(16))
    SEALED = base64.b64encode(bytes(48))

    def line(self, nonce):
        return b"SUTO_C_RECONNECT_N_%s_%s_%s_%s_alice\r\n" % (
            KEY_ID.encode(),
            nonce,
            self.PROOF,
            self.SEALED,
        )

    def test_nonce_form(self):
        """
        The longer tag carries the nonce before the proof, and is encoded
        for a message that has one; the first form decodes with no nonce.
        """
        [message] = decode_chunks(FRAMED, [self.line(self.NONCE)])
        self.assertEqual(
            message,
            Reconnect(KEY_ID, bytes(16), bytes(48), "alice", bytes(range(16))),
        )
        self.assertEqual(wire.encode(message, FRAMED), self.line(self.NONCE))
        first = b"SUTO_C_RECONNECT_%s_%s_%s_alice\r\n" % (
            KEY_ID.encode(),
            self.PROOF,
            self.SEALED,
        )
        [message] = decode_chunks(FRAMED, [first])
        self.assertIsNone(message.nonce)
        self.assertEqual(wire.encode(message, FRAMED), first)

    def test_bad_nonce(self):
        """
        A nonce of another size, or not canonical base64, is C{BAD_FIELD};
        a nonce form without its nonce is C{TOO_LONG}, its sealed junk
        standing where the proof goes.
        """
        for nonce in [
            base64.b64encode(bytes(15)),
            base64.b64encode(bytes(17)),
            b"A" * 21 + b"B==",
            self.NONCE[:-2],
        ]:
            self.assert_stream_error(wire.ERROR_BAD_FIELD, FRAMED, self.line(nonce))
        self.assert_stream_error(
            wire.ERROR_TOO_LONG,
            FRAMED,
            b"SUTO_C_RECONNECT_N_%s_%s_%s_alice\r\n"
            % (KEY_ID.encode(), self.PROOF, self.SEALED),
        )
        self.assertRaises(
            wire.ProtocolError,
            Reconnect,
            KEY_ID,
            bytes(16),
            bytes(48),
            "alice",
            bytes(8),
        )

    def test_legacy_framing(self):
        """
        The legacy framing knows neither form.
        """
        self.assert_stream_error(
            wire.ERROR_UNKNOWN_MESSAGE,
            wire.Framing.LEGACY,
            self.line(self.NONCE).rstrip(b"\r\n"),
        )
