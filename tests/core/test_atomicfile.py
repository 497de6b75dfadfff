"""
Crash-safe file replacement: the contents, the mode, and a folder left
clean whether the write succeeds or fails.
"""

import errno
import os
import stat
import tempfile

from twisted.trial.unittest import SynchronousTestCase

from suto_server.core.atomicfile import write_atomically


def failing(name):
    "A stand-in for C{os.<name>} that fails as a full disk would."

    def fail(*args, **kwargs):
        raise OSError(errno.ENOSPC, f"{name} failed")

    return fail


class WriteAtomicallyTests(SynchronousTestCase):
    """
    L{write_atomically} leaves either the old file or the new one, and
    nothing else.
    """

    def setUp(self):
        self.directory = os.path.abspath(self.mktemp())
        os.mkdir(self.directory)
        self.path = os.path.join(self.directory, "state")

    def read(self):
        "The current contents of the target file."
        with open(self.path, "rb") as handle:
            return handle.read()

    def mode(self):
        "The permission bits of the target file."
        return stat.S_IMODE(os.stat(self.path).st_mode)

    def test_writes_contents(self):
        """
        The file holds exactly the data written.
        """
        write_atomically(self.path, b"first\x00\xff")
        self.assertEqual(self.read(), b"first\x00\xff")

    def test_default_mode(self):
        """
        By default the file is readable by its owner only.
        """
        write_atomically(self.path, b"secret")
        self.assertEqual(self.mode(), 0o600)

    def test_custom_mode(self):
        """
        A given mode is applied exactly, whatever the umask.
        """
        previous = os.umask(0o077)
        self.addCleanup(os.umask, previous)
        write_atomically(self.path, b"public", mode=0o644)
        self.assertEqual(self.mode(), 0o644)

    def test_replaces_existing(self):
        """
        An existing file is replaced, contents and mode, by a new file
        rather than rewritten in place.
        """
        with open(self.path, "wb") as handle:
            handle.write(b"old contents that are longer")
        os.chmod(self.path, 0o644)
        old_inode = os.stat(self.path).st_ino
        write_atomically(self.path, b"new")
        self.assertEqual(self.read(), b"new")
        self.assertEqual(self.mode(), 0o600)
        self.assertNotEqual(os.stat(self.path).st_ino, old_inode)

    def test_relative_path(self):
        """
        A path relative to the working folder is written in that folder.
        """
        self.addCleanup(os.chdir, os.getcwd())
        os.chdir(self.directory)
        write_atomically("state", b"here")
        self.assertEqual(self.read(), b"here")
        self.assertEqual(os.listdir(self.directory), ["state"])

    def test_no_temporary_file_after_success(self):
        """
        Only the target is left in the folder.
        """
        write_atomically(self.path, b"one")
        write_atomically(self.path, b"two")
        self.assertEqual(os.listdir(self.directory), ["state"])

    def assert_failure_leaves_old_file(self, name):
        """
        When C{os.<name>} fails, the error propagates, the old contents are
        intact and no temporary file is left.
        """
        write_atomically(self.path, b"old")
        self.patch(os, name, failing(name))
        error = self.assertRaises(
            OSError, write_atomically, self.path, b"new"
        )
        self.assertEqual(error.errno, errno.ENOSPC)
        self.assertEqual(self.read(), b"old")
        self.assertEqual(os.listdir(self.directory), ["state"])

    def test_rename_failure(self):
        """
        A failed rename leaves the old file and no temporary file.
        """
        self.assert_failure_leaves_old_file("replace")

    def test_sync_failure(self):
        """
        A failed fsync of the new data leaves the old file and no temporary
        file.
        """
        self.assert_failure_leaves_old_file("fsync")

    def test_failure_without_previous_file(self):
        """
        A failed first write leaves the folder empty.
        """
        self.patch(os, "replace", failing("replace"))
        self.assertRaises(OSError, write_atomically, self.path, b"new")
        self.assertEqual(os.listdir(self.directory), [])

    def test_chmod_failure_closes_temporary(self):
        """
        A failed chmod of the temporary file leaves no file behind and no
        descriptor open.
        """
        opened = []
        real_mkstemp = tempfile.mkstemp

        def recording_mkstemp(*args, **kwargs):
            fd, name = real_mkstemp(*args, **kwargs)
            opened.append(fd)
            return fd, name

        self.patch(tempfile, "mkstemp", recording_mkstemp)
        self.patch(os, "fchmod", failing("fchmod"))
        self.assertRaises(OSError, write_atomically, self.path, b"new")
        self.assertEqual(os.listdir(self.directory), [])
        [fd] = opened
        try:
            os.fstat(fd)
        except OSError as error:
            self.assertEqual(error.errno, errno.EBADF)
        else:
            os.close(fd)
            self.fail("the temporary file's descriptor was left open")

