"""
L{suto_server.phases.timeout.RearmingTimeoutMixin}: Twisted's L{TimeoutMixin}
behaviour, without moving a delayed call earlier.
"""

from twisted.internet import task
from twisted.protocols.policies import TimeoutMixin
from twisted.trial.unittest import SynchronousTestCase

from suto_server.phases.timeout import RearmingTimeoutMixin


class _Recording:
    """
    Records when the connection timed out, on C{clock}.
    """

    def __init__(self, clock):
        self.clock = clock
        self.callLater = clock.callLater
        self.timed_out = []

    def timeoutConnection(self):
        self.timed_out.append(self.clock.seconds())


class Twisted(_Recording, TimeoutMixin):
    pass


class Rearming(_Recording, RearmingTimeoutMixin):
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


class RearmingTimeoutTests(SynchronousTestCase):
    def test_same_as_timeout_mixin(self):
        """
        Every script times out at the same moments and returns the same
        previous periods as with L{TimeoutMixin}.
        """
        for script in SCRIPTS:
            self.assertEqual(run(Rearming, script), run(Twisted, script), script)

    def test_shorter_period_rearms(self):
        """
        A shorter period cancels the pending call and schedules a new one
        instead of moving the pending call earlier.
        """
        clock = task.Clock()
        protocol = Rearming(clock)
        protocol.setTimeout(96)
        [idle] = clock.getDelayedCalls()
        clock.advance(1)
        protocol.setTimeout(10)
        [exchange] = clock.getDelayedCalls()
        self.assertEqual(
            (idle.cancelled, exchange is idle, exchange.getTime()), (1, False, 11)
        )

    def test_longer_period_resets(self):
        """
        A longer period, or a reset, keeps the pending call and moves it
        later.
        """
        clock = task.Clock()
        protocol = Rearming(clock)
        protocol.setTimeout(10)
        [call] = clock.getDelayedCalls()
        clock.advance(1)
        protocol.resetTimeout()
        protocol.setTimeout(96)
        self.assertEqual(clock.getDelayedCalls(), [call])
        self.assertEqual(call.getTime(), 97)

    def test_cancelled(self):
        """
        C{setTimeout(None)} leaves no call pending, twice in a row too.
        """
        clock = task.Clock()
        protocol = Rearming(clock)
        protocol.setTimeout(10)
        self.assertEqual(
            (protocol.setTimeout(None), protocol.setTimeout(None)), (10, None)
        )
        self.assertEqual(clock.getDelayedCalls(), [])
