"""Print the requirements of a locked file (`pip`'s hash-pinned format) that the image's
Python needs but this machine's does not: those whose environment marker is true for the
image's Python version (argument 2) and false here, without their marker, hashes kept.

    python3 .ci/image-only-requirements.py requirements/app.txt 3.11.2
"""

from __future__ import annotations

import platform
import sys

from pip._vendor.packaging.markers import Marker  # the packaging pip itself evaluates with


def entries(text: str) -> list[str]:
    """One string per requirement, its continuation lines joined, comments dropped."""
    joined = text.replace("\\\n", " ")
    lines = (line.split("#", 1)[0].strip() for line in joined.splitlines())
    return [line for line in lines if line]


def main() -> None:
    path, version = sys.argv[1], sys.argv[2]
    image = {"python_full_version": version, "python_version": ".".join(version.split(".")[:2])}
    here = {"python_full_version": platform.python_version()}
    for entry in entries(open(path, encoding="utf-8").read()):
        requirement, _, rest = entry.partition(";")
        if not rest:
            continue
        marker_text, _, hashes = rest.partition("--hash")
        marker = Marker(marker_text.strip())
        if marker.evaluate(image) and not marker.evaluate(here):
            print(f"{requirement.strip()} --hash{hashes}")


if __name__ == "__main__":
    main()
