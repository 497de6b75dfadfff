"""
How results are shown: a table for people, then one JSON line for
scripts (the last line of the output, so C{tail -n 1} finds it).

Besides the ratio the scenario is judged by, the classic report derives
two figures that stay meaningful when the load generator shares the
machine's cores with the server (see bench/README.md):

  - the I{shared-core ceiling}, C{1 / (2/password + 1/TLS)}, which also
    charges the device's own crypt to the same cores;
  - the I{server CPU floor}, what one authentication must cost the server
    at least (one crypt and the server side of one handshake, both as
    measured by the ceilings), against what it did cost.
"""

from __future__ import annotations

import json

from bench.ceilings import Ceilings, harmonic
from bench.classic import ClassicResult
from bench.enrollment import (
    CRYPTS_PER_ENROLLMENT,
    SERVER_CRYPTS_PER_ENROLLMENT,
    EnrollmentResult,
)
from bench.figures import (
    Row,
    counts_note,
    errors_note,
    megabytes,
    met_or_missed,
    milliseconds,
    percent,
    ratio,
    rounded,
    text,
)
from bench.measurement import Measurement, percentile
from bench.rotation import FleetResult
from bench.storm import StormResult

#: The share of the combined ceiling the classic scenario should reach.
CLASSIC_TARGET = 0.8

#: Completed rotations per second one server process should sustain
#: with ten thousand connected endpoints.
ROTATION_TARGET = 5000.0
#: The 99th percentile of a rotation's latency should stay under this.
ROTATION_P99_TARGET_MS = 50.0
#: The most server memory one idle connected endpoint should cost.
MEMORY_TARGET_BYTES = 45 * 1024
#: The share of one core a fleet rotating every minute may cost the
#: server.
IDLE_FLEET_TARGET = 0.10

#: Message exchanges one rotation takes on a live connection: the primed
#: rotation (protocol version 3) is one, ROTATE_PRIMED/ROTATE_DONE_NEXT;
#: only a connection's first rotation takes two.
EXCHANGES_PER_ROTATION = 1

#: Every endpoint should be back online within this many seconds of a
#: server restart (issue 21; 60 s before it).
STORM_TARGET_SECONDS = 15.0

#: Message exchanges one reconnection takes: VERSION, TIME, RECONNECT,
#: then a rotation's two.
EXCHANGES_PER_RECONNECTION = 5

#: How the fleet's profiles got into the store (see bench.fleet).
SEEDING_NOTE = "seeded in the store with the server's code, not enrolled"

def _cpu_note(measurement: Measurement, client: str, server: str) -> str:
    """
    Say what each side spent per operation, in milliseconds of CPU.
    """
    parts = [
        f"{name} {per_operation:.2f} ms"
        for name, per_operation in (
            (client, measurement.cpu_ms_per_operation(measurement.generator_cpu)),
            (server, measurement.cpu_ms_per_operation(measurement.server_cpu)),
        )
        if per_operation is not None
    ]
    return "CPU each: " + ", ".join(parts) if parts else ""


def other_load(measurement: Measurement, cores: int) -> float | None:
    """
    The share of the machine's cores spent outside the measured processes
    during C{measurement}: other processes (neighbours on a shared
    machine), and kernel work no process is charged for, loopback
    networking included.  A ceiling or a rate measured while this is high
    is low partly for that reason.

    @return: from 0 to 1, or L{None} when the machine's CPU was not read.
    """
    if measurement.machine_cpu is None:
        return None
    ours = (measurement.generator_cpu or 0.0) + (measurement.server_cpu or 0.0)
    share = ratio(measurement.machine_cpu - ours, measurement.seconds * cores)
    return None if share is None else max(0.0, share)


def _load_note(measurement: Measurement, cores: int) -> str:
    share = other_load(measurement, cores)
    return "" if share is None else f"other load {100 * share:.0f}%"


def _notes(*notes: str) -> str:
    return "; ".join(note for note in notes if note)


def shared_core_ceiling(ceilings: Ceilings) -> float:
    """
    The combined ceiling counting the device's crypt as well as the
    server's: C{1 / (2/password + 1/TLS)}.  The simulated devices hash on
    the same cores as the server, so no authentication loop on one
    machine can beat it.
    """
    return harmonic(ceilings.password / 2, ceilings.tls)


