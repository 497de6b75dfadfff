"""
The proof in an answer to a check packet is compared with the expected
proofs in constant time: each comparison goes through
L{hmac.compare_digest} with the proof received, so a comparison written
with C{==}, which no other test could tell apart, fails here.
"""

from twisted.trial.unittest import SynchronousTestCase

from suto_server.core import keyschedule, wire
from suto_server.net.checks import CheckResult, CheckService
from tests.support.comparisons import record_comparisons
from tests.support.udp import MemoryUDPReactor

USER = "alice"
OLD = "192.0.2.7"
KEY = bytes(range(32))
PREVIOUS = bytes(range(32, 64))


class CheckProofTests(SynchronousTestCase):
    """
    An answer's proof is compared with the proof of each key the profile
    may hold, in constant time.
    """

    def setUp(self):
        self.reactor = MemoryUDPReactor()
        self.service = CheckService(self.reactor)
        self.service.startService()
        self.compared = record_comparisons(self)

    def check(self):
        """
        Check L{USER} at L{OLD}, holding L{KEY} and L{PREVIOUS}.

        @return: the results list the check's result lands in, and the
            nonce the check packet carried.
        """
        results = []
        self.service.check(USER, OLD, KEY, previous=PREVIOUS).addCallback(
            results.append
        )
        [(_, protocol)] = self.reactor.udp
        [(datagram, _)] = protocol.transport.written
        return results, wire.parse_datagram(datagram).nonce

    def answer(self, nonce, proof):
        """
        Deliver an answer carrying C{proof} from L{OLD}.
        """
        [(_, protocol)] = self.reactor.udp
        protocol.datagramReceived(
            wire.encode_check_proof(wire.CheckProof(nonce, proof)), (OLD, 2020)
        )

    def test_right_proof(self):
        """
        An answer with the current key's proof ends the check as answered,
        after comparing that proof with the current key's.
        """
        results, nonce = self.check()
        proof = keyschedule.check_proof(KEY, nonce, USER)
        self.answer(nonce, proof)
        self.assertEqual(results, [CheckResult.ANSWERED])
        self.assertEqual(self.compared, [(proof, proof)])

    def test_previous_key(self):
        """
        An answer with the previous key's proof is compared with both
        expected proofs, and is answered.
        """
        results, nonce = self.check()
        proof = keyschedule.check_proof(PREVIOUS, nonce, USER)
        self.answer(nonce, proof)
        self.assertEqual(results, [CheckResult.ANSWERED])
        self.assertEqual(
            self.compared,
            [(proof, keyschedule.check_proof(KEY, nonce, USER)), (proof, proof)],
        )

    def test_wrong_proof(self):
        """
        An answer with a wrong proof is compared with every expected proof,
        and makes the check forged when it times out.
        """
        results, nonce = self.check()
        wrong = keyschedule.check_proof(bytes(32), nonce, USER)
        self.answer(nonce, wrong)
        self.reactor.advance(60)
        self.assertEqual(results, [CheckResult.FORGED])
        self.assertEqual(
            self.compared,
            [
                (wrong, keyschedule.check_proof(KEY, nonce, USER)),
                (wrong, keyschedule.check_proof(PREVIOUS, nonce, USER)),
            ],
        )
