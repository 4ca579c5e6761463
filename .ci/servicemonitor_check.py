"""Check what no schema checks in a rendering with the optional ServiceMonitor: that it
selects the API's Service in the same namespace, and scrapes a port that Service names, on a
path the service serves. Usage: `python .ci/servicemonitor_check.py RENDERED.yaml` (with a
Python that has PyYAML: the tools' virtualenv)."""

from __future__ import annotations

import sys
from typing import Any

import yaml  # type: ignore[import-untyped,unused-ignore]


def main(path: str) -> int:
    with open(path, encoding="utf-8") as file:
        documents: list[dict[str, Any]] = [d for d in yaml.safe_load_all(file) if d]
    monitors = [d for d in documents if d["kind"] == "ServiceMonitor"]
    services = [d for d in documents if d["kind"] == "Service"]
    problems = [] if monitors else ["no ServiceMonitor in the rendering"]
    for monitor in monitors:
        problems += _problems(monitor, services)
    for problem in problems:
        sys.stdout.write(f"  {problem}\n")
    if not problems:
        sys.stdout.write("    the ServiceMonitor selects the API Service and its port\n")
    return 1 if problems else 0


def _problems(monitor: dict[str, Any], services: list[dict[str, Any]]) -> list[str]:
    wanted = monitor["spec"]["selector"]["matchLabels"]
    namespace = monitor["metadata"].get("namespace")
    matched = [
        service
        for service in services
        if service["metadata"].get("namespace") == namespace
        and wanted.items() <= service["metadata"].get("labels", {}).items()
    ]
    if not matched:
        return [f"ServiceMonitor selects no Service with labels {wanted} in {namespace}"]
    ports = {port.get("name") for service in matched for port in service["spec"]["ports"]}
    return [
        f"ServiceMonitor scrapes {endpoint.get('port')}{endpoint.get('path')}, "
        f"not a port of the Service ({sorted(ports)}) on /metrics"
        for endpoint in monitor["spec"]["endpoints"]
        if endpoint.get("port") not in ports or endpoint.get("path") != "/metrics"
    ]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
