"""
Endpoint string dropin: C{suto-tls:...} listens with the SUTO server's
hardened, reloadable TLS (see L{suto_server.tls}).
"""

from suto_server.tls import SutoTLSParser

suto_tls = SutoTLSParser()
