# -*- test-case-name: tests.machines.test_rotation,tests.machines.test_rotation_primed -*-
"""
What the server's rotation machine is driven with in its tests, and what
it answers with when a conversation breaks: the same messages for the
two-message rotation and the primed one.
"""

from suto_server.core import wire
from suto_server.core.machine import Close, Send
from suto_server.machines.rotation import Abandon

KEY_ID = "0123456789abcdef" * 2
JUNK = bytes(range(32))
CLIENT_PUBLIC = bytes(range(32, 64))
SERVER_PUBLIC = bytes(range(64, 96))
OK = bytes(range(18))
ACK_SEALED = bytes(range(100, 119))

# The messages the client sends on a rotation connection.
ROTATE = wire.Rotate(KEY_ID, JUNK, CLIENT_PUBLIC, "alice")
ACK = wire.RotateAck(ACK_SEALED)


def refusal(code):
    """
    What the machine asks for when it ends the connection with C{code}.
    """
    return [Send(wire.Error(code)), Close()]


def abandoned(code):
    """
    What the machine asks for when the conversation breaks with C{code}
    while a rotation waits for its acknowledgement.
    """
    return [Abandon(f"protocol error: {code}"), *refusal(code)]
