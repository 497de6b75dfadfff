"""
Fuzz the SUTO wire codec against its one rule: whatever a peer sends either
decodes to messages or raises L{ProtocolError}, never any other exception;
and fed whole or one byte at a time, it ends the same way (the same
messages, or an error with the same code).  Along the way a decoder never
holds more than its cap (L{Decoder.cap}) and never decodes a longer
message, so no peer can make it buffer without bound.  UDP datagrams (hellos, check
packets and their answers) follow the same rule through
L{parse_datagram}.

With atheris installed this is a coverage-guided fuzzer and takes
libFuzzer's arguments::

    PYTHONPATH=. python fuzz/fuzz_wire.py -runs=1000000 corpus/

Without it, Hypothesis generates the inputs, from random bytes and from
pieces of real messages; C{-runs=N} sets how many, C{-max_total_time=S}
stops after about S seconds even if fewer ran (as libFuzzer's option does,
so CI can bound a run on a slow machine), and files named on the command
line are replayed instead::

    PYTHONPATH=. python fuzz/fuzz_wire.py -runs=20000 -max_total_time=30
    PYTHONPATH=. python fuzz/fuzz_wire.py crash-1234

A failing input makes it exit with an error, a pass prints how many inputs
ran.
"""

import sys
import time

from suto_server.core.wire import (
    MAX_LINE,
    NEED_DATA,
    Decoder,
    EnrollData,
    Enrolled,
    Framing,
    ProtocolError,
    Rotate,
    RotateAck,
    RotateDone,
    RotateOk,
    encode,
    parse_datagram,
)

_KEY_ID = "0123456789abcdef" * 2
# Pieces of valid messages, so that generated inputs get past the tags.
_TOKENS = [
    b"SUTO_",
    b"SUTO_C_GET_SALTA",
    b"SUTO_C_GET_RSALT",
    b"SUTO_SALTA_",
    b"SUTO_RSALT_",
    b"SUTO_CF_HASH_",
    b"SUTO_AUTH_",
    b"SUTO_AUTH_1",
    b"SUTO_AUTH_CANCELLED",
    b"SUTO_VERSION_",
    b"SUTO_ERROR_",
    b"SUTO_C_ENROLL_",
    b"SUTO_C_ENROLL_DATA_",
    b"SUTO_ENROLLED_",
    b"SUTO_C_ROTATE_",
    b"SUTO_C_ROTATE_ACK_",
    b"SUTO_ROTATE_OK_",
    b"SUTO_ROTATE_DONE_",
    b"SUTO_UDP_HELLO_",
    b"SUTO_CHECK_",
    b"SUTO_CHECK_OK_",
    b"$6$",
    b"$y$j9T$",
    b"ABCDEFGHIJKLMNOP",
    b"x" * 86,
    b"DATA_",
    b"ACK_",
    # A key id, and base64 that completes 16, 32 (junk and public keys) or
    # 80 bytes.
    _KEY_ID.encode("ascii"),
    b"A" * 20,
    b"A" * 40,
    b"A" * 104,
    b"AAA=",
    b"AA==",
    b"+/",
    b"_",
    b"$",
    b"@",
    b"+",
    b"\r\n",
    b"\n",
    b"2",
]
# Each input goes to a decoder of each framing, and to a framed one with a
# cap short enough for valid messages (a CF_HASH, a rotation) to pass it,
# so that the cap is tested on lines that would otherwise decode.
_DECODERS = [
    (Framing.LEGACY, MAX_LINE),
    (Framing.FRAMED, MAX_LINE),
    (Framing.FRAMED, 64),
]
# Whole lines of the framed messages with long fields, which pieces alone
# rarely complete.
_LINES = [
    encode(message, Framing.FRAMED)
    for message in [
        EnrollData(bytes(80)),
        Enrolled(_KEY_ID, bytes(48)),
        Rotate(_KEY_ID, bytes(32), bytes(32), "ops_team"),
        RotateOk(bytes(32), bytes(18)),
        RotateAck(bytes(19)),
        RotateDone(bytes(20)),
    ]
]


def _outcome(framing, max_line, chunks):
    """
    @return: C{(messages, None)} when C{chunks} decode, else
        C{(None, code)}.
    @raise AssertionError: the decoder broke its cap.
    """
    decoder = Decoder(framing, max_line)
    messages = []
    try:
        for chunk in chunks:
            decoder.receive_data(chunk)
            if decoder.buffered > decoder.cap:
                raise AssertionError(f"{framing}: buffered past the cap")
            while (event := decoder.next_event()) is not NEED_DATA:
                line = encode(event, framing).removesuffix(b"\r\n")
                if len(line) > decoder.cap:
                    raise AssertionError(f"{framing}: decoded past the cap")
                messages.append(event)
    except ProtocolError as error:
        return None, error.code
    return messages, None


def check(data: bytes) -> None:
    """
    Apply the rule to one input.

    @raise AssertionError: feeding C{data} whole and byte by byte ended
        differently, or a decoder broke its cap.
    """
    for framing, max_line in _DECODERS:
        whole = _outcome(framing, max_line, [data])
        bytewise = _outcome(
            framing,
            max_line,
            [data[index : index + 1] for index in range(len(data))],
        )
        if whole[1] is None and bytewise != whole:
            raise AssertionError(f"{framing}: split changed the messages")
        if whole[1] != bytewise[1]:
            raise AssertionError(f"{framing}: {whole[1]} != {bytewise[1]}")
    try:
        parse_datagram(data)
    except ProtocolError:
        pass


#: Inputs per Hypothesis run: the time limit is checked between runs.
_BATCH = 1000


def _run_hypothesis(runs: int, seconds: float | None) -> int:
    """
    Check up to C{runs} generated inputs, stopping early once C{seconds}
    have passed.

    @return: how many inputs were checked.
    """
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    pieces = st.one_of(st.sampled_from(_TOKENS + _LINES), st.binary(max_size=4))
    inputs = st.one_of(
        st.binary(max_size=1024),
        st.lists(pieces, max_size=40).map(b"".join),
    )
    checked = 0

    def counted(data: bytes) -> None:
        nonlocal checked
        checked += 1
        check(data)

    stop = None if seconds is None else time.monotonic() + seconds
    left = runs
    while left > 0 and (stop is None or time.monotonic() < stop):
        batch = min(left, _BATCH)
        settings_ = settings(
            max_examples=batch,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        settings_(given(inputs)(counted))()
        left -= batch
    return checked


def main(argv: list[str]) -> None:
    try:
        import atheris
    except ImportError:
        runs = 10_000
        seconds = None
        files = []
        for argument in argv[1:]:
            if argument.startswith("-runs="):
                runs = int(argument.removeprefix("-runs="))
            elif argument.startswith("-max_total_time="):
                seconds = float(argument.removeprefix("-max_total_time="))
            else:
                files.append(argument)
        for path in files:
            with open(path, "rb") as replayed:
                check(replayed.read())
        if not files:
            checked = _run_hypothesis(runs, seconds)
            print(f"fuzz_wire: {checked} inputs followed the rule")
        return
    atheris.instrument_all()
    atheris.Setup(argv, check)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
