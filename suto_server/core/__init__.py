"""
The SUTO protocol both ends agree on: the wire codec, the key schedule,
the crypt schemes, the timing rules, and the small helpers both daemons
use.

Nothing here imports any other part of C{suto_server}, and the endpoint
agent imports nothing of C{suto_server} but this package.
"""
