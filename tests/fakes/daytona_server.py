#!/usr/bin/env python3
"""daytona_server.py - a faithful local fake of the Daytona API, for tests (stdlib only).

    daytona_server.py [--port N] [--port-file F] [--token T] [--root DIR] [--log FILE]

Serves, on 127.0.0.1, the control plane under /api (sandbox create/get/list/delete/start/stop,
autostop, toolbox-proxy-url, volumes) and the toolbox under /toolbox/{sandboxId} (process
execute, sessions with async commands, input and logs, files upload/download/list/info/folder/
delete, git clone, work-dir, user-home-dir, version), with the shapes and status codes of
/work/shared/reference/daytona-api.md. Every request must carry `Authorization: Bearer T`.

Each sandbox is a real directory (its home, which stands for /home/daytona) where commands
really run, as real processes, in their own process groups; stopping or deleting a sandbox
kills them. Volumes are directories that outlive sandboxes; a mount path under /home/daytona
becomes a symlink in the sandbox home. There is no mount namespace, so `/home/daytona` in a
command line (the driver's --volume argument, say) is rewritten to the sandbox's home, as the
toolbox's file paths are. When the fake runs as root, sandbox processes run as an
unprivileged uid with an RLIMIT_NPROC, so user code cannot take the machine down.

As the real daemon (v0.190 apps/daemon/pkg/session/input.go): session input gets a newline
appended when it has none, is echoed into the command's stdout log unless the command was
started with suppressInputEcho, and is answered 204 (410 once the command has ended). As go-git:
git clone's `branch` must name a branch (refs/heads/...); a tag or a commit there is a 404.

Test control (no auth): GET /_fake/sandboxes (sandboxes still alive), GET /_fake/requests
(the request log), GET /_fake/inflight (requests being served, with their age_s), POST /_fake/faults (a list of fault rules, replacing the current ones, and
releasing requests held by "hang"), POST /_fake/reset, POST /_fake/sandboxes/{id}/stop (stops
it as auto-stop would), POST /_fake/volumes/{name}/state {"state": S} (pins a volume's state).
A fault rule: {"match": regex on "METHOD /path", "body": regex on the request body (optional),
"nth": N (the Nth matching request from now,
default 1), "times": how many in a row (default 1), "action": "500" | "502" | "429" | "401" |
"403" | "drop" | "lose_reply" (carried out, answer dropped) | "slow" | "hang" (a frozen server:
no answer until the rules are replaced or `seconds` pass, then the connection is dropped and
the request never carried out) | "stuck_creating" | "stop_after" | "goes_to_state" (the created
sandbox ends in `state`, e.g. stopped, archived, destroying, instead of started) |
"error_state" | "build_failed" | "quota", "retry_after": s, "delay": s (slow),
"seconds": s (stop_after: the created sandbox stops by itself then; hang: the longest hold)}.
"""
import argparse
import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlparse

VERSION = "0.190.0-fake"
SANDBOX_UID = 64123  # used when running as root; no passwd entry needed
# One uid serves every sandbox, so this RLIMIT_NPROC bounds all of them together (a real
# Daytona sandbox is a container with a pids limit of its own): --nproc-limit raises it for
# runs of hundreds of sandboxes at once.
NPROC_LIMIT = 512


def iso_now():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class HttpError(Exception):
    def __init__(self, status, message="", style="api", code=None, empty=False, headers=None):
        super().__init__(message)
        self.status, self.message, self.style, self.code = status, message, style, code
        self.empty, self.headers = empty, headers or {}


REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           408: "Request Timeout", 409: "Conflict", 429: "Too Many Requests",
           500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}
CODES = {400: "BAD_REQUEST", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND",
         408: "REQUEST_TIMEOUT", 409: "CONFLICT", 500: "INTERNAL_SERVER_ERROR"}


class Volume:
    def __init__(self, state, name):
        self.id = str(uuid.uuid4())
        self.name = name
        self.dir = os.path.join(state.root, "volumes", self.id)
        os.makedirs(self.dir)
        state.chown(self.dir)
        self.state = "pending_create"
        self.created = iso_now()
        self.ready_at = time.time() + state.volume_ready_s

    def dto(self, org):
        if self.state == "pending_create" and time.time() >= self.ready_at:
            self.state = "ready"
        return {"id": self.id, "name": self.name, "organizationId": org, "state": self.state,
                "createdAt": self.created, "updatedAt": self.created, "lastUsedAt": None,
                "errorReason": None}


class Command:
    def __init__(self, cid, command, proc, out_path, err_path, echo):
        self.id, self.command, self.proc = cid, command, proc
        self.out_path, self.err_path = out_path, err_path
        self.echo = echo  # input is copied into the stdout log (no suppressInputEcho)
        self.exit_code = None


