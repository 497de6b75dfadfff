"""
A hello sender that records instead of sending.

Opening an enrollment window sends the device a hello; the window rules and
the admin enrollment API check which hellos went out, and what happens when
sending fails.
"""


class RecordingHello:
    """
    Records the hellos it is asked to send; fails with C{error} if set.
    """

    def __init__(self):
        self.sent = []
        self.error = None

    def send_hello(self, user, target):
        self.sent.append((user, target))
        if self.error is not None:
            raise self.error