def server_cpu_floor_ms(ceilings: Ceilings, crypts: int = 1) -> float | None:
    """
    The least CPU one authentication can cost the server, in
    milliseconds: one crypt on all cores (as the hash pool runs it) plus
    the echo server's CPU for one handshake.

    @param crypts: how many crypts the server computes per operation (an
        enrollment takes two).
    @return: L{None} when a ceiling lacks its CPU figure.
    """
    crypt = ceilings.crypt_all.cpu_ms_per_operation(ceilings.crypt_all.generator_cpu)
    handshake = ceilings.handshakes.cpu_ms_per_operation(ceilings.handshakes.server_cpu)
    if crypt is None or handshake is None:
        return None
    return crypts * crypt + handshake


def _cost_json(measured: Measurement, floor_ms: float | None, per: str) -> dict:
    """
    @return: the latency, error and CPU figures of a measured phase of
        operations called C{per}, against the server's C{floor_ms}.
    """
    server_ms = measured.cpu_ms_per_operation(measured.server_cpu)
    return {
        "latency_p50_ms": rounded(milliseconds(measured.latency(0.50))),
        "latency_p99_ms": rounded(milliseconds(measured.latency(0.99))),
        "errors": measured.errors,
        "error_reasons": measured.error_reasons,
        f"server_cpu_ms_per_{per}": rounded(server_ms),
        "server_cpu_floor_ms": rounded(floor_ms),
        "server_efficiency": rounded(ratio(floor_ms, server_ms), 3),
        f"generator_cpu_ms_per_{per}": rounded(
            measured.cpu_ms_per_operation(measured.generator_cpu)
        ),
    }


def ceiling_rows(ceilings: Ceilings) -> list[Row]:
    """
    @return: the table rows (measure, value, unit, notes) of the ceilings.
    """
    handshakes, messages = ceilings.handshakes, ceilings.messages
    cores = ceilings.threads
    rows = [
        ("password ceiling, 1 thread", text(ceilings.crypt_one.per_second),
         "crypt/s", _notes("sha512-crypt, 5000 rounds",
                           _load_note(ceilings.crypt_one, cores))),
        (f"password ceiling, {cores} threads", text(ceilings.password),
         "crypt/s", _notes(f"scaling {ceilings.scaling:.2f}x",
                           _load_note(ceilings.crypt_all, cores))),
        ("TLS ceiling", text(ceilings.tls), "handshakes/s",
         _notes(_cpu_note(handshakes, "clients", "echo server"),
                _load_note(handshakes, cores))),
        ("message ceiling", text(messages.per_second), "exchanges/s",
         _notes(f"{ceilings.connections} connections",
                _cpu_note(messages, "clients", "echo server"),
                _load_note(messages, cores))),
        ("combined ceiling", text(ceilings.combined), "auth/s",
         "1 / (1/password + 1/TLS)"),
    ]
    for name, measurement in (("TLS", handshakes), ("message", messages)):
        if measurement.errors:
            rows.append(
                (f"{name} ceiling errors", str(measurement.errors), "",
                 errors_note(measurement))
            )
    return rows


