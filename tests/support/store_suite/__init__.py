"""
One test suite for every store, cut as L{suto_server.store.interfaces}
is: a mixin per concept, each in a module of its own (L{lifecycle},
L{accounts}, L{windows}, L{profiles}, L{rotation}, L{keys}, L{moves},
L{offline}, L{audit}, L{blacklist}), all starting from
L{base.StoreTestsBase}.  A store's test module mixes each into a trial
test case of its own and defines C{make_store}; every store then answers
to the same tests, so none can drift from the interfaces.

L{values} holds what the suites store, which other tests use too.
"""
