# -*- test-case-name: tests.phases.test_steps -*-
"""
How a driver runs a step: a coroutine over the rules, which await the
store's calls.

A step runs on the reactor thread from the message that asked for it up
to its first wait for a L{Deferred} that has not fired, and from that
L{Deferred}'s result up to the next, until it returns or raises.  On a
local store (memory, SQLite) every call of the store has fired when it
returns (L{suto_server.store.calls.LocalCalls}), and C{await} on a fired
L{Deferred} takes its result without suspending the coroutine, so most
steps (a rotation's beginning, a reconnection) run to their end in the
turn that started them; the commit waits once, for the group commit.
On PostgreSQL each store call waits for a database thread, and the
reactor serves other connections meanwhile.

L{Deferred.fromCoroutine} would do the same, at the price of a
L{Deferred} per step, a copied C{contextvars} context and the
bookkeeping that lets a caller cancel it (bench/RESULTS.md, "Issue 21: a
rotation's steps": 2.6 against 0.8 microseconds for a step awaiting one
fired call).  A step needs none of them: nothing cancels a step (after
every wait the step itself looks whether its connection is still open),
no code of the server keeps anything in a context variable, and what a
step gives back is its effect on the connection, never a value.  So
L{run_step} drives the coroutine itself, as L{Deferred.fromCoroutine}
does: it sends the step the result of the L{Deferred} it waited for, or
throws its failure in.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine

from twisted.python.failure import Failure


def run_step(step: Coroutine, failed: Callable[..., object], *args) -> None:
    """
    Run C{step} until it returns, raises, or waits for a L{Deferred} that
    has not fired; in the last case, go on when that L{Deferred} fires.

    @param step: a coroutine that awaits only L{Deferred}s and other such
        coroutines; its return value is dropped.
    @param failed: called with a L{Failure} of what C{step} raised, then
        C{args}, should it raise.
    """
    _go_on(None, step, failed, args)


def _go_on(result: object, step: Coroutine, failed: Callable, args: tuple) -> None:
    """
    Give C{step} C{result}, the result of the L{Deferred} it waited for
    (L{None} to start it), and run it to its next wait or its end.
    """
    try:
        if isinstance(result, Failure):
            awaited = result.throwExceptionIntoGenerator(step)
        else:
            awaited = step.send(result)
    except StopIteration:
        return
    except BaseException:
        failed(Failure(), *args)
        return
    # An unfired Deferred: the step's await yielded it (one that has
    # fired never reaches here).  This callback's None is what the
    # Deferred keeps, so a failure given to the step is not reported
    # again as unhandled.
    awaited.addBoth(_go_on, step, failed, args)
