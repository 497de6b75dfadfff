"""
The layers of C{suto_server}, as docs/ARCHITECTURE.md draws them: each
part imports only the parts below it, so a change low in the stack never
has to know what sits above it, and a wrong import fails here rather than
in a review.
"""

import ast
import os

from twisted.trial.unittest import SynchronousTestCase

from tests.support.repository import ROOT

#: What each part of suto_server may import at module level, besides
#: itself.  The same table is in docs/ARCHITECTURE.md.
ALLOWED = {
    "core": set(),
    "datafolder": set(),
    "datalock": set(),
    "restoration": {"core", "datafolder"},
    "locations": set(),
    "masterkey": {"core"},
    "cred": {"core"},
    "net": {"core"},
    "store": {"core", "cred"},
    "audit": {"core", "store"},
    "cluster": {"core", "store", "rules"},
    "rules": {"core", "store", "audit", "cred", "net", "locations"},
    "machines": {"core", "rules"},
    "phases": {"core", "cred", "machines", "rules", "store"},
    "settings": {"core", "cred", "locations", "masterkey", "net", "rules"},
    "keyrules": {"core", "cred", "net", "phases", "rules", "settings", "store"},
    "metrics": {"core", "audit", "rules", "store", "admin"},
    "admin": {
        "core", "store", "audit", "rules", "net", "locations", "datafolder",
        "masterkey", "restoration",
    },
    "api": {
        "core", "cred", "store", "audit", "rules", "net", "admin", "locations",
    },
    "console": {"core", "store", "audit", "rules", "net", "locations", "admin"},
    "preflight": {
        "core", "cred", "datafolder", "locations", "net", "settings", "store",
    },
    "service": {
        "core", "store", "audit", "cred", "net", "rules", "machines", "phases",
        "settings", "keyrules", "metrics", "admin", "locations", "masterkey",
        "datafolder", "api",
        "settings", "keyrules", "metrics", "admin", "console", "locations",
        "masterkey", "datafolder", "cluster", "reports", "listeners",
    },
    "reports": {"core", "audit", "rules", "admin"},
    "listeners": {
        "core", "cred", "store", "net", "phases", "settings", "metrics", "admin",
        "api", "console",
    },
    "startup": {
        "audit", "datafolder", "datalock", "masterkey", "net", "preflight",
        "restoration", "service", "settings", "store",
    },
}

#: Imports made inside a function, where a command needs more than its
#: part's layer: C{suto-admin config check} reads a file with the daemon's
#: own options, so that it accepts exactly what C{twistd suto} accepts, and
#: C{suto-admin --config} reads the daemon's data folder from one.
LATE = {"admin": {"tap", "datalock"}}


def _part(path: str) -> str:
    """
    The part of suto_server a module belongs to: its subpackage, or the
    top-level module's own name.
    """
    relative = os.path.relpath(path, os.path.join(ROOT, "suto_server"))
    first = relative.split(os.sep)[0]
    return first[:-3] if first.endswith(".py") else first


def _imports(tree: ast.Module):
    """
    Yield C{(part imported, at module level?)} for every import of
    suto_server in C{tree}.
    """
    top_level = set(map(id, tree.body))
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "suto_server":
                names = [alias.name for alias in node.names]
            elif node.module.startswith("suto_server."):
                names = [node.module.split(".")[1]]
        elif isinstance(node, ast.Import):
            names = [
                alias.name.split(".")[1]
                for alias in node.names
                if alias.name.startswith("suto_server.")
            ]
        for name in names:
            yield name, id(node) in top_level


def _violations() -> list[str]:
    found = []
    for folder, _, files in os.walk(os.path.join(ROOT, "suto_server")):
        for name in sorted(files):
            if not name.endswith(".py") or name == "__init__.py" and folder.endswith(
                "suto_server"
            ):
                continue
            path = os.path.join(folder, name)
            part = _part(path)
            if part == "tap":
                continue
            with open(path, encoding="utf-8") as handle:
                tree = ast.parse(handle.read(), path)
            allowed = ALLOWED.get(part)
            if allowed is None:
                found.append(f"{part}: not in the layer table")
                continue
            for imported, module_level in _imports(tree):
                if imported == part or imported in allowed:
                    continue
                if not module_level and imported in LATE.get(part, ()):
                    continue
                found.append(f"{os.path.relpath(path, ROOT)} imports {imported}")
    return found


class LayerTests(SynchronousTestCase):
    def test_downward_only(self):
        """
        Every module of suto_server imports only the parts its layer may.
        """
        self.assertEqual(_violations(), [])

    def test_detects(self):
        """
        The check sees imports in both forms, at module level and inside
        functions.
        """
        tree = ast.parse(
            "from suto_server import tap\n"
            "from suto_server.store.open import open_store\n"
            "import suto_server.rules.limits\n"
            "def f():\n    from suto_server.service import SutoServer\n"
        )
        self.assertEqual(
            list(_imports(tree)),
            [("tap", True), ("store", True), ("rules", True), ("service", False)],
        )
