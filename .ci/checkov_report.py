"""Read checkov's JSON report of one rendered overlay; print what failed and what was skipped
(with the reason), and require the security checks of the issue to have passed on every
workload. Exit 1 when any check failed, a file did not parse, or a required check did not
pass. Usage: `checkov ... -o json | python3 .ci/checkov_report.py OVERLAY`."""

from __future__ import annotations

import json
import sys
from typing import Any

# Every Deployment and Job must pass these: the security context, and resources.
REQUIRED = {
    "CKV_K8S_20": "no privilege escalation",
    "CKV_K8S_22": "read-only root file system",
    "CKV_K8S_23": "not root",
    "CKV_K8S_40": "a high UID",
    "CKV_K8S_37": "no capabilities (drop ALL)",
    "CKV_K8S_28": "no NET_RAW",
    "CKV_K8S_31": "seccomp RuntimeDefault",
    "CKV_K8S_38": "no service account token",
    "CKV_K8S_10": "CPU requests",
    "CKV_K8S_11": "CPU limits",
    "CKV_K8S_12": "memory requests",
    "CKV_K8S_13": "memory limits",
}
# And the API, which takes traffic, its probes.
REQUIRED_API = {"CKV_K8S_8": "liveness probe", "CKV_K8S_9": "readiness probe"}
WORKLOADS = ("Deployment.", "Job.")


def say(line: str) -> None:
    sys.stdout.write(line + "\n")


def main(overlay: str) -> int:
    report: dict[str, Any] = json.load(sys.stdin)
    results = report["results"]
    summary = report["summary"]
    say(
        f"checkov {overlay}: {summary['passed']} passed, {summary['failed']} failed, "
        f"{summary['skipped']} skipped, {summary['parsing_errors']} parsing errors"
    )
    for check in results.get("skipped_checks", []):
        reason = check.get("check_result", {}).get("suppress_comment", "")
        say(f"  skipped {check['check_id']} on {check['resource']}: {reason}")
    problems = [
        f"FAILED {check['check_id']} {check['check_name']} on {check['resource']}"
        for check in results.get("failed_checks", [])
    ]
    problems += _missing_required(results.get("passed_checks", []))
    if summary["parsing_errors"]:
        problems.append(f"{summary['parsing_errors']} file(s) did not parse")
    for problem in problems:
        say(f"  {problem}")
    return 1 if problems else 0


def _missing_required(passed: list[dict[str, Any]]) -> list[str]:
    passed_on: dict[str, set[str]] = {}
    for check in passed:
        passed_on.setdefault(check["resource"], set()).add(check["check_id"])
    workloads = sorted(r for r in passed_on if r.startswith(WORKLOADS))
    if not workloads:
        return ["no Deployment or Job passed any check: nothing was scanned?"]
    missing = []
    for resource in workloads:
        required = dict(REQUIRED)
        if resource.startswith("Deployment.") and resource.endswith("-api"):
            required |= REQUIRED_API
        missing += [
            f"REQUIRED {check_id} ({what}) did not pass on {resource}"
            for check_id, what in required.items()
            if check_id not in passed_on[resource]
        ]
    say(f"  required checks (security context, resources, probes) on {', '.join(workloads)}")
    return missing


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "?"))
