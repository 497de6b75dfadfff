# -*- test-case-name: tests.store.test_memory -*-
"""
The enrollment windows part of L{suto_server.store.memory.MemoryStore},
behind L{suto_server.store.interfaces.IWindowStore}.
"""

from dataclasses import replace

from suto_server.store.checks import check_profile, check_username, check_window
from suto_server.store.errors import ProfileExists, UnknownWindow


class Windows:
    """
    The open enrollment windows; using one up stores its profile.
    """

    def open_window(self, window):
        """
        See L{IWindowStore.open_window}.

        @raise suto_server.core.schemes.UnsupportedScheme: the one-time
            password's hash is not one SUTO can verify.
        """
        check_window(window)
        self._open_tables().windows[window.username] = window

    def get_window(self, username):
        """
        See L{IWindowStore.get_window}.
        """
        check_username(username)
        return self._open_tables().windows.get(username)

    def list_windows(self):
        """
        See L{IWindowStore.list_windows}.
        """
        windows = self._open_tables().windows
        return [windows[name] for name in sorted(windows)]

    def record_failed_attempt(self, username):
        """
        See L{IWindowStore.record_failed_attempt}.
        """
        check_username(username)
        windows = self._open_tables().windows
        window = windows.get(username)
        if window is None:
            raise UnknownWindow(f"no enrollment window for {username}")
        windows[username] = replace(window, attempts=window.attempts + 1)
        return window.attempts + 1

    def close_window(self, username):
        """
        See L{IWindowStore.close_window}.
        """
        check_username(username)
        return self._open_tables().windows.pop(username, None) is not None

    def complete_enrollment(self, profile, otp_hash=None):
        """
        See L{IWindowStore.complete_enrollment}.
        """
        check_profile(profile)
        tables = self._open_tables()
        username = profile.username
        window = tables.windows.get(username)
        if window is None or otp_hash not in (None, window.otp_hash):
            raise UnknownWindow(f"no enrollment window for {username}")
        if username in tables.profiles and not window.replace:
            raise ProfileExists(f"{username} is already enrolled")
        del tables.windows[username]
        tables.forget_profile(username)
        tables.profiles[username] = profile
