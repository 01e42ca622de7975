"""Small MCP clients over the Python standard library, for the tests of `rlm mcp`: one over
stdio (a child process, messages read on a thread), one over streamable HTTP (http.client,
SSE parsed by hand). Every wait has a deadline."""
import http.client
import json
import os
import queue
import socket
import subprocess
import threading
import time

MODERN = "2026-07-28"
LEGACY = "2025-11-25"


def modern_meta(**extra):
    meta = {"io.modelcontextprotocol/protocolVersion": MODERN,
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "rlm-test", "version": "1"}}
    meta.update(extra)
    return meta


def wait_until(what, fn, timeout=60.0, interval=0.1):
    """Polls fn until it returns a true value; fails with `what` after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(interval)


def process_alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


class StdioClient:
    def __init__(self, rlm, *args, env=None, cwd=None):
        self.proc = subprocess.Popen([rlm, "mcp", *args], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=env, cwd=cwd)
        self.messages = queue.Queue()
        self.raw_lines = []
        self.stderr_lines = []
        self.next_id = 1
        self.pending = {}
        self.notifications = []
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.raw_lines.append(line)
            self.messages.put(line)
        self.messages.put(None)

    def _read_err(self):
        for line in self.proc.stderr:
            self.stderr_lines.append(line.decode("utf-8", "replace"))

    def stderr(self):
        return "".join(self.stderr_lines)

    def send(self, msg):
        data = msg if isinstance(msg, (bytes, str)) else json.dumps(msg)
        if isinstance(data, str):
            data = data.encode()
        self.proc.stdin.write(data + b"\n")
        self.proc.stdin.flush()

    def _pump(self, timeout):
        line = self.messages.get(timeout=timeout)
        if line is None:
            raise EOFError("the server closed stdout; stderr:\n" + self.stderr())
        msg = json.loads(line)
        if "id" in msg and "method" not in msg:
            self.pending[json.dumps(msg["id"])] = msg
        else:
            self.notifications.append(msg)
        return msg

    def response(self, req_id, timeout=120.0):
        key = json.dumps(req_id)
        deadline = time.monotonic() + timeout
        while key not in self.pending:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no response to %s within %s s" % (req_id, timeout))
            try:
                self._pump(left)
            except queue.Empty:
                pass
        return self.pending.pop(key)

    def request(self, method, params=None, timeout=120.0, req_id=None):
        req_id = self.start(method, params, req_id)
        return self.response(req_id, timeout)

    def start(self, method, params=None, req_id=None):
        if req_id is None:
            req_id = self.next_id
            self.next_id += 1
        msg = {"jsonrpc": "2.0", "id": req_id, "method": method}
        if params is not None:
            msg["params"] = params
        self.send(msg)
        return req_id

    def call(self, name, arguments=None, meta=None, timeout=120.0):
        params = {"name": name, "arguments": arguments or {}, "_meta": meta or modern_meta()}
        return self.request("tools/call", params, timeout)

    def close(self, timeout=60):
        try:
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        return self.proc.wait(timeout=timeout)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                f.close()
            except (BrokenPipeError, OSError):
                pass


class HttpServer:
    """`rlm mcp --http` on a free loopback port."""

    def __init__(self, rlm, tmpdir, *args, token="test-token-0123456789abcdef", env=None):
        self.port_file = os.path.join(tmpdir, "port-%d" % time.monotonic_ns())
        self.token = token
        env = dict(env or os.environ)
        argv = [rlm, "mcp", "--http", "--listen", "127.0.0.1:0", "--port-file",
                self.port_file, *args]
        if token:
            env["RLM_TEST_MCP_TOKEN"] = token
            argv += ["--token-env", "RLM_TEST_MCP_TOKEN"]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env)
        self.stderr_lines = []
        threading.Thread(target=self._read_err, daemon=True).start()

        def port():
            if self.proc.poll() is not None:
                raise AssertionError("rlm mcp --http exited %s:\n%s" %
                                     (self.proc.returncode, "".join(self.stderr_lines)))
            try:
                with open(self.port_file) as f:
                    return int(f.read().strip() or 0)
            except (FileNotFoundError, ValueError):
                return 0
        self.port = wait_until("the HTTP server's port file", port, timeout=90)

    def _read_err(self):
        for line in self.proc.stderr:
            self.stderr_lines.append(line.decode("utf-8", "replace"))

    def stderr(self):
        return "".join(self.stderr_lines)

    def headers(self, method=None, name=None, version=MODERN, **extra):
        h = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        if self.token:
            h["Authorization"] = "Bearer " + self.token
        if version:
            h["MCP-Protocol-Version"] = version
        if method:
            h["Mcp-Method"] = method
        if name:
            h["Mcp-Name"] = name
        h.update(extra)
        return h

    def post(self, body, headers=None, timeout=120):
        """One POST; returns (status, headers, [messages]) with SSE events parsed."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        conn.request("POST", "/mcp", body=data, headers=headers or self.headers())
        resp = conn.getresponse()
        raw = resp.read()
        conn.close()
        ctype = resp.getheader("Content-Type") or ""
        messages = []
        if "text/event-stream" in ctype:
            for block in raw.decode().split("\n\n"):
                data_lines = [ln[5:].strip() for ln in block.split("\n") if ln.startswith("data:")]
                if data_lines:
                    messages.append(json.loads("\n".join(data_lines)))
        elif raw.strip():
            messages.append(json.loads(raw))
        return resp.status, dict(resp.getheaders()), messages

    def rpc(self, method, params=None, req_id=1, name=None, meta=True, **extra_headers):
        """A modern request with the headers the spec asks for."""
        params = dict(params or {})
        if meta:
            params["_meta"] = modern_meta(**({} if meta is True else meta))
        body = {"jsonrpc": "2.0", "id": req_id, "method": method, "params": params}
        hdrs = self.headers(method=method, name=name or params.get("name"), **extra_headers)
        return self.post(body, hdrs)

    def call(self, name, arguments=None, meta=True):
        status, _, msgs = self.rpc("tools/call", {"name": name, "arguments": arguments or {}},
                                   meta=meta)
        assert status == 200, (status, msgs)
        return msgs[-1], msgs[:-1]

    def raw_socket_request(self, body, headers):
        """Sends a POST on a raw socket and returns it once the status line arrived."""
        s = socket.create_connection(("127.0.0.1", self.port), timeout=60)
        data = json.dumps(body).encode()
        head = "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Length: %d\r\n" % (
            self.port, len(data))
        head += "".join("%s: %s\r\n" % kv for kv in headers.items()) + "\r\n"
        s.sendall(head.encode() + data)
        got = b""
        while b"\r\n" not in got:
            chunk = s.recv(4096)
            if not chunk:
                break
            got += chunk
        return s, got

    def stop(self, sig=None, timeout=60):
        if self.proc.poll() is None:
            if sig:
                self.proc.send_signal(sig)
            else:
                self.proc.terminate()
        rc = self.proc.wait(timeout=timeout)
        self.proc.stdout.close()
        self.proc.stderr.close()
        return rc
