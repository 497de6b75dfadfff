"""
Where the server's state is kept: the interfaces every store provides
(L{suto_server.store.interfaces}), the one place a store is chosen and
opened (L{suto_server.store.open}), and the stores themselves
(L{suto_server.store.sqlite}, L{suto_server.store.memory}).
"""
