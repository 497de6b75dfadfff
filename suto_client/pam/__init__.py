# -*- test-case-name: tests.client.pam.test_main -*-
"""
C{suto-pam}: a host asks the SUTO server whether a user's enrolled device
vouches for them, for C{pam_exec.so}.

Kept free of imports: C{suto-pam} starts from a console script in PAM's
environment, and nothing but L{suto_client.pam.main} may load before it
has restarted the interpreter isolated (see there).
"""
