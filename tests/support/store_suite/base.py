"""
What every concept's store suite starts from.
"""

from tests.support.store_suite.values import (
    enroll_numbered,
    numbered_key_id,
    numbered_rotation,
    numbered_seal,
    profile_for,
)


class StoreTestsBase:
    """
    A new, empty, open store as C{self.store} in every test, closed after
    it.  Mix a concept's suite into a trial C{TestCase} that defines
    C{make_store()}, returning such a store.
    """

    #: The users whose profiles are enrolled, at key number 0, before
    #: each test.
    enrolled_at_start = ()

    def setUp(self):
        super().setUp()
        self.store = self.make_store()
        self.addCleanup(self.store.close)
        for name in self.enrolled_at_start:
            self.enroll(name)

    def assert_unchanged(self, windows, profiles, events=()):
        """
        The store holds exactly C{windows}, C{profiles} and audit C{events}.
        """
        self.assertEqual(
            (
                self.store.list_windows(),
                self.store.list_profiles(),
                self.store.audit_events(),
            ),
            (list(windows), list(profiles), list(events)),
        )

    def enrolled(self, username):
        """
        @return: C{username}'s profile as L{enroll} stores it.
        """
        return profile_for(
            username, key_sealed=numbered_seal(0), key_id=numbered_key_id(0)
        )

    def enroll(self, username, replacing=False):
        """
        Enroll C{username} with key number 0.
        """
        enroll_numbered(self.store, username, replacing)

    def rotate(self, username, old, new, now):
        """
        Commit one rotation of C{username} from key C{old} to C{new}.
        """
        rotation = numbered_rotation(username, old, new, now)
        self.assertEqual(self.store.commit_rotations([rotation]), [True])

    def assert_retired(self, username, retired, kept=()):
        """
        The keys numbered in C{retired} are retired from C{username}'s
        profile, and those in C{kept} are not.
        """
        self.assertEqual(
            [
                (
                    number,
                    self.store.is_retired(username, numbered_key_id(number)),
                )
                for number in [*retired, *kept]
            ],
            [(number, True) for number in retired]
            + [(number, False) for number in kept],
        )
