#!/usr/bin/python3
"""modal_server.py - a fake Modal: both gRPC services of rlm's modal.proto on one loopback port.

    /usr/bin/python3 modal_server.py --proto PATH --port-file FILE --state-file FILE
        [--token-id ID --token-secret SECRET] [--fault NAME=VALUE]...

Needs Debian's python3-grpcio and python3-protobuf (hence /usr/bin/python3). The message classes
are generated at start with `protoc --python_out` from the same .proto the C plugin is built
from, into a temporary directory; the services are served with grpc's generic handlers under
their real paths (/modal.client.ModalClient/..., /modal.task_command_router.TaskCommandRouter/...).

Control-plane calls must carry x-modal-token-id/x-modal-token-secret; router calls the bearer
JWT handed out by TaskGetCommandRouterAccess (which expires). Sandboxes are real directories
with real processes: a sandbox path P maps to <sandbox dir>/P, each exec is a process (its own
session, killed with the sandbox), its stdout kept whole and served by byte offset, its stdin
written by offset. Live sandboxes are written as JSON to --state-file after every change, so a
test can assert none leaked.

Faults (repeatable --fault):
  image_late=N        ImageGetOrCreate answers without result; the first N-1 ImageJoinStreaming
                      streams end without one (default 2)
  task_id_empty=N     SandboxGetTaskId answers an empty task id N times per sandbox (default 2)
  unavailable=M:N     the first N calls of method M fail with UNAVAILABLE
  throttle=M:N        the first N calls of method M fail with RESOURCE_EXHAUSTED + RPCRetryPolicy
  lose_reply=M:N      the first N calls of method M are carried out, then answer UNAVAILABLE
  stdio_drop=N        every TaskExecStdioRead stream fails with UNAVAILABLE after N messages
  jwt_ttl=S           router JWTs expire after S seconds (default 3600)
  memory_mb=N         RLIMIT_AS of exec processes when the sandbox sets no memory (default 2048)
"""
import argparse
import base64
import json
import os
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent import futures

import grpc

CP = "modal.client.ModalClient"
RT = "modal.task_command_router.TaskCommandRouter"


def load_pb(proto):
    out = tempfile.mkdtemp(prefix="modalpb-")
    subprocess.check_call(["protoc", "--python_out=" + out, "-I" + os.path.dirname(proto),
                           proto])
    sys.path.insert(0, out)
    import modal_pb2  # noqa: E402
    return modal_pb2


class Exec:
    def __init__(self, proc):
        self.proc = proc
        self.out = bytearray()
        self.eof = False
        self.cond = threading.Condition()
        self.stdin_written = 0
        self.stdin_closed = False
        self.lock = threading.Lock()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        fd = self.proc.stdout.fileno()
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            with self.cond:
                if not data:
                    self.eof = True
                    self.cond.notify_all()
                    return
                self.out += data
                self.cond.notify_all()


