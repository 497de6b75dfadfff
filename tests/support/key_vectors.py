"""
The key schedule's test vectors: the fixed inputs docs/PROTOCOL.md lists
and the outputs it prints for them.

The key schedule's own tests rebuild each output from the primitives, and
the check of docs/PROTOCOL.md against the code reads the same values, so
both stand on one copy.
"""

# The fixed inputs of the vectors, as docs/PROTOCOL.md lists them.
SALTED_HASH = (
    "$6$abcdefghijklmnop$q2YZbPhm1LySTIzZVDisu/y2CX1McrFsw529ViOLMxoKT."
    "sfgjBo4aFu.hwtGjEDxRb6mn/TZMj7V4/1AUTLi1"
)
PROFILE = "alice@it-srv1"
RANDOM_DATA = bytes(range(0x00, 0x20))
JUNK = bytes(range(0x40, 0x60))
FINGERPRINT = bytes.fromhex(
    "8f013329f6cf900372f8f5bb608c7becf1b2461d6838e16ab1f0ce614eca0944"
)
# RFC 7748, section 6.1: Alice's private key and Bob's public key.
ALICE_PRIVATE = bytes.fromhex(
    "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
)
BOB_PRIVATE = bytes.fromhex(
    "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"
)
BOB_PUBLIC = bytes.fromhex(
    "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
)
NOW = 1700000000
PURPOSE = "rotation-confirm"
PLAINTEXT = b"SUTO_ROTATE_OK"
# A check packet for the wire user of the profile, with a fixed nonce.
CHECK_USER = "alice"
CHECK_NONCE = bytes(range(0x80, 0x90))
# The nonce of a reconnection attempt.
ATTEMPT_NONCE = bytes(range(0xA0, 0xB0))

# The expected outputs.
ENCODED = "00000002616200000002c3a900000000"
SECRET = "3114e70d5cdeda5cb86b25413c6bc68b4b767034a537ad5bb59d87c4d4610c9e"
KEY_0 = "4d6c9427e47e163fd06ba6334de99783976e7197d7e56a1903043d6967aee11e"
DH_SHARED = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"
KEY_1 = "ac8408fe7728ac4884c2cd85faf3ee3c5b378d5be9ee45206ab188e399b50e1e"
STEP = 56666666
STEPS = [56666666, 56666667, 56666665, 56666668, 56666664]
OFFLINE = "eec2d65d5644f7c19547d53e290d3d43a16f75c7531b5f8ddda25870f8e65994"
KEY_ID_0 = "6dab243ad4b37be20a675eda546e0e21"
KEY_ID_1 = "d614e6a570919da76bb7b57425eb8e5d"
SEAL_SUBKEY = "9cf4ea6a0421f6ddc954a5afd069a892fb35f0d3d322ad1252405adb4046f5a7"
SEAL_NONCE = "733263000000000000000000"
SEAL_AD = (
    "0000000c7375746f2f76312f7365616c"
    "0000000d616c6963654069742d73727631"
    "00000010726f746174696f6e2d636f6e6669726d"
    "00000003733263"
    "000000080000000000000000"
)
SEALED = "68948e87adc0150022c883629ab0dea53e363e18c1e29f506a41b171e57c"
ENROLL_SEALED = "5c0b21459e555560d234aab5dc64cf908d649232c408"
CHECK_SUBKEY = "f82f6facb05ad5a98b6f485b970e5264bb1b339254dceeec010e5c9cb1a71e3d"
CHECK_MESSAGE = (
    "0000000d7375746f2f76312f636865636b"
    "00000005616c696365"
    "00000010808182838485868788898a8b8c8d8e8f"
)
CHECK_PROOF = "f3d9a7eb26129e835457f65b95549a16"
#: The verification proof (PROTOCOL §7.7) under the generation 1 key, for
#: the check's user and nonce.
VERIFY_PROOF = "893599fcaa5d454fac163d5d0ec48d14"
RECONNECT_SEALED = (
    "7b6be7bf67c9ef9a3fd3232e95d2e14d8344fda187073f5fa360b9d1d29da37e"
    "c5acbe72d3433427a9b66faefb2aadc6"
)
RECONNECT_OK_SEALED = "4c799cda26b4195b790dbb331c21b98dff3c"
RECONNECT_PROOF = "db4eb6395ef2f974b7991104e425b6c3"
ATTEMPT_KEY = "786c1f82bc750bee175920f4485d01f4d04ac14dced6c6bf52713827a5442e9d"
ATTEMPT_SEALED = (
    "db7f216333becb3ca0552dd3d20649fcaa10e6c37a88c694dea90c8f8c70c250"
    "a713f12d8281ecfbfaab03d6160403eb"
)
ATTEMPT_OK_SEALED = "a17d9899feb6af615937ac291927e1423406"
ATTEMPT_PROOF = "6d8ec3b3871f945936204058b701517f"
