"""
The state tables of docs/PROTOCOL.md §6, checked against the machines
they name, so that no transition changes without its table.

Each table is read from the specification and expanded into (state,
input, next state) triples, which must be exactly the rows of the
machine's table (L{suto_server.core.machine.Table.rows}).
Then every row is driven on a fresh machine:
it is brought to the row's state along the table's own transitions, fed
the row's input through the machine's public methods (or, for a
transition no message can reach in that state, through the input
itself), and must move to the row's next state and do what the row says,
in the words of §6.3.  The prose around each table must name every input
of its machine.
"""

from __future__ import annotations

import importlib
import re
from collections import deque
from dataclasses import dataclass, replace

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from twisted.trial.unittest import SynchronousTestCase

from suto_client import classic_machine as session
from suto_client import enrollment_machine as enrollment
from suto_client import rotation_machine as rotation
from suto_client import rotation_outcome
from suto_server.core import keyschedule, wire
from suto_server.core.machine import Close, Send
from suto_server.core.wire import stream
from suto_server.machines import classic as server_session
from suto_server.machines import enrollment as enrollment_session
from suto_server.machines import rotation as rotation_session
from tests.support.client_enrollment import (
    RESPONSE,
    SALT,
    SALTED,
    confirmation,
    expected_key,
)
from tests.support.client_rotation import PROFILE, Draws, FakeServer, raw_public
from tests.support.enrollment import FINGERPRINT, RANDOM
from tests.support.repository import PROTOCOL

#: The machines §6 must give a table for.
TABLES = {
    ("suto_server/machines/classic.py", "ClassicConversation"),
    ("suto_client/classic_machine.py", "ClientClassic"),
    ("suto_server/machines/enrollment.py", "EnrollmentConversation"),
    ("suto_client/enrollment_machine.py", "ClientEnrollment"),
    ("suto_server/machines/rotation.py", "RotationConversation"),
    ("suto_client/rotation_machine.py", "ClientRotation"),
}

_HEADING = re.compile(r"^#+ .*\(`(?P<path>[\w/]+\.py)`, `(?P<name>\w+)`\)$")
_ROW = re.compile(
    r"^    (?P<states>[a-z_]+(?:, [a-z_]+)*)"
    r" --(?P<inputs>[a-z_()]+(?:, [a-z_()]+)*)--> (?P<next>[a-z_]+)"
    r" {2,}(?P<actions>.+?)(?: {2,}\(.*\))?$"
)
_INPUT = re.compile(r"^(?P<name>[a-z_]+)(?:\((?P<case>[a-z_]+)\))?$")

#: The code a driven protocol error carries, written C{<CODE>} in a table.
VIOLATION = wire.ERROR_TOO_LONG
USER = PROFILE.user
KEY_ID = "0" * 32
RSALT = "$6$rsaltrsaltrsalt1"
SERVER_NOW = 1_700_000_000
STEP = 30


@dataclass(frozen=True)
class Row:
    """
    One line of a table: C{inputs} are (name, case) pairs, the case
    L{None} for an input written without one.
    """

    line: str
    states: tuple
    inputs: tuple
    next: str
    actions: str


def read_tables(text: str) -> dict:
    """
    The state tables of the specification C{text}, keyed by the (path,
    class) their heading names, each a list of L{Row}s.
    """
    tables = {}
    rows = None
    for line in text.splitlines():
        heading = _HEADING.match(line)
        if heading:
            rows = tables.setdefault((heading["path"], heading["name"]), [])
        elif line.startswith("#"):
            rows = None
        elif rows is not None and line.startswith("    ") and "-->" in line:
            match = _ROW.match(line)
            if match is None:
                raise ValueError(f"unreadable row: {line!r}")
            inputs = []
            for spelled in match["inputs"].split(", "):
                parsed = _INPUT.match(spelled)
                inputs.append((parsed["name"], parsed["case"]))
            rows.append(
                Row(
                    line.strip(),
                    tuple(match["states"].split(", ")),
                    tuple(inputs),
                    match["next"],
                    match["actions"],
                )
            )
    return tables