class Sandbox:
    def __init__(self, state, body):
        self.id = str(uuid.uuid4())
        self.name = body.get("name") or self.id
        self.labels = dict(body.get("labels") or {})
        self.env = dict(body.get("env") or {})
        self.snapshot = body.get("snapshot") or ("" if body.get("buildInfo") else "daytona-small")
        self.build = body.get("buildInfo")
        self.cpu = body.get("cpu") or 1
        self.memory = body.get("memory") or 1
        self.disk = body.get("disk") or 3
        self.target = body.get("target") or "us"
        self.auto_stop = body.get("autoStopInterval", 15)
        self.auto_delete = body.get("autoDeleteInterval", -1)
        self.volumes = body.get("volumes") or []
        self.state = "creating"
        self.desired = "started"
        self.error_reason = None
        self.created = iso_now()
        self.last_activity = time.time()
        self.base = os.path.join(state.root, "sandboxes", self.id)
        self.home = os.path.join(self.base, "home")
        os.makedirs(self.home)
        state.chown(self.base)
        state.chown(self.home)
        self.procs = set()  # Popen objects whose process groups die with the sandbox
        self.sessions = {}
        self.lock = threading.Lock()
        self.ready_at = time.time() + state.start_delay_s
        self.stop_at = None

    def dto(self, state, full=True):
        d = {"id": self.id, "organizationId": state.org, "name": self.name, "user": "daytona",
             "labels": self.labels, "public": False, "target": self.target, "cpu": self.cpu,
             "gpu": 0, "memory": self.memory, "disk": self.disk, "snapshot": self.snapshot,
             "state": self.state, "desiredState": self.desired,
             "errorReason": self.error_reason, "autoStopInterval": self.auto_stop,
             "autoArchiveInterval": 10080, "autoDeleteInterval": self.auto_delete,
             "createdAt": self.created, "updatedAt": iso_now(),
             "toolboxProxyUrl": state.base_url + "/toolbox", "daemonVersion": VERSION}
        if full:
            d.update({"env": self.env, "volumes": self.volumes, "networkBlockAll": False})
            if self.build:
                d["buildInfo"] = self.build
        return d

    def kill_all(self):
        for s in self.sessions.values():
            for c in s.values():
                self.procs.add(c.proc)
        for p in list(self.procs):
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        for p in list(self.procs):
            try:
                p.wait(timeout=5)
            except Exception:
                pass
        self.procs.clear()
        self.sessions.clear()


class State:
    def __init__(self, args):
        self.root = os.path.abspath(args.root or tempfile.mkdtemp(prefix="dtfake-"))
        os.makedirs(os.path.join(self.root, "sandboxes"), exist_ok=True)
        os.makedirs(os.path.join(self.root, "volumes"), exist_ok=True)
        os.chmod(self.root, 0o755)
        self.token = args.token
        self.org = "org-fake"
        self.lock = threading.RLock()
        self.sandboxes = {}
        self.volumes = {}
        self.faults = []
        self.thaw = threading.Event()  # set when the rules change: "hang" lets go
        self.requests = []
        self.inflight = {}  # request id -> log entry, while the request is being served
        self.log_file = open(args.log, "a") if args.log else None
        self.log_bodies = args.log_bodies
        self.start_delay_s = args.start_delay
        self.volume_ready_s = args.volume_ready
        self.minute_s = args.minute_seconds
        self.base_url = ""
        self.as_root = os.geteuid() == 0
        self.nproc_limit = args.nproc_limit

    def chown(self, path):
        if self.as_root:
            os.chown(path, SANDBOX_UID, SANDBOX_UID)

    def makedirs(self, path, mode=0o755):
        """mkdir -p whose new directories belong to the sandbox user, as in a container."""
        missing = []
        while path and not os.path.isdir(path):
            missing.append(path)
            path = os.path.dirname(path)
        for p in reversed(missing):
            os.mkdir(p, mode)
            self.chown(p)

    def advance(self, sb):
        """Moves a sandbox along its state machine; called on every look-up."""
        now = time.time()
        stuck = getattr(sb, "stuck_until", None)
        if sb.state == "creating" and stuck is not None and now >= stuck:
            # The server-side timeout for stuck states (daytona PRs #2698, #3026).
            sb.state, sb.error_reason = "error", "timed out while creating"
        if sb.state == "creating" and now >= sb.ready_at and stuck is None:
            sb.state = getattr(sb, "end_state", None) or "started"
            if sb.state != "started":
                sb.desired = {"stopping": "stopped", "destroying": "destroyed",
                              "archiving": "archived", "pausing": "paused"}.get(
                                  sb.state, sb.state)
                if sb.state == "stopped":
                    sb.stopped_at = now
        if (sb.state == "stopped" and sb.auto_delete >= 0 and
                now - getattr(sb, "stopped_at", now) >= sb.auto_delete * self.minute_s):
            self.destroy(sb)  # autoDeleteInterval: minutes after it stopped
            return
        if sb.state == "started":
            stop_after = sb.auto_stop * self.minute_s if sb.auto_stop else None
            if (sb.stop_at and now >= sb.stop_at) or (
                    stop_after and now - sb.last_activity > stop_after):
                self.stop(sb)

    def stop(self, sb):
        with sb.lock:
            sb.kill_all()
        sb.state = "stopped"
        sb.desired = "stopped"
        sb.stop_at = None
        sb.stopped_at = time.time()
        if sb.auto_delete == 0:
            self.destroy(sb)

    def destroy(self, sb):
        with sb.lock:
            sb.kill_all()
        sb.state = "destroyed"
        self.sandboxes.pop(sb.id, None)
        for v in sb.volumes:
            link = mount_link(sb, v.get("mountPath", ""))
            if link and os.path.islink(link):
                os.unlink(link)
        shutil.rmtree(sb.base, ignore_errors=True)

    def fault_for(self, key, body):
        with self.lock:
            for rule in self.faults:
                if not re.search(rule.get("match", "."), key):
                    continue
                if "body" in rule and not re.search(rule["body"],
                                                    body.decode("utf-8", "replace")):
                    continue
                rule["_seen"] = rule.get("_seen", 0) + 1
                first = rule.get("nth", 1)
                if first <= rule["_seen"] < first + rule.get("times", 1):
                    return rule
        return None

    def log(self, entry):
        with self.lock:
            self.requests.append(entry)
            if self.log_file:
                self.log_file.write(json.dumps(entry) + "\n")
                self.log_file.flush()


