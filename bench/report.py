"""The comparison table of one bench/run.sh run, in Markdown (standard library only).

    python3 bench/report.py [--results DIR]

Reads the harness results ($BENCH_RESULTS_DIR, default bench/results): ours as jobs-sqlite,
jobs-postgresql and jobs-mariadb, the peers as pgqueuer and procrastinate, and the sampled
worker RSS of each in rss/<name>.json (bench/rss_watch.py). Prints one row per figure with
the ratios ours (PostgreSQL) / peer (with `bench/run.sh --dramatiq`, also columns for our dramatiq
backend and raw dramatiq, on RabbitMQ and Redis), then the per-system detail table of
bench/peers/summarize.py (with the run-to-run spread).

When the run measured an earlier revision too (`bench/run.sh --baseline REV`: results
jobs-<db>-baseline), a second table compares this tree with it, database by database: both
values, the ratio tree / baseline and a verdict (within --tolerance %, default 5, or better or
worse by how much, knowing for each figure whether higher or lower is better).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_RESULTS = BENCH_DIR / "results"

OURS = {"sqlite": "jobs-sqlite", "postgresql": "jobs-postgresql", "mariadb": "jobs-mariadb"}
BASELINE_TAG = "baseline"  # bench/run.sh --baseline runs the earlier revision with --tag baseline
BASELINE = {db: f"{name}-{BASELINE_TAG}" for db, name in OURS.items()}
DB_LABELS = {"sqlite": "SQLite", "postgresql": "PostgreSQL", "mariadb": "MariaDB"}
PEERS = ("pgqueuer", "procrastinate")
COLUMNS = (
    ("ours SQLite", "jobs-sqlite"),
    ("ours PostgreSQL", "jobs-postgresql"),
    ("ours MariaDB", "jobs-mariadb"),
    ("pgqueuer", "pgqueuer"),
    ("procrastinate", "procrastinate"),
)
OPTIONAL_COLUMNS = (  # bench/run.sh --dramatiq: shown when their results are there
    ("ours PG + dramatiq RabbitMQ", "jobs-postgresql-dramatiq-rabbitmq"),
    ("ours PG + dramatiq Redis", "jobs-postgresql-dramatiq-redis"),
    ("dramatiq RabbitMQ", "dramatiq-rabbitmq"),
    ("dramatiq Redis", "dramatiq-redis"),
)
# the database server whose CPU counts for each system (SQLite runs inside the workers)
SERVER_CPU_KEY = {
    "jobs-sqlite": None,
    "jobs-postgresql": "postgres",
    "jobs-mariadb": "mariadb",
    "jobs-sqlite-baseline": None,
    "jobs-postgresql-baseline": "postgres",
    "jobs-mariadb-baseline": "mariadb",
    "pgqueuer": "postgres",
    "procrastinate": "postgres",
    "jobs-postgresql-dramatiq-rabbitmq": "postgres",  # the broker's CPU is in the detail table
    "jobs-postgresql-dramatiq-redis": "postgres",
    "dramatiq-rabbitmq": "rabbitmq",
    "dramatiq-redis": "redis",
}

Result = dict[str, Any]


def say(line: str = "") -> None:
    sys.stdout.write(line + "\n")


@dataclass(frozen=True)
class Row:
    label: str
    better: str  # "higher", "lower" or "" (context only, no ratio)
    value: Callable[[str, Result], float | None]
    digits: int = 0


def median(result: Result, key: str) -> Any:
    return result.get("median", {}).get(key)


def cpu(result: Result, key: str | None) -> float | None:
    if key is None:
        return None
    figures = median(result, "process_cpu_ms_per_job") or {}
    value = figures.get(key)
    return float(value) if value is not None else None


RSS: dict[str, float | None] = {}  # system -> sampled worker peak RSS (bench/rss_watch.py)

ENQUEUE = Row("enqueue one by one (jobs/s)", "higher", lambda s, r: median(r, "enqueue_jobs_s"))
BULK = Row("bulk enqueue, 1,000 per call (jobs/s)", "higher", lambda s, r: median(r, "bulk_jobs_s"))
E2E = Row("process e2e (jobs/s)", "higher", lambda s, r: median(r, "process_e2e_jobs_s"))
WORKER_CPU = Row("process: CPU ms/job, workers", "lower", lambda s, r: cpu(r, "workers"), 3)
P50 = Row("latency p50 (ms)", "lower", lambda s, r: median(r, "latency_p50_ms"), 1)
P99 = Row("latency p99 (ms)", "lower", lambda s, r: median(r, "latency_p99_ms"), 1)
PEAK_RSS = Row(
    "worker peak RSS, process scenario (MiB, VmHWM)",
    "lower",
    lambda s, r: median(r, "process_worker_rss_mib"),
    1,
)

ROWS = (
    ENQUEUE,
    BULK,
    E2E,
    Row("process steady (jobs/s)", "higher", lambda s, r: median(r, "process_steady_jobs_s")),
    Row("process: worker start (s)", "lower", lambda s, r: median(r, "process_startup_s"), 2),
    WORKER_CPU,
    Row(
        "process: CPU ms/job, database server",
        "lower",
        lambda s, r: cpu(r, SERVER_CPU_KEY.get(s)),
        3,
    ),
    Row("process: cores busy", "", lambda s, r: median(r, "process_cpu_cores_busy"), 2),
    P50,
    P99,
    Row("latency: achieved rate (jobs/s)", "", lambda s, r: median(r, "latency_achieved_rate")),
    PEAK_RSS,
    Row("worker peak RSS, whole run (MiB, sampled)", "lower", lambda s, r: RSS.get(s), 1),
)
# the figures of the table "this tree vs baseline" (bench/run.sh --baseline)
BASELINE_ROWS = (ENQUEUE, BULK, E2E, WORKER_CPU, P50, P99, PEAK_RSS)


def number(value: float | None, digits: int) -> str:
    if value is None or value != value:  # None or NaN
        return "-"
    return f"{value:,.{digits}f}"


def ratio(ours: float | None, peer: float | None, digits: int = 2) -> str:
    if not ours or not peer or ours != ours or peer != peer:
        return "-"
    return f"{ours / peer:.{digits}f}x"


def load(results_dir: Path) -> dict[str, Result]:
    found: dict[str, Result] = {}
    for path in sorted(results_dir.glob("*.json")):
        if path.name == "limits.json":
            continue
        data = json.loads(path.read_text())
        found[data.get("peer", path.stem)] = data
    for path in sorted((results_dir / "rss").glob("*.json")):
        RSS[path.stem] = json.loads(path.read_text()).get("peak_worker_rss_mib")
    return found


def settings_line(results: dict[str, Result]) -> str:
    any_result = next(iter(results.values()))
    ns = sorted({int(r.get("process_n") or r.get("n") or 0) for r in results.values()})
    started = min(r.get("started", "") for r in results.values())
    machine = any_result.get("machine", {})
    return (
        f"n = {any_result.get('n'):,} (process scenario: {', '.join(f'{n:,}' for n in ns)}), "
        f"reps = {any_result.get('reps')} (medians), started {started}, "
        f"{machine.get('cpus')} CPUs, Python {machine.get('python')}"
    )


def cell(system: str, results: dict[str, Result], row: Row) -> str:
    result = results.get(system)
    if result is None:
        return "no result"
    text = number(row.value(system, result), row.digits)
    if row.label.startswith("process e2e") and median(result, "process_timed_out"):
        text += " (timed out)"
    if row.label == "process: CPU ms/job, database server" and system == "jobs-sqlite":
        text = "(in workers)"
    return text


def columns(results: dict[str, Result]) -> list[tuple[str, str]]:
    """The table's columns: the usual ones, then the optional ones this run measured."""
    return [*COLUMNS, *(column for column in OPTIONAL_COLUMNS if column[1] in results)]


