# -*- test-case-name: tests.end_to_end.test_two_processes,tests.end_to_end.test_verify_two_processes,tests.end_to_end.test_two_connections -*-
"""
One deployment's master key in the data folders of several server
processes, as IT copies it to every process and host sharing a store:
the profiles' keys open in each, and the notices they send each other
are sealed under one key.
"""

import os
import shutil

from suto_server.datafolder import MASTER_KEY_FILE
from suto_server.masterkey import MasterKey


def new_master_key(folder):
    """
    Make a master key in C{folder}, to share with L{share_master_key}.

    @return: C{folder}.
    """
    MasterKey.load_or_create(os.path.join(folder, MASTER_KEY_FILE))
    return folder


def share_master_key(source, target):
    """
    Copy the master key of the data folder C{source} into the data folder
    C{target}, replacing its own if it has one, readable by its owner
    only.
    """
    master = os.path.join(target, MASTER_KEY_FILE)
    if os.path.exists(master):
        os.chmod(master, 0o600)
    shutil.copyfile(os.path.join(source, MASTER_KEY_FILE), master)
    os.chmod(master, 0o400)
