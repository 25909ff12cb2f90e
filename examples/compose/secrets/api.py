"""The API of examples/compose/secrets: GET /health answers 200 while it can log in to
the database with the password of its secret (the file DB_PASSWORD_FILE names), 503 with
the database's answer otherwise. It reads the password when it starts, as servers do."""

import http.server
import os
import subprocess
from pathlib import Path

PASSWORD = Path(os.environ["DB_PASSWORD_FILE"]).read_text().strip()
DB_HOST = os.environ.get("DB_HOST", "db")
LOGIN = ["psql", "-h", DB_HOST, "-U", "postgres", "-tAc", "select 1"]


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        env = {**os.environ, "PGPASSWORD": PASSWORD}
        result = subprocess.run(LOGIN, env=env, capture_output=True, text=True)
        status, body = (200, "ok\n") if result.returncode == 0 else (503, result.stderr)
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


http.server.ThreadingHTTPServer(("0.0.0.0", 8080), Handler).serve_forever()