def in_sandbox(sb, command):
    """A command line as the sandbox would see it: /home/daytona is the sandbox's home."""
    return re.sub(r"/home/daytona(?![\w.-])", lambda _: sb.home, command)


def mount_link(sb, mount_path):
    """The fake's stand-in for a mount: /home/daytona/X becomes <sandbox home>/X."""
    if not mount_path.startswith("/home/daytona/"):
        return None
    rel = mount_path[len("/home/daytona/"):].strip("/")
    return os.path.join(sb.home, rel) if rel and ".." not in rel.split("/") else None


def parse_multipart(body, ctype):
    m = re.search(r'boundary="?([^";]+)"?', ctype or "")
    if not m:
        raise HttpError(400, "bad request: no multipart boundary", style="toolbox")
    delim = b"--" + m.group(1).encode()
    parts = []
    for chunk in body.split(delim)[1:]:
        if chunk.startswith(b"--"):
            break
        chunk = chunk[2:] if chunk.startswith(b"\r\n") else chunk
        head, _, data = chunk.partition(b"\r\n\r\n")
        if data.endswith(b"\r\n"):
            data = data[:-2]
        name = re.search(rb'name="([^"]*)"', head)
        fname = re.search(rb'filename="([^"]*)"', head)
        parts.append((name.group(1).decode() if name else "",
                      fname.group(1).decode() if fname else None, data))
    return parts


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-daytona"

    def log_message(self, fmt, *args):
        pass

    # ---- plumbing ------------------------------------------------------------------------
    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = bytearray()
            while True:
                size = int(self.rfile.readline().strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                data += self.rfile.read(size)
                self.rfile.readline()
            return bytes(data)
        return self.rfile.read(n) if n else b""

    def reply(self, status, body=b"", ctype="application/json", headers=None):
        if getattr(self, "lose_reply", False):
            # the request was carried out, but its answer is lost on the way back
            self.close_connection = True
            self.status = 0
            return
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("X-Request-Id", self.request_id)
        if body:
            self.send_header("Content-Type", ctype)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.status = status

    def error_reply(self, e):
        if e.empty:
            return self.reply(e.status, b"", headers=e.headers)
        if e.style == "api":
            body = {"path": self.path, "timestamp": iso_now(), "statusCode": e.status,
                    "error": REASONS.get(e.status, "Error"), "message": e.message}
        else:
            body = {"statusCode": e.status, "message": e.message,
                    "code": e.code or CODES.get(e.status, "INTERNAL_SERVER_ERROR"),
                    "timestamp": iso_now(), "path": self.path, "method": self.command}
        self.reply(e.status, body, headers=e.headers)

    def dispatch(self, method):
        st = self.server.state
        self.request_id = uuid.uuid4().hex[:16]
        self.status = 0
        url = urlparse(self.path)
        self.query = {k: v[0] for k, v in parse_qs(url.query).items()}
        path = unquote(url.path)
        started = time.time()
        body = self.read_body()
        entry = {"t": started, "method": method, "path": path, "query": self.query,
                 "headers": {k: (v if k.lower() != "authorization" else "Bearer ***")
                             for k, v in self.headers.items()},
                 "request_id": self.request_id}
        if self.headers.get("Content-Type", "").startswith("application/json") and body:
            try:
                j = json.loads(body)
                if self.server.state.log_bodies:  # benchmarks replay requests verbatim
                    entry["body"] = j
                else:
                    entry["body"] = {k: (v if len(json.dumps(v)) < 300 else "...")
                                     for k, v in j.items()} if isinstance(j, dict) else "..."
            except ValueError:
                entry["body"] = "(invalid json)"
        if not path.startswith("/_fake/"):
            with st.lock:
                st.inflight[self.request_id] = entry
        try:
            if path.startswith("/_fake/"):
                self.control(method, path, body)
                return
            key = method + " " + path
            rule = st.fault_for(key, body)
            if rule and self.inject(rule):
                entry["fault"] = rule["action"]
                return
            self.check_auth()
            self.route(method, path, body, rule)
        except HttpError as e:
            try:
                self.error_reply(e)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client gave up (a cancel, a deadline)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as e:  # a bug in the fake: say so loudly
            traceback.print_exc()
            self.error_reply(HttpError(500, "fake server bug: %r" % e))
        finally:
            if not path.startswith("/_fake/"):
                entry["status"] = self.status
                entry["ms"] = round((time.time() - started) * 1000, 1)
                with st.lock:
                    st.inflight.pop(self.request_id, None)
                st.log(entry)

    def inject(self, rule):
        """Applies a fault rule; True when the request was answered (or dropped) by it."""
        a = rule["action"]
        if a == "drop":
            self.close_connection = True
            return True
        if a == "slow":
            time.sleep(rule.get("delay", 2))
            return False
        if a == "hang":
            thaw = self.server.state.thaw  # this rule set's: replacing the rules sets it
            thaw.wait(rule.get("seconds", 3600))
            self.close_connection = True
            return True
        if a == "lose_reply":
            self.lose_reply = True
            return False
        if a in ("stuck_creating", "stop_after", "error_state", "build_failed",
                 "goes_to_state"):
            return False  # applied by the handler that creates the sandbox
        if a == "502":
            self.error_reply(HttpError(502, empty=True))
            return True
        if a == "429":
            ra = str(rule.get("retry_after", 1))
            self.error_reply(HttpError(429, "ThrottlerException: Too Many Requests",
                                       headers={"Retry-After-authenticated": ra,
                                                "Retry-After": ra}))
            return True
        if a == "quota":
            self.error_reply(HttpError(400, "Total CPU limit exceeded. Maximum allowed: 10"))
            return True
        status = int(a)
        msg = {401: "Invalid credentials", 403: "Forbidden resource"}.get(status,
                                                                          "injected failure")
        self.error_reply(HttpError(status, msg))
        return True

    def check_auth(self):
        auth = self.headers.get("Authorization", "")
        if auth != "Bearer " + self.server.state.token:
            raise HttpError(401, "Invalid credentials")

    def json_body(self, body):
        try:
            j = json.loads(body or b"{}")
        except ValueError:
            raise HttpError(400, "invalid JSON body")
        if not isinstance(j, dict):
            raise HttpError(400, "body must be an object")
        return j

    # ---- test control --------------------------------------------------------------------
    def control(self, method, path, body):
        st = self.server.state
        with st.lock:
            if path == "/_fake/sandboxes" and method == "GET":
                for sb in list(st.sandboxes.values()):
                    st.advance(sb)
                return self.reply(200, [sb.dto(st, False) for sb in st.sandboxes.values()
                                        if sb.state != "destroyed"])
            if path == "/_fake/requests":
                return self.reply(200, st.requests)
            if path == "/_fake/inflight":
                now = time.time()
                return self.reply(200, [dict(e, age_s=now - e["t"])
                                        for e in st.inflight.values()])
            if path == "/_fake/faults" and method == "POST":
                st.faults = json.loads(body or b"[]")
                st.thaw.set()
                st.thaw = threading.Event()
                return self.reply(200, {"faults": len(st.faults)})
            if path == "/_fake/reset" and method == "POST":
                st.faults, st.requests = [], []
                st.thaw.set()
                st.thaw = threading.Event()
                return self.reply(200, {})
            m = re.fullmatch(r"/_fake/volumes/([^/]+)/state", path)
            if m and method == "POST":
                v = next((v for v in st.volumes.values() if v.name == m.group(1)), None)
                if not v:
                    raise HttpError(404, "no volume %s" % m.group(1))
                v.state = json.loads(body)["state"]
                return self.reply(200, v.dto(st.org))
            m = re.fullmatch(r"/_fake/sandboxes/([^/]+)/stop", path)
            if m and m.group(1) in st.sandboxes:
                st.stop(st.sandboxes[m.group(1)])
                return self.reply(200, {})
        raise HttpError(404, "no such control endpoint")

    # ---- routing -------------------------------------------------------------------------
    def route(self, method, path, body, rule):
        st = self.server.state
        if path.startswith("/api/"):
            return self.api(method, path[4:], body, rule)
        m = re.fullmatch(r"/toolbox/([^/]+)(/.*)", path)
        if m:
            with st.lock:
                sb = st.sandboxes.get(m.group(1))
                if sb:
                    st.advance(sb)
            if not sb:
                raise HttpError(400, "bad request: failed to get sandbox public status: "
                                "sandbox not found", style="toolbox")
            if sb.state != "started":
                raise HttpError(400, "bad request: no IP address found. Is the Sandbox "
                                "started?", style="toolbox")
            sb.last_activity = time.time()
            return self.toolbox(sb, method, m.group(2), body)
        raise HttpError(404, "Cannot %s %s" % (method, path))

    def get_sandbox(self, ident):
        st = self.server.state
        sb = st.sandboxes.get(ident) or next(
            (s for s in st.sandboxes.values() if s.name == ident), None)
        if not sb:
            raise HttpError(404, "Sandbox with ID or name %s not found" % ident)
        st.advance(sb)
        if sb.state == "destroyed":
            raise HttpError(404, "Sandbox with ID or name %s not found" % ident)
        return sb

    def api(self, method, path, body, rule):
        st = self.server.state
        with st.lock:
            if path == "/sandbox" and method == "POST":
                return self.create_sandbox(self.json_body(body), rule)
            if path == "/sandbox" and method == "GET":
                return self.list_sandboxes()
            m = re.fullmatch(r"/sandbox/([^/]+)(/.*)?", path)
            if m:
                sb = self.get_sandbox(m.group(1))
                sub = m.group(2) or ""
                if sub == "" and method == "GET":
                    return self.reply(200, sb.dto(st))
                if sub == "" and method == "DELETE":
                    if sb.state in ("creating", "starting"):
                        raise HttpError(409, "Sandbox state change in progress")
                    dto = sb.dto(st)
                    dto["desiredState"] = "destroyed"
                    dto["name"] = "DESTROYED_%s_%d" % (sb.name, int(time.time() * 1000))
                    st.destroy(sb)
                    return self.reply(200, dto)
                if sub == "/stop" and method == "POST":
                    if sb.state != "started":
                        raise HttpError(400, "Sandbox is not in a stoppable state")
                    st.stop(sb)
                    return self.reply(200, sb.dto(st))
                if sub == "/start" and method == "POST":
                    if sb.state == "stopped":
                        sb.state, sb.desired = "started", "started"
                        sb.last_activity = time.time()
                    return self.reply(200, sb.dto(st))
                m2 = re.fullmatch(r"/autostop/(\d+)", sub)
                if m2 and method == "POST":
                    sb.auto_stop = int(m2.group(1))
                    return self.reply(201, b"")
                if sub == "/toolbox-proxy-url" and method == "GET":
                    return self.reply(200, {"url": st.base_url + "/toolbox"})
                if sub == "/last-activity" and method == "POST":
                    sb.last_activity = time.time()
                    return self.reply(201, b"")
                if sub == "/labels" and method == "PUT":
                    sb.labels = dict(self.json_body(body).get("labels") or {})
                    return self.reply(200, {"labels": sb.labels})
            if path == "/volumes" and method == "POST":
                name = self.json_body(body).get("name")
                if not name:
                    raise HttpError(400, "name must be a string")
                if any(v.name == name for v in st.volumes.values()):
                    raise HttpError(400, "Volume with name %s already exists" % name)
                v = Volume(st, name)
                st.volumes[v.id] = v
                return self.reply(200, v.dto(st.org))
            if path == "/volumes" and method == "GET":
                return self.reply(200, [v.dto(st.org) for v in st.volumes.values()])
            m = re.fullmatch(r"/volumes/by-name/([^/]+)", path)
            if m and method == "GET":
                v = next((v for v in st.volumes.values() if v.name == m.group(1)), None)
                if not v:
                    raise HttpError(404, "Volume with name %s not found" % m.group(1))
                return self.reply(200, v.dto(st.org))
            m = re.fullmatch(r"/volumes/([^/]+)", path)
            if m and method in ("GET", "DELETE"):
                v = st.volumes.get(m.group(1))
                if not v:
                    raise HttpError(404, "Volume with ID %s not found" % m.group(1))
                if method == "DELETE":
                    del st.volumes[v.id]
                    shutil.rmtree(v.dir, ignore_errors=True)
                return self.reply(200, v.dto(st.org))
        raise HttpError(404, "Cannot %s /api%s" % (method, path))

    def create_sandbox(self, body, rule):
        st = self.server.state
        if body.get("buildInfo") and body.get("snapshot"):
            raise HttpError(400, "Cannot specify both snapshot and buildInfo")
        if body.get("snapshot") and any(body.get(k) for k in ("cpu", "memory", "disk", "gpu")):
            raise HttpError(400, "Cannot specify Sandbox resources when using a snapshot")
        snap = body.get("snapshot")
        if snap and snap.startswith("missing"):
            raise HttpError(400, "Snapshot %s not found. Did you add it through the Daytona "
                            "Dashboard?" % snap)
        mounts = []
        for v in body.get("volumes") or []:
            ref = v.get("volumeId", "")
            vol = st.volumes.get(ref) or next(
                (x for x in st.volumes.values() if x.name == ref), None)
            if not vol:
                raise HttpError(404, "Volume %s not found" % ref)
            if vol.dto(st.org)["state"] != "ready":
                raise HttpError(400, "Volume '%s' is not in a ready state. Current state: %s"
                                % (vol.name, vol.state))
            mounts.append((vol, v.get("mountPath", "")))
        if body.get("name") and any(s.name == body["name"] for s in st.sandboxes.values()):
            raise HttpError(409, "Sandbox with name %s already exists" % body["name"])
        sb = Sandbox(st, body)
        for vol, mp in mounts:
            link = mount_link(sb, mp)
            if not link:
                raise HttpError(400, "Invalid mount path %s" % mp)
            os.makedirs(os.path.dirname(link), exist_ok=True)
            os.symlink(vol.dir, link)
        st.sandboxes[sb.id] = sb
        action = rule and rule.get("action")
        if action == "stuck_creating":
            sb.stuck_until = time.time() + rule.get("seconds", 3)
        elif action in ("error_state", "build_failed"):
            sb.state = "error" if action == "error_state" else "build_failed"
            sb.error_reason = rule.get("reason", "injected: the runner could not start it")
        elif action == "stop_after":
            sb.stop_at = time.time() + rule.get("seconds", 2)
        elif action == "goes_to_state":
            sb.end_state = rule["state"]
        st.advance(sb)
        return self.reply(200, sb.dto(st))

    def list_sandboxes(self):
        st = self.server.state
        items = [sb for sb in list(st.sandboxes.values())]
        for sb in items:
            st.advance(sb)
        labels = self.query.get("labels")
        if labels:
            want = json.loads(labels)
            items = [sb for sb in items
                     if all(sb.labels.get(k) == v for k, v in want.items())]
        items = [sb.dto(st, False) for sb in items if sb.state != "destroyed"]
        limit = int(self.query.get("limit", 100))
        start = int(self.query.get("cursor") or 0)
        page = items[start:start + limit]
        nxt = str(start + limit) if start + limit < len(items) else None
        return self.reply(200, {"items": page, "nextCursor": nxt})

    # ---- toolbox -------------------------------------------------------------------------
    def resolve(self, sb, p):
        if p is None or p == "":
            return sb.home
        if p.startswith("/home/daytona"):
            p = sb.home + p[len("/home/daytona"):]
        elif p.startswith("~"):
            p = sb.home + p[1:]
        full = os.path.normpath(os.path.join(sb.home, p))
        return full

    def spawn(self, sb, argv, stdin, stdout, stderr, envs=None, cwd=None):
        st = self.server.state
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": sb.home,
               "LANG": "C.UTF-8", "USER": "daytona"}
        env.update(sb.env)
        env.update(envs or {})
        mem = max(1, int(sb.memory)) * 4 << 30

        def limits():
            import resource
            resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
            if st.as_root:
                resource.setrlimit(resource.RLIMIT_NPROC, (st.nproc_limit, st.nproc_limit))
                os.setgroups([])
                os.setgid(SANDBOX_UID)
                os.setuid(SANDBOX_UID)

        p = subprocess.Popen(argv, stdin=stdin, stdout=stdout, stderr=stderr, env=env,
                             cwd=cwd or sb.home, start_new_session=True, preexec_fn=limits)
        with sb.lock:
            sb.procs.add(p)
        return p

    def toolbox(self, sb, method, path, body):
        q = self.query
        if path == "/process/execute" and method == "POST":
            return self.execute(sb, self.json_body(body))
        if path in ("/work-dir", "/user-home-dir") and method == "GET":
            return self.reply(200, {"dir": sb.home})
        if path == "/version":
            return self.reply(200, {"version": VERSION})
        if path.startswith("/process/session"):
            return self.session(sb, method, path[len("/process/session"):], body)
        if path == "/files/bulk-upload" and method == "POST":
            parts = parse_multipart(body, self.headers.get("Content-Type"))
            files, dest = [], None
            for name, fname, data in parts:
                if name.endswith(".path"):
                    dest = data.decode()
                elif name.endswith(".file"):
                    if dest is None:
                        raise HttpError(400, "bad request: file part before its path",
                                        style="toolbox")
                    full = self.resolve(sb, dest)
                    self.server.state.makedirs(os.path.dirname(full))
                    with open(full, "wb") as f:
                        f.write(data)
                    self.server.state.chown(full)
                    files.append({"path": dest, "bytes": len(data)})
                    dest = None
            return self.reply(200, {"files": files})
        if path == "/files/upload" and method == "POST":
            if "path" not in q:
                raise HttpError(400, "bad request: path is required", style="toolbox")
            parts = [p for p in parse_multipart(body, self.headers.get("Content-Type"))
                     if p[0] == "file"]
            if not parts:
                raise HttpError(400, "bad request: file is required", style="toolbox")
            full = self.resolve(sb, q["path"])
            self.server.state.makedirs(os.path.dirname(full))
            with open(full, "wb") as f:
                f.write(parts[0][2])
            self.server.state.chown(full)
            return self.reply(200, b"")
        if path == "/files/download" and method == "GET":
            full = self.resolve(sb, q.get("path"))
            if os.path.isdir(full):
                raise HttpError(400, empty=True)
            if not os.path.isfile(full):
                raise HttpError(404, empty=True)  # v0.190 gin abort: empty body
            with open(full, "rb") as f:
                data = f.read()
            return self.reply(200, data, "application/octet-stream", {
                "Content-Disposition": "attachment; filename=%s" % os.path.basename(full)})
        if path == "/files" and method == "GET":
            full = self.resolve(sb, q.get("path"))
            if not os.path.isdir(full):
                raise HttpError(404, "not found: %s" % q.get("path"), style="toolbox")
            return self.reply(200, [file_info(os.path.join(full, n))
                                    for n in sorted(os.listdir(full))])
        if path == "/files/info" and method == "GET":
            full = self.resolve(sb, q.get("path"))
            if not os.path.lexists(full):
                raise HttpError(404, "not found: %s" % q.get("path"), style="toolbox")
            return self.reply(200, file_info(full))
        if path == "/files/folder" and method == "POST":
            full = self.resolve(sb, q.get("path"))
            self.server.state.makedirs(full, int(q.get("mode", "755"), 8))
            return self.reply(201, b"")
        if path == "/files" and method == "DELETE":
            full = self.resolve(sb, q.get("path"))
            if not os.path.lexists(full):
                raise HttpError(404, empty=True)
            if os.path.isdir(full) and not os.path.islink(full):
                if q.get("recursive") != "true":
                    raise HttpError(400, empty=True)
                shutil.rmtree(full)
            else:
                os.unlink(full)
            return self.reply(204, b"")
        if path == "/git/clone" and method == "POST":
            return self.git_clone(sb, self.json_body(body))
        raise HttpError(404, "not found: %s %s" % (method, path), style="toolbox")

    def execute(self, sb, req):
        cmd = req.get("command")
        if not isinstance(cmd, str) or not cmd.strip():
            raise HttpError(400, "bad request: empty command", style="toolbox")
        envs = req.get("envs") or {}
        for k in envs:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k):
                raise HttpError(400, "bad request: invalid env key %s" % k, style="toolbox")
        timeout = req.get("timeout") or None
        cwd = self.resolve(sb, req["cwd"]) if req.get("cwd") else None
        # The 2026-03 daemon: the command goes to a shell on stdin, stdout+stderr merged.
        p = self.spawn(sb, ["/bin/sh"], subprocess.PIPE, subprocess.PIPE, subprocess.STDOUT,
                       envs, cwd)
        try:
            out, _ = p.communicate(in_sandbox(sb, cmd).encode(), timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.communicate()
            raise HttpError(408, "request timeout: command execution timeout",
                            style="toolbox", code="REQUEST_TIMEOUT")
        finally:
            with sb.lock:
                sb.procs.discard(p)
        if sb.state != "started":
            raise HttpError(502, empty=True)  # the daemon went away under the request
        code = p.returncode if p.returncode >= 0 else 128 - p.returncode
        return self.reply(200, {"exitCode": code,
                                "result": out.decode("utf-8", "replace")})

    def session(self, sb, method, rest, body):
        if rest == "" and method == "POST":
            sid = self.json_body(body).get("sessionId")
            if not sid or sid == "entrypoint":
                raise HttpError(400, "bad request: invalid session id", style="toolbox")
            with sb.lock:
                if sid in sb.sessions:
                    raise HttpError(409, "conflict: session already exists", style="toolbox")
                sb.sessions[sid] = {}
            return self.reply(201, b"")
        if rest == "" and method == "GET":
            return self.reply(200, [self.session_dto(sb, s) for s in sb.sessions])
        m = re.fullmatch(r"/([^/]+)(/.*)?", rest)
        if not m or m.group(1) not in sb.sessions:
            raise HttpError(404, "not found: session not found", style="toolbox")
        sid, sub = m.group(1), m.group(2) or ""
        cmds = sb.sessions[sid]
        if sub == "" and method == "GET":
            return self.reply(200, self.session_dto(sb, sid))
        if sub == "" and method == "DELETE":
            with sb.lock:
                for c in cmds.values():
                    try:
                        os.killpg(c.proc.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                sb.sessions.pop(sid, None)
            return self.reply(204, b"")
        if sub == "/exec" and method == "POST":
            req = self.json_body(body)
            cmd = req.get("command")
            if not isinstance(cmd, str) or not cmd:
                raise HttpError(400, "bad request: command is required", style="toolbox")
            cid = str(uuid.uuid4())
            logdir = os.path.join(sb.base, "session-logs")
            os.makedirs(logdir, exist_ok=True)
            out_path = os.path.join(logdir, cid + ".out")
            err_path = os.path.join(logdir, cid + ".err")
            # Appending: an input echo and the command's output share the stdout log.
            with open(out_path, "ab") as o, open(err_path, "ab") as e:
                p = self.spawn(sb, ["/bin/sh", "-c", in_sandbox(sb, cmd)], subprocess.PIPE, o,
                               e)
            c = Command(cid, cmd, p, out_path, err_path, not req.get("suppressInputEcho"))
            cmds[cid] = c
            if req.get("runAsync") or req.get("async"):
                return self.reply(202, {"cmdId": cid})
            p.wait()
            out, err = self.logs(c)
            return self.reply(200, {"cmdId": cid, "output": out + err, "stdout": out,
                                    "stderr": err, "exitCode": p.returncode})
        m = re.fullmatch(r"/command/([^/]+)(/.*)?", sub)
        if not m or m.group(1) not in cmds:
            raise HttpError(404, "not found: command not found", style="toolbox")
        c, sub2 = cmds[m.group(1)], m.group(2) or ""
        if sub2 == "" and method == "GET":
            return self.reply(200, self.command_dto(c))
        if sub2 == "/logs" and method == "GET":
            out, err = self.logs(c)
            if self.sdk_version() >= (0, 167, 0):
                return self.reply(200, {"output": out + err, "stdout": out, "stderr": err})
            return self.reply(200, out + err, "text/plain")
        if sub2 == "/input" and method == "POST":
            data = self.json_body(body).get("data", "")
            if not data.endswith("\n"):
                data += "\n"  # "Ensure newline for commands like `read`"
            rc = c.proc.poll()
            try:
                if rc is not None:
                    raise BrokenPipeError
                c.proc.stdin.write(data.encode())
                c.proc.stdin.flush()
            except (BrokenPipeError, ValueError):
                raise HttpError(410, "gone: command has already completed with exit code %s"
                                % c.proc.poll(), style="toolbox", code="GONE")
            if c.echo:
                with open(c.out_path, "ab") as f:
                    f.write(data.encode())
            return self.reply(204, b"")
        raise HttpError(404, "not found", style="toolbox")

    def sdk_version(self):
        v = self.headers.get("X-Daytona-SDK-Version", "")
        try:
            return tuple(int(x) for x in v.split("-")[0].split("."))
        except ValueError:
            return (0, 0, 0)

    def logs(self, c):
        with open(c.out_path, "rb") as f:
            out = f.read().decode("utf-8", "replace")
        with open(c.err_path, "rb") as f:
            err = f.read().decode("utf-8", "replace")
        return out, err

    def command_dto(self, c):
        d = {"id": c.id, "command": c.command}
        rc = c.proc.poll()
        if rc is not None:
            d["exitCode"] = rc
        return d

    def session_dto(self, sb, sid):
        return {"sessionId": sid,
                "commands": [self.command_dto(c) for c in sb.sessions[sid].values()]}

    def git_clone(self, sb, req):
        url, dest = req.get("url"), req.get("path")
        if not url or not dest:
            raise HttpError(400, "bad request: url and path are required", style="toolbox")
        # snake_case on the wire for this endpoint: commit_id, insecure_skip_tls.
        argv = ["git", "clone", "--single-branch"]
        if req.get("branch"):
            argv += ["--branch", req["branch"]]
        if req.get("depth"):
            argv += ["--depth", str(req["depth"])]
        full = self.resolve(sb, dest)
        if os.path.exists(full) and os.listdir(full):
            raise HttpError(409, "conflict: repository already exists", style="toolbox")
        # Tests clone local file:// repositories owned by the test's user, not the sandbox's;
        # git refuses those as "dubious ownership" unless told otherwise. (The real service
        # clones remote URLs, where this does not arise.)
        # safe.directory is only read from global or system config, hence a global file.
        gitconfig = os.path.join(self.server.state.root, "gitconfig")
        if not os.path.exists(gitconfig):
            with open(gitconfig, "w") as f:
                f.write("[safe]\n\tdirectory = *\n")
        trust = {"GIT_CONFIG_GLOBAL": gitconfig}
        if req.get("branch"):
            # go-git clones ReferenceName refs/heads/<branch>: git's CLI also takes a tag
            # there, go-git does not ("reference not found").
            p = self.spawn(sb, ["git", "ls-remote", "--heads", url,
                                "refs/heads/" + req["branch"]],
                           subprocess.DEVNULL, subprocess.PIPE, subprocess.DEVNULL, trust)
            out, _ = p.communicate()
            with sb.lock:
                sb.procs.discard(p)
            if p.returncode != 0 or not out.strip():
                raise HttpError(404, "not found: reference not found", style="toolbox")
        p = self.spawn(sb, argv + [url, full], subprocess.DEVNULL, subprocess.PIPE,
                       subprocess.STDOUT, trust)
        out, _ = p.communicate()
        with sb.lock:
            sb.procs.discard(p)
        if p.returncode != 0:
            raise HttpError(404, "not found: repository or branch not found: %s" %
                            out.decode(errors="replace").strip(), style="toolbox")
        if req.get("commit_id"):
            p = self.spawn(sb, ["git", "-C", full, "checkout", req["commit_id"]],
                           subprocess.DEVNULL, subprocess.PIPE, subprocess.STDOUT)
            p.communicate()
            with sb.lock:
                sb.procs.discard(p)
            if p.returncode != 0:
                raise HttpError(404, "not found: reference not found", style="toolbox")
        return self.reply(200, b"")


def file_info(full):
    s = os.lstat(full)
    import stat
    mt = datetime.fromtimestamp(s.st_mtime, timezone.utc)
    return {"name": os.path.basename(full), "size": s.st_size,
            "mode": stat.filemode(s.st_mode), "modTime": mt.strftime("%Y-%m-%d %H:%M:%S"),
            "modifiedAt": mt.isoformat(), "isDir": stat.S_ISDIR(s.st_mode) or (
                os.path.isdir(full)), "owner": str(s.st_uid), "group": str(s.st_gid),
            "permissions": "%04o" % (s.st_mode & 0o7777)}


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--token", default="dtn_fake")
    ap.add_argument("--root")
    ap.add_argument("--log")
    ap.add_argument("--log-bodies", action="store_true",
                    help="keep whole JSON bodies in the request log (benchmarks replay them)")
    ap.add_argument("--start-delay", type=float, default=0.3,
                    help="seconds a sandbox stays in creating")
    ap.add_argument("--volume-ready", type=float, default=0.3)
    ap.add_argument("--nproc-limit", type=int, default=NPROC_LIMIT,
                    help="RLIMIT_NPROC of the sandbox uid, shared by all sandboxes (as root)")
    ap.add_argument("--minute-seconds", type=float, default=60.0,
                    help="how long one auto-stop minute lasts (shorter in tests)")
    args = ap.parse_args()
    state = State(args)
    srv = Server(("127.0.0.1", args.port), Handler)
    srv.state = state
    state.base_url = "http://127.0.0.1:%d" % srv.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(srv.server_address[1]))
        os.rename(tmp, args.port_file)
    print("fake daytona on %s (root %s)" % (state.base_url, state.root), flush=True)

    def reaper():  # auto-stop and injected stops happen on time, not only on look-ups
        while True:
            time.sleep(0.2)
            with state.lock:
                for sb in list(state.sandboxes.values()):
                    state.advance(sb)

    threading.Thread(target=reaper, daemon=True).start()

    def bye(*_):
        threading.Thread(target=srv.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, bye)
    signal.signal(signal.SIGINT, bye)
    try:
        srv.serve_forever(poll_interval=0.2)
    finally:
        with state.lock:
            for sb in list(state.sandboxes.values()):
                with sb.lock:
                    sb.kill_all()
        if not args.root:
            shutil.rmtree(state.root, ignore_errors=True)


if __name__ == "__main__":
    main()