def read_specification() -> str:
    with open(PROTOCOL, encoding="utf-8") as handle:
        return handle.read()


def section(text: str, path: str, name: str) -> str:
    """
    The section of C{text} that gives the table of C{name} in C{path}:
    from its heading to the next.
    """
    lines = text.splitlines()
    start = next(
        index
        for index, line in enumerate(lines)
        if (match := _HEADING.match(line))
        and (match["path"], match["name"]) == (path, name)
    )
    end = next(
        (
            index
            for index in range(start + 1, len(lines))
            if lines[index].startswith("#")
        ),
        len(lines),
    )
    return "\n".join(lines[start:end])


def machine_class(path: str, name: str) -> type:
    module = importlib.import_module(path[: -len(".py")].replace("/", "."))
    return getattr(module, name)


class TableMachine:
    """
    What the tests read of a machine: its table's inputs, initial state
    and rows (L{suto_server.core.machine.Table}), and one method,
    C{_input}, taking every input.
    """

    def __init__(self, cls: type) -> None:
        self.cls = cls
        self.table = cls.TABLE

    def inputs(self) -> set:
        return set(self.table.inputs)

    def initial(self) -> str:
        return self.table.initial

    def triples(self) -> set:
        return {
            (row.state, row.symbol, row.next_state) for row in self.table.rows()
        }

    def fire(self, machine, symbol: str) -> list:
        return machine._input(symbol)


def expand(rows: list, inputs: set) -> dict:
    """
    The (state, input, case) cases of C{rows}, each with its row; C{any}
    stands for every one of C{inputs}.

    @raise ValueError: two rows give the same case.
    """
    cases = {}
    for row in rows:
        named = row.inputs
        if named == (("any", None),):
            named = tuple((symbol, None) for symbol in sorted(inputs))
        for state in row.states:
            for symbol, case in named:
                key = (state, symbol, case)
                if key in cases:
                    raise ValueError(f"{key} is in two rows: {row.line!r}")
                cases[key] = row
    return cases


def message_name(message) -> str:
    """
    A message as the tables name it: its type tag without C{SUTO_}.
    """
    if isinstance(message, wire.Error):
        code = "<CODE>" if message.code == VIOLATION else message.code
        return f"ERROR_{code}"
    layout = next(
        layout
        for layout in stream.LAYOUTS[wire.Framing.FRAMED]
        if layout.describes(message)
    )
    return layout.tag.decode("ascii").removeprefix("SUTO_").rstrip("_")


def describe(actions: list) -> str:
    """
    What C{actions} do, in the words of §6.3.
    """
    words = []
    for action in actions:
        if isinstance(action, Send):
            words.append(f"sends {message_name(action.message)}")
        elif isinstance(action, Close):
            words.append("aborts" if action.abort else "closes")
        elif isinstance(action, server_session.Finish):
            words.append(f"verdict {action.verdict.name}")
        elif isinstance(action, enrollment_session.Fail):
            words.append(
                f"counts {action.reason}" if action.counted else "abandoned"
            )
        elif isinstance(action, rotation_session.Abandon):
            words.append("counts rotation_failed")
        elif isinstance(
            action, (session.Finish, enrollment.Finish, rotation_outcome.Report)
        ):
            words.append(f"ends {action.outcome.name}")
        elif isinstance(
            action,
            (
                server_session.Verify,
                enrollment_session.Complete,
                rotation_session.Begin,
                rotation_session.Reconnect,
                rotation_session.Commit,
                rotation_session.CommitPrimed,
                rotation_session.Prove,
                session.ComputeHash,
                rotation_outcome.Commit,
            ),
        ):
            words.append(f"asks {type(action).__name__}")
        else:
            raise AssertionError(f"no words for {action!r}")
    return ", ".join(words) or "nothing"


