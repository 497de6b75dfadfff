"""
A real master key in a folder of the test's own.

Every layer that seals or opens stored keys (rules, phases, the service,
the admin API, the database thread) needs a master key; a real one, made
in the test's temporary folder, costs little and proves more than a fake.
"""

import os

from suto_server.masterkey import MasterKey


def new_master_key(testcase):
    """
    A master key created in a fresh folder of C{testcase}.
    """
    folder = testcase.mktemp()
    os.makedirs(folder)
    return MasterKey.load_or_create(os.path.join(folder, "master.key"))
