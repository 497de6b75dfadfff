# -*- test-case-name: tests.core.test_machine,tests.machines.test_spec -*-
"""
The one way SUTO writes a state machine, on both ends: a plain, total
transition table.

A machine is a class with a L{Table}: for every state and every input,
the next state and the outputs (methods of the machine) that run on the
way.  The machine's public methods inspect what arrived, set what the
outputs will need, and feed exactly one input; the outputs append
actions (L{Send}, L{Close} and the machine's own) that the caller then
carries out.  Nothing here does I/O.

Tables are built from rows as docs/PROTOCOL.md §6 writes them, one row
standing for each of its states with each of its inputs, and the build
refuses a table that misses a state and input or says twice what one
does, so no input can ever find a state without an answer.  A dictionary
lookup per input is also what lets the fleet's rotation connections run
their machine thousands of times a second (bench/RESULTS.md, finding 3).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Iterator


@dataclass(frozen=True)
class Send:
    """Write C{message} to the peer."""

    message: object


@dataclass(frozen=True)
class Close:
    """
    Close the connection once everything sent has been written; C{abort}
    drops it without waiting, for a peer that stopped reading.
    """

    abort: bool = False


@dataclass(frozen=True)
class Row:
    """
    One transition as the specification lists it: from C{state} on
    C{symbol} to C{next_state}, running C{outputs} (their names).
    """

    state: str
    symbol: str
    next_state: str
    outputs: tuple[str, ...]


class Table:
    """
    A machine's transitions, C{(state, input) -> (next state, outputs)}.

    @param states: every state, the initial one first.
    @param inputs: every input.
    @param rows: C{(states, inputs, next state, outputs)} tuples, each of
        which stands for each of its states with each of its inputs.

    @raise ValueError: two rows give the same state and input, a row
        names a state or input the machine does not have, or a state has
        no row for some input.
    """

    __slots__ = ("states", "inputs", "_transitions")

    def __init__(
        self, states: tuple[str, ...], inputs: tuple[str, ...], rows: Iterable
    ) -> None:
        self.states = states
        self.inputs = inputs
        transitions: dict = {}
        for row_states, row_inputs, next_state, outputs in rows:
            if next_state not in states:
                raise ValueError(f"no such state: {next_state!r}")
            for state in row_states:
                for symbol in row_inputs:
                    if (state, symbol) in transitions:
                        raise ValueError(f"{state} --{symbol}--> is in two rows")
                    transitions[state, symbol] = (next_state, tuple(outputs))
        every = {(state, symbol) for state in states for symbol in inputs}
        if set(transitions) != every:
            raise ValueError(
                f"no row for {sorted(every - set(transitions))},"
                f" not in the machine: {sorted(set(transitions) - every)}"
            )
        self._transitions = transitions

    @property
    def initial(self) -> str:
        return self.states[0]

    def step(self, state: str, symbol: str) -> tuple[str, tuple[Callable, ...]]:
        """
        @return: the next state and the outputs to run for C{symbol} in
            C{state}.
        """
        return self._transitions[state, symbol]

    def rows(self) -> Iterator[Row]:
        """
        Every transition, one L{Row} per state and input, in the order of
        L{states} then L{inputs}: what the specification's tables are
        checked against.
        """
        for state in self.states:
            for symbol in self.inputs:
                next_state, outputs = self._transitions[state, symbol]
                yield Row(
                    state, symbol, next_state, tuple(o.__name__ for o in outputs)
                )


class Machine:
    """
    The base of every machine: its current state and the actions its
    outputs collect.  A subclass sets L{TABLE} (after the class body, as
    its outputs are its own methods) and feeds inputs with L{_input}.
    """

    __slots__ = ("_state", "_actions")

    TABLE: Table

    def __init__(self) -> None:
        self._state = self.TABLE.initial
        self._actions: list = []

    @property
    def state(self) -> str:
        """The current state's name."""
        return self._state

    def _input(self, symbol: str) -> list:
        """
        Take the transition of C{symbol} from the current state, run its
        outputs, and return the actions they collected.
        """
        self._state, outputs = self.TABLE.step(self._state, symbol)
        for output in outputs:
            output(self)
        actions, self._actions = self._actions, []
        return actions
