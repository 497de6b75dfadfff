"""
Short folders for UNIX sockets.

A UNIX socket's path must fit in 108 bytes (C{sun_path}), and trial's own
temporary folders sit inside the checkout, so a socket there breaks as soon
as the checkout's path is long. Tests that bind or send to a UNIX socket
make its folder here instead: always under C{/tmp}, whatever the checkout's
path or C{TMPDIR} (which may be long too), and removed when the test ends.
"""

import shutil
import tempfile

#: Short on every POSIX system, unlike C{TMPDIR}.
SHORT_ROOT = "/tmp"


def socket_folder(testcase, prefix):
    """
    Make a fresh folder with a short path, removed after C{testcase}.

    @param prefix: the start of the folder's name, naming the test.
    @return: the folder's absolute path.
    """
    folder = tempfile.mkdtemp(prefix=prefix, dir=SHORT_ROOT)
    testcase.addCleanup(shutil.rmtree, folder, True)
    return folder
