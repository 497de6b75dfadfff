"""
The connection: bytes from the transport go through the codec into the
current phase's machine, and the machine's actions are carried out here
against the rules.
"""
