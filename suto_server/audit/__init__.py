"""
The audit log and its alerts, and the sinks alerts go to.
"""
