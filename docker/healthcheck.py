"""Docker HEALTHCHECK of `serve`: exit 0 when /health/ready answers 200, 1 otherwise.

Standard library only, so the image needs no curl. The port is APP_HTTP__PORT (8000).
"""

import os
import sys
import urllib.error
import urllib.request

PATH = os.environ.get("HEALTHCHECK_PATH", "/health/ready")
URL = f"http://127.0.0.1:{os.environ.get('APP_HTTP__PORT', '8000')}{PATH}"

try:
    with urllib.request.urlopen(URL, timeout=2) as response:
        sys.exit(0 if response.status == 200 else 1)
except (urllib.error.URLError, OSError):
    sys.exit(1)
