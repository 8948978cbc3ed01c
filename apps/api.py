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


def https_server(host: str) -> ThreadingHTTPServer:
    """HTTPS on HTTPS_PORT with the container's certificate (TLS 1.2 at least, AEAD only)."""
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # TLS 1.2: forward-secret AEAD suites only (TLS 1.3's are all AEAD)
    context.set_ciphers("ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL")
    context.load_cert_chain(os.environ["TLS_CERT_FILE"], os.environ["TLS_KEY_FILE"])
    server = ThreadingHTTPServer((host, int(os.environ.get("HTTPS_PORT", "8443"))), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    return server


if __name__ == "__main__":
    import threading

    host = os.environ.get("HTTP_HOST", "0.0.0.0")
    mode = os.environ.get("TLS_MODE", "off")  # off | dual | required (plaintext refused)
    servers = []
    if mode in ("dual", "required"):
        servers.append(https_server(host))
    if mode != "required":
        servers.append(ThreadingHTTPServer((host, int(os.environ.get("HTTP_PORT", "8000"))), Handler))
    for server in servers[1:]:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    servers[0].serve_forever()
