// A reference API (Node's standard library only): health, metrics, and its configured backends.
// It never prints a credential: it reports only whether each password file is readable.
"use strict";
const fs = require("fs");
const http = require("http");

const BACKENDS = ["POSTGRES", "MYSQL", "MONGODB", "REDIS", "RABBITMQ"];

function readable(path) {
  try {
    fs.accessSync(path, fs.constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

function backends() {
  const found = {};
  for (const name of BACKENDS) {
    const host = process.env[`${name}_HOST`];
    if (host) {
      const secret = process.env[`${name}_PASSWORD_FILE`] || "";
      found[name.toLowerCase()] = {
        host,
        port: process.env[`${name}_PORT`] || null,
        user: process.env[`${name}_USER`] || null,
        credentials: secret ? readable(secret) : false,
      };
    }
  }
  return found;
}

function reply(res, status, type, body) {
  res.writeHead(status, { "Content-Type": type, "Content-Length": Buffer.byteLength(body) });
  res.end(body);
}

function handle(req, res) {
  if (req.url === "/health" || req.url === "/health/") return reply(res, 200, "application/json", '{"status":"ok"}');
  if (req.url === "/metrics") return reply(res, 200, "text/plain; version=0.0.4", "devstack_api_up 1\n");
  if (req.url === "/") {
    const service = process.env.SERVICE_NAME || "api";
    return reply(res, 200, "application/json", JSON.stringify({ service, backends: backends() }));
  }
  return reply(res, 404, "application/json", '{"error":"not found"}');
}

// TLS_MODE: off | dual (HTTPS beside HTTP) | required (HTTPS only, plaintext refused)
const host = process.env.HTTP_HOST || "0.0.0.0";
const mode = process.env.TLS_MODE || "off";
if (mode === "dual" || mode === "required") {
  const https = require("https");
  const options = {
    cert: fs.readFileSync(process.env.TLS_CERT_FILE),
    key: fs.readFileSync(process.env.TLS_KEY_FILE),
    minVersion: "TLSv1.2",
    // TLS 1.3's suites (all AEAD), then TLS 1.2's forward-secret AEAD ones only
    ciphers: [
      "TLS_AES_256_GCM_SHA384",
      "TLS_CHACHA20_POLY1305_SHA256",
      "TLS_AES_128_GCM_SHA256",
      "ECDHE-ECDSA-AES256-GCM-SHA384",
      "ECDHE-ECDSA-CHACHA20-POLY1305",
      "ECDHE-ECDSA-AES128-GCM-SHA256",
      "ECDHE-RSA-AES256-GCM-SHA384",
      "ECDHE-RSA-CHACHA20-POLY1305",
      "ECDHE-RSA-AES128-GCM-SHA256",
    ].join(":"),
  };
  https.createServer(options, handle).listen(Number(process.env.HTTPS_PORT || 8443), host);
}
if (mode !== "required") {
  http.createServer(handle).listen(Number(process.env.HTTP_PORT || 8000), host);
}
