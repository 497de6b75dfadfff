"""
The server's state machines, one per phase of a connection: sans-IO
transition tables that decide what to send and what to ask of the rules,
and do nothing themselves.
"""