class Sandbox:
    def __init__(self, sid, root, definition, env):
        self.id = sid
        self.task_id = "ta-" + secrets.token_hex(8)
        self.root = root
        self.definition = definition
        self.env = env
        self.execs = {}
        self.polls = 0
        self.result = None  # GenericResult fields once finished
        self.created = time.time()

    def path(self, p):
        return os.path.join(self.root, p.lstrip("/")) if p.startswith("/") else p

    def kill(self):
        for ex in self.execs.values():
            try:
                os.killpg(ex.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


class Fake:
    def __init__(self, args, pb):
        self.args = args
        self.pb = pb
        self.lock = threading.Lock()
        self.sandboxes = {}
        self.volumes = {}
        self.secrets = {}
        self.images = {}
        self.jwts = {}
        self.calls = {}
        self.created_by_key = {}  # x-idempotency-key -> sandbox id (SandboxCreate)
        self.faults = {}
        for f in args.fault:
            k, _, v = f.partition("=")
            self.faults.setdefault(k, []).append(v)
        self.root = tempfile.mkdtemp(prefix="modalfake-")
        self.port = 0
        self.write_state()

    def fault_int(self, name, default):
        v = self.faults.get(name)
        return int(v[-1]) if v else default

    def write_state(self):
        live = [{"id": s.id, "task_id": s.task_id, "execs": len(s.execs)}
                for s in self.sandboxes.values() if s.result is None]
        tmp = self.args.state_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump(live, f)
        os.replace(tmp, self.args.state_file)

    # ---- checks and faults ---------------------------------------------------------------

    def check_token(self, ctx):
        md = dict(ctx.invocation_metadata())
        if (md.get("x-modal-token-id") != self.args.token_id or
                md.get("x-modal-token-secret") != self.args.token_secret):
            ctx.abort(grpc.StatusCode.UNAUTHENTICATED, "bad or missing token")

    def check_jwt(self, ctx, task_id):
        md = dict(ctx.invocation_metadata())
        auth = md.get("authorization", "")
        tok = auth[7:] if auth.startswith("Bearer ") else ""
        with self.lock:
            ent = self.jwts.get(tok)
        if not ent or ent[0] != task_id:
            ctx.abort(grpc.StatusCode.UNAUTHENTICATED, "bad bearer token")
        if time.time() > ent[1]:
            ctx.abort(grpc.StatusCode.UNAUTHENTICATED, "token expired")

    def inject(self, method, ctx):
        with self.lock:
            n = self.calls[method] = self.calls.get(method, 0) + 1
        for spec in self.faults.get("unavailable", []):
            m, _, count = spec.partition(":")
            if m == method and n <= int(count or 1):
                ctx.abort(grpc.StatusCode.UNAVAILABLE, "injected UNAVAILABLE")
        for spec in self.faults.get("throttle", []):
            m, _, count = spec.partition(":")
            if m == method and n <= int(count or 1):
                pol = self.pb.RPCRetryPolicy(retry_after_secs=0.2)
                st = self.pb.RPCStatus(code=8, message="slow down", details=[self.pb.Any(
                    type_url="type.modal.com/modal.client.RPCRetryPolicy",
                    value=pol.SerializeToString())])
                ctx.set_trailing_metadata((("grpc-status-details-bin",
                                            st.SerializeToString()),))
                ctx.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "slow down")

    def lose_reply(self, method, ctx):
        """lose_reply=M:N: the first N calls of M are carried out, then their answer is lost
        (UNAVAILABLE), as when a connection drops on the way back."""
        with self.lock:
            n = self.calls.get(method, 0)
        for spec in self.faults.get("lose_reply", []):
            m, _, count = spec.partition(":")
            if m == method and n <= int(count or 1):
                ctx.abort(grpc.StatusCode.UNAVAILABLE, "injected: answer lost after the call")

    def sandbox(self, ctx, sid=None, task_id=None):
        with self.lock:
            for s in self.sandboxes.values():
                if s.id == sid or (task_id and s.task_id == task_id):
                    return s
        ctx.abort(grpc.StatusCode.NOT_FOUND, "no such sandbox or task")

    # ---- control plane -------------------------------------------------------------------

    def AppGetOrCreate(self, req, ctx):
        return self.pb.AppGetOrCreateResponse(app_id="ap-" + secrets.token_hex(8))

    def ImageGetOrCreate(self, req, ctx):
        iid = "im-" + secrets.token_hex(8)
        with self.lock:
            self.images[iid] = {"joins": 0, "tag": list(req.image.dockerfile_commands)}
        if self.fault_int("image_late", 2) > 0:
            return self.pb.ImageGetOrCreateResponse(image_id=iid)
        return self.pb.ImageGetOrCreateResponse(image_id=iid, result=self.pb.GenericResult(
            status=self.pb.GENERIC_STATUS_SUCCESS))

    def ImageJoinStreaming(self, req, ctx):
        with self.lock:
            img = self.images.get(req.image_id)
            if img is None:
                ctx.abort(grpc.StatusCode.NOT_FOUND, "no such image")
            img["joins"] += 1
            joins = img["joins"]
        yield self.pb.ImageJoinStreamingResponse(entry_id="%d-0" % joins)
        if joins < self.fault_int("image_late", 2):
            return  # the stream ends without a result: the client must call again
        yield self.pb.ImageJoinStreamingResponse(
            entry_id="%d-1" % joins, result=self.pb.GenericResult(
                status=self.pb.GENERIC_STATUS_SUCCESS))

    def SecretGetOrCreate(self, req, ctx):
        sid = "st-" + secrets.token_hex(8)
        with self.lock:
            self.secrets[sid] = dict(req.env_dict)
        return self.pb.SecretGetOrCreateResponse(secret_id=sid)

    def VolumeGetOrCreate(self, req, ctx):
        with self.lock:
            vid = self.volumes.get(req.deployment_name)
            if vid is None:
                if req.object_creation_type == 0:
                    ctx.abort(grpc.StatusCode.NOT_FOUND, "no such volume")
                vid = self.volumes[req.deployment_name] = "vo-" + secrets.token_hex(8)
                os.makedirs(os.path.join(self.root, "volumes", vid))
        return self.pb.VolumeGetOrCreateResponse(volume_id=vid)

    def SandboxCreate(self, req, ctx):
        d = req.definition
        if not d.image_id:
            ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, "image_id is required")
        # A retry carries the first attempt's x-idempotency-key: answer with the sandbox that
        # attempt made instead of making a second one.
        key = dict(ctx.invocation_metadata()).get("x-idempotency-key")
        with self.lock:
            if key and key in self.created_by_key:
                return self.pb.SandboxCreateResponse(sandbox_id=self.created_by_key[key])
        sid = "sb-" + secrets.token_hex(11)
        with self.lock:
            if key:
                self.created_by_key[key] = sid
        root = os.path.join(self.root, "sandboxes", sid)
        os.makedirs(root)
        env = {}
        with self.lock:
            for s in d.secret_ids:
                env.update(self.secrets.get(s, {}))
        sb = Sandbox(sid, root, d, env)
        os.makedirs(sb.path(d.workdir or "/root"), exist_ok=True)
        for vm in d.volume_mounts:  # a mount is a symlink to the volume's directory
            target = sb.path(vm.mount_path)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.symlink(os.path.join(self.root, "volumes", vm.volume_id), target)
        with self.lock:
            self.sandboxes[sid] = sb
            self.write_state()
        return self.pb.SandboxCreateResponse(sandbox_id=sid)

    def SandboxGetTaskId(self, req, ctx):
        sb = self.sandbox(ctx, sid=req.sandbox_id)
        if sb.result is not None:
            return self.pb.SandboxGetTaskIdResponse(task_result=sb.result)
        sb.polls += 1
        if sb.polls <= self.fault_int("task_id_empty", 2):
            return self.pb.SandboxGetTaskIdResponse()
        return self.pb.SandboxGetTaskIdResponse(task_id=sb.task_id)

    def TaskGetCommandRouterAccess(self, req, ctx):
        self.sandbox(ctx, task_id=req.task_id)
        exp = time.time() + self.fault_int("jwt_ttl", 3600)

        def b64(o):
            return base64.urlsafe_b64encode(json.dumps(o).encode()).rstrip(b"=").decode()
        jwt = "%s.%s.%s" % (b64({"alg": "none", "typ": "JWT"}),
                            b64({"task_id": req.task_id, "exp": int(exp),
                                 "n": secrets.token_hex(4)}), secrets.token_hex(8))
        with self.lock:
            self.jwts[jwt] = (req.task_id, exp)
        return self.pb.TaskGetCommandRouterAccessResponse(
            jwt=jwt, url="http://127.0.0.1:%d" % self.port)

    def SandboxWait(self, req, ctx):
        sb = self.sandbox(ctx, sid=req.sandbox_id)
        end = time.time() + req.timeout
        while sb.result is None and time.time() < end:
            time.sleep(0.05)
        return self.pb.SandboxWaitResponse(result=sb.result or self.pb.GenericResult())

    def SandboxTerminate(self, req, ctx):
        sb = self.sandbox(ctx, sid=req.sandbox_id)
        with self.lock:
            existing = sb.result
            if sb.result is None:
                sb.result = self.pb.GenericResult(status=self.pb.GENERIC_STATUS_TERMINATED,
                                                  exitcode=137)
            self.write_state()
        sb.kill()
        shutil.rmtree(sb.root, ignore_errors=True)
        return self.pb.SandboxTerminateResponse(existing_result=existing)

    # ---- command router ------------------------------------------------------------------

    def get_exec(self, req, ctx):
        sb = self.sandbox(ctx, task_id=req.task_id)
        self.check_jwt(ctx, req.task_id)
        ex = sb.execs.get(req.exec_id)
        if ex is None:
            ctx.abort(grpc.StatusCode.NOT_FOUND, "no such exec")
        return ex

    def TaskExecStart(self, req, ctx):
        sb = self.sandbox(ctx, task_id=req.task_id)
        self.check_jwt(ctx, req.task_id)
        if sb.result is not None:
            ctx.abort(grpc.StatusCode.FAILED_PRECONDITION, "sandbox has finished")
        if req.exec_id in sb.execs:
            return self.pb.TaskExecStartResponse()  # exec_id is the idempotency key
        env = dict(os.environ)
        env.update(sb.env)
        env.update(dict(req.env))
        cwd = sb.path(req.workdir or sb.definition.workdir or "/root")
        mem = sb.definition.resources.memory_mb or self.fault_int("memory_mb", 2048)
        stdout = subprocess.PIPE if req.stdout_config == 1 else subprocess.DEVNULL
        stderr = {0: subprocess.DEVNULL, 1: subprocess.DEVNULL,
                  2: subprocess.STDOUT}[req.stderr_config]

        def limits():
            resource.setrlimit(resource.RLIMIT_AS, (mem << 20, mem << 20))
        try:
            proc = subprocess.Popen(list(req.command_args), cwd=cwd, env=env,
                                    stdin=subprocess.PIPE, stdout=stdout, stderr=stderr,
                                    start_new_session=True, preexec_fn=limits)
        except OSError as e:
            ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, "cannot start: %s" % e)
        if stdout is subprocess.DEVNULL:
            proc.stdout = open(os.devnull, "rb")
        sb.execs[req.exec_id] = Exec(proc)
        self.write_state()
        return self.pb.TaskExecStartResponse()

    def TaskExecStdioRead(self, req, ctx):
        ex = self.get_exec(req, ctx)
        if req.file_descriptor != 0:
            return  # stderr is never piped by this fake
        pos = req.offset
        sent = 0
        drop = self.fault_int("stdio_drop", 0)
        while ctx.is_active():
            with ex.cond:
                while len(ex.out) <= pos and not ex.eof and ctx.is_active():
                    ex.cond.wait(0.2)
                data = bytes(ex.out[pos:pos + 1 << 20])
                done = ex.eof and pos + len(data) >= len(ex.out)
            if data:
                if drop and sent >= drop:
                    ctx.abort(grpc.StatusCode.UNAVAILABLE, "injected stream drop")
                pos += len(data)
                sent += 1
                yield self.pb.TaskExecStdioReadResponse(data=data)
            if done:
                return

    def TaskExecStdinWrite(self, req, ctx):
        ex = self.get_exec(req, ctx)
        with ex.lock:
            if req.offset > ex.stdin_written:
                ctx.abort(grpc.StatusCode.OUT_OF_RANGE, "stdin offset beyond what was written")
            data = req.data[ex.stdin_written - req.offset:]
            try:
                if data and not ex.stdin_closed:
                    ex.proc.stdin.write(data)
                    ex.proc.stdin.flush()
                ex.stdin_written += len(data)
                if req.eof and not ex.stdin_closed:
                    ex.stdin_closed = True
                    ex.proc.stdin.close()
            except (BrokenPipeError, ValueError):
                pass
        return self.pb.TaskExecStdinWriteResponse()

    def _exit(self, resp_cls, rc):
        if rc is None:
            return resp_cls()
        return resp_cls(signal=-rc) if rc < 0 else resp_cls(code=rc)

    def TaskExecWait(self, req, ctx):
        ex = self.get_exec(req, ctx)
        while ctx.is_active():
            try:
                return self._exit(self.pb.TaskExecWaitResponse, ex.proc.wait(0.2))
            except subprocess.TimeoutExpired:
                pass
        return self.pb.TaskExecWaitResponse()

    def TaskExecPoll(self, req, ctx):
        ex = self.get_exec(req, ctx)
        return self._exit(self.pb.TaskExecPollResponse, ex.proc.poll())