def comparison_table(results: dict[str, Result]) -> None:
    header = [
        "figure",
        "better",
        *(label for label, _ in columns(results)),
        "ours PG / pgqueuer",
        "ours PG / procrastinate",
    ]
    say("| " + " | ".join(header) + " |")
    say("|" + "---|" * len(header))
    ours_pg = results.get(OURS["postgresql"])
    for row in ROWS:
        cells = [cell(system, results, row) for _, system in columns(results)]
        ratios = []
        for peer in PEERS:
            peer_result = results.get(peer)
            if row.better and ours_pg is not None and peer_result is not None:
                ours_value = row.value(OURS["postgresql"], ours_pg)
                ratios.append(ratio(ours_value, row.value(peer, peer_result)))
            else:
                ratios.append("")
        say("| " + " | ".join([row.label, row.better, *cells, *ratios]) + " |")


def shapes(results: dict[str, Result]) -> None:
    say("Worker shapes and versions:")
    say()
    baselines = [system for system in BASELINE.values() if system in results]
    for system in [system for _, system in columns(results)] + baselines:
        result = results.get(system)
        if result is None:
            say(f"- {system}: no result")
            continue
        versions = ", ".join(f"{k} {v}" for k, v in result.get("versions", {}).items() if v)
        load_avg = result.get("machine", {})
        say(
            f"- {system}: {result.get('concurrency', '')}; {versions}; load average "
            f"{' '.join(load_avg.get('loadavg_start', []))} -> "
            f"{' '.join(load_avg.get('loadavg_end', []))}"
        )


