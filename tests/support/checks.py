"""
The agent's side of a location check: the proof it answers with.

The check service and the tracking rules both need an agent that answers
a server's check datagram; this computes the answer straight from the key
schedule and the codec.
"""

from suto_server.core import keyschedule, wire

#: The profile checked.
USER = "alice"
#: The key the answering agent holds.
KEY = bytes(range(32))


def answer(nonce, key=KEY, user=USER):
    """
    The datagram an agent holding C{key} answers a check with.
    """
    proof = keyschedule.check_proof(key, nonce, user)
    return wire.encode_check_proof(wire.CheckProof(nonce, proof))
