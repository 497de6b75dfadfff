"""
A recording stand-in for L{hmac.compare_digest}, for the tests that hold a
secret comparison to constant time.

A comparison with C{==} stops at the first byte that differs, so how long
it takes tells an attacker how much of a guess was right: every proof,
MAC, key or hash a peer sends is compared with L{hmac.compare_digest}
instead.  Nothing observable distinguishes the two in a test but the call
itself, so these tests patch the function with a wrapper that records its
operands and still compares, and assert the secret operands went through
it.  The code under test calls it as C{hmac.compare_digest}, through the
module, so patching the module patches every caller.
"""

import hmac


def record_comparisons(testcase) -> list[tuple[bytes, bytes]]:
    """
    Make L{hmac.compare_digest} record its operands for the rest of
    C{testcase}, still returning the real comparison.

    @param testcase: a trial test case, which undoes the patch when it
        ends.
    @return: the list each call appends its C{(left, right)} operands to.
    """
    compared = []
    real = hmac.compare_digest

    def recording(left, right):
        compared.append((left, right))
        return real(left, right)

    testcase.patch(hmac, "compare_digest", recording)
    return compared
