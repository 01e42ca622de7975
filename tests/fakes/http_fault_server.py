#!/usr/bin/env python3
"""http_fault_server.py - a loopback HTTP server with injectable faults, for the HTTP helper's tests.

Starts on 127.0.0.1 with a free port, prints the port on the first stdout line once it is
listening (the client's readiness signal: no client may assume a start-up time), and exits
when its stdin closes (so a test that dies never leaves it behind). Stdlib only.
RLM_FAKE_START_DELAY_S=N makes it wait N seconds first, as a loaded machine does.

Endpoints (any method):
  /raw...          answers 200 with the request body, byte for byte (binary round trips)
  /big?n=N         answers N bytes ('x'); &chunked=1 sends them chunked (no Content-Length);
                   &announce=M claims a Content-Length of M and sends N bytes
  anything else    answers 200 with the request as JSON: method, path, query, headers, body
                   (latin-1 text), body_len
Every answer carries X-Request-Id: req-<n>.

Control (never faulted, logged or counted):
  POST /_fault     {"path": P, "times": N, ...fault}: the next N requests to P get the fault:
                     {"status": S}                    S with a small JSON error body
                     {"status": S, "empty": true}     S with an empty body
                     {"status": S, "headers": {...}}  extra response headers (Retry-After: 1)
                     {"status": S, "retry_after_date": D}  Retry-After as an HTTP-date D s ahead
                     {"drop": true}                   close the socket without answering
                     {"sleep": S}                     wait S seconds, then answer normally
  GET /_log        {"requests": [{method, path, headers, body_len}], "counts": {path: n},
                    "connections": n}  (connections: TCP connections accepted so far)
  POST /_reset     forget faults, log and counts
"""
import email.utils
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

LOCK = threading.Lock()
STATE = {"faults": {}, "log": [], "counts": {}, "connections": 0, "served": 0}


def take_fault(path):
    """The fault due for the request to path, if any (consumes one of its `times`)."""
    with LOCK:
        fault = STATE["faults"].get(path)
        if not fault or fault["times"] <= 0:
            return None
        fault["times"] -= 1
        return fault


class Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 keeps connections open, so the client's connection reuse is observable.
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        with LOCK:
            STATE["connections"] += 1

    def log_message(self, fmt, *args):  # quiet: the tests read /_log instead
        pass

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (a timeout test): fine

    def __getattr__(self, name):
        if name.startswith("do_"):  # every method goes through one handler
            return self.serve
        raise AttributeError(name)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def reply(self, status, body=b"", headers=None, content_type="application/json"):
        with LOCK:
            STATE["served"] += 1
            rid = STATE["served"]
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Request-Id", "req-%d" % rid)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def serve(self):
        url = urlsplit(self.path)
        body = self.read_body()
        if url.path.startswith("/_"):
            return self.control(url.path, body)
        with LOCK:
            STATE["counts"][url.path] = STATE["counts"].get(url.path, 0) + 1
            STATE["log"].append({"method": self.command, "path": url.path,
                                 "headers": dict(self.headers.items()),
                                 "body_len": len(body)})
        fault = take_fault(url.path)
        if fault and self.apply_fault(fault):
            return
        if url.path.startswith("/raw"):
            return self.reply(200, body, content_type="application/octet-stream")
        if url.path.startswith("/big"):
            return self.send_big(parse_qs(url.query))
        echo = {"method": self.command, "path": url.path, "query": url.query,
                "headers": dict(self.headers.items()), "body": body.decode("latin-1"),
                "body_len": len(body)}
        self.reply(200, json.dumps(echo).encode())

    def apply_fault(self, fault):
        """Serves the fault; True when the request is answered (or dropped) by it."""
        if fault.get("drop"):
            self.close_connection = True
            return True
        if fault.get("sleep"):
            time.sleep(fault["sleep"])
            return False
        headers = dict(fault.get("headers") or {})
        if "retry_after_date" in fault:
            when = time.time() + fault["retry_after_date"]
            headers["Retry-After"] = email.utils.formatdate(when, usegmt=True)
        body = b"" if fault.get("empty") else b'{"error": "injected"}'
        self.reply(fault["status"], body, headers)
        return True

    def send_big(self, q):
        n = int(q.get("n", ["0"])[0])
        chunked = q.get("chunked", ["0"])[0] == "1"
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", q.get("announce", [str(n)])[0])
            self.close_connection = "announce" in q  # a short body must not hang the client
        self.end_headers()
        block = b"x" * (1 << 20)
        while n > 0:
            piece = block[:min(n, len(block))]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            n -= len(piece)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")

    def control(self, path, body):
        if path == "/_fault":
            fault = json.loads(body)
            with LOCK:
                STATE["faults"][fault["path"]] = fault
        elif path == "/_reset":
            with LOCK:
                STATE.update(faults={}, log=[], counts={})
        elif path == "/_log":
            with LOCK:
                snapshot = json.dumps({"requests": STATE["log"], "counts": STATE["counts"],
                                       "connections": STATE["connections"]})
            return self.reply(200, snapshot.encode())
        else:
            return self.reply(404, b'{"error": "unknown control endpoint"}')
        self.reply(200, b"{}")


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a client that hung up mid-answer is expected here


def main():
    time.sleep(float(os.environ.get("RLM_FAKE_START_DELAY_S") or 0))
    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(server.server_address[1], flush=True)
    sys.stdin.read()  # returns when the test closes our stdin (or dies)
    server.shutdown()


if __name__ == "__main__":
    main()
