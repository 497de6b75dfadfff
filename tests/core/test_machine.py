"""
Tests for L{suto_server.core.machine}: tables are total and unambiguous,
and a machine runs the outputs of each transition and hands back what
they collected.
"""

from twisted.trial.unittest import SynchronousTestCase

from suto_server.core.machine import Close, Machine, Row, Send, Table


class TableTests(SynchronousTestCase):
    """
    A L{Table} says what every input does in every state, or is refused.
    """

    def test_missing_row(self):
        """
        A table without a row for some state and input is refused.
        """
        self.assertRaises(
            ValueError,
            Table,
            ("a", "b"),
            ("x", "y"),
            ((("a", "b"), ("x",), "a", ()), (("a",), ("y",), "b", ())),
        )

    def test_duplicate_row(self):
        """
        Two rows for one state and input contradict each other.
        """
        self.assertRaises(
            ValueError,
            Table,
            ("a",),
            ("x",),
            ((("a",), ("x",), "a", ()), (("a",), ("x",), "a", ())),
        )

    def test_unknown_state_or_input(self):
        """
        A row naming a state or input the machine does not have is
        refused.
        """
        total = (("a",), ("x",), "a", ())
        for stray in (
            (("b",), ("x",), "a", ()),
            (("a",), ("z",), "a", ()),
            (("a",), ("x",), "b", ()),
        ):
            self.assertRaises(
                ValueError, Table, ("a",), ("x",), (total, stray)
            )

    def test_table(self):
        """
        A table gives each state and input its next state and outputs.
        """
        table = Table(
            ("a", "b"),
            ("x",),
            ((("a",), ("x",), "b", [len]), (("b",), ("x",), "b", ())),
        )
        self.assertEqual(table.initial, "a")
        self.assertEqual(table.step("a", "x"), ("b", (len,)))
        self.assertEqual(table.step("b", "x"), ("b", ()))
        self.assertEqual(
            list(table.rows()),
            [Row("a", "x", "b", ("len",)), Row("b", "x", "b", ())],
        )



class Toggle(Machine):
    """A machine of two states that sends what it is told on each flip."""

    __slots__ = ("_what",)

    def flip(self, what):
        self._what = what
        return self._input("flip")

    def stop(self):
        return self._input("stop")

    def _send(self):
        self._actions.append(Send(self._what))

    def _close(self):
        self._actions.append(Close())


Toggle.TABLE = Table(
    ("off", "on", "stopped"),
    ("flip", "stop"),
    (
        (("off",), ("flip",), "on", (Toggle._send,)),
        (("on",), ("flip",), "off", (Toggle._send,)),
        (("off", "on"), ("stop",), "stopped", (Toggle._close,)),
        (("stopped",), ("flip", "stop"), "stopped", ()),
    ),
)


class MachineTests(SynchronousTestCase):
    """
    L{Machine} starts in the table's first state and returns exactly the
    actions each transition's outputs collected.
    """

    def test_initial_state(self):
        """
        A new machine is in its table's first state.
        """
        self.assertEqual(Toggle().state, "off")

    def test_actions_per_input(self):
        """
        Each input returns the actions of its own transition only, and
        moves the machine to the transition's next state.
        """
        machine = Toggle()
        self.assertEqual(machine.flip("a"), [Send("a")])
        self.assertEqual(machine.state, "on")
        self.assertEqual(machine.flip("b"), [Send("b")])
        self.assertEqual(machine.state, "off")
        self.assertEqual(machine.stop(), [Close()])
        self.assertEqual(machine.flip("c"), [])
        self.assertEqual(machine.state, "stopped")

    def test_slots(self):
        """
        A machine built on the base keeps no instance dictionary, so the
        fleet's many sessions stay small.
        """
        self.assertFalse(hasattr(Toggle(), "__dict__"))