def classic_rows(result: ClassicResult, ceilings: Ceilings) -> list[Row]:
    """
    @return: the table rows of the classic scenario, against C{ceilings}.
    """
    figures = classic_json(result, ceilings)
    measured = result.measured
    met = (figures["ratio"] or 0) >= CLASSIC_TARGET
    rows = [
        ("classic: accepted", text(measured.per_second), "auth/s",
         f"{measured.count} in {measured.seconds:.1f} s"),
        ("ratio to combined ceiling", text(figures["ratio"], 2), "",
         f"target {CLASSIC_TARGET:.2f}: {met_or_missed(met)}"),
        ("latency p50", text(figures["latency_p50_ms"]), "ms",
         "admin request to verdict"),
        ("latency p99", text(figures["latency_p99_ms"]), "ms", ""),
        ("errors", str(measured.errors), "", errors_note(measured)),
        ("server CPU per auth", text(figures["server_cpu_ms_per_auth"], 2), "ms",
         "twistd suto, all threads"),
        ("server CPU floor per auth", text(figures["server_cpu_floor_ms"], 2),
         "ms", "one crypt + one server-side handshake"),
        ("server efficiency", text(figures["server_efficiency"], 2), "",
         "floor / server CPU per auth"),
        ("generator CPU per auth", text(figures["generator_cpu_ms_per_auth"], 2),
         "ms", "admin client + device (TLS, one crypt)"),
        ("cores busy", text(percent(figures["cores_busy"]), 0), "%",
         f"server + generator, of {ceilings.threads} cores"),
        ("other load", text(percent(figures["other_load"]), 0), "%",
         "CPU spent outside server and generator meanwhile"),
        ("shared-core ceiling", text(figures["shared_core_ceiling"]), "auth/s",
         "1 / (2/password + 1/TLS): the device's crypt counted too"),
        ("ratio to shared-core ceiling", text(figures["ratio_shared_core"], 2),
         "", ""),
        ("warm-up (password path)", str(result.warmup.count), "accepted",
         f"{result.warmup.errors} errors"
         + (f": {errors_note(result.warmup)}" if result.warmup.errors else "")),
    ]
    failures = _device_failures(result)
    if failures:
        rows.append(
            ("device-side failures", str(sum(failures.values())), "",
             counts_note(failures))
        )
    return rows


def _device_failures(result: ClassicResult) -> dict[str, int]:
    return {
        outcome: count
        for outcome, count in result.device_outcomes.items()
        if outcome != "accepted"
    }


def render_table(title: str, rows: list[Row]) -> str:
    """
    @return: C{title} and C{rows} as aligned text.
    """
    header = ("measure", "value", "unit", "notes")
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(3)]
    lines = [title, ""]
    for measure, value, unit, note in [header, *rows]:
        lines.append(
            f"{measure:<{widths[0]}}  {value:>{widths[1]}}  "
            f"{unit:<{widths[2]}}  {note}".rstrip()
        )
    return "\n".join(lines)


def ceilings_json(ceilings: Ceilings) -> dict:
    """
    @return: the ceilings as JSON-ready figures.
    """
    return {
        "cores": ceilings.threads,
        "connections": ceilings.connections,
        "password_1_thread": rounded(ceilings.crypt_one.per_second),
        "password_all_threads": rounded(ceilings.password),
        "password_scaling": rounded(ceilings.scaling),
        "tls_handshakes": rounded(ceilings.tls),
        "tls_errors": ceilings.handshakes.errors,
        "messages": rounded(ceilings.messages.per_second),
        "message_errors": ceilings.messages.errors,
        "combined": rounded(ceilings.combined),
        "ceiling_other_load": {
            name: rounded(other_load(measurement, ceilings.threads), 3)
            for name, measurement in (
                ("password_1_thread", ceilings.crypt_one),
                ("password_all_threads", ceilings.crypt_all),
                ("tls_handshakes", ceilings.handshakes),
                ("messages", ceilings.messages),
            )
        },
    }


def classic_json(result: ClassicResult, ceilings: Ceilings) -> dict:
    """
    @return: the classic scenario's figures, with the ceilings'.
    """
    measured = result.measured
    shared = shared_core_ceiling(ceilings)
    capacity = measured.seconds * ceilings.threads
    busy = None
    if measured.generator_cpu is not None and measured.server_cpu is not None:
        busy = ratio(measured.generator_cpu + measured.server_cpu, capacity)
    return {
        "scenario": "classic",
        **ceilings_json(ceilings),
        "auth_per_second": rounded(measured.per_second),
        "accepted": measured.count,
        "seconds": rounded(measured.seconds),
        "ratio": rounded(ratio(measured.per_second, ceilings.combined), 3),
        "target": CLASSIC_TARGET,
        **_cost_json(measured, server_cpu_floor_ms(ceilings), "auth"),
        "cores_busy": rounded(busy, 3),
        "other_load": rounded(other_load(measured, ceilings.threads), 3),
        "shared_core_ceiling": rounded(shared),
        "ratio_shared_core": rounded(ratio(measured.per_second, shared), 3),
        "warmup_accepted": result.warmup.count,
        "warmup_errors": result.warmup.errors,
        "device_outcomes": result.device_outcomes,
    }


