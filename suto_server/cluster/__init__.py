"""
Several server processes, on one host or several, sharing one store:
which of them runs the jobs that must run once.
"""
