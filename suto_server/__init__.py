"""SUTO server: the IT side of the SUTO protocol."""
