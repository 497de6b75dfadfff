"""
SUTO endpoint agent: the client side of the SUTO protocol.

The agent shares with the server only L{suto_server.core}: the code both
sides must agree on or would otherwise write twice (the wire codec, the
key schedule, the crypt family, the timing rules, and the small helpers
for atomic files, bounded PEM reading, TOML options and throttled
logging).  Nothing of the server's store, services or protocols loads on
an endpoint; C{tests/client/test_imports.py} holds it to that.
"""