def enrollment_ceiling(ceilings: Ceilings) -> float:
    """
    Enrollments per second if each cost the machine its four crypts (two
    on each side, all on these cores) and one handshake, and nothing else:
    C{1 / (4/password + 1/TLS)}.
    """
    return harmonic(ceilings.password / CRYPTS_PER_ENROLLMENT, ceilings.tls)


def enrollment_json(result: EnrollmentResult, ceilings: Ceilings) -> dict:
    """
    @return: the enrollment scenario's figures, with the ceilings'.
    """
    measured = result.measured
    ceiling = enrollment_ceiling(ceilings)
    floor_ms = server_cpu_floor_ms(ceilings, SERVER_CRYPTS_PER_ENROLLMENT)
    return {
        "scenario": "enrollment",
        **ceilings_json(ceilings),
        "enrollments_per_second": rounded(measured.per_second),
        "enrolled": measured.count,
        "seconds": rounded(measured.seconds),
        "enrollment_ceiling": rounded(ceiling),
        "ratio": rounded(ratio(measured.per_second, ceiling), 3),
        "window_p50_ms": rounded(
            milliseconds(percentile(list(result.window_latencies), 0.50))
        ),
        **_cost_json(measured, floor_ms, "enrollment"),
        "other_load": rounded(other_load(measured, ceilings.threads), 3),
        "warmup_enrolled": result.warmup.count,
        "warmup_errors": result.warmup.errors,
    }


def enrollment_rows(result: EnrollmentResult, ceilings: Ceilings) -> list[Row]:
    """
    @return: the table rows of the enrollment scenario, against
        C{ceilings}.
    """
    figures = enrollment_json(result, ceilings)
    measured = result.measured
    return [
        ("enrollments", text(measured.per_second), "enroll/s",
         f"{measured.count} in {measured.seconds:.1f} s"),
        ("enrollment ceiling", text(figures["enrollment_ceiling"]), "enroll/s",
         "1 / (4/password + 1/TLS): two crypts on each side"),
        ("ratio to it", text(figures["ratio"], 2), "", ""),
        ("window open p50", text(figures["window_p50_ms"]), "ms",
         "POST /v1/enroll to its answer (hashes the one-time password)"),
        ("latency p50", text(figures["latency_p50_ms"]), "ms",
         "POST /v1/enroll to the first key confirmed"),
        ("latency p99", text(figures["latency_p99_ms"]), "ms", ""),
        ("errors", str(measured.errors), "", errors_note(measured)),
        ("server CPU per enrollment",
         text(figures["server_cpu_ms_per_enrollment"], 2), "ms",
         "twistd suto, all threads"),
        ("server CPU floor", text(figures["server_cpu_floor_ms"], 2), "ms",
         "two crypts + one server-side handshake"),
        ("server efficiency", text(figures["server_efficiency"], 2), "",
         "floor / server CPU per enrollment"),
        ("generator CPU per enrollment",
         text(figures["generator_cpu_ms_per_enrollment"], 2), "ms",
         "admin client + endpoint (TLS, two crypts, key schedule)"),
        ("other load", text(percent(figures["other_load"]), 0), "%",
         "CPU spent outside server and generator meanwhile"),
        ("warm-up", str(result.warmup.count), "enrolled",
         f"{result.warmup.errors} errors"
         + (f": {errors_note(result.warmup)}" if result.warmup.errors else "")),
    ]


def json_line(figures: dict) -> str:
    """
    @return: C{figures} as one line of JSON.
    """
    return json.dumps(figures, sort_keys=True)


def _fleet_setup_rows(result: FleetResult) -> list[Row]:
    """
    @return: the rows saying how the fleet was set up.
    """
    rows = [
        ("endpoints connected", f"{result.connected}/{result.endpoints}", "",
         f"{SEEDING_NOTE}, in {result.seeding_seconds:.1f} s; connected in "
         f"{result.connect_seconds:.1f} s"),
        ("rotations while connecting", str(result.warmup_rotations), "",
         counts_note(result.warmup_errors)),
        ("generators", str(result.generators), "",
         (f"open files per process: {result.file_limit}; their RSS with the "
          f"fleet {text(megabytes(result.generator_rss))} MB")),
    ]
    return rows