class TracedTable:
    """
    A table machine (L{TableMachine}) with a record of the transitions it
    takes: it is made an instance of a subclass whose C{_input} records
    each one.
    """

    def __init__(self, machine) -> None:
        self.machine = machine
        self.steps: list = []
        steps = self.steps

        class Tracing(type(machine)):
            __slots__ = ()

            def _input(self, symbol):
                state = self._state
                actions = super()._input(symbol)
                steps.append((state, symbol, self._state))
                return actions

        machine.__class__ = Tracing

    @property
    def state(self) -> str:
        return self.machine._state


class Driver:
    """
    Makes one kind of machine and feeds it each input by its public
    methods.  C{history} holds every action the machine returned.
    """

    def __init__(self, path: tuple) -> None:
        self.path = path
        self.history: list = []

    def make(self):
        raise NotImplementedError()

    def feed(self, machine, symbol: str, case: str | None) -> list:
        return getattr(self, f"feed_{symbol}")(machine, case)

    def sent(self, kind: type):
        """
        The last message of type C{kind} the machine sent, or L{None}.
        """
        sent = [
            action.message
            for action in self.history
            if isinstance(action, Send)
            and isinstance(action.message, kind)
        ]
        return sent[-1] if sent else None

    def feed_violation(self, machine, case):
        return machine.protocol_error(wire.ProtocolError(VIOLATION, "driven"))


class ServerDriver(Driver):
    """
    What the server's machines share: how their connection ends.
    """

    def feed_lost(self, machine, case):
        return machine.connection_lost()


class ClientDriver(Driver):
    """
    What the agent's conversations share
    (L{suto_client.conversation.Conversation}).
    """

    def feed_open(self, machine, case):
        return machine.start()

    def feed_server_error(self, machine, case):
        return machine.receive(wire.Error(wire.ERROR_BUSY))

    def feed_lost(self, machine, case):
        return machine.connection_lost("driven")

    def feed_expire(self, machine, case):
        return machine.timed_out()


class ServerClassicDriver(Driver):
    """
    A user without a usable hash when the path asks for one.
    """

    def make(self):
        salt = None if "salt_request_without_hash" in self.path else SALT
        return server_session.ClassicConversation(
            wire.Framing.FRAMED, salt, lambda: RSALT
        )

    def feed_salt_request(self, machine, case):
        return machine.receive(wire.GetSaltA())

    feed_salt_request_without_hash = feed_salt_request

    def feed_rsalt_request(self, machine, case):
        return machine.receive(wire.GetRSalt())

    def feed_hash(self, machine, case):
        return machine.receive(wire.CFHash(RESPONSE))

    def feed_cancel(self, machine, case):
        return machine.receive(wire.AuthCancelled())

    def feed_unexpected(self, machine, case):
        return machine.receive(wire.GetTime())

    def feed_verified(self, machine, case):
        return machine.verified(True)

    def feed_refused(self, machine, case):
        return machine.verified(False)

    def feed_busy(self, machine, case):
        return machine.unavailable("driven")


class ServerEnrollmentDriver(ServerDriver):
    def make(self):
        return enrollment_session.EnrollmentConversation(SALT, lambda: RSALT)

    def feed_hash(self, machine, case):
        return machine.receive(wire.CFHash(RESPONSE))

    def feed_data(self, machine, case):
        return machine.receive(wire.EnrollData(bytes(80)))

    def feed_cancel(self, machine, case):
        return machine.receive(wire.AuthCancelled())

    def feed_unexpected(self, machine, case):
        return machine.receive(wire.GetSaltA())

    def feed_verified(self, machine, case):
        return machine.verified(True)

    def feed_refused(self, machine, case):
        return machine.verified(False)

    def feed_completed(self, machine, case):
        return machine.completed(KEY_ID, bytes(16))

    def feed_rejected(self, machine, case):
        return machine.rejected(case)