def handlers(fake, pb):
    cp_unary = ["AppGetOrCreate", "ImageGetOrCreate", "SecretGetOrCreate", "VolumeGetOrCreate",
                "SandboxCreate", "SandboxGetTaskId", "TaskGetCommandRouterAccess", "SandboxWait",
                "SandboxTerminate"]
    rt_unary = ["TaskExecStart", "TaskExecStdinWrite", "TaskExecWait", "TaskExecPoll"]

    def wrap(name, fn, cp):
        def call(req, ctx):
            if cp:
                fake.check_token(ctx)
            fake.inject(name, ctx)
            answer = fn(req, ctx)
            fake.lose_reply(name, ctx)
            return answer
        return call

    def msgs(name):
        return getattr(pb, name + "Request"), getattr(pb, name + "Response")

    def unary(name, cp):
        req, resp = msgs(name)
        return grpc.unary_unary_rpc_method_handler(
            wrap(name, getattr(fake, name), cp), request_deserializer=req.FromString,
            response_serializer=resp.SerializeToString)

    def stream(name, cp):
        req, resp = msgs(name)
        return grpc.unary_stream_rpc_method_handler(
            wrap(name, getattr(fake, name), cp), request_deserializer=req.FromString,
            response_serializer=resp.SerializeToString)

    cp = {n: unary(n, True) for n in cp_unary}
    cp["ImageJoinStreaming"] = stream("ImageJoinStreaming", True)
    rt = {n: unary(n, False) for n in rt_unary}
    rt["TaskExecStdioRead"] = stream("TaskExecStdioRead", False)
    return [grpc.method_handlers_generic_handler(CP, cp),
            grpc.method_handlers_generic_handler(RT, rt)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--proto", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--state-file", required=True)
    ap.add_argument("--token-id", default="ak-fake")
    ap.add_argument("--token-secret", default="as-fake")
    ap.add_argument("--fault", action="append", default=[])
    args = ap.parse_args()
    pb = load_pb(os.path.abspath(args.proto))
    fake = Fake(args, pb)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=128),
                         options=[("grpc.max_receive_message_length", 100 << 20),
                                  ("grpc.max_send_message_length", 100 << 20)])
    for h in handlers(fake, pb):
        server.add_generic_rpc_handlers((h,))
    fake.port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(fake.port))
    os.replace(args.port_file + ".tmp", args.port_file)

    def stop(*_):
        for sb in list(fake.sandboxes.values()):
            sb.kill()
        server.stop(0)
        shutil.rmtree(fake.root, ignore_errors=True)
        os._exit(0)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
