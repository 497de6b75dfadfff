"""SUTO endpoint agent: the client side of the SUTO protocol."""