class ServerRotationDriver(ServerDriver):
    def make(self):
        return rotation_session.RotationConversation(USER)

    def feed_rotate(self, machine, case):
        return machine.receive(wire.Rotate(KEY_ID, bytes(32), bytes(32), USER))

    def feed_rotate_primed(self, machine, case):
        return machine.receive(
            wire.RotatePrimed(KEY_ID, bytes(32), bytes(32), bytes(16), USER)
        )

    def feed_reconnect(self, machine, case):
        return machine.receive(
            wire.Reconnect(KEY_ID, bytes(16), bytes(48), USER)
        )

    def feed_ack(self, machine, case):
        return machine.receive(wire.RotateAck(bytes(16)))

    def feed_unexpected(self, machine, case):
        return machine.receive(wire.GetTime())

    def feed_reconnected(self, machine, case):
        return machine.reconnected(bytes(16))

    def feed_denied(self, machine, case):
        return machine.denied()

    def feed_refused(self, machine, case):
        return machine.refused()

    def feed_started(self, machine, case):
        return machine.started(bytes(32), bytes(16))

    def feed_committed(self, machine, case):
        return machine.committed(bytes(16))

    def feed_committed_next(self, machine, case):
        return machine.committed_next(bytes(48))

    def feed_rejected(self, machine, case):
        return machine.rejected()

    def feed_challenge(self, machine, case):
        return machine.challenge(bytes(16))

    def feed_proof(self, machine, case):
        return machine.receive(wire.VerifyProof(bytes(16), bytes(16)))


class ClientClassicDriver(ClientDriver):
    """
    A legacy server when the path opens with one.
    """

    def make(self):
        legacy = "open_legacy" in self.path[:-1] or self.path == ("open_legacy",)
        framing = wire.Framing.LEGACY if legacy else wire.Framing.FRAMED
        return session.ClientClassic(framing, cached=False)

    feed_open_framed = feed_open_legacy = ClientDriver.feed_open

    def feed_version(self, machine, case):
        # The version a password conversation announces, echoed.
        return machine.receive(wire.Version(machine.announced))

    def feed_salts_arrived(self, machine, case):
        return machine.receive(wire.SaltA(SALT, RSALT))

    def feed_hashed(self, machine, case):
        return machine.hashed(RESPONSE)

    def feed_cannot_hash(self, machine, case):
        return machine.hash_failed("driven")

    def feed_accepted(self, machine, case):
        return machine.receive(wire.Auth(True))

    def feed_refused(self, machine, case):
        return machine.receive(wire.Auth(False))

    def feed_give_up(self, machine, case):
        return machine.abandon("driven")


class ClientEnrollmentDriver(ClientDriver):
    def make(self):
        return enrollment.ClientEnrollment(USER, FINGERPRINT, RANDOM)

    def feed_version(self, machine, case):
        # The version a password conversation announces, echoed.
        return machine.receive(wire.Version(machine.announced))

    def feed_salts_arrived(self, machine, case):
        return machine.receive(wire.SaltA(SALT, RSALT))

    def feed_hashed(self, machine, case):
        return machine.hashed(SALTED, RESPONSE)

    def feed_cannot_hash(self, machine, case):
        return machine.hash_failed("driven")

    def feed_accepted(self, machine, case):
        return machine.receive(wire.Auth(True))

    def feed_refused(self, machine, case):
        return machine.receive(wire.Auth(False))

    def feed_confirmed(self, machine, case):
        key = expected_key()
        key_id = keyschedule.key_id(key)
        return machine.receive(
            wire.Enrolled(key_id, confirmation(key, key_id.encode("ascii")))
        )

    def feed_mismatch(self, machine, case):
        return machine.receive(wire.Enrolled(KEY_ID, bytes(16)))

    def feed_give_up(self, machine, case):
        return machine.abandon("driven")


