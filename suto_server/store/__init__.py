"""
Where the server's state is kept: the interfaces every store provides
(L{suto_server.store.interfaces}) and the stores themselves.
"""
