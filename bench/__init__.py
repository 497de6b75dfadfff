"""
Benchmarks of the SUTO server on one machine, over loopback only.

Every scenario first measures what the machine itself can do (crypt,
TLS handshakes, TLS messages) and then the server, and reports the ratio,
because absolute figures move between runs on shared machines.  Servers
under test always run in processes of their own; C{bench/run.py} is the
command line.
"""
