"""A small API: GET /health answers 200 while the database and the cache answer on TCP,
503 (naming what is missing) otherwise; GET / answers a greeting.

Configured from the environment: DB_HOST/DB_PORT (default database:5432),
CACHE_HOST/CACHE_PORT (default cache:6379), PORT (default 8080), START_DELAY (seconds
to wait before listening, as a slow-starting server would). `app.py --check` is the
image's healthcheck: it asks the running API's /health.
"""

import http.server
import os
import socket
import sys
import time
import urllib.request

PORT = int(os.environ.get("PORT", "8080"))
DEPENDENCIES = {
    "database": (
        os.environ.get("DB_HOST", "database"),
        int(os.environ.get("DB_PORT", "5432")),
    ),
    "cache": (
        os.environ.get("CACHE_HOST", "cache"),
        int(os.environ.get("CACHE_PORT", "6379")),
    ),
}


def missing() -> list:
    down = []
    for name, address in DEPENDENCIES.items():
        try:
            socket.create_connection(address, timeout=1).close()
        except OSError:
            down.append(name)
    return down


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/health":
            down = missing()
            status, body = (
                (503, f"unavailable: no {', '.join(down)}\n") if down else (200, "ok\n")
            )
        else:
            status, body = 200, f"hello from {socket.gethostname()}\n"
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args):
        print(f"{self.address_string()} {format % args}", flush=True)


def main() -> int:
    if sys.argv[1:] == ["--check"]:
        try:
            url = f"http://127.0.0.1:{PORT}/health"
            with urllib.request.urlopen(url, timeout=2) as response:
                return 0 if response.status == 200 else 1
        except OSError:
            return 1
    time.sleep(float(os.environ.get("START_DELAY", "0")))
    server = http.server.ThreadingHTTPServer(("0.0.0.0", PORT), Handler)
    print(f"listening on {PORT}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
