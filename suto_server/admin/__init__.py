"""
What the operator uses: the admin API the daemon serves and the
C{suto-admin} command line that talks to it or to the store.

The daemon's side: L{api} assembles the site and serves the daemon's own
resources, L{enrollment_resources} and L{report_resources} the rest, all
following L{httpjson}.  The command line's side: L{cli} is the parser and
the dispatch table over L{accounts}, L{enrollment}, L{reports},
L{daemon} and L{backup} (the data folder as a whole), which find the
daemon through L{deployment}, reach it through L{client} and lay out what
it answers with L{formatting}.  The command line imports nothing of the
daemon's side.
"""
