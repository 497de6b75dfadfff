"""
twistd dropin: ``twistd suto`` runs the authentication server and
``twistd suto-client`` runs the endpoint agent.  Importing happens in the
named ``tap`` modules, so ``twistd --help`` stays cheap.
"""

from twisted.application.service import ServiceMaker

suto = ServiceMaker(
    "SUTO server",
    "suto_server.tap",
    "SUTO enterprise authentication server (IT listener, registry, blacklist).",
    "suto",
)

suto_client = ServiceMaker(
    "SUTO endpoint agent",
    "suto_client.tap",
    "SUTO endpoint agent: answers hellos and authenticates to the SUTO server.",
    "suto-client",
)