class ClientRotationDriver(ClientDriver):
    """
    Answers as a server would, from the key schedule (L{FakeServer}); the
    profile is marked offline when the path opens with a reconnection, or
    when a version is the input that is to open one.  The server speaks
    version 2 on a path through a plain "done" (C{confirmed}), or one
    that is to feed it, unless the path went through a "done" with the
    next share (C{confirmed_next}); version 3 otherwise.
    """

    def __init__(self, path: tuple) -> None:
        super().__init__(path)
        route, fired = path[:-1], path[-1]
        plain = "confirmed" in route or fired == "confirmed"
        self.version = 2 if plain and "confirmed_next" not in route else 3
        self.server = FakeServer(version=self.version)

    def make(self):
        profile = PROFILE
        route, fired = self.path[:-1], self.path[-1]
        if "version_offline" in route or (
            fired == "version_offline" and "version_online" not in route
        ):
            profile = replace(PROFILE, offline_since=SERVER_NOW - 600.0)
        return rotation.ClientRotation(profile, lambda: FINGERPRINT, Draws())

    def feed_version_online(self, machine, case):
        return machine.receive(wire.Version(self.version))

    feed_version_offline = feed_version_online

    def feed_time(self, machine, case):
        return machine.receive(wire.ServerTime(SERVER_NOW, STEP))

    def feed_reconnected(self, machine, case):
        # The attempt's nonce is the machine's second draw, after the junk.
        attempt_key = keyschedule.attempt_key(
            keyschedule.offline_key(
                PROFILE.key,
                FINGERPRINT,
                keyschedule.time_step(SERVER_NOW, STEP),
                USER,
            ),
            bytes([2]) * keyschedule.ATTEMPT_NONCE_SIZE,
            USER,
        )
        purpose = keyschedule.RECONNECT_OK_PURPOSE
        return machine.receive(
            wire.ReconnectOk(
                keyschedule.seal(
                    attempt_key,
                    b"ok",
                    profile=USER,
                    purpose=purpose,
                    direction=keyschedule.Direction.SERVER_TO_CLIENT,
                    counter=keyschedule.SEAL_COUNTERS[purpose],
                )
            )
        )

    def feed_denied(self, machine, case):
        return machine.receive(wire.Auth(False))

    def feed_unknown_key(self, machine, case):
        return machine.receive(wire.Error(wire.ERROR_UNKNOWN_KEY))

    def feed_opened(self, machine, case):
        rotate = self.sent(wire.Rotate)
        if rotate is None:
            return self.feed_unopened(machine, case)
        return machine.receive(self.server.answer(rotate))

    def feed_unopened(self, machine, case):
        public = raw_public(X25519PrivateKey.generate())
        return machine.receive(wire.RotateOk(public, bytes(16)))

    def feed_confirmed(self, machine, case):
        ack = self.sent(wire.RotateAck)
        if ack is None:
            return machine.receive(wire.RotateDone(bytes(16)))
        return machine.receive(self.server.acknowledge(ack))

    def feed_confirmed_next(self, machine, case):
        last = self.sent((wire.RotateAck, wire.RotatePrimed))
        if isinstance(last, wire.RotatePrimed):
            return machine.receive(self.server.rotate_primed(last))
        if last is None:
            return machine.receive(wire.RotateDoneNext(bytes(48)))
        return machine.receive(self.server.acknowledge(last))

    def feed_begin(self, machine, case):
        return machine.rotate()

    def feed_stored(self, machine, case):
        return machine.committed()

    def feed_not_stored(self, machine, case):
        return machine.commit_failed("driven")

    def feed_challenged(self, machine, case):
        return machine.receive(wire.VerifyChallenge(bytes(16)))


#: The client's rotation inputs that only a sealed answer opening under
#: what the conversation holds can feed, with the states that hold it.
SEALED_ANSWERS = {
    "time": ("awaiting_time",),
    "reconnected": ("awaiting_reconnect_ok",),
    "opened": ("awaiting_ok",),
    "unopened": ("awaiting_ok",),
    "confirmed": ("awaiting_done",),
    "confirmed_next": ("awaiting_done", "awaiting_primed_done"),
}

