"""Docker HEALTHCHECK: for `serve`, exit 0 when /health/ready answers 200, else 1.

Standard library only, so the image needs no curl. The port is APP_HTTP__PORT (8000).
`worker`, `scheduler` and `migrate` serve no HTTP: for them the check only confirms that
the process runs (the container would have stopped otherwise), and exits 0.
"""

import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

URL = f"http://127.0.0.1:{os.environ.get('APP_HTTP__PORT', '8000')}/health/ready"


def serves_http() -> bool:
    """Whether the container's main process (PID 1) is `jobs-service serve`."""
    try:
        arguments = Path("/proc/1/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True
    return b"serve" in arguments


def main() -> int:
    if not serves_http():
        return 0
    try:
        with urllib.request.urlopen(URL, timeout=2) as response:
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError):
        return 1


if __name__ == "__main__":
    sys.exit(main())
