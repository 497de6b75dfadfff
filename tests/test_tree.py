"""
The shape of the test tree: no module under C{tests/} imports a test
module. Fakes, fixtures and constants that more than one test module needs
live in C{tests/support/}; a test module importing another one runs, and
breaks with, code it does not own, and trial would collect any test case
imported that way twice.

The code names its tests: a module's first line may carry Twisted's
C{# -*- test-case-name: tests.<layer>.test_<module> -*-} header, which
C{trial --testmodule} and editors read to run the tests of the module at
hand.  A header naming a test module that was moved or renamed would
quietly run nothing, so every name it gives must be a test module here.
"""

import ast
import os

from twisted.scripts.trial import getTestModules
from twisted.trial.unittest import SynchronousTestCase

from tests.support.repository import ROOT

TESTS = os.path.join(ROOT, "tests")

#: The packages whose modules may name their tests in a header.
SOURCES = ("suto_server", "suto_client")


def tree_modules():
    """
    @return: the dotted name and path of every module under C{tests/}.
    """
    for folder, folders, files in os.walk(TESTS):
        folders[:] = sorted(f for f in folders if not f.startswith(("_", ".")))
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                parts = os.path.relpath(path, ROOT)[: -len(".py")].split(os.sep)
                if parts[-1] == "__init__":
                    parts.pop()
                yield ".".join(parts), path


def source_paths():
    """
    @return: the path of every module of L{SOURCES}, relative to the root.
    """
    for package in SOURCES:
        for folder, folders, files in os.walk(os.path.join(ROOT, package)):
            folders[:] = sorted(
                f for f in folders if not f.startswith(("_", "."))
            )
            for name in sorted(files):
                if name.endswith(".py"):
                    yield os.path.relpath(os.path.join(folder, name), ROOT)


def unknown_test_modules(path, test_modules):
    """
    @param path: a source module's path, relative to the root (or absolute).
    @param test_modules: the dotted names of the test modules there are.
    @return: the names the module's C{test-case-name} header gives, read
        as trial reads it, that are not among C{test_modules}.
    """
    names = getTestModules(os.path.join(ROOT, path))
    return [name for name in names if name not in test_modules]


def is_test_module(name):
    """
    Is the dotted C{name} under C{tests} but outside C{tests.support}?
    Packages count: importing C{tests.audit} reaches its test modules.
    """
    parts = name.split(".")
    return parts[0] == "tests" and parts[1:2] != ["support"] and len(parts) > 1


def imported_test_modules(module, source):
    """
    @param module: the dotted name of the module C{source} is the text of.
    @return: the names of the test modules C{source} imports, a relative
        import resolved against C{module}.
    """
    package = module.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            origin = ".".join(base + ([node.module] if node.module else []))
            # "from tests.audit import test_log" imports a module by name.
            found.extend(f"{origin}.{alias.name}" for alias in node.names)
    return sorted({name for name in found if is_test_module(name)})


class ImportsTests(SynchronousTestCase):
    """
    Test modules share code only through C{tests.support}.
    """

    def test_no_test_module_imports_another(self):
        """
        No module under C{tests/}, support modules included, imports a test
        module or a test package.
        """
        offending = {}
        for module, path in tree_modules():
            with open(path, encoding="utf-8") as handle:
                imported = imported_test_modules(module, handle.read())
            if imported:
                offending[module] = imported
        self.assertEqual(offending, {})

    def test_tree_found(self):
        """
        The walk finds the test modules and the support package, so the
        check above is not vacuous.
        """
        modules = dict(tree_modules())
        self.assertIn("tests.test_tree", modules)
        self.assertIn("tests.audit.test_sinks", modules)
        self.assertIn("tests.support.udp", modules)

    def test_detects(self):
        """
        Absolute imports of a test module, of a name from one, of a test
        package, and relative imports are all found; imports from
        C{tests.support} are not.
        """
        source = """
import tests.audit.test_sinks
from tests.client.test_hello import SERVER
from tests.audit import test_log
from . import test_alerts
from .test_sinks import ALERT
from tests.support.udp import MemoryUDPReactor
from tests.support import udp
import os
"""
        self.assertEqual(
            imported_test_modules("tests.audit.test_x", source),
            [
                "tests.audit.test_alerts",
                "tests.audit.test_log",
                "tests.audit.test_sinks",
                "tests.audit.test_sinks.ALERT",
                "tests.client.test_hello.SERVER",
            ],
        )


class HeadersTests(SynchronousTestCase):
    """
    The C{test-case-name} headers of the code name test modules that exist.
    """

    def test_headers_name_test_modules(self):
        """
        Every name in every header under L{SOURCES}, as trial splits it, is
        a C{test_*} module under C{tests/}.
        """
        test_modules = {
            name
            for name, path in tree_modules()
            if os.path.basename(path).startswith("test_")
        }
        unknown = {}
        for path in source_paths():
            names = unknown_test_modules(path, test_modules)
            if names:
                unknown[path] = names
        self.assertEqual(unknown, {})

    def test_every_module_has_a_header(self):
        """
        Every module that holds code names its tests; only the packages'
        C{__init__} modules that hold a docstring alone may go without.
        """
        missing = []
        for path in source_paths():
            if getTestModules(os.path.join(ROOT, path)):
                continue
            with open(os.path.join(ROOT, path), encoding="utf-8") as handle:
                tree = ast.parse(handle.read())
            body = tree.body[1:] if ast.get_docstring(tree) else tree.body
            if body:
                missing.append(path)
        self.assertEqual(missing, [])

    def test_headers_found(self):
        """
        The headers are read where trial reads them, so the check above is
        not vacuous.
        """
        paths = set(source_paths())
        self.assertIn(os.path.join("suto_client", "statefile.py"), paths)
        self.assertEqual(
            getTestModules(os.path.join(ROOT, "suto_client", "statefile.py")),
            ["tests.client.test_statefile"],
        )

    def test_detects(self):
        """
        A header naming a test module that does not exist is found, and
        one without a header names nothing.
        """
        folder = self.mktemp()
        os.makedirs(folder)
        headed = os.path.join(folder, "headed.py")
        with open(headed, "w", encoding="utf-8") as handle:
            handle.write(
                "# -*- test-case-name: tests.test_tree,tests.test_gone -*-\n"
            )
        plain = os.path.join(folder, "plain.py")
        with open(plain, "w", encoding="utf-8") as handle:
            handle.write('"""No header."""\n')
        known = {"tests.test_tree"}
        self.assertEqual(
            unknown_test_modules(os.path.abspath(headed), known),
            ["tests.test_gone"],
        )
        self.assertEqual(unknown_test_modules(os.path.abspath(plain), known), [])