#: The (state, input) pairs of each machine that no public call reaches,
#: because the machine's methods decide otherwise before it moves; any
#: other row driven only through its input would mean that a message no
#: longer means what the table says.
UNREACHED = {
    # The confirmation can only open under the first key, derived once the
    # hash is known.
    "ClientEnrollment": {
        (state, "confirmed")
        for state in (
            "idle",
            "awaiting_version",
            "awaiting_salts",
            "hashing",
            "done",
        )
    },
    # Whether the version opens a reconnection is the profile's to say, and
    # the sealed answers open only under what the conversation holds.
    "ClientRotation": {
        ("awaiting_time", "version_online"),
        ("awaiting_reconnect_ok", "version_online"),
        ("awaiting_ok", "version_offline"),
        ("awaiting_done", "version_offline"),
        ("committing", "version_offline"),
        ("ready", "version_offline"),
        ("committing_primed", "version_offline"),
        ("primed", "version_offline"),
        ("awaiting_primed_done", "version_offline"),
        *(
            (state, symbol)
            for state in rotation.STATES
            for symbol, awaited in SEALED_ANSWERS.items()
            if state not in awaited
        ),
    },
    # A reconnection is one only as the connection's first message.
    "RotationConversation": {
        (state, "reconnect")
        for state in (
            "reconnecting",
            "rejoined",
            "beginning",
            "awaiting_ack",
            "committing",
            "primed",
            "committing_primed",
            "done",
        )
    },
    "EnrollmentConversation": set(),
    "ClassicConversation": set(),
    # The framing the machine is made with decides how it opens: a path
    # through a legacy start never meets a framed one, nor the reverse.
    "ClientClassic": {
        *(
            (state, "open_framed")
            for state in ("awaiting_salts", "hashing", "awaiting_verdict")
        ),
        ("awaiting_version", "open_legacy"),
        ("done", "open_legacy"),
    },
}

DRIVERS = {
    "ClassicConversation": ServerClassicDriver,
    "ClientClassic": ClientClassicDriver,
    "EnrollmentConversation": ServerEnrollmentDriver,
    "RotationConversation": ServerRotationDriver,
    "ClientEnrollment": ClientEnrollmentDriver,
    "ClientRotation": ClientRotationDriver,
}


def path_to(cases: dict, initial: str, target: str) -> list:
    """
    The shortest list of (input, case) that leads from C{initial} to
    C{target} by the table's transitions, none of them through C{done}
    but the last.
    """
    edges = sorted(
        (state, symbol, case, row.next)
        for (state, symbol, case), row in cases.items()
        if row.next != state
    )
    queue = deque([(initial, [])])
    seen = {initial}
    while queue:
        state, path = queue.popleft()
        if state == target:
            return path
        if state == "done":
            continue
        for start, symbol, case, next_state in edges:
            if start == state and next_state not in seen:
                seen.add(next_state)
                queue.append((next_state, path + [(symbol, case)]))
    raise AssertionError(f"the table never reaches {target}")


