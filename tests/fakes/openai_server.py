#!/usr/bin/env python3
"""openai_server.py - a fake OpenAI-compatible chat completions server, for tests.

It listens on 127.0.0.1 (port 0 unless --port), prints the port as the first line of stdout,
and exits when its stdin closes, so a test that dies never leaves it behind.

POST /v1/chat/completions is checked the way the real API checks it (method, path,
content-type, bearer key, JSON body fields and their types, unknown fields refused); a wrong
request gets the 400 (401 for the key) that the real API would send, in its error shape
{"error": {"message", "type", "param", "code"}}. A right one is answered from the script
(--script FILE: JSONL, one {"content": "...", optional "usage", "finish_reason", "model"} per
line, used in order), or, without a script, with "echo: <last user message>".

Faults are chosen per test, over HTTP or over stdin (one JSON object per line, answered with
one JSON line on stdout):
  {"fail_next": [429, 500, "drop", "slow", "quota", "malformed", "missing", 401, ...],
   "retry_after": 1, "delay_s": 0.2, "slow_s": 5, "script": [{...}], "reset": true}
  {"log": true}   -> {"requests": [{"method", "path", "headers", "body"}, ...]}
Over HTTP: POST /_control with the first kind of object, GET /_log.
Each fault applies to one incoming API request, in order: a status answers with that status
in the provider's shape (429 with Retry-After when retry_after is set), "drop" closes the
connection without an answer, "slow" answers after slow_s seconds, "quota" is a 429
insufficient_quota, "malformed" a 200 that is not JSON, "missing" a 200 without choices.
delay_s delays every answer (the benchmark's 200 ms model).
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

API_PATH = "/v1/chat/completions"
ROLES = ("system", "developer", "user", "assistant", "tool", "function")
KNOWN_FIELDS = {
    "model", "messages", "temperature", "max_tokens", "max_completion_tokens", "top_p", "n",
    "stream", "stream_options", "stop", "presence_penalty", "frequency_penalty", "logit_bias",
    "logprobs", "top_logprobs", "user", "seed", "response_format", "tools", "tool_choice",
    "parallel_tool_calls", "metadata", "store", "reasoning_effort", "service_tier",
}
STATUS_TYPES = {
    400: "invalid_request_error", 401: "invalid_request_error", 403: "permission_denied",
    404: "invalid_request_error", 429: "rate_limit_exceeded", 500: "server_error",
    502: "server_error", 503: "server_error",
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


def error_body(message, etype, param=None, code=None):
    return {"error": {"message": message, "type": etype, "param": param, "code": code}}


def words(text):
    return len(str(text).split())


def content_text(content):
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def check_body(body):
    """The 400 the real API would send for this body, or None when it is right."""
    if not isinstance(body, dict):
        return error_body("The request body must be a JSON object.", "invalid_request_error")
    for field in body:
        if field not in KNOWN_FIELDS:
            return error_body("Unrecognized request argument supplied: %s" % field,
                              "invalid_request_error")
    if not isinstance(body.get("model"), str) or not body["model"]:
        return error_body("you must provide a model parameter", "invalid_request_error")
    msgs = body.get("messages")
    if msgs is None:
        return error_body("Missing required parameter: 'messages'.", "invalid_request_error",
                          "messages", "missing_required_parameter")
    if not isinstance(msgs, list) or not msgs:
        return error_body("Invalid 'messages': empty array. Expected an array with minimum "
                          "length 1.", "invalid_request_error", "messages", "empty_array")
    for i, m in enumerate(msgs):
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            return error_body("Invalid value: %r. Supported values are: %s." %
                              (m.get("role") if isinstance(m, dict) else m, ", ".join(ROLES)),
                              "invalid_request_error", "messages[%d].role" % i, "invalid_value")
        if not isinstance(m.get("content"), (str, list)):
            return error_body("Invalid type for 'messages[%d].content': expected one of a "
                              "string or array of objects." % i, "invalid_request_error",
                              "messages[%d].content" % i, "invalid_type")
    t = body.get("temperature")
    if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float)) or
                          not 0 <= t <= 2):
        return error_body("Invalid 'temperature': expected a decimal between 0 and 2.",
                          "invalid_request_error", "temperature", "invalid_value")
    mt = body.get("max_tokens")
    if mt is not None and (isinstance(mt, bool) or not isinstance(mt, int) or mt < 1):
        return error_body("Invalid 'max_tokens': expected an integer of at least 1.",
                          "invalid_request_error", "max_tokens", "invalid_value")
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the host's connection cache expects
    # Headers and body in one write, sent at once: otherwise Nagle and the client's delayed
    # ACK add 40 ms to every answer, which the benchmark would blame on the client.
    wbufsize = 1 << 16
    disable_nagle_algorithm = True
    server_version = "fake-openai/1.0"

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
        self.send_header("x-request-id", "req_" + uuid.uuid4().hex[:24])
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
            self.send_json(429, error_body(
                "You exceeded your current quota, please check your plan and billing "
                "details.", "insufficient_quota", None, "insufficient_quota"))
            return True
        if fault == "malformed":
            self.send_json(200, b'{"id": "chatcmpl-broken", "choices": [')
            return True
        if fault == "missing":
            self.send_json(200, {"id": "chatcmpl-" + uuid.uuid4().hex[:24],
                                 "object": "chat.completion", "created": int(time.time()),
                                 "model": "gpt-fake"})
            return True
        if isinstance(fault, int):
            extra = {}
            if fault == 429 and retry_after is not None:
                extra["Retry-After"] = "%g" % retry_after
            messages = {429: "Rate limit reached for requests. Please try again later.",
                        401: "Incorrect API key provided.",
                        403: "You are not allowed to sample from this model."}
            self.send_json(fault, error_body(
                messages.get(fault, "The server had an error while processing your request."),
                STATUS_TYPES.get(fault, "server_error"), None,
                "rate_limit_exceeded" if fault == 429 else None), extra)
            return True
        return False

    def check_request(self, body):
        """The status and body of the refusal the real API would send, or None."""
        key = self.server.state.key
        auth = self.headers.get("Authorization")
        if key is not None:
            if not auth:
                return 401, error_body(
                    "You didn't provide an API key. You need to provide your API key in an "
                    "Authorization header using Bearer auth (i.e. Authorization: Bearer "
                    "YOUR_KEY).", "invalid_request_error")
            given = auth[7:] if auth.startswith("Bearer ") else auth
            if given != key:
                # The real API masks most of the key; this fake echoes it whole, so the
                # tests can check that the client never repeats it.
                return 401, error_body("Incorrect API key provided: %s." % given,
                                       "invalid_request_error", None, "invalid_api_key")
        if self.path != API_PATH:
            return 404, error_body("Invalid URL (%s %s)" % (self.command, self.path),
                                   "invalid_request_error")
        if self.command != "POST":
            return 405, error_body("Method %s not allowed on %s" % (self.command, self.path),
                                   "invalid_request_error")
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/json":
            return 400, error_body("Invalid Content-Type header (%r): application/json is "
                                   "required." % ctype, "invalid_request_error")
        if isinstance(body, dict) and "_raw" in body:
            return 400, error_body("We could not parse the JSON body of your request.",
                                   "invalid_request_error")
        bad = check_body(body)
        return (400, bad) if bad else None

    def answer(self, body):
        st = self.server.state
        with st.lock:
            scripted = st.scripted
            item = st.script.pop(0) if st.script else None
            st.served += 1
            served = st.served
        if item is None and scripted:
            return self.send_json(400, error_body(
                "fake: the script ran out after %d answers" % (served - 1),
                "invalid_request_error"))
        msgs = body["messages"]
        if item is None:
            last = [m for m in msgs if m.get("role") == "user"]
            item = {"content": "echo: " + (content_text(last[-1]["content"]) if last else "")}
        content = item.get("content", "")
        usage = item.get("usage", {})
        prompt = usage.get("prompt_tokens", usage.get("input_tokens",
                                                       sum(words(content_text(m["content"]))
                                                           for m in msgs)))
        completion = usage.get("completion_tokens", usage.get("output_tokens", words(content)))
        self.send_json(200, {
            "id": "chatcmpl-" + uuid.uuid4().hex[:24],
            "object": "chat.completion",
            "created": int(time.time()),
            "model": item.get("model", body["model"]),
            "system_fingerprint": "fp_fake",
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "logprobs": None,
                "finish_reason": item.get("finish_reason", "stop"),
            }],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                      "total_tokens": prompt + completion},
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
    request_queue_size = 128  # the benchmark opens 16 connections at once

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
    ap.add_argument("--retry-after", type=int, help="Retry-After of injected 429s")
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
