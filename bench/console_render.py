"""
How long each page of the web console takes with a large fleet.

    python bench/run.py console [--endpoints N] [--records N] [--rounds N]

A SQLite store in a temporary folder is filled with N enrolled profiles
(default 10,000) and audit records (default 20,000), then opened by a
real L{SutoServer} with its console on 127.0.0.1; every page is asked for
over HTTP, signed in with a login link, C{--rounds} times, and the median
and the slowest time of each page are printed against the console's
target of 200 ms a page.  The client and the server share this process's
reactor, so a time is the whole request as a browser on the host would
see it, parsing and rendering included.
"""

from __future__ import annotations

import os
import statistics
import time

from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.web.client import Agent, readBody
from twisted.web.http_headers import Headers

from suto_server.core import schemes
from suto_server.core.libxcrypt import crypt
from suto_server.masterkey import MasterKey
from suto_server.service import SutoServer
from suto_server.settings import EnrollmentSettings, Listeners
from suto_server.store.open import open_store
from suto_server.store.records import AuditEvent, EnrollmentWindow, Profile

#: The console's target for any page, in seconds.
TARGET = 0.200


def pages(endpoints: int):
    """
    @return: the pages measured with C{endpoints} profiles in the store:
        a name and the path asked for.
    """
    middle = f"user-{endpoints // 2:05}"
    return (
        ("overview", "/"),
        ("endpoints, page 1", "/endpoints"),
        (
            "endpoints, by key age, last page",
            "/endpoints?sort=key_age&order=desc&page=9999",
        ),
        ("endpoints, searched", "/endpoints?q=user-0004"),
        ("profile", f"/profile?user={middle}"),
        ("enrollment windows", "/windows"),
        ("blacklist", "/blacklist"),
        ("alerts", "/alerts"),
        ("audit log, page 1", "/audit"),
        ("audit log, one user", f"/audit?user={middle}"),
        ("live view panel", "/live/panel"),
    )


def fill(store, endpoints: int, records: int, now: float) -> None:
    """
    Put C{endpoints} enrolled profiles and C{records} audit records in
    C{store}, as enrollments would have left them.
    """
    # One real hash for every window: the store checks its format.
    otp_hash = crypt("bench-one-time-password", schemes.new_setting())
    for number in range(endpoints):
        user = f"user-{number:05}"
        address = f"10.{number // 65536 % 256}.{number // 256 % 256}.{number % 256}"
        store.open_window(
            EnrollmentWindow(
                user, otp_hash, (f"{address}/32",), None, now, now + 60, 0, 5, False
            )
        )
        store.complete_enrollment(
            Profile(
                username=user,
                fingerprint_hash=bytes(32),
                key_sealed=bytes(60),
                key_id=f"{number:032x}",
                generation=number % 50,
                enrolled_at=now - number,
                location=address,
                location_name=None,
                last_address=address,
            )
        )
    store.append_audits(
        [
            AuditEvent(
                now - records + i,
                "enrolled",
                f"user-{i % endpoints:05}",
                None,
                "key id",
            )
            for i in range(records)
        ]
    )


async def run_console_render(
    reactor, directory: str, *, endpoints: int, records: int, rounds: int, progress
):
    """
    @return: one row per page: its name, the median and the slowest of
        its times in seconds.
    """
    now = time.time()
    path = os.path.join(directory, "suto.db")
    store = open_store(path)
    progress(f"console: filling the store with {endpoints} profiles, {records} records")
    fill(store, endpoints, records, now)
    server = SutoServer(
        reactor,
        store=store,
        enrollment=EnrollmentSettings(
            MasterKey.load_or_create(os.path.join(directory, "master.key"))
        ),
        listeners=Listeners(
            console=TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1")
        ),
    )
    server.startService()
    try:
        console = next(each for each in server.listeners if each.name == "console")
        port = (await console.listening).getHost().port
        agent = Agent(reactor)
        link = server.console_link("bench")["url"].encode()
        response = await agent.request(b"GET", link)
        await readBody(response)
        cookie = response.headers.getRawHeaders(b"set-cookie")[0].split(b";")[0]
        headers = Headers({b"cookie": [cookie]})
        rows = []
        for name, page in pages(endpoints):
            times = []
            for _ in range(rounds):
                started = time.perf_counter()
                response = await agent.request(
                    b"GET", f"http://127.0.0.1:{port}{page}".encode(), headers
                )
                await readBody(response)
                times.append(time.perf_counter() - started)
                if response.code != 200:
                    raise RuntimeError(f"{page} answered {response.code}")
            rows.append((name, statistics.median(times), max(times)))
            progress(f"console: {name}: {statistics.median(times) * 1000:.0f} ms")
        return rows
    finally:
        await server.stopService()


def console_rows(rows) -> list:
    """
    @return: the table rows of a console run, each page's median and
        slowest time against the target.
    """
    table = []
    for name, median, slowest in rows:
        verdict = "within" if slowest <= TARGET else "OVER"
        table.append(
            (
                name,
                f"{median * 1000:.0f}",
                "ms median",
                f"slowest {slowest * 1000:.0f} ms = {slowest / TARGET:.2f} of "
                f"the 200 ms target ({verdict})",
            )
        )
    return table


def console_json(rows) -> dict:
    """
    @return: the JSON figures of a console run.
    """
    return {
        "scenario": "console",
        "target_ms": TARGET * 1000,
        "pages": {
            name: {
                "median_ms": round(median * 1000, 1),
                "slowest_ms": round(slowest * 1000, 1),
            }
            for name, median, slowest in rows
        },
    }
