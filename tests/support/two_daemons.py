# -*- test-case-name: tests.end_to_end.test_failover,tests.end_to_end.test_two_connections -*-
"""
One deployment of two real C{twistd suto} processes on loopback over one
real PostgreSQL store (L{tests.support.postgres}): two data folders
holding one master key, one certificate served by both, and alice
enrolled through the first.
"""

import os

from twisted.internet import defer, reactor

from tests.support.admin import run_admin
from tests.support.daemon import WAIT
from tests.support.daemon_process import DaemonProcess, enroll_through, self_signed
from tests.support.folders import socket_folder
from tests.support.masterkeys import share_master_key
from tests.support.postgres import new_location


class TwoDaemons:
    """
    The deployment, started by L{TwoDaemons.start}.

    @ivar folder: a folder of the test's, holding the data folders.
    @ivar location: the store's location.
    @ivar pin: the fingerprint of the certificate both daemons serve.
    @ivar first: the first daemon's L{DaemonProcess}; C{second} likewise.
    @ivar first_port: the first daemon's TLS port; C{second_port} likewise.
    """

    @classmethod
    @defer.inlineCallbacks
    def start(cls, testcase, prefix):
        """
        Make the data folders and start both daemons, which C{testcase}
        stops after itself.

        @return: a L{Deferred} firing with the L{TwoDaemons} once both
            listen.
        """
        self = cls()
        self.folder = socket_folder(testcase, prefix)
        self.location = new_location(testcase)
        self.first_data = os.path.join(self.folder, "first")
        self.second_data = os.path.join(self.folder, "second")
        for data in (self.first_data, self.second_data):
            code, _, err = run_admin("--data", data, "--store", self.location, "init")
            testcase.assertEqual(code, 0, err)
        # One deployment: the keys are sealed under one master key.
        share_master_key(self.first_data, self.second_data)
        key, cert, self.pin = self_signed(self.folder)
        arguments = ("--store", self.location)
        self.first = DaemonProcess.start(testcase, self.first_data, key, cert, *arguments)
        self.second = DaemonProcess.start(
            testcase, self.second_data, key, cert, *arguments
        )
        self.first_port = yield self.first.listening.addTimeout(WAIT, reactor)
        self.second_port = yield self.second.listening.addTimeout(WAIT, reactor)
        return self

    def enroll(self, testcase):
        """
        Enroll alice from 127.0.0.1, on the machine C{machine-1}, through
        the first daemon.

        @return: a L{Deferred} firing with her enrolled profile.
        """
        return enroll_through(
            testcase, self.first_data, self.first_port, self.pin, "alice", "machine-1"
        )
