"""
What the operator uses: the admin API the daemon serves and the
C{suto-admin} command line that talks to it or to the store.
"""