def _memory_rows(result: FleetResult) -> list[Row]:
    figures = memory_json(result)
    per_endpoint = figures["rss_per_endpoint_kb"]
    verdict = ""
    if per_endpoint is not None:
        verdict = (
            f"target {MEMORY_TARGET_BYTES // 1024} KB: "
            f"{met_or_missed(per_endpoint * 1024 <= MEMORY_TARGET_BYTES)}"
        )
    return [
        ("server RSS before", text(figures["rss_before_mb"]), "MB",
         "serving, no endpoint connected"),
        ("server RSS with the fleet", text(figures["rss_after_mb"]), "MB",
         "every endpoint connected, rotated once"),
        ("server RSS per endpoint", text(per_endpoint), "KB", verdict),
    ]


def _load_rows(measured: Measurement, cores: int) -> list[Row]:
    load = ratio(measured.server_cpu, measured.seconds)
    return [
        ("server load", text(percent(load), 1), "% of a core",
         "twistd suto, all threads, over the measured phase"),
        ("other load", text(percent(other_load(measured, cores)), 0), "%",
         "CPU spent outside server and generators meanwhile"),
    ]


def rotation_rows(result: FleetResult, ceilings: Ceilings) -> list[Row]:
    """
    @return: the table rows of the rotation scenario, against C{ceilings}.
    """
    figures = rotation_json(result, ceilings)
    measured = result.measured
    p99 = figures["latency_p99_ms"]
    rows = _fleet_setup_rows(result) + [
        ("rotations", text(measured.per_second), "rotations/s",
         f"{measured.count} in {measured.seconds:.1f} s, interval "
         f"{result.interval:g} s; target {ROTATION_TARGET:.0f}: "
         f"{met_or_missed(measured.per_second >= ROTATION_TARGET)}"),
        ("latency p50", text(figures["latency_p50_ms"]), "ms",
         "the rotation sent to its done received (after the server's commit)"),
        ("latency p99", text(p99), "ms",
         f"target {ROTATION_P99_TARGET_MS:.0f}: "
         f"{met_or_missed(p99 is not None and p99 < ROTATION_P99_TARGET_MS)}"),
        ("errors", str(measured.errors), "", errors_note(measured)),
        ("rotation ceiling", text(figures["rotation_ceiling"]), "rotations/s",
         "the message ceiling: one exchange per rotation, nothing else"),
        ("ratio to it", text(figures["ratio"], 2), "", ""),
        ("server CPU per rotation", text(figures["server_cpu_ms_per_rotation"], 2),
         "ms", "twistd suto, all threads"),
        ("generator CPU per rotation",
         text(figures["generator_cpu_ms_per_rotation"], 2), "ms",
         "all generator processes"),
        ("rotations per commit", text(figures["rotations_per_commit"], 2), "",
         "several processes: see the database's transactions"
         if result.commits is None
         else f"{result.commits} group commits (transactions) of rotations "
         f"over the measured phase"),
        *_load_rows(measured, ceilings.threads),
        *_memory_rows(result),
    ]
    if result.interval > 0:
        load = figures["server_load"]
        rows.append(
            ("idle fleet target", text(percent(load), 1), "% of a core",
             f"under {percent(IDLE_FLEET_TARGET):.0f}% at 10000 endpoints "
             f"rotating every 60 s: "
             f"{met_or_missed(load is not None and load < IDLE_FLEET_TARGET)} here "
             f"({result.connected} endpoints every {result.interval:g} s)")
        )
    return rows


def memory_rows(result: FleetResult, cores: int) -> list[Row]:
    """
    @return: the table rows of the memory scenario.
    """
    idle = result.measured
    note = f"{idle.count} rotations, {idle.errors} errors"
    if idle.errors:
        note += f": {errors_note(idle)}"
    return (
        _fleet_setup_rows(result)
        + _memory_rows(result)
        + [("idle phase", text(idle.seconds), "s", note)]
        + _load_rows(idle, cores)
    )


def memory_scenario_json(result: FleetResult, cores: int) -> dict:
    """
    @return: the memory scenario's figures.
    """
    return {
        "scenario": "memory",
        "cores": cores,
        **_fleet_json(result),
        "other_load": rounded(other_load(result.measured, cores), 3),
    }


