"""
The server's decisions: enrollment, rotation, reconnection, the
blacklist, port tracking, offline detection, pending authentication
requests and the limits on sources.  Rules take C{now} and a store; they
never read the clock or touch a socket.
"""