def engine_sources(results: dict[str, Result]) -> None:
    """Which engine code our three runs measured; warns when it differs or changed."""
    names = [*OURS.values(), *BASELINE.values()]
    sources = {name: results[name].get("engine_source") for name in names if name in results}
    hashes = {
        source.get("sha256") for name, source in sources.items() if source and name in OURS.values()
    }
    for name, source in sources.items():
        if not source:
            say(f"- {name}: engine source not recorded")
            continue
        changed = " CHANGED DURING THE RUN" if source.get("changed_during_run") else ""
        say(
            f"- {name}: engine {source.get('git')}, application+infrastructure sha256 "
            f"{source.get('sha256')}, from {source.get('src')}{changed}"
        )
    if len(hashes) > 1:
        say("- WARNING: our three runs measured different engine code")


def baseline_label(results: dict[str, Result]) -> str | None:
    """The baseline revision (the first word of its engine_source git), None without baseline."""
    for system in BASELINE.values():
        result = results.get(system)
        if result is not None:
            git = str((result.get("engine_source") or {}).get("git") or "").split()
            return git[0] if git else "(revision unknown)"
    return None


def verdict(current: float | None, baseline: float | None, better: str, tolerance: float) -> str:
    """'within N %', 'better by X %' or 'worse by X %': the change of this tree against the
    baseline, read in the figure's direction (`better` is "higher" or "lower")."""
    if current is None or baseline is None or current != current or baseline != baseline:
        return "-"
    if baseline == 0:
        return "-" if current == 0 else "(baseline 0)"
    change = 100.0 * (current / baseline - 1.0)
    if abs(change) <= tolerance:
        return f"within {tolerance:g} %"
    improved = change > 0 if better == "higher" else change < 0
    return f"{'better' if improved else 'worse'} by {abs(change):.1f} %"


def baseline_table(results: dict[str, Result], tolerance: float) -> None:
    """This tree against the baseline revision, per database, for the BASELINE_ROWS figures."""
    label = baseline_label(results)
    if label is None:
        return
    say(f"### This tree vs baseline {label}")
    say()
    header = ["database", "figure", "better", "this tree", f"baseline {label}", "tree / baseline"]
    say("| " + " | ".join([*header, "verdict"]) + " |")
    say("|" + "---|" * (len(header) + 1))
    worse: list[str] = []
    compared = 0
    for db, system in OURS.items():
        pair = ((system, results.get(system)), (BASELINE[db], results.get(BASELINE[db])))
        if all(result is None for _, result in pair):
            continue
        for row in BASELINE_ROWS:
            now, then = (row.value(name, r) if r is not None else None for name, r in pair)
            text = verdict(now, then, row.better, tolerance)
            compared += text.startswith(("within", "better", "worse"))
            if text.startswith("worse"):
                worse.append(f"{DB_LABELS[db]} {row.label}: {text}")
            cells = [cell(name, results, row) for name, _ in pair]
            line = [DB_LABELS[db], row.label, row.better, *cells, ratio(now, then, 3), text]
            say("| " + " | ".join(line) + " |")
    say()
    if worse:
        say(
            f"Worse than baseline {label} by more than {tolerance:g} %: {'; '.join(worse)}. "
            f"The other {compared - len(worse)} figures compared are within {tolerance:g} % "
            "or better."
        )
    else:
        say(f"All {compared} figures compared: within {tolerance:g} % of {label} or better.")
    say(
        "Both engines ran in this run, one after the other on each database, with the same "
        "harness flags and worker shape; differences within the run-to-run spread (detail table "
        "below) are noise."
    )


def detail_table(results_dir: Path) -> None:
    os.environ["BENCH_RESULTS_DIR"] = str(results_dir)
    sys.path.insert(0, str(BENCH_DIR / "peers"))
    import summarize

    summarize.RESULTS_DIR = str(results_dir)
    peers, _limits = summarize.load()  # type: ignore[no-untyped-call]
    if peers:
        summarize.peer_table(peers)  # type: ignore[no-untyped-call]


def main() -> int:
    parser = argparse.ArgumentParser(description="Markdown comparison of a bench/run.sh run")
    default = Path(os.environ.get("BENCH_RESULTS_DIR", DEFAULT_RESULTS))
    parser.add_argument("--results", type=Path, default=default, help="results directory")
    parser.add_argument("--no-detail", action="store_true", help="only the comparison tables")
    parser.add_argument(
        "--tolerance",
        type=float,
        default=5.0,
        help="baseline table: changes within this many percent count as the same (default 5)",
    )
    args = parser.parse_args()
    results = load(args.results)
    if not results:
        say(f"no results in {args.results}")
        return 1
    say(f"Settings: {settings_line(results)}")
    say()
    comparison_table(results)
    say()
    say(
        "Ratios are ours on PostgreSQL divided by the peer on the same PostgreSQL: above 1 is "
        "better where higher is better (throughput), worse where lower is better (latency, CPU, "
        "memory)."
    )
    say()
    if baseline_label(results) is not None:
        baseline_table(results, args.tolerance)
        say()
    shapes(results)
    say()
    say("Engine source measured:")
    say()
    engine_sources(results)
    if not args.no_detail:
        say()
        say("Per system, with the run-to-run spread (bench/peers/summarize.py):")
        say()
        detail_table(args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