def _fleet_json(result: FleetResult) -> dict:
    measured = result.measured
    return {
        "endpoints": result.endpoints,
        "connected": result.connected,
        "profiles": "seeded",
        "seeding_seconds": rounded(result.seeding_seconds),
        "connect_seconds": rounded(result.connect_seconds),
        "warmup_rotations": result.warmup_rotations,
        "warmup_errors": result.warmup_errors,
        "generators": result.generators,
        "file_limit": result.file_limit,
        "generator_rss_mb": rounded(megabytes(result.generator_rss)),
        "interval": result.interval,
        "rotations": measured.count,
        "seconds": rounded(measured.seconds),
        "errors": measured.errors,
        "error_reasons": measured.error_reasons,
        "server_load": rounded(ratio(measured.server_cpu, measured.seconds), 3),
        **memory_json(result),
    }


def memory_json(result: FleetResult) -> dict:
    """
    @return: the server's memory figures of a fleet run.
    """
    per_endpoint = result.rss_per_endpoint
    return {
        "rss_before_mb": rounded(megabytes(result.rss_before)),
        "rss_after_mb": rounded(megabytes(result.rss_after)),
        "rss_per_endpoint_kb": rounded(
            None if per_endpoint is None else per_endpoint / 1024
        ),
        "memory_target_kb": MEMORY_TARGET_BYTES // 1024,
    }


def rotation_json(result: FleetResult, ceilings: Ceilings) -> dict:
    """
    @return: the rotation scenario's figures, with the ceilings'.
    """
    measured = result.measured
    ceiling = ceilings.messages.per_second / EXCHANGES_PER_ROTATION
    return {
        "scenario": "rotation",
        **ceilings_json(ceilings),
        **_fleet_json(result),
        "rotations_per_second": rounded(measured.per_second),
        "target": ROTATION_TARGET,
        "latency_p50_ms": rounded(milliseconds(measured.latency(0.50))),
        "latency_p99_ms": rounded(milliseconds(measured.latency(0.99))),
        "latency_p99_target_ms": ROTATION_P99_TARGET_MS,
        "rotation_ceiling": rounded(ceiling),
        "ratio": rounded(ratio(measured.per_second, ceiling), 3),
        "server_cpu_ms_per_rotation": rounded(
            measured.cpu_ms_per_operation(measured.server_cpu), 3
        ),
        "generator_cpu_ms_per_rotation": rounded(
            measured.cpu_ms_per_operation(measured.generator_cpu), 3
        ),
        "commits": result.commits,
        "rotations_per_commit": rounded(ratio(measured.count, result.commits), 2),
        "other_load": rounded(other_load(measured, ceilings.threads), 3),
    }


def storm_ceiling(ceilings: Ceilings) -> float:
    """
    Reconnections per second if each cost the machine one TLS handshake
    and L{EXCHANGES_PER_RECONNECTION} echoed lines and nothing else.
    """
    return harmonic(
        ceilings.handshakes.per_second,
        ceilings.messages.per_second / EXCHANGES_PER_RECONNECTION,
    )


