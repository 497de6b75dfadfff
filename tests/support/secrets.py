"""
The check that no secret leaks into what the server keeps or logs.

A password, a key or a seed must never reach the store, the audit log or a
log event in any encoding; the enrollment rules and the connection's
enrollment phase both assert it, over records and over captured events.
"""

import base64


def assert_no_secrets(testcase, values, secrets):
    """
    Fail C{testcase} if any of C{values} (record fields, records, log
    events) shows any of C{secrets}: raw, or for bytes also as hex, base64
    or their escaped repr.
    """
    for value in values:
        raw = value if isinstance(value, bytes) else b""
        text = value if isinstance(value, str) else repr(value)
        for secret in secrets:
            if isinstance(secret, bytes):
                testcase.assertNotIn(secret, raw)
                forms = (
                    secret.hex(),
                    base64.b64encode(secret).decode("ascii"),
                    repr(secret)[2:-1],
                )
            else:
                testcase.assertNotIn(secret.encode("utf-8"), raw)
                forms = (secret,)
            for form in forms:
                testcase.assertNotIn(form, text)
