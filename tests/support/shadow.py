"""
Lines of a shadow(5) file.

The shadow file's own tests and the classic end-to-end tests write such
files; this is the one place that knows the line's fields.
"""


def line(user, password_hash, expire=""):
    """
    One shadow(5) line with typical aging fields.
    """
    return f"{user}:{password_hash}:19000:0:99999:7::{expire}:\n"
