"""
Endpoint string dropin: C{suto-tls:...} listens with the SUTO server's
hardened, reloadable TLS (see L{suto_server.net.tls}).
"""

from suto_server.net.endpoint import SutoTLSParser

suto_tls = SutoTLSParser()
