"""
Sources that give fixed answers: password hashes from a dict, and a
fingerprint that never changes.

The server looks password hashes up and the device reads its machine's
identity; tests put a known value in place of C{/etc/shadow} and
C{/etc/machine-id}.
"""

from zope.interface import implementer

from suto_client.fingerprint import IFingerprintSource
from suto_server.cred.interfaces import IPasswordHashSource


@implementer(IPasswordHashSource)
class DictSource:
    """
    A password hash source over a dict.
    """

    def __init__(self, hashes):
        self.hashes = hashes

    def hash_for(self, username):
        return self.hashes.get(username)


@implementer(IFingerprintSource)
class FixedSource:
    """
    A fingerprint source with a fixed value (L{None} for one that finds
    nothing), standing in for C{/etc/machine-id} unless C{name} says
    otherwise.
    """

    def __init__(self, value, name="machine-id"):
        self.value = value
        self.name = name

    def read(self):
        return self.value
