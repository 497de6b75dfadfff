"""
The web console for IT: a few server-rendered pages served by the daemon
on its own listener (C{--console-listen}), with no JavaScript build chain.

How an operator signs in (L{signin}), what a signed-in operator holds
(L{sessions}), what every request and answer must satisfy (L{guard}),
the pages (L{pages}, drawn by L{views} with C{twisted.web.template}) and
the site that puts them together (L{site}).  Every action calls the same
operations as the admin API (L{suto_server.admin.operations}), so an
action from the console goes through the same rules and audit records,
naming the signed-in operator.
"""