def storm_json(result: StormResult, ceilings: Ceilings) -> dict:
    """
    @return: the storm scenario's figures, with the ceilings'.
    """
    storm = result.storm
    back = result.all_back_seconds
    ceiling = storm_ceiling(ceilings)
    rate = None if not back else result.endpoints / back
    conversations = list(result.conversations)
    return {
        "scenario": "storm",
        **ceilings_json(ceilings),
        "endpoints": result.endpoints,
        "profiles": "seeded",
        "connected": result.connected,
        "interval": result.interval,
        "grace": result.grace,
        "seeding_seconds": rounded(result.seeding_seconds),
        "connect_seconds": rounded(result.connect_seconds),
        "down_seconds": rounded(result.down_seconds),
        "client_offline": result.client_offline,
        "server_offline": result.server_offline,
        "start_seconds": rounded(result.start_seconds),
        "reconnected": storm.count,
        "all_back_seconds": rounded(back),
        "target_seconds": STORM_TARGET_SECONDS,
        "back_p50_s": rounded(storm.latency(0.50)),
        "back_p99_s": rounded(storm.latency(0.99)),
        "conversation_p50_ms": rounded(
            milliseconds(percentile(conversations, 0.50))
        ),
        "conversation_p99_ms": rounded(
            milliseconds(percentile(conversations, 0.99))
        ),
        "reconnections_per_second": rounded(rate),
        "storm_ceiling": rounded(ceiling),
        "ratio": rounded(ratio(rate, ceiling), 3),
        "errors": storm.errors,
        "error_reasons": storm.error_reasons,
        "down_errors": result.down_errors,
        "retries": result.retries,
        "blacklisted": result.blacklisted,
        "still_offline": result.still_offline,
        "keys_current": result.keys_current,
        "keys_previous": result.keys_previous,
        "keys_lost": result.keys_lost,
        "server_cpu_s": rounded(storm.server_cpu),
        "server_cpu_ms_per_reconnection": rounded(
            storm.cpu_ms_per_operation(storm.server_cpu), 3
        ),
        "server_load": rounded(ratio(storm.server_cpu, storm.seconds), 3),
        "generator_cpu_ms_per_reconnection": rounded(
            storm.cpu_ms_per_operation(storm.generator_cpu), 3
        ),
        "other_load": rounded(other_load(storm, ceilings.threads), 3),
    }


def storm_rows(result: StormResult, ceilings: Ceilings) -> list[Row]:
    """
    @return: the table rows of the storm scenario, against C{ceilings}.
    """
    figures = storm_json(result, ceilings)
    storm = result.storm
    back = result.all_back_seconds
    everyone = back is not None
    target = (
        f"target {STORM_TARGET_SECONDS:.0f} s: "
        f"{met_or_missed(everyone and back <= STORM_TARGET_SECONDS)}"
    )
    lost = result.keys_lost
    return [
        ("endpoints connected", f"{result.connected}/{result.endpoints}", "",
         f"{SEEDING_NOTE}, in {result.seeding_seconds:.1f} s; each rotated "
         f"once, in {result.connect_seconds:.1f} s; interval "
         f"{result.interval:g} s, grace {result.grace:g} s"),
        ("server down", text(result.down_seconds), "s",
         _notes(f"{result.client_offline} endpoints marked themselves offline",
                counts_note(result.down_errors))),
        ("offline on the server", text(result.server_offline, 0), "",
         "profiles its status counts offline as it first answers after the "
         "restart"),
        ("server start", text(result.start_seconds, 2), "s",
         "restart to the admin API answering"),
        ("reconnected and rotated", f"{storm.count}/{result.endpoints}", "",
         "RECONNECT_OK, then a rotation stored by the endpoint"),
        ("all back", text(back), "s",
         f"from the restart; {target}" if everyone else
         f"not all back after {storm.seconds:.0f} s; {target}"),
        ("back p50", text(figures["back_p50_s"]), "s", "from the restart"),
        ("back p99", text(figures["back_p99_s"]), "s", "from the restart"),
        ("conversation p50", text(figures["conversation_p50_ms"]), "ms",
         "connection start to the reconnection's rotation stored"),
        ("conversation p99", text(figures["conversation_p99_ms"]), "ms", ""),
        ("errors", str(storm.errors), "", errors_note(storm)),
        ("retries", str(sum(result.retries.values())), "",
         counts_note(result.retries)),
        ("blacklisted", str(result.blacklisted), "",
         f"in the store at the end; {result.still_offline} still offline"),
        ("keys lost", str(lost), "",
         f"{result.keys_current} hold the server's current key, "
         f"{result.keys_previous} its previous (still accepted) one"),
        ("reconnections", text(figures["reconnections_per_second"]), "/s",
         "endpoints / all back"),
        ("storm ceiling", text(figures["storm_ceiling"]), "/s",
         f"1 / (1/TLS + {EXCHANGES_PER_RECONNECTION}/messages)"),
        ("ratio to it", text(figures["ratio"], 2), "", ""),
        ("server CPU per reconnection",
         text(figures["server_cpu_ms_per_reconnection"], 2), "ms",
         f"{text(figures['server_cpu_s'], 2)} s from the restart, start-up "
         f"included"),
        *_load_rows(storm, ceilings.threads),
    ]
