# -*- test-case-name: tests.core.test_shown,tests.api.test_guard,tests.core.test_config,tests.client.pam.test_verdict -*-
"""
Showing text SUTO did not write (a name a peer chose, a path it asked
for, a value an operator mistyped) in one line of bounded length: each
unprintable character C{?}, and a cut marked C{...}.

These replace; they never refuse, so they serve where the text must be
shown whatever it holds: an audit record of a refused request, a log
line, an error message.  Where a value is to be kept or acted on, the
layer taking it refuses it instead, with its own error and message, and
this module has no part in it: the store's argument checks
(L{suto_server.store.checks}, C{ValueError}), the admin API's fields
(C{BadRequest}, a 400), the console's form fields (C{ConsoleError}, a
page), a policy's OU values (C{PolicyError}, at start-up), a webhook URL
or a syslog address (at start-up), since a name, password or address
changed on its way in would be a different one.  RFC 5424 gives the
syslog sink's HOSTNAME its own stand-in for a name it cannot carry
(C{-}, L{suto_server.audit.sinks.syslog}).
"""

#: What marks a cut.
ELLIPSIS = "..."


def replaced(text: str) -> str:
    """
    @return: C{text} with each unprintable character (a line break, an
        escape, any control character) as C{?}, so that it stays on one
        line and moves no terminal's cursor.
    """
    return "".join(c if c.isprintable() else "?" for c in text)


def shortened(text: str, most: int) -> str:
    """
    @return: C{text} if it has at most C{most} characters, else its start
        and L{ELLIPSIS}, C{most} characters in all: what fits a bounded
        field (a store's column, a message's quote) and shows it was cut.
    """
    if len(text) <= most:
        return text
    return text[: most - len(ELLIPSIS)] + ELLIPSIS


def printable(text: str, most: int) -> str:
    """
    @return: C{text} L{replaced} and L{shortened} to C{most} characters:
        what an audit record or a log line can keep of a name the peer
        chose.
    """
    return shortened(replaced(text), most)
