"""A reference API (stdlib only): health, metrics, and which backends it is configured for.

It never prints a credential: it reports only whether each password file is readable.
"""

import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BACKENDS = ("POSTGRES", "MYSQL", "MONGODB", "REDIS", "RABBITMQ")


def backends() -> dict:
    found = {}
    for name in BACKENDS:
        host = os.environ.get(f"{name}_HOST")
        if host:
            secret = os.environ.get(f"{name}_PASSWORD_FILE", "")
            found[name.lower()] = {
                "host": host,
                "port": os.environ.get(f"{name}_PORT"),
                "user": os.environ.get(f"{name}_USER"),
                "credentials": os.access(secret, os.R_OK) if secret else False,
            }
    return found


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path in ("/health", "/health/"):
            self.reply(200, "application/json", json.dumps({"status": "ok"}))
        elif self.path == "/metrics":
            self.reply(200, "text/plain; version=0.0.4", "devstack_api_up 1\n")
        elif self.path == "/":
            body = {"service": os.environ.get("SERVICE_NAME", "api"), "backends": backends()}
            self.reply(200, "application/json", json.dumps(body))
        else:
            self.reply(404, "application/json", json.dumps({"error": "not found"}))

    def reply(self, status: int, kind: str, body: str) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


if __name__ == "__main__":
    address = (os.environ.get("HTTP_HOST", "0.0.0.0"), int(os.environ.get("HTTP_PORT", "8000")))
    ThreadingHTTPServer(address, Handler).serve_forever()
