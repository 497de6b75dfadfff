"""
Credentials as C{twisted.cred} sees them: the salted challenge's
credentials, its checker, the realm, and where password hashes come from.
"""
