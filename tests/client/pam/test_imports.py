"""
What C{suto-pam} loads: of SUTO, only the protocol core, the agent's
certificate checks and itself (the layer table of docs/ARCHITECTURE.md),
so the helper every C{sudo} starts carries none of the agent's
conversations, state or listeners.
"""

import json
import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase

_PROBE = """
import importlib, json, pkgutil, sys
import suto_client.pam as package
for module in pkgutil.iter_modules(package.__path__, "suto_client.pam."):
    if not module.name.endswith(".__main__"):
        importlib.import_module(module.name)
print(json.dumps(sorted(m for m in sys.modules if m.startswith("suto_"))))
"""


class ImportsTests(SynchronousTestCase):
    def test_loads_only_core_and_tls(self):
        """
        Every module of C{suto_client.pam} together loads, besides
        themselves, only L{suto_server.core} and L{suto_client.tls}.
        """
        loaded = json.loads(
            subprocess.run(
                [sys.executable, "-I", "-c", _PROBE],
                check=True, capture_output=True, text=True, timeout=60,
            ).stdout
        )
        others = {
            name for name in loaded
            if not name.startswith(("suto_server.core", "suto_client.pam"))
            and name not in ("suto_server", "suto_client", "suto_client.tls")
        }
        self.assertEqual(others, set())
        self.assertIn("suto_client.pam.verify", loaded)

    def test_package_loads_nothing(self):
        """
        The package itself, which the console script imports before the
        isolated restart, loads nothing beyond itself and its C{main}.
        """
        probe = (
            "import json, sys; import suto_client.pam.main; "
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('suto_') or m.startswith('twisted'))))"
        )
        loaded = json.loads(
            subprocess.run(
                [sys.executable, "-I", "-c", probe],
                check=True, capture_output=True, text=True, timeout=60,
            ).stdout
        )
        self.assertEqual(loaded, ["suto_client", "suto_client.pam", "suto_client.pam.main"])
