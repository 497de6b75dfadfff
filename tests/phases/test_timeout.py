"""
L{suto_server.phases.timeout}: connections' timeouts on one L{DeadlineWheel},
with Twisted's L{TimeoutMixin} behaviour.
"""

from twisted.internet import task
from twisted.protocols.policies import TimeoutMixin
from twisted.trial.unittest import SynchronousTestCase

from suto_server.phases.timeout import DeadlineWheel, WheelTimeoutMixin


class _Recording:
    """
    Records when the connection timed out, on C{clock}.
    """

    def __init__(self, clock, wheel=None):
        self.clock = clock
        self.callLater = clock.callLater
        self.deadlines = wheel if wheel is not None else DeadlineWheel(clock)
        self.timed_out = []

    def timeoutConnection(self):
        self.timed_out.append(self.clock.seconds())


class Twisted(_Recording, TimeoutMixin):
    pass


class Wheeled(_Recording, WheelTimeoutMixin):
    pass


#: Scripts of (advance the clock by, then call, with argument): a shorter
#: period, a longer one, resets, cancelling, re-arming after a timeout.
SCRIPTS = [
    [(0, "set", 96), (5, "set", 10), (20, "set", 96), (200, None, None)],
    [(0, "set", 10), (3, "reset", None), (3, "reset", None), (20, None, None)],
    [
        (0, "set", 96),
        (1, "set", 10),
        (1, "set", 5),
        (2, "reset", None),
        (30, None, None),
    ],
    [(0, "set", 10), (4, "set", None), (4, "reset", None), (50, None, None)],
    [
        (0, "set", 10),
        (11, "set", 10),
        (3, "set", 2),
        (9, "reset", None),
        (1, "set", 4),
        (30, None, None),
    ],
    [
        (0, "set", 10),
        (0, "set", 10),
        (0, "set", 1),
        (0, "set", 10),
        (0, "set", 0),
        (5, None, None),
    ],
]


def run(protocol_class, script):
    """
    @return: when the connection timed out running C{script}, and what
        each L{setTimeout} returned.
    """
    clock = task.Clock()
    protocol = protocol_class(clock)
    returned = []
    for advance, call, argument in script:
        # One second at a time, so each timeout is seen when it falls.
        for _ in range(advance):
            clock.advance(1)
        if call == "set":
            returned.append(protocol.setTimeout(argument))
        elif call == "reset":
            protocol.resetTimeout()
    return protocol.timed_out, returned


class WheelTimeoutTests(SynchronousTestCase):
    def setUp(self):
        self.clock = task.Clock()
        self.wheel = DeadlineWheel(self.clock)

    def connection(self):
        return Wheeled(self.clock, self.wheel)

    def test_same_as_timeout_mixin(self):
        """
        Every script times out at the same moments and returns the same
        previous periods as with L{TimeoutMixin}.
        """
        for script in SCRIPTS:
            self.assertEqual(run(Wheeled, script), run(Twisted, script), script)

    def test_one_call_for_many(self):
        """
        A thousand connections' timeouts, and every reset of them, keep one
        delayed call on the clock.
        """
        connections = [self.connection() for _ in range(1000)]
        for index, connection in enumerate(connections):
            connection.setTimeout(10 + index % 90)
        self.clock.advance(1)
        for connection in connections:
            connection.resetTimeout()
            connection.setTimeout(96)
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.clock.advance(96)
        self.assertEqual(
            [connection.timed_out for connection in connections],
            [[97]] * 1000,
        )
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_later_is_lazy(self):
        """
        A deadline moved later stays in its slot until the slot comes due,
        then is filed at its new one; the wheel wakes once for each.
        """
        connection = self.connection()
        connection.setTimeout(10)
        [first] = self.clock.getDelayedCalls()
        connection.setTimeout(96)
        self.assertEqual(self.clock.getDelayedCalls(), [first])
        self.assertEqual(first.getTime(), 10)
        self.clock.advance(10)
        [second] = self.clock.getDelayedCalls()
        self.assertEqual((second.getTime(), connection.timed_out), (96, []))
        self.clock.advance(86)
        self.assertEqual(connection.timed_out, [96])

    def test_earlier_moves(self):
        """
        A deadline moved earlier than its slot moves to the earlier slot,
        and the wheel's call with it.
        """
        connection = self.connection()
        connection.setTimeout(96)
        connection.setTimeout(10)
        [call] = self.clock.getDelayedCalls()
        self.assertEqual(call.getTime(), 10)
        self.clock.advance(10)
        self.assertEqual(connection.timed_out, [10])

    def test_never_early_at_most_a_slot_late(self):
        """
        A deadline between slot ends falls at the end of its slot: not
        before it, and less than a resolution after it.
        """
        wheel = DeadlineWheel(self.clock, resolution=2.0)
        connection = Wheeled(self.clock, wheel)
        self.clock.advance(0.75)
        connection.setTimeout(10)
        self.clock.advance(11)
        self.assertEqual(connection.timed_out, [])
        self.clock.advance(0.25)
        self.assertEqual(connection.timed_out, [12])

    def test_cancel_leaves_the_wheel(self):
        """
        C{setTimeout(None)} takes the connection out of the wheel at once
        (a closed connection is not kept alive by it) and returns the
        previous period, twice in a row too.
        """
        connection = self.connection()
        connection.setTimeout(10)
        self.assertEqual(len(self.wheel), 1)
        self.assertEqual(
            (connection.setTimeout(None), connection.setTimeout(None)), (10, None)
        )
        self.assertEqual(len(self.wheel), 0)
        self.clock.advance(20)
        self.assertEqual(
            (connection.timed_out, self.clock.getDelayedCalls()), ([], [])
        )

    def test_reset_after_timeout_does_nothing(self):
        """
        As with L{TimeoutMixin}, a timeout that fell is not re-armed by
        C{resetTimeout}, only by C{setTimeout}.
        """
        connection = self.connection()
        connection.setTimeout(5)
        self.clock.advance(5)
        connection.resetTimeout()
        self.clock.advance(20)
        self.assertEqual(connection.timed_out, [5])
        connection.setTimeout(5)
        self.clock.advance(5)
        self.assertEqual(connection.timed_out, [5, 30])

    def test_timeout_cancelling_others(self):
        """
        A timeout that cancels the other connections due in the same slot
        is honoured: whichever falls first, the others do not fall.
        """
        connections = [self.connection() for _ in range(5)]
        for connection in connections:
            connection.timeoutConnection = lambda: [
                other.setTimeout(None) for other in connections
            ]
            connection.setTimeout(10)
        self.clock.advance(10)
        self.assertEqual(
            (len(self.wheel), self.clock.getDelayedCalls()), (0, [])
        )

    def test_timeout_moving_others(self):
        """
        A timeout that moves the other connections due in the same slot
        earlier or later is honoured: they fall at their new deadline.
        """
        connections = [self.connection() for _ in range(5)]
        fell = []

        def moving(connection):
            fell.append(self.clock.seconds())
            if len(fell) == 1:
                for other in connections:
                    if other is not connection:
                        other.setTimeout(3)

        for connection in connections:
            connection.timeoutConnection = lambda c=connection: moving(c)
            connection.setTimeout(10)
        self.clock.advance(10)
        self.assertEqual(fell, [10])
        self.clock.advance(3)
        self.assertEqual(fell, [10, 13, 13, 13, 13])
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_resolution_positive(self):
        """
        A wheel needs slots of some width.
        """
        for resolution in (0, -1):
            self.assertRaises(
                ValueError, DeadlineWheel, self.clock, resolution=resolution
            )
