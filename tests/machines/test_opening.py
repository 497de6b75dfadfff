# -*- test-case-name: tests.machines.test_opening -*-
"""
Tests for L{suto_server.machines.opening}: the exchange before a phase,
driven through the machine's public methods with no I/O.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from suto_server.core import wire
from suto_server.core.machine import Send
from suto_server.machines import opening
from suto_server.machines.opening import (
    Opening,
    Refuse,
    StartClassic,
    StartEnrollment,
    StartRotation,
    TellTime,
)

EVERYTHING = frozenset({opening.ENROLLMENT, opening.ROTATION, opening.TIME})
VERSION = wire.Version(wire.PROTOCOL_VERSION)
ROTATE = wire.Rotate("0" * 32, b"j" * 32, b"p" * 32, "alice")


def greeted(offers=EVERYTHING) -> Opening:
    """A machine on a framed listener whose version exchange is done."""
    machine = Opening(offers)
    machine.connected(wire.Framing.FRAMED)
    machine.receive(VERSION)
    return machine


class ConnectedTests(SynchronousTestCase):
    def test_legacy_starts_classic(self):
        """
        On the legacy listener the classic challenge starts as the
        connection is made, with no message to read first.
        """
        machine = Opening()
        self.assertEqual(
            machine.connected(wire.Framing.LEGACY), [StartClassic(None)]
        )
        self.assertEqual(machine.state, opening.HANDED_OVER)

    def test_framed_waits_for_version(self):
        """
        On a framed listener nothing is said until the device's version.
        """
        machine = Opening()
        self.assertEqual(machine.connected(wire.Framing.FRAMED), [])
        self.assertEqual(machine.state, opening.VERSIONING)


class VersionTests(SynchronousTestCase):
    def test_echoed(self):
        """
        Each version the server speaks, its own and the one before, is
        echoed and kept for the phase to come.
        """
        self.assertEqual(wire.PROTOCOL_VERSIONS, (2, 3))
        for number in wire.PROTOCOL_VERSIONS:
            machine = Opening()
            machine.connected(wire.Framing.FRAMED)
            self.assertIsNone(machine.version)
            version = wire.Version(number)
            self.assertEqual(machine.receive(version), [Send(version)])
            self.assertEqual(machine.state, opening.CHOOSING)
            self.assertEqual(machine.version, number)

    def test_wrong_version(self):
        """
        Another version is refused with C{ERROR_BAD_VERSION}, and none is
        kept.
        """
        for number in (1, wire.PROTOCOL_VERSION + 1, 999):
            machine = Opening()
            machine.connected(wire.Framing.FRAMED)
            self.assertEqual(
                machine.receive(wire.Version(number)),
                [Refuse(wire.ERROR_BAD_VERSION)],
            )
            self.assertEqual(machine.state, opening.REFUSED)
            self.assertIsNone(machine.version)

    def test_anything_before_version(self):
        """
        Any other message before the version is out of order, even one
        that would choose a phase.
        """
        for message in [wire.Enroll("alice"), ROTATE, wire.GetTime()]:
            machine = Opening(EVERYTHING)
            machine.connected(wire.Framing.FRAMED)
            self.assertEqual(
                machine.receive(message), [Refuse(wire.ERROR_OUT_OF_ORDER)]
            )

    def test_violation(self):
        """A protocol error is refused with its own code."""
        machine = Opening()
        machine.connected(wire.Framing.FRAMED)
        error = wire.ProtocolError(wire.ERROR_TOO_LONG, "too long")
        self.assertEqual(machine.protocol_error(error), [Refuse(wire.ERROR_TOO_LONG)])
        self.assertEqual(machine.receive(VERSION), [])


class ChoosingTests(SynchronousTestCase):
    def test_enroll(self):
        """C{SUTO_C_ENROLL_} starts an enrollment of its user."""
        machine = greeted()
        self.assertEqual(
            machine.receive(wire.Enroll("alice")), [StartEnrollment("alice")]
        )
        self.assertEqual(machine.state, opening.HANDED_OVER)

    def test_rotate_and_reconnect(self):
        """A rotation or a reconnection starts a rotation connection."""
        reconnect = wire.Reconnect("0" * 32, b"q" * 16, b"s" * 48, "alice")
        for message in [ROTATE, reconnect]:
            machine = greeted()
            self.assertEqual(machine.receive(message), [StartRotation(message)])

    def test_other_is_classic(self):
        """
        Any other message (a second version included) starts the classic
        challenge, which reads it.
        """
        for message in [wire.GetSaltA(), VERSION]:
            machine = greeted()
            self.assertEqual(machine.receive(message), [StartClassic(message)])

    def test_time_once(self):
        """
        The time is told once, and a phase may still be chosen after it;
        a second request is out of order.
        """
        machine = greeted()
        self.assertEqual(machine.receive(wire.GetTime()), [TellTime()])
        self.assertEqual(machine.state, opening.TIMED)
        self.assertEqual(machine.receive(ROTATE), [StartRotation(ROTATE)])
        again = greeted()
        again.receive(wire.GetTime())
        self.assertEqual(
            again.receive(wire.GetTime()), [Refuse(wire.ERROR_OUT_OF_ORDER)]
        )

    def test_unoffered(self):
        """
        Enrollment, rotation and the time on a listener that does not
        offer them are unknown messages.
        """
        for message in [wire.Enroll("alice"), ROTATE, wire.GetTime()]:
            machine = greeted(frozenset())
            self.assertEqual(
                machine.receive(message), [Refuse(wire.ERROR_UNKNOWN_MESSAGE)]
            )

    def test_time_needs_its_own_offer(self):
        """
        A listener that rotates but does not reconnect does not tell the
        time.
        """
        machine = greeted(frozenset({opening.ROTATION}))
        self.assertEqual(
            machine.receive(wire.GetTime()), [Refuse(wire.ERROR_UNKNOWN_MESSAGE)]
        )

    def test_handed_over_is_quiet(self):
        """After the hand-over the machine does nothing more."""
        machine = greeted()
        machine.receive(ROTATE)
        self.assertEqual(machine.receive(ROTATE), [])
        self.assertEqual(
            machine.protocol_error(wire.ProtocolError(wire.ERROR_TIMEOUT, "")), []
        )
        self.assertEqual(machine.state, opening.HANDED_OVER)


class TableTests(SynchronousTestCase):
    def test_total(self):
        """
        The table answers every input in every state (the base refuses to
        build one that does not).
        """
        rows = list(opening.TRANSITIONS.rows())
        self.assertEqual(len(rows), len(opening.STATES) * len(opening.INPUTS))