class StateTableTests(SynchronousTestCase):
    """
    Each state table of the specification is its machine's.
    """

    def setUp(self):
        self.specification = read_specification()
        self.tables = read_tables(self.specification)

    def test_every_machine_has_a_table(self):
        """
        The specification has a table for each lifecycle machine, and none
        for a machine that does not exist.
        """
        self.assertEqual(set(self.tables), TABLES)
        for (path, name), rows in self.tables.items():
            self.assertTrue(rows, f"the table of {name} has no rows")
            machine_class(path, name)

    def test_inputs_explained(self):
        """
        The prose around each table says what every input of its machine
        is.
        """
        for (path, name) in sorted(self.tables):
            text = section(self.specification, path, name)
            for symbol in TableMachine(machine_class(path, name)).inputs():
                self.assertIn(f"`{symbol}`", text, name)

    def test_transitions(self):
        """
        The rows of each table, expanded, are exactly the (state, input,
        next state) triples of the machine.
        """
        for (path, name), rows in sorted(self.tables.items()):
            machine = TableMachine(machine_class(path, name))
            cases = expand(rows, machine.inputs())
            documented = {
                (state, symbol, row.next)
                for (state, symbol, _), row in cases.items()
            }
            actual = machine.triples()
            self.assertEqual(
                (sorted(documented - actual), sorted(actual - documented)),
                ([], []),
                f"{name}: (in the table only, in the machine only)",
            )

    def test_rows(self):
        """
        Driven through each row, a fresh machine takes that row's
        transition and does what the row says.
        """
        for (path, name), rows in sorted(self.tables.items()):
            cls = machine_class(path, name)
            machine = TableMachine(cls)
            cases = expand(rows, machine.inputs())
            initial = machine.initial()
            unreached = set()
            for (state, symbol, case), row in sorted(
                cases.items(), key=lambda item: repr(item[0])
            ):
                route = path_to(cases, initial, state)
                step = (state, symbol, case)
                if self.drive(machine, cases, initial, route, step, row):
                    unreached.add((state, symbol))
            self.assertEqual(unreached, UNREACHED[name], name)

    def drive(self, machine, cases, initial, route, step, row):
        """
        Take C{route} from the initial state, then the row's C{step}; fall
        back to calling the input itself when no public call can produce
        it in that state.

        @return: whether it fell back.
        """
        state, symbol, case = step
        cls = machine.cls
        where = f"{cls.__name__}: {state} --{symbol}({case})--> in {row.line!r}"
        names = tuple(name for name, _ in route) + (symbol,)
        for direct in (False, True):
            driver = DRIVERS[cls.__name__](names)
            traced = TracedTable(driver.make())
            current = initial
            for walked, walked_case in route:
                driver.history += driver.feed(traced.machine, walked, walked_case)
                expected = cases[(current, walked, walked_case)].next
                self.assertEqual(
                    traced.steps[-1], (current, walked, expected), where
                )
                current = expected
            traced.steps.clear()
            if direct:
                actions = machine.fire(traced.machine, symbol)
            else:
                actions = driver.feed(traced.machine, symbol, case)
            if [taken[1] for taken in traced.steps] == [symbol]:
                break
        self.assertEqual(traced.steps, [(state, symbol, row.next)], where)
        self.assertEqual(traced.state, row.next, where)
        self.assertEqual(describe(actions), row.actions, where)
        return direct


class ReadTablesTests(SynchronousTestCase):
    """
    The reader of the tables rejects what it cannot read, so a malformed
    row cannot silently drop out of the comparison.
    """

    def test_unreadable_row(self):
        """
        A row that does not follow §6.3's notation is an error.
        """
        text = (
            "### X (`suto_server/machines/classic.py`, `ClassicConversation`)\n\n"
            "    A --b--> c          nothing\n"
        )
        self.assertRaises(ValueError, read_tables, text)

    def test_cases_and_notes(self):
        """
        An input may name a case, and a note in brackets after the actions
        is not part of them.
        """
        text = (
            "### X (`p/m.py`, `M`)\n\n"
            "    a, b --c(d), e--> f          sends X, closes  (why)\n"
            "## Next\n\n"
            "    g --h--> i          nothing\n"
        )
        self.assertEqual(
            read_tables(text),
            {
                ("p/m.py", "M"): [
                    Row(
                        "a, b --c(d), e--> f          sends X, closes  (why)",
                        ("a", "b"),
                        (("c", "d"), ("e", None)),
                        "f",
                        "sends X, closes",
                    )
                ]
            },
        )

    def test_duplicate_case(self):
        """
        Two rows giving the same state and input contradict each other.
        """
        rows = [
            Row("", ("a",), (("b", None),), "c", "nothing"),
            Row("", ("a",), (("b", None),), "d", "nothing"),
        ]
        self.assertRaises(ValueError, expand, rows, {"b"})
