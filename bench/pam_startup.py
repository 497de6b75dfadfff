# -*- test-case-name: tests.bench.test_pam_startup -*-
"""
How long C{suto-pam} takes to start, which every C{sudo} on a protected
host pays before anything is asked: the figures behind the choice of
C{twisted.web.client} over the standard library's C{http.client} (see
L{suto_client.pam.verify}).

Each row is a fresh interpreter, started as the helper is (C{python -I}),
run C{--runs} times one after the other; the table gives the best and the
median wall time and the ratio of the best to the standard library's.
The last row is the whole helper as C{pam_exec} runs it (console script,
isolated restart, imports, a configuration that is not there, a denial),
with no network involved.

Run from the repository root, with the project's virtualenv:

    python bench/pam_startup.py [--runs N]

It prints a table, then one line of JSON with the same figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

#: What each row imports, in a fresh C{python -I}.
IMPORTS = (
    ("python alone", "pass"),
    ("stdlib http.client + ssl", "import http.client, json, ssl, syslog, tomllib"),
    ("agent's certificate checks", "import suto_client.tls"),
    ("suto-pam (Twisted web client)", "import suto_client.pam.login, suto_client.pam.check"),
)

#: The row the others are compared with.
BASELINE = "stdlib http.client + ssl"

#: Most runs per row.
MAX_RUNS = 100


def _timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(argv, env=env, capture_output=True, timeout=60, check=False)
    return time.perf_counter() - started


def commands() -> list[tuple[str, list[str], dict[str, str] | None]]:
    """
    The rows: a name, a command line and its environment.
    """
    rows = [(name, [sys.executable, "-I", "-c", code], None) for name, code in IMPORTS]
    helper = os.path.join(os.path.dirname(sys.executable), "suto-pam")
    rows.append(
        (
            "whole helper, denied",
            [helper, "--config", "/nonexistent/pam.toml"],
            {"PAM_USER": "alice", "PAM_TYPE": "auth", "PAM_SERVICE": "sudo"},
        )
    )
    return rows


def measure(runs: int) -> list[dict]:
    """
    Time every row C{runs} times.

    @return: one record per row: its name, best and median milliseconds.
    """
    records = []
    for name, argv, env in commands():
        times = [_timed(argv, env) for _ in range(runs)]
        records.append(
            {"name": name, "best_ms": min(times) * 1000, "median_ms": statistics.median(times) * 1000}
        )
    baseline = next(r["best_ms"] for r in records if r["name"] == BASELINE)
    for record in records:
        record["ratio"] = record["best_ms"] / baseline
    return records


def render(records: list[dict]) -> str:
    """
    The table of L{measure}'s records, then their JSON line.
    """
    lines = [f"{'start-up':34} {'best ms':>8} {'median ms':>10} {'x stdlib':>9}"]
    for r in records:
        lines.append(f"{r['name']:34} {r['best_ms']:8.0f} {r['median_ms']:10.0f} {r['ratio']:9.1f}")
    lines.append(json.dumps({"pam_startup": records}))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None, out=sys.stdout) -> int:
    arguments = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    arguments.add_argument("--runs", type=int, default=5, help="runs per row (default 5)")
    options = arguments.parse_args(argv)
    if not 1 <= options.runs <= MAX_RUNS:
        arguments.error(f"--runs must be from 1 to {MAX_RUNS}")
    out.write(render(measure(options.runs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
