"""
What several test modules share: fakes, fixtures and the shared store
suite.  Test modules import from here, never from each other.
"""
