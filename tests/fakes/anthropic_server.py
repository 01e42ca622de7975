#!/usr/bin/env python3
"""anthropic_server.py - a fake Anthropic Messages API server, for tests.

It listens on 127.0.0.1 (port 0 unless --port), prints the port as the first line of stdout,
and exits when its stdin closes, so a test that dies never leaves it behind.

POST /v1/messages is checked the way the real API checks it: method, path, content-type,
x-api-key, anthropic-version, and the body (model, max_tokens required, `system` only as a
top-level field and never as a message role, roles alternating and starting with user,
temperature within 0..1, unknown fields refused). A wrong request gets the 400 (401 for the
key) the real API would send, in its error shape {"type": "error", "error": {"type",
"message"}}. A right one is answered from the script (--script FILE: JSONL, one
{"content": "..." or ["block", ...], optional "usage", "stop_reason", "model"} per line, used
in order), or, without a script, with "echo: <last user message>".

Faults are chosen per test, over HTTP or over stdin (one JSON object per line, answered with
one JSON line on stdout):
  {"fail_next": [429, 500, 529, "drop", "slow", "quota", "malformed", "missing", 401, ...],
   "retry_after": 1, "delay_s": 0.2, "slow_s": 5, "script": [{...}], "reset": true}
  {"log": true}   -> {"requests": [{"method", "path", "headers", "body"}, ...]}
Over HTTP: POST /_control with the first kind of object, GET /_log.
Each fault applies to one incoming API request, in order: a status answers with that status
in the provider's shape (429 with retry-after when retry_after is set), "drop" closes the
connection without an answer, "slow" answers after slow_s seconds, "quota" is the 400 the
API sends when the credit balance is too low, "malformed" a 200 that is not JSON, "missing"
a 200 without content. delay_s delays every answer.
"""
import argparse
import json
import os
import socket
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

API_PATH = "/v1/messages"
VERSIONS = ("2023-06-01", "2023-01-01")
KNOWN_FIELDS = {
    "model", "messages", "max_tokens", "system", "temperature", "top_p", "top_k",
    "stop_sequences", "stream", "metadata", "tools", "tool_choice", "thinking", "service_tier",
}
STATUS_TYPES = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use the specified "
                              "resource."),
    404: ("not_found_error", "The requested resource could not be found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of requests has exceeded your rate limit. Please try "
                              "again later."),
    500: ("api_error", "Internal server error"),
    529: ("overloaded_error", "Overloaded"),
}


class State:
    """Everything the handlers share, behind one lock."""

    def __init__(self, key, script, defaults):
        self.lock = threading.Lock()
        self.key = key
        self.file_script = list(script)
        self.defaults = defaults  # the command line's faults and delays, restored by reset
        self.generation = 0  # bumped by reset: a request from before it is dropped
        self.reset()

    def reset(self):
        self.generation += 1
        self.script = list(self.file_script)
        self.scripted = bool(self.file_script)  # an empty script is an error, not an echo
        self.served = 0
        self.fail_next = list(self.defaults.get("fail_next", []))
        self.retry_after = self.defaults.get("retry_after")
        self.delay_s = self.defaults.get("delay_s", 0.0)
        self.slow_s = 5.0
        self.log = []

    def control(self, cmd):
        """Applies a control object; returns the reply object."""
        with self.lock:
            if cmd.get("reset"):
                self.reset()
            if "fail_next" in cmd:
                self.fail_next = list(cmd["fail_next"])
            if "retry_after" in cmd:
                self.retry_after = cmd["retry_after"]
            if "delay_s" in cmd:
                self.delay_s = float(cmd["delay_s"])
            if "slow_s" in cmd:
                self.slow_s = float(cmd["slow_s"])
            if "script" in cmd:
                self.script = list(cmd["script"])
                self.scripted = True
                self.served = 0
            if cmd.get("log"):
                return {"requests": list(self.log)}
        return {"ok": True}


def error_body(etype, message):
    return {"type": "error", "error": {"type": etype, "message": message}}


def invalid(message):
    return 400, error_body("invalid_request_error", message)


def words(text):
    return len(str(text).split())


def content_text(content):
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(b.get("text", "") for b in content if isinstance(b, dict))
    return ""


