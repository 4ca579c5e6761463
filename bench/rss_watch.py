"""Run one benchmark command and record the peak RSS of the worker processes it starts.

    python3 bench/rss_watch.py --out FILE [--interval 0.5] -- CMD [ARGS...]

The harness (bench/peers/common.py) starts every worker process in its own session, so the
workers are the descendants of CMD that lead a session (with their own descendants); helper
processes such as psql or pip stay in the harness's session and are not counted. Every
`--interval` seconds each worker's VmHWM (peak RSS so far) is read from /proc/<pid>/status.
The same sampling is applied to our engine and to every peer, over all scenarios of the run.

Writes FILE as JSON: peak_worker_rss_mib (largest VmHWM seen of any worker process),
workers_seen, interval_s. Exits with CMD's exit status. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path


def process_table() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, session id) of every process."""
    table: dict[int, tuple[int, int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                text = stat.read()
        except OSError:
            continue
        # after "pid (comm) ": state ppid pgrp session ...
        fields = text[text.rindex(")") + 2 :].split()
        table[int(entry)] = (int(fields[1]), int(fields[3]))
    return table


def descendants(root: int, table: dict[int, tuple[int, int]]) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found: set[int] = set()
    todo = list(children.get(root, []))
    while todo:
        pid = todo.pop()
        if pid not in found:
            found.add(pid)
            todo.extend(children.get(pid, []))
    return found


def worker_processes(root: int) -> set[int]:
    """Descendants of `root` that lead their own session, and their descendants."""
    table = process_table()
    leaders = {pid for pid in descendants(root, table) if table[pid][1] == pid}
    workers = set(leaders)
    for leader in leaders:
        workers |= descendants(leader, table)
    return workers


def vm_hwm_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="JSON file to write")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between samples")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD [ARGS...]")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given")
    child = subprocess.Popen(command)
    peaks: dict[int, int] = {}
    try:
        while child.poll() is None:
            for pid in worker_processes(child.pid):
                hwm = vm_hwm_kib(pid)
                if hwm is not None:
                    peaks[pid] = max(hwm, peaks.get(pid, 0))
            time.sleep(args.interval)
    except KeyboardInterrupt:  # Ctrl+C reaches the command too; let it clean up
        child.wait()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "command": command,
        "peak_worker_rss_mib": max(peaks.values()) / 1024 if peaks else None,
        "workers_seen": len(peaks),
        "interval_s": args.interval,
    }
    args.out.write_text(json.dumps(result, indent=1))
    return child.returncode


if __name__ == "__main__":
    sys.exit(main())
