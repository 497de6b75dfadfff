"""
The installed package is the tree: C{setup.cfg} names every Python package
of C{suto_server} and C{suto_client}, so a plain C{pip install .} (the
README's quick start, which is not an editable install) ships every module
the tests import from the checkout.
"""

import configparser
import os

from twisted.trial.unittest import SynchronousTestCase

from tests.support.repository import ROOT


def _packages_in_tree() -> set[str]:
    found = set()
    for top in ("suto_server", "suto_client"):
        for folder, _, files in os.walk(os.path.join(ROOT, top)):
            if "__init__.py" in files:
                found.add(os.path.relpath(folder, ROOT).replace(os.sep, "."))
    return found


class PackagesTests(SynchronousTestCase):
    def test_every_package_listed(self):
        """
        C{[options] packages} lists exactly the packages of the tree, plus
        the Twisted plugin dropin.
        """
        config = configparser.ConfigParser()
        config.read(os.path.join(ROOT, "setup.cfg"))
        listed = set(config["options"]["packages"].split())
        self.assertEqual(listed, _packages_in_tree() | {"twisted.plugins"})