def check_messages(msgs):
    """The refusal for a wrong messages array, or None."""
    if not isinstance(msgs, list):
        return invalid("messages: Field required" if msgs is None else
                       "messages: Input should be a valid list")
    if not msgs:
        return invalid("messages: at least one message is required")
    prev = None
    for i, m in enumerate(msgs):
        if not isinstance(m, dict):
            return invalid("messages.%d: Input should be a valid dictionary" % i)
        role = m.get("role")
        if role == "system":
            return invalid('messages: Unexpected role "system". The Messages API accepts a '
                           'top-level `system` parameter, not "system" as an input message '
                           'role.')
        if role not in ("user", "assistant"):
            return invalid("messages.%d.role: Input should be 'user' or 'assistant'" % i)
        if i == 0 and role != "user":
            return invalid('messages: first message must use the "user" role')
        if role == prev:
            return invalid('messages: roles must alternate between "user" and "assistant", '
                           'but found multiple "%s" roles in a row' % role)
        prev = role
        content = m.get("content")
        if not isinstance(content, (str, list)):
            return invalid("messages.%d.content: Input should be a valid string or list" % i)
    return None


def check_body(body):
    """The refusal the real API would send for this body, or None when it is right."""
    if not isinstance(body, dict):
        return invalid("The request body must be a JSON object.")
    for field in body:
        if field not in KNOWN_FIELDS:
            return invalid("%s: Extra inputs are not permitted" % field)
    if not isinstance(body.get("model"), str) or not body["model"]:
        return invalid("model: Field required")
    mt = body.get("max_tokens")
    if mt is None:
        return invalid("max_tokens: Field required")
    if isinstance(mt, bool) or not isinstance(mt, int) or mt < 1:
        return invalid("max_tokens: Input should be a valid integer greater than or equal to 1")
    system = body.get("system")
    if system is not None and not isinstance(system, (str, list)):
        return invalid("system: Input should be a valid string or list of text blocks")
    t = body.get("temperature")
    if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float)) or
                          not 0 <= t <= 1):
        return invalid("temperature: Input should be a number between 0 and 1")
    return check_messages(body.get("messages"))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the host's connection cache expects
    # Headers and body in one write, sent at once: otherwise Nagle and the client's delayed
    # ACK add 40 ms to every answer, which the benchmark would blame on the client.
    wbufsize = 1 << 16
    disable_nagle_algorithm = True
    server_version = "fake-anthropic/1.0"

    def log_message(self, fmt, *args):  # quiet: the tests read stdout
        pass

    # ---- plumbing ----

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def send_json(self, status, obj, extra=None):
        data = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("request-id", "req_" + uuid.uuid4().hex[:24])
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        try:
            self.wfile.write(data)
        except OSError:  # the client gave up (timeouts): nothing to tell it
            self.close_connection = True

    def drop(self):
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # ---- verbs ----

    def do_GET(self):
        self.read_body()
        if self.path == "/_log":
            self.send_json(200, self.server.state.control({"log": True}))
        else:
            self.api(b"")

    def do_POST(self):
        raw = self.read_body()
        if self.path == "/_control":
            try:
                cmd = json.loads(raw or b"{}")
            except ValueError:
                return self.send_json(400, {"error": "control body is not JSON"})
            return self.send_json(200, self.server.state.control(cmd))
        self.api(raw)

    do_PUT = do_DELETE = do_PATCH = do_GET

    # ---- the API ----

    def record(self, raw):
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = {"_raw": raw.decode("utf-8", "replace")}
        st = self.server.state
        with st.lock:
            st.log.append({"method": self.command, "path": self.path, "body": body,
                           "headers": {k.lower(): v for k, v in self.headers.items()}})
            fault = st.fail_next.pop(0) if st.fail_next else None
            return body, fault, st.retry_after, st.delay_s, st.slow_s, st.generation

    def fault(self, fault, retry_after, slow_s):
        """Acts out one injected fault; True when the request is answered."""
        if fault == "drop":
            self.drop()
            return True
        if fault == "slow":
            time.sleep(slow_s)
            return False
        if fault == "quota":
            self.send_json(*invalid("Your credit balance is too low to access the Anthropic "
                                    "API. Please go to Plans & Billing to upgrade or purchase "
                                    "credits."))
            return True
        if fault == "malformed":
            self.send_json(200, b'{"id": "msg_broken", "type": "message", "content": [')
            return True
        if fault == "missing":
            self.send_json(200, {"id": "msg_" + uuid.uuid4().hex[:24], "type": "message",
                                 "role": "assistant", "model": "claude-fake"})
            return True
        if isinstance(fault, int):
            extra = {}
            if fault == 429 and retry_after is not None:
                extra["retry-after"] = "%g" % retry_after
            etype, message = STATUS_TYPES.get(fault, ("api_error", "Internal server error"))
            self.send_json(fault, error_body(etype, message), extra)
            return True
        return False

    def check_request(self, body):
        """The status and body of the refusal the real API would send, or None."""
        key = self.server.state.key
        given = self.headers.get("x-api-key")
        if key is not None:
            if not given:
                return 401, error_body("authentication_error", "x-api-key header is required")
            if given != key:
                # The real API does not repeat the key; this fake does, so the tests can
                # check that the client never repeats it.
                return 401, error_body("authentication_error", "invalid x-api-key: %s" % given)
        if self.path != API_PATH:
            return 404, error_body("not_found_error", "Not found: %s %s" %
                                   (self.command, self.path))
        if self.command != "POST":
            return 405, error_body("invalid_request_error", "Method Not Allowed")
        version = self.headers.get("anthropic-version")
        if not version:
            return invalid("anthropic-version: header is required")
        if version not in VERSIONS:
            return invalid("anthropic-version: invalid version %r" % version)
        ctype = (self.headers.get("content-type") or "").split(";")[0].strip().lower()
        if ctype != "application/json":
            return invalid("content-type: application/json is required, got %r" % ctype)
        if isinstance(body, dict) and "_raw" in body:
            return invalid("There was an issue with the formatting of your request: the body "
                           "is not valid JSON.")
        return check_body(body)

    def answer(self, body):
        st = self.server.state
        with st.lock:
            scripted = st.scripted
            item = st.script.pop(0) if st.script else None
            st.served += 1
            served = st.served
        if item is None and scripted:
            return self.send_json(*invalid("fake: the script ran out after %d answers" %
                                           (served - 1)))
        msgs = body["messages"]
        if item is None:
            last = [m for m in msgs if m.get("role") == "user"]
            item = {"content": "echo: " + (content_text(last[-1]["content"]) if last else "")}
        content = item.get("content", "")
        blocks = content if isinstance(content, list) else [content]
        text = "".join(blocks)
        usage = item.get("usage", {})
        prompt = usage.get("input_tokens", usage.get("prompt_tokens", words(
            content_text(body.get("system", ""))) + sum(words(content_text(m["content"]))
                                                          for m in msgs)))
        completion = usage.get("output_tokens", usage.get("completion_tokens", words(text)))
        self.send_json(200, {
            "id": "msg_" + uuid.uuid4().hex[:24],
            "type": "message",
            "role": "assistant",
            "model": item.get("model", body["model"]),
            "content": [{"type": "text", "text": b} for b in blocks],
            "stop_reason": item.get("stop_reason", "end_turn"),
            "stop_sequence": None,
            "usage": {"input_tokens": prompt, "output_tokens": completion,
                      "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
        })

    def api(self, raw):
        body, fault, retry_after, delay_s, slow_s, generation = self.record(raw)
        if fault is not None and self.fault(fault, retry_after, slow_s):
            return
        if delay_s > 0:
            time.sleep(delay_s)
        if generation != self.server.state.generation:
            # A test ended (and reset the fake) while this answer slept: it must not
            # consume the next test's script.
            return self.drop()
        refusal = self.check_request(body)
        if refusal:
            return self.send_json(*refusal)
        self.answer(body)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # batched calls open many connections at once

    def handle_error(self, request, client_address):
        pass  # a client that hung up mid-answer is part of the tests


def load_script(path):
    items = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                items.append(json.loads(line))
    return items


def serve_stdin(state):
    """Control commands on stdin, one JSON line each; EOF ends the process."""
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            reply = state.control(json.loads(line))
        except (ValueError, TypeError, AttributeError) as e:
            reply = {"error": str(e)}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()
    os._exit(0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--key", help="the API key the server accepts (default: no auth)")
    ap.add_argument("--key-env", help="read the accepted key from this env var")
    ap.add_argument("--script", help="JSONL file of answers, used in order")
    ap.add_argument("--delay", type=float, default=0.0, help="seconds before every answer")
    ap.add_argument("--fail-next", default="",
                    help="comma-separated faults for the first requests (429,500,drop,...)")
    ap.add_argument("--retry-after", type=int, help="retry-after of injected 429s")
    args = ap.parse_args()

    key = args.key if args.key is not None else (
        os.environ.get(args.key_env) if args.key_env else None)
    defaults = {"delay_s": args.delay, "retry_after": args.retry_after,
                "fail_next": [int(f) if f.isdigit() else f
                              for f in args.fail_next.split(",") if f]}
    state = State(key, load_script(args.script) if args.script else [], defaults)
    server = Server(("127.0.0.1", args.port), Handler)
    server.state = state
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sys.stdout.write("%d\n" % server.server_address[1])
    sys.stdout.flush()
    serve_stdin(state)


if __name__ == "__main__":
    main()
