#!/usr/bin/env python3
"""A small SRS-style HTTP hook server for ringcast's end-to-end tests.

Listens on 127.0.0.1 (port given as argv[1], 0 = any free port) and prints
"PORT <n>" on stdout once it accepts. Every POST is recorded (path and JSON
body) and answered according to a `mode=` found in the request's `param`
field (the client's query), falling back to the URL's own `mode=` query,
then to allow:

  allow     200, body 0
  json      200, body {"code":0}
  deny      403
  code1     200, body {"code":1}
  garbage   200, body that is neither 0 nor JSON
  broken    bytes that are not HTTP, then close
  slow      waits 30 s, then allows (past any hook timeout)
  delayN    waits N ms, then allows (e.g. delay300)

GET /log answers the recorded requests as a JSON list.
"""

import json
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
LOG = []


def mode_of(path, body):
    for query in (body.get("param", "").lstrip("?"), urllib.parse.urlsplit(path).query):
        modes = urllib.parse.parse_qs(query).get("mode")
        if modes:
            return modes[0]
    return "allow"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True

    def do_GET(self):
        with LOCK:
            data = json.dumps(LOG)
        self.answer(200, data)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw)
        except ValueError:
            body = {"unparsable": raw.decode("latin-1")}
        with LOCK:
            LOG.append({"path": self.path, "body": body, "at": time.time()})
        mode = mode_of(self.path, body)
        if mode == "allow":
            self.answer(200, "0")
        elif mode == "json":
            self.answer(200, '{"code":0,"data":null}')
        elif mode == "deny":
            self.answer(403, "forbidden")
        elif mode == "code1":
            self.answer(200, '{"code":1}')
        elif mode == "garbage":
            self.answer(200, "<html>not a hook answer</html>")
        elif mode == "broken":
            self.wfile.write(b"THIS IS NOT HTTP\r\n\r\n")
            self.close_connection = True
        elif mode == "slow":
            time.sleep(30)
            self.answer(200, "0")
        elif mode.startswith("delay"):
            time.sleep(int(mode[5:]) / 1000)
            self.answer(200, "0")
        else:
            self.answer(400, "unknown mode")


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.request_queue_size = 1024
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
