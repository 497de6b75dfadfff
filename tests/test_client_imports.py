"""
The endpoint agent shares only the documented modules of C{suto_server}
(see C{suto_client}'s docstring), so the server's store, services and
protocols never load on an endpoint.
"""

import json
import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase

SHARED = {
    "suto_server",
    "suto_server.atomicfile",
    "suto_server.config",
    "suto_server.interfaces",
    "suto_server.keyschedule",
    "suto_server.libxcrypt",
    "suto_server.limits",
    "suto_server.pem",
    "suto_server.schemes",
    "suto_server.wire",
}

_PROBE = """
import json, pkgutil, sys, importlib, suto_client
for module in pkgutil.iter_modules(suto_client.__path__):
    importlib.import_module("suto_client." + module.name)
print(json.dumps(sorted(m for m in sys.modules if m.startswith("suto_server"))))
"""


class SharedModulesTests(SynchronousTestCase):
    def test_only_shared_modules(self):
        """
        Importing every module of C{suto_client} in a fresh interpreter
        loads exactly the shared C{suto_server} modules.
        """
        output = subprocess.run(
            [sys.executable, "-c", _PROBE],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout
        self.assertEqual(set(json.loads(output)), SHARED)
