"""
The layering rules of the shared protocol core: the endpoint agent loads
nothing of C{suto_server} but L{suto_server.core}, and the core loads
nothing else of C{suto_server}, so the server's store, services and
protocols never load on an endpoint and the core can change without the
rest of the server in mind.
"""

import json
import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase

_PROBE = """
import json, pkgutil, sys, importlib
package = importlib.import_module(sys.argv[1])
for module in pkgutil.walk_packages(package.__path__, sys.argv[1] + "."):
    if not module.name.endswith(".__main__"):
        importlib.import_module(module.name)
print(json.dumps(sorted(m for m in sys.modules if m.startswith("suto_server"))))
"""


def _loaded_by(package: str) -> set[str]:
    """
    @return: the C{suto_server} modules a fresh interpreter has loaded
        after importing every module of C{package}, its subpackages' too
        (but no C{__main__}, which would run a command).
    """
    output = subprocess.run(
        [sys.executable, "-c", _PROBE, package],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    return set(json.loads(output))


def _outside_core(modules: set[str]) -> set[str]:
    return {
        m
        for m in modules
        if m not in ("suto_server", "suto_server.core")
        and not m.startswith("suto_server.core.")
    }


class SharedCoreTests(SynchronousTestCase):
    def test_agent_loads_only_the_core(self):
        """
        Importing every module of C{suto_client} in a fresh interpreter
        loads no C{suto_server} module outside L{suto_server.core}, and
        does load the core (the check is not vacuous).
        """
        loaded = _loaded_by("suto_client")
        self.assertEqual(_outside_core(loaded), set())
        self.assertIn("suto_server.core.wire", loaded)

    def test_core_loads_only_itself(self):
        """
        Importing every module of L{suto_server.core} loads no other
        C{suto_server} module.
        """
        loaded = _loaded_by("suto_server.core")
        self.assertEqual(_outside_core(loaded), set())
        self.assertIn("suto_server.core.keyschedule", loaded)
