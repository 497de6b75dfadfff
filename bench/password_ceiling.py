"""
The password ceiling: how many sha512-crypt verifications per second this
machine computes, on one thread and on all cores.

Each verification is what the server does for one login,
C{crypt(stored_hash, rsalt)} with a fresh random salt, through
L{suto_server.core.libxcrypt.crypt}, which releases the GIL: the threads here
compute in parallel exactly as the server's hash pool does.
"""

from __future__ import annotations

import threading
import time

from bench.cpu import CpuMeter
from bench.loops import Budget
from bench.measurement import Measurement
from suto_server.core import libxcrypt, schemes

#: How many distinct random salts the threads cycle through.
_RSALTS = 1024

#: The password of the hash the ceiling verifies against; not a secret.
_PASSWORD = "bench password"


def measure_crypt_rate(
    threads: int, duration: float, max_count: int
) -> Measurement:
    """
    Verify sha512-crypt responses on C{threads} threads until C{duration}
    seconds have passed or C{max_count} verifications have been made.
    Blocks for that long.

    @return: the verifications made, and the CPU they took.

    @raise ValueError: C{threads} is not positive.
    """
    if threads < 1:
        raise ValueError("at least one thread")
    stored = schemes.hash_password(_PASSWORD, "sha512_crypt")
    # Salts are drawn before the clock starts: drawing them is not part of
    # what a verification costs the server's hash threads.
    rsalts = [schemes.new_rsalt() for _ in range(_RSALTS)]
    done = [0] * threads
    meter = CpuMeter()
    start = time.monotonic()
    budget = Budget(time.monotonic, duration, max_count)

    def work(index: int) -> None:
        while budget.take():
            libxcrypt.crypt(stored, rsalts[(index + done[index] * threads) % _RSALTS])
            done[index] += 1

    workers = [
        threading.Thread(target=work, args=(index,), name=f"bench-crypt-{index}")
        for index in range(threads)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    seconds = time.monotonic() - start
    cpu = meter.read()
    return Measurement(
        sum(done), seconds, generator_cpu=cpu.generator, machine_cpu=cpu.machine
    )
