"""
The server's network edges besides the connection itself: the UDP hello,
check packets, the TLS listener and its certificates.
"""
