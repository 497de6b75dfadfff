"""Storage back ends behind L{suto_server.interfaces.IUserStore}."""
