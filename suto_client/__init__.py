"""
SUTO endpoint agent: the client side of the SUTO protocol.

The agent shares with the server, from C{suto_server}, the code both sides
must agree on or would otherwise write twice: the wire codec
(C{wire}) and key schedule (C{keyschedule}); the crypt family it computes
the salted response with (C{schemes}, C{libxcrypt}); and the small
pure-library helpers for its state file (C{atomicfile}), bounded PEM
reading (C{pem}), TOML options (C{config}), rate-limited logging
(C{limits.OncePerInterval}) and the fingerprint source interface
(C{interfaces.IFingerprintSource}).  None of them starts a server or
touches the server's store.
"""
