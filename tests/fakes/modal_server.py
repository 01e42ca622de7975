#!/usr/bin/python3
"""modal_server.py - a fake Modal: both gRPC services of rlm's modal.proto on one loopback port.

    /usr/bin/python3 modal_server.py --proto PATH --port-file FILE --state-file FILE
        [--token-id ID --token-secret SECRET] [--fault NAME=VALUE]...
        [--sandbox-mode auto|chroot|host] [--stats-file FILE] [--tls [--ca-file-out FILE]]
        [--freeze-file FILE]

Needs Debian's python3-grpcio and python3-protobuf (hence /usr/bin/python3). The message classes
are generated at start with `protoc --python_out` from the same .proto the C plugin is built
from, into a temporary directory; the services are served with grpc's generic handlers under
their real paths (/modal.client.ModalClient/..., /modal.task_command_router.TaskCommandRouter/...).

TLS (--tls): at start a throwaway CA and a server certificate for 127.0.0.1 (subjectAltName
IP:127.0.0.1 and DNS:localhost) are made with the openssl command line (Debian's openssl) in a
temporary directory removed at exit; both services are served over TLS (ALPN h2) on the one
port, and TaskGetCommandRouterAccess hands out https://127.0.0.1:<port> router URLs. With
--ca-file-out FILE, the CA certificate's path is written to FILE (tmp + rename) before the port
file appears, for a client to trust. Without --tls: cleartext HTTP/2 (h2c), http:// URLs.

Control-plane calls must carry x-modal-token-id/x-modal-token-secret and the client headers of
an SDK: x-modal-client-type and x-modal-client-version, and for the Go and JS SDKs' types (9, 8)
x-modal-libmodal-version "modal-go/X.Y.Z" or "modal-js/X.Y.Z" as those SDKs send it (the fake's
own check: what the real server does without it is unverified); router calls the bearer JWT
handed out by TaskGetCommandRouterAccess (which expires).

EnvironmentGetOrCreate answers for the default environment ("" or "main"; other names are
NOT_FOUND, as a lookup of a missing environment) with settings.image_builder_version 2025.06;
ImageGetOrCreate refuses (FAILED_PRECONDITION) a builder_version the fake's builder does not
support: 2023.12, 2024.04, 2024.10 and 2025.06 unless the builder_versions fault says otherwise.

Stdin: TaskExecStdinWrite (unary, by offset) and TaskExecStdinWriteStream (client stream: start
{task_id, exec_id, offset}, data..., end; stdin is closed only by end) with TaskExecStdinStatus
(bytes taken, closed; it evicts a stream in flight, which then fails with CANCELLED). A stream
to a process that no longer takes input fails with FAILED_PRECONDITION, as the SDKs expect. No
message may exceed 16 MiB + 64 KiB (grpc answers RESOURCE_EXHAUSTED): the largest message an
SDK sends is a 16 MiB unary stdin write (the real router's limit is unverified).

Freezing (--freeze-file FILE): while FILE exists the fake answers nothing: every call, new or in
flight (streams stop sending, stdin streams stop taking), waits until FILE is removed or the
client gives up. FILE may say which service freezes: "cp" (control plane), "rt" (command
router) or "all" (empty: all). Sandboxes keep running meanwhile, and their lifetimes still end
them. Sandboxes are real directories
with real processes: each exec is a process (its own session, killed with the sandbox), its
stdout and stderr (stderr_config PIPE; STDOUT merges it into stdout) kept whole and served by
byte offset, its stdin written by offset. Live sandboxes are written as JSON to --state-file
after every change, so a test can assert none leaked. A sandbox whose Sandbox.timeout_secs has
passed ends as Modal's do (TIMEOUT, exit 124, processes killed); an exec whose timeout_secs has
passed is killed (SIGKILL). Volumes are directories that outlive
sandboxes: what one sandbox writes under its mount path the next one mounting the volume sees.

Sandbox modes (one line on stderr at start says which one is active):
  chroot  (auto when running as root and unshare, chroot and bind mounts work) each exec runs
          in its own mount namespace, chrooted into the sandbox directory, which holds root/,
          tmp/, __modal/.bin/ and the mount points: the host's /usr, /etc, /lib*, /bin, /sbin
          bound read only (or recreated as the symlinks they are), /dev and /proc, each volume
          at its mount path. Absolute paths (/root, /data, /tmp) are the sandbox's own; the
          capabilities to mount, chroot, raise rlimits, ptrace or mknod are dropped
          (setpriv), so the read-only binds stay read only.
  host    (otherwise) processes run on the host with cwd <sandbox dir>/<workdir>; a volume is a
          symlink <sandbox dir>/<mount path>; other absolute paths are host paths, except
          through fs-tools and the legacy file API, which map /X to <sandbox dir>/X.

Files: TaskExecStart of /__modal/.bin/modal-sandbox-fs-tools runs tests/fakes/modal_fs_tools.py
({"WriteFile"|"ReadFile": {"path": "/abs"}}; inside the chroot in chroot mode, with the path
mapping above in host mode). The legacy ContainerFilesystemExec API (open/write/read/flush/
close) is served with ContainerFilesystemExecGetOutput batches (output chunks of at most 1 MiB,
then eof, or eof with an errno error); operations finish before ContainerFilesystemExec
answers, and a batch stream is forgotten once served whole.

Statistics (--stats-file FILE): per method path, the number of calls and the seconds spent
handling them (handler entry to return; for streams to the end of the stream, including time
blocked waiting for output), and the client peers (one per HTTP/2 connection) with their call
counts; written atomically as JSON {"methods": {PATH: {"count": N, "total_s": X}}, "peers":
{PEER: N}, "connections": N} on SIGUSR1 and at exit (SIGTERM/SIGINT).

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
  fs_tools=missing    /__modal/.bin/modal-sandbox-fs-tools is absent: its exec starts, prints
                      "...: not found" on stderr and exits 127
  fs_tools=start_error  TaskExecStart of fs-tools fails with NOT_FOUND "no such file"
  stdin_stream_drop=N:K  the first K TaskExecStdinWriteStream calls fail with UNAVAILABLE after
                      taking N data messages (what they took stays written; K default 1); each
                      drop says "injected stdin stream drop" on stderr
  builder_versions=V,...  the image builder versions ImageGetOrCreate accepts
  legacy_fs=unimplemented  ContainerFilesystemExec and ContainerFilesystemExecGetOutput answer
                      UNIMPLEMENTED
"""
import argparse
import atexit
import base64
import errno
import json
import os
import resource
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent import futures

import grpc

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import modal_fs_tools  # noqa: E402

CP = "modal.client.ModalClient"
RT = "modal.task_command_router.TaskCommandRouter"
FS_TOOLS = "/__modal/.bin/modal-sandbox-fs-tools"
FS_TOOLS_SCRIPT = os.path.join(HERE, "modal_fs_tools.py")
CHROOT_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
              "HOME": "/root", "LANG": "C.UTF-8"}
# Without these a root process in the chroot could remount the read-only binds, leave the
# chroot, lift its RLIMIT_AS or reach the host through a device node or another process.
DROP_CAPS = "-sys_admin,-sys_chroot,-sys_resource,-sys_module,-sys_ptrace,-mknod"
CHUNK = 1 << 20
MAX_MESSAGE = (16 << 20) + (64 << 10)
BUILDER_VERSIONS = ("2023.12", "2024.04", "2024.10", "2025.06")
ENV_BUILDER_VERSION = "2025.06"
# The errno values of SystemErrorCode; others are reported as EIO.
SYSTEM_ERROR_CODES = {1, 2, 5, 6, 12, 13, 17, 20, 21, 22, 24, 27, 28}


def load_pb(proto):
    out = tempfile.mkdtemp(prefix="modalpb-")
    subprocess.check_call(["protoc", "--python_out=" + out, "-I" + os.path.dirname(proto),
                           proto])
    sys.path.insert(0, out)
    import modal_pb2  # noqa: E402
    sys.path.remove(out)
    shutil.rmtree(out, ignore_errors=True)  # loaded: the generated file is no longer needed
    return modal_pb2


def tool(name):
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")


def host_system_dirs():
    """The host's top-level system entries a chroot needs: (name, symlink target or None)."""
    out = []
    for name in sorted(os.listdir("/")):
        if name in ("usr", "etc", "bin", "sbin") or name.startswith("lib"):
            p = "/" + name
            if os.path.islink(p):
                out.append((name, os.readlink(p)))
            elif os.path.isdir(p):
                out.append((name, None))
    return out


def chroot_mode(want):
    """(True, why) when execs can run chrooted in their own mount namespace, else (False, why)."""
    if want == "host":
        return False, "asked for"
    why = None
    if os.geteuid() != 0:
        why = "not root"
    elif not all(tool(t) for t in ("unshare", "chroot", "mount")):
        why = "unshare, chroot or mount missing"
    else:
        d = tempfile.mkdtemp(prefix="modalprobe-")
        try:
            # A read-only bind must really refuse writes, or the sandboxes could write the host.
            r = subprocess.run([tool("unshare"), "--mount", "--propagation", "private", "--",
                                "/bin/sh", "-c", 'mount --bind "$1" "$1" && '
                                'mount -o remount,bind,ro "$1" && ! touch "$1/x" 2>/dev/null',
                                "sh", d], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if r.returncode:
                why = "bind mounts in a new mount namespace do not work here"
        finally:
            shutil.rmtree(d, ignore_errors=True)
    if why is None:
        return True, "running as root with unshare"
    if want == "chroot":
        sys.exit("modal_server: --sandbox-mode chroot: %s" % why)
    return False, why


class Stream:
    """One output pipe of an exec, kept whole so it can be read from any offset."""

    def __init__(self, pipe):
        self.buf = bytearray()
        self.eof = pipe is None
        self.cond = threading.Condition()
        if pipe is not None:
            threading.Thread(target=self._pump, args=(pipe,), daemon=True).start()

    def _pump(self, pipe):
        fd = pipe.fileno()
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
                self.buf += data
                self.cond.notify_all()


class Exec:
    def __init__(self, proc):
        self.proc = proc
        self.streams = (Stream(proc.stdout), Stream(proc.stderr))  # by TaskExecStdioFileDescriptor
        self.stdin_written = 0
        self.stdin_closed = False
        self.stdin_stream = 0  # generation of the stdin stream allowed to write
        self.lock = threading.Lock()


class FsOp:
    """The outcome of one ContainerFilesystemExec, served by ContainerFilesystemExecGetOutput."""

    def __init__(self, sandbox_id, chunks, error):
        self.sandbox_id = sandbox_id
        self.chunks = chunks  # read data, at most CHUNK bytes each
        self.error = error  # (errno, message) or None


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
        self.chroot = False
        self.fs = None  # modal_fs_tools.SandboxFs: the sandbox's paths as the fake sees them
        self.mounts = []  # (sandbox path, host dir, read only) of its volumes
        self.mount_script = ""  # chroot mode: sh lines that build the exec's mount namespace
        self.files = {}  # legacy file API: file descriptor id -> open file
        self.files_lock = threading.Lock()

    def path(self, p):
        return os.path.join(self.root, p.lstrip("/")) if p.startswith("/") else p

    def kill(self):
        for ex in self.execs.values():
            try:
                os.killpg(ex.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if self.chroot:  # also what left the process group (setsid) but not the chroot
            kill_rooted_at(self.root)
        with self.files_lock:
            for f in self.files.values():
                try:
                    f.close()
                except OSError:
                    pass
            self.files.clear()


def kill_group(pid):
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def kill_rooted_at(root):
    """SIGKILLs every process whose root directory is `root` (compared by inode: the path a
    process in another mount namespace shows is not reliable)."""
    try:
        want = os.stat(root)
    except OSError:
        return
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            st = os.stat("/proc/%s/root" % pid)
            if (st.st_dev, st.st_ino) == (want.st_dev, want.st_ino):
                os.kill(int(pid), signal.SIGKILL)
        except OSError:
            pass


def legacy_error(e, path=""):
    """(SystemErrorCode value, message) for an exception of a legacy file operation."""
    code = getattr(e, "errno", None)
    if code == errno.EROFS:
        code = errno.EACCES
    elif code is None or code == errno.EBADF or isinstance(e, ValueError):
        code = errno.EINVAL
    elif code not in SYSTEM_ERROR_CODES:
        code = errno.EIO
    msg = getattr(e, "strerror", None) or str(e)
    return code, ("%s: %s" % (msg, path) if path else msg)


class Stats:
    """Calls and handling seconds per method path, calls per client peer (--stats-file)."""

    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        self.methods = {}  # path -> [count, total seconds]
        self.peers = {}  # grpc peer -> calls

    def record(self, method, secs, peer):
        with self.lock:
            m = self.methods.get(method)
            if m is None:
                m = self.methods[method] = [0, 0.0]
            m[0] += 1
            m[1] += secs
            self.peers[peer] = self.peers.get(peer, 0) + 1

    def write(self):
        with self.lock:
            doc = {"methods": {k: {"count": v[0], "total_s": v[1]}
                               for k, v in sorted(self.methods.items())},
                   "peers": dict(self.peers), "connections": len(self.peers)}
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(doc, f, indent=1)
        os.replace(tmp, self.path)


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
        self.chroot, why = chroot_mode(args.sandbox_mode)
        self.system = host_system_dirs() if self.chroot else []
        self.tools = {t: tool(t) for t in ("unshare", "chroot", "setpriv")}
        self.fs_ops = {}  # legacy file API: exec id -> FsOp
        self.stats = Stats(args.stats_file) if args.stats_file else None
        sys.stderr.write("modal_server: sandbox mode %s (%s)\n" % (
            "chroot" if self.chroot else "host", why))
        self.write_state()
        threading.Thread(target=self.reap, daemon=True).start()

    def reap(self):
        """Ends sandboxes whose lifetime (Sandbox.timeout_secs) has run out, as Modal does:
        status TIMEOUT, exit code 124, every process killed."""
        while True:
            time.sleep(0.1)
            now = time.time()
            with self.lock:
                due = [sb for sb in self.sandboxes.values() if sb.result is None and
                       sb.definition.timeout_secs and
                       now > sb.created + sb.definition.timeout_secs]
            for sb in due:
                self.finish(sb, self.pb.GENERIC_STATUS_TIMEOUT, 124)

    def fault(self, name):
        v = self.faults.get(name)
        return v[-1] if v else None

    def fault_int(self, name, default):
        v = self.faults.get(name)
        return int(v[-1]) if v else default

    def write_state(self):
        live = [{"id": s.id, "task_id": s.task_id, "execs": len(s.execs),
                 "timeout_secs": s.definition.timeout_secs}
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
        ctype, version = md.get("x-modal-client-type", ""), md.get("x-modal-client-version")
        if not ctype.isdigit() or not version:
            ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, "missing client type or version")
        sdk = {"8": "modal-js/", "9": "modal-go/"}.get(ctype)
        lib = md.get("x-modal-libmodal-version", "")
        if sdk and not (lib.startswith(sdk) and
                        all(p.isdigit() for p in lib[len(sdk):].split(".")) and
                        lib.count(".") == 2):
            ctx.abort(grpc.StatusCode.INVALID_ARGUMENT,
                      "client type %s needs x-modal-libmodal-version %sX.Y.Z, got %r" %
                      (ctype, sdk, lib))

    def frozen(self, service):
        """Whether `service` ("cp" or "rt") is frozen now (--freeze-file)."""
        path = self.args.freeze_file
        if not path:
            return False
        try:
            with open(path) as f:
                what = f.read().strip() or "all"
        except OSError:
            return False
        return what in ("all", service)

    def wait_thawed(self, service, ctx):
        """Blocks while `service` is frozen, unless the client gives up."""
        while self.frozen(service) and ctx.is_active():
            time.sleep(0.05)

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

    def EnvironmentGetOrCreate(self, req, ctx):
        if req.deployment_name not in ("", "main"):
            ctx.abort(grpc.StatusCode.NOT_FOUND,
                      "Environment '%s' not found" % req.deployment_name)
        return self.pb.EnvironmentGetOrCreateResponse(
            environment_id="en-fakemain", metadata=self.pb.EnvironmentMetadata(
                name="main", settings=self.pb.EnvironmentSettings(
                    image_builder_version=ENV_BUILDER_VERSION)))

    def AppGetOrCreate(self, req, ctx):
        return self.pb.AppGetOrCreateResponse(app_id="ap-" + secrets.token_hex(8))

    def ImageGetOrCreate(self, req, ctx):
        allowed = self.fault("builder_versions")
        allowed = allowed.split(",") if allowed else BUILDER_VERSIONS
        if req.builder_version not in allowed:
            ctx.abort(grpc.StatusCode.FAILED_PRECONDITION,
                      "image builder version %r is not supported (supported: %s)" %
                      (req.builder_version, ", ".join(allowed)))
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
        if not (d.workdir or "/root").startswith("/"):
            ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, "workdir must be absolute")
        mounts = []
        for vm in d.volume_mounts:
            mp = "/" + "/".join(modal_fs_tools.path_parts(os.path.normpath(vm.mount_path)))
            if not vm.mount_path.startswith("/") or mp == "/":
                ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, "bad mount_path %r" % vm.mount_path)
            mounts.append((mp, os.path.join(self.root, "volumes", vm.volume_id), vm.read_only))
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
        sb.mounts = mounts
        if self.chroot:
            self.build_chroot(sb)
        else:
            for mp, vdir, _ in sb.mounts:  # a mount is a symlink to the volume's directory
                target = sb.path(mp)
                os.makedirs(os.path.dirname(target), exist_ok=True)
                os.symlink(vdir, target)
            sb.fs = modal_fs_tools.SandboxFs(root, sb.mounts)
        os.makedirs(sb.fs.resolve(d.workdir or "/root")[0], exist_ok=True)
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
            jwt=jwt, url="%s://127.0.0.1:%d" % ("https" if self.args.tls else "http", self.port))

    def SandboxWait(self, req, ctx):
        sb = self.sandbox(ctx, sid=req.sandbox_id)
        end = time.time() + req.timeout
        while sb.result is None and time.time() < end:
            time.sleep(0.05)
        return self.pb.SandboxWaitResponse(result=sb.result or self.pb.GenericResult())

    def SandboxTerminate(self, req, ctx):
        sb = self.sandbox(ctx, sid=req.sandbox_id)
        existing = self.finish(sb, self.pb.GENERIC_STATUS_TERMINATED, 137)
        return self.pb.SandboxTerminateResponse(existing_result=existing)

    def finish(self, sb, status, exitcode):
        """Ends a sandbox (terminated, or its lifetime ran out): kills its processes, removes
        its files. Returns the result it had before (None while it ran)."""
        with self.lock:
            existing = sb.result
            if sb.result is None:
                sb.result = self.pb.GenericResult(status=status, exitcode=exitcode)
            self.write_state()
        sb.kill()
        with self.lock:
            for k in [k for k, op in self.fs_ops.items() if op.sandbox_id == sb.id]:
                del self.fs_ops[k]
        # In chroot mode the mounts live only in the execs' namespaces: here the mount points
        # are empty directories, so this removes the sandbox's own files and nothing else.
        shutil.rmtree(sb.root, ignore_errors=True)
        return existing

    def build_chroot(self, sb):
        """Lays out the sandbox directory as a root filesystem and writes the sh lines that
        mount the host's system directories, /dev, /proc, the volumes and fs-tools into it."""
        r, q = sb.root, shlex.quote
        sb.chroot = True
        lines = ["set -e"]

        def bind(src, dst, ro, rec=False):
            lines.append("mount --%s %s %s" % ("rbind" if rec else "bind", q(src), q(r + dst)))
            if ro:
                lines.append("mount -o remount,bind,ro %s" % q(r + dst))
        for d in ("root", "tmp", "dev", "proc", "__modal/.bin"):
            os.makedirs(os.path.join(r, d), exist_ok=True)
        os.chmod(os.path.join(r, "tmp"), 0o1777)
        system = []
        for name, link in self.system:
            if link is not None:  # Debian 12: /bin, /lib, /lib64, /sbin point into /usr
                os.symlink(link, os.path.join(r, name))
            else:
                os.makedirs(os.path.join(r, name))
                bind("/" + name, "/" + name, True)
                system.append(("/" + name, "/" + name, True))
        bind("/dev", "/dev", False, True)
        bind("/proc", "/proc", False, True)
        for mp, vdir, ro in sb.mounts:
            os.makedirs(r + mp, exist_ok=True)
            bind(vdir, mp, ro)
        if self.fault("fs_tools") != "missing":
            open(os.path.join(r, FS_TOOLS.lstrip("/")), "w").close()
            bind(FS_TOOLS_SCRIPT, FS_TOOLS, True)
        sb.mount_script = "\n".join(lines)
        sb.fs = modal_fs_tools.SandboxFs(r, sb.mounts + system)

    def chroot_argv(self, sb, workdir, argv):
        """argv wrapped so that it runs in its own mount namespace, chrooted into the sandbox,
        in `workdir`. Every step execs the next: the command keeps the pid Popen saw, so the
        process group and TaskExecWait's status are its own."""
        setpriv = self.tools["setpriv"]
        inner = ([setpriv, "--bounding-set", DROP_CAPS] if setpriv else []) + \
            ["/bin/sh", "-c", 'cd "$0" && exec "$@"', workdir]
        script = sb.mount_script + "\nexec %s %s %s \"$@\"" % (
            shlex.quote(self.tools["chroot"]), shlex.quote(sb.root),
            " ".join(shlex.quote(a) for a in inner))
        return [self.tools["unshare"], "--mount", "--propagation", "private", "--", "/bin/sh", "-c",
                script, "sh"] + list(argv)

    def chroot_finds(self, sb, argv0, workdir, path):
        """Whether the chrooted sh will find command argv0 (as execvp would)."""
        if "/" in argv0:
            cands = [argv0 if argv0.startswith("/") else workdir + "/" + argv0]
        else:
            cands = [d + "/" + argv0 for d in path.split(":") if d.startswith("/")]
        for c in cands:
            try:
                host, _ = sb.fs.resolve(c)
            except OSError:
                continue
            if os.path.isfile(host) and os.access(host, os.X_OK):
                return True
        return False

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
        argv = list(req.command_args)
        if not argv:
            ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, "no command")
        env = dict(CHROOT_ENV if sb.chroot else os.environ)
        env.update(sb.env)
        env.update(dict(req.env))
        workdir = req.workdir or sb.definition.workdir or "/root"
        mem = sb.definition.resources.memory_mb or self.fault_int("memory_mb", 2048)
        stdout = subprocess.PIPE if req.stdout_config == 1 else subprocess.DEVNULL
        stderr = {0: subprocess.DEVNULL, 1: subprocess.PIPE,
                  2: subprocess.STDOUT}[req.stderr_config]
        if argv[0] == FS_TOOLS:
            if self.fault("fs_tools") == "start_error":
                ctx.abort(grpc.StatusCode.NOT_FOUND, "no such file")
            if self.fault("fs_tools") == "missing":
                argv = ["/bin/sh", "-c", 'echo "$0: not found" >&2; exit 127', FS_TOOLS]
            elif sb.chroot:  # bound read only at FS_TOOLS inside; its mode bits do not matter
                argv = ["/usr/bin/python3", FS_TOOLS] + argv[1:]
            else:
                argv = [sys.executable, FS_TOOLS_SCRIPT, "--root", sb.root] + \
                    ["--mount=%s=%s%s" % (mp, d, ":ro" if ro else "")
                     for mp, d, ro in sb.mounts] + argv[1:]
        if sb.chroot:
            try:
                wd_ok = os.path.isdir(sb.fs.resolve(workdir)[0])
            except OSError:
                wd_ok = False
            if not wd_ok:
                ctx.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          "cannot start: no such directory: %r" % workdir)
            if not self.chroot_finds(sb, argv[0], workdir, env.get("PATH", "")):
                ctx.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          "cannot start: [Errno 2] No such file or directory: %r" % argv[0])
            argv, cwd = self.chroot_argv(sb, workdir, argv), sb.root
        else:
            cwd = sb.path(workdir)

        def limits():
            resource.setrlimit(resource.RLIMIT_AS, (mem << 20, mem << 20))
        try:
            proc = subprocess.Popen(argv, cwd=cwd, env=env,
                                    stdin=subprocess.PIPE, stdout=stdout, stderr=stderr,
                                    start_new_session=True, preexec_fn=limits)
        except OSError as e:
            ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, "cannot start: %s" % e)
        sb.execs[req.exec_id] = Exec(proc)
        if req.timeout_secs:  # the exec's own deadline: killed like Modal kills it
            t = threading.Timer(req.timeout_secs, kill_group, (proc.pid,))
            t.daemon = True
            t.start()
        self.write_state()
        return self.pb.TaskExecStartResponse()

    def TaskExecStdioRead(self, req, ctx):
        ex = self.get_exec(req, ctx)
        if req.file_descriptor not in (0, 1):
            ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, "no such file descriptor")
        st = ex.streams[req.file_descriptor]
        pos = req.offset
        sent = 0
        drop = self.fault_int("stdio_drop", 0)
        while ctx.is_active():
            with st.cond:
                while len(st.buf) <= pos and not st.eof and ctx.is_active():
                    st.cond.wait(0.2)
                data = bytes(st.buf[pos:pos + CHUNK])
                done = st.eof and pos + len(data) >= len(st.buf)
            self.wait_thawed("rt", ctx)
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

    def TaskExecStdinWriteStream(self, it, ctx):
        """start, data..., end: the bytes at or past what was written go to stdin; end closes
        it. A newer stream or TaskExecStdinStatus evicts this one (CANCELLED)."""
        first = next(it, None)
        if first is None or first.WhichOneof("payload") != "start":
            ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, "the first message must be start")
        ex = self.get_exec(first.start, ctx)
        with ex.lock:
            if first.start.offset > ex.stdin_written:
                ctx.abort(grpc.StatusCode.OUT_OF_RANGE, "stdin offset beyond what was written")
            ex.stdin_stream += 1
            gen = ex.stdin_stream
        pos = first.start.offset
        drop_after, drop_left = self.stdin_drop_for_stream()
        taken = 0
        for msg in it:
            self.wait_thawed("rt", ctx)
            kind = msg.WhichOneof("payload")
            if kind == "start":
                ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, "start sent twice")
            with ex.lock:
                if ex.stdin_stream != gen:
                    ctx.abort(grpc.StatusCode.CANCELLED, "evicted by a newer stdin request")
                if kind == "end":
                    if not ex.stdin_closed:
                        ex.stdin_closed = True
                        try:
                            ex.proc.stdin.close()
                        except (BrokenPipeError, ValueError):
                            pass
                    break
                if drop_left and taken >= drop_after:
                    sys.stderr.write("modal_server: injected stdin stream drop at %d\n" % pos)
                    ctx.abort(grpc.StatusCode.UNAVAILABLE, "injected stdin stream drop")
                if ex.stdin_closed:
                    ctx.abort(grpc.StatusCode.FAILED_PRECONDITION, "stdin is closed")
                data = msg.data[max(0, ex.stdin_written - pos):]
                try:
                    if data:
                        ex.proc.stdin.write(data)
                        ex.proc.stdin.flush()
                except (BrokenPipeError, ValueError):
                    ctx.abort(grpc.StatusCode.FAILED_PRECONDITION,
                              "the process no longer takes input")
                ex.stdin_written += len(data)
                pos += len(msg.data)
                taken += 1
        # (a stream half-closed without end leaves stdin open, for a resume)
        return self.pb.TaskExecStdinWriteStreamResponse()

    def stdin_drop_for_stream(self):
        """(N, True) when this stdin stream is one of the first K the stdin_stream_drop fault
        breaks after N data messages, else (0, False)."""
        spec = self.fault("stdin_stream_drop")
        if not spec:
            return 0, False
        n, _, k = spec.partition(":")
        with self.lock:
            self.calls["stdin_stream_drops"] = seen = self.calls.get("stdin_stream_drops", 0) + 1
        return int(n), seen <= int(k or 1)

    def TaskExecStdinStatus(self, req, ctx):
        ex = self.get_exec(req, ctx)
        with ex.lock:
            ex.stdin_stream += 1  # evicts a stream in flight
            return self.pb.TaskExecStdinStatusResponse(num_bytes_written=ex.stdin_written,
                                                       closed=ex.stdin_closed)

    def _exit(self, resp_cls, rc):
        if rc is None:
            return resp_cls()
        return resp_cls(signal=-rc) if rc < 0 else resp_cls(code=rc)

    def TaskExecWait(self, req, ctx):
        ex = self.get_exec(req, ctx)
        while ctx.is_active():
            try:
                rc = ex.proc.wait(0.2)
            except subprocess.TimeoutExpired:
                continue
            self.wait_thawed("rt", ctx)
            return self._exit(self.pb.TaskExecWaitResponse, rc)
        return self.pb.TaskExecWaitResponse()

    def TaskExecPoll(self, req, ctx):
        ex = self.get_exec(req, ctx)
        return self._exit(self.pb.TaskExecPollResponse, ex.proc.poll())

    # ---- legacy file API (control plane) -------------------------------------------------

    def legacy_fs_check(self, ctx):
        if self.fault("legacy_fs") == "unimplemented":
            ctx.abort(grpc.StatusCode.UNIMPLEMENTED, "ContainerFilesystemExec is not served")

    def ContainerFilesystemExec(self, req, ctx):
        self.legacy_fs_check(ctx)
        sb = self.sandbox(ctx, task_id=req.task_id)
        if sb.result is not None:
            ctx.abort(grpc.StatusCode.FAILED_PRECONDITION, "sandbox has finished")
        which = req.WhichOneof("file_exec_request_oneof")
        if which is None:
            ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, "no file request")
        resp = self.pb.ContainerFilesystemExecResponse(exec_id="fe-" + secrets.token_hex(8))
        sub = getattr(req, which)
        chunks, error = [], None
        with sb.files_lock:
            try:
                if which == "file_open_request":
                    # The id is handed out even when the open fails; the error is in the batches.
                    resp.file_descriptor = "fd-" + secrets.token_hex(8)
                    sb.files[resp.file_descriptor] = self.legacy_open(sb, sub.path, sub.mode)
                else:
                    f = sb.files.get(sub.file_descriptor)
                    if f is None:
                        raise OSError(errno.EINVAL, "bad file descriptor",
                                      sub.file_descriptor)
                    if which == "file_write_request":
                        view = memoryview(sub.data)
                        while view:
                            view = view[f.write(view):]
                    elif which == "file_read_request":
                        data = f.read(sub.n) if sub.n else f.readall()
                        chunks = [data[i:i + CHUNK] for i in range(0, len(data), CHUNK)]
                    elif which == "file_flush_request":
                        f.flush()
                    elif which == "file_close_request":
                        del sb.files[sub.file_descriptor]
                        f.close()
            except (OSError, ValueError) as e:
                error = legacy_error(e, getattr(sub, "path", ""))
        with self.lock:
            self.fs_ops[resp.exec_id] = FsOp(sb.id, chunks, error)
        return resp

    def legacy_open(self, sb, path, mode):
        """Opens sandbox path `path` unbuffered in binary form of Python mode `mode`."""
        m = mode.replace("t", "")
        if "b" not in m:
            m += "b"
        if not path.startswith("/"):
            raise OSError(errno.EINVAL, "path must be absolute", path)
        host, ro = sb.fs.resolve(path)
        if ro and any(c in m for c in "wax+"):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), path)
        return open(host, m, buffering=0)

    def ContainerFilesystemExecGetOutput(self, req, ctx):
        self.legacy_fs_check(ctx)
        with self.lock:
            op = self.fs_ops.get(req.exec_id)
        if op is None:
            ctx.abort(grpc.StatusCode.NOT_FOUND, "no such filesystem exec")
        n = 0
        for chunk in op.chunks:
            n += 1
            yield self.pb.FilesystemRuntimeOutputBatch(output=[chunk], batch_index=n)
        last = self.pb.FilesystemRuntimeOutputBatch(batch_index=n + 1, eof=True)
        if op.error:
            last.error.error_code, last.error.error_message = op.error
        yield last
        with self.lock:  # served whole (a broken stream can be asked for again)
            self.fs_ops.pop(req.exec_id, None)


# A CA that signs only the one server certificate below, for a day.
TLS_CONFIG = """[req]
distinguished_name = dn
prompt = no
[dn]
CN = rlm fake Modal CA
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
authorityKeyIdentifier = keyid
"""


def make_tls(directory):
    """Makes a throwaway CA (ca.pem) and a server certificate for 127.0.0.1 signed by it in
    `directory` with the openssl command line; returns (CA path, server key PEM, server
    certificate PEM)."""
    openssl = tool("openssl")
    if not openssl:
        sys.exit("modal_server: --tls needs the openssl command (Debian's openssl package)")
    f = {n: os.path.join(directory, n) for n in
         ("openssl.cnf", "ca.key", "ca.pem", "server.key", "server.csr", "server.pem")}
    with open(f["openssl.cnf"], "w") as out:
        out.write(TLS_CONFIG)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for argv in (
            ["req", "-config", f["openssl.cnf"], "-x509", "-extensions", "ca", "-days", "2"] +
            ec + ["-keyout", f["ca.key"], "-out", f["ca.pem"]],
            ["req", "-config", f["openssl.cnf"], "-new", "-subj", "/CN=127.0.0.1"] + ec +
            ["-keyout", f["server.key"], "-out", f["server.csr"]],
            ["x509", "-req", "-in", f["server.csr"], "-CA", f["ca.pem"], "-CAkey", f["ca.key"],
             "-set_serial", str(int.from_bytes(secrets.token_bytes(8), "big")), "-days", "2",
             "-extfile", f["openssl.cnf"], "-extensions", "server", "-out", f["server.pem"]]):
        r = subprocess.run([openssl] + argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           text=True)
        if r.returncode:
            sys.exit("modal_server: openssl %s failed: %s" % (argv[0], r.stderr.strip()))
    with open(f["server.key"], "rb") as k, open(f["server.pem"], "rb") as c:
        return f["ca.pem"], k.read(), c.read()


def write_atomically(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def handlers(fake, pb):
    cp_unary = ["EnvironmentGetOrCreate", "AppGetOrCreate", "ImageGetOrCreate", "SecretGetOrCreate", "VolumeGetOrCreate",
                "SandboxCreate", "SandboxGetTaskId", "TaskGetCommandRouterAccess", "SandboxWait",
                "SandboxTerminate", "ContainerFilesystemExec"]
    cp_stream = {"ImageJoinStreaming": "ImageJoinStreamingResponse",
                 "ContainerFilesystemExecGetOutput": "FilesystemRuntimeOutputBatch"}
    rt_unary = ["TaskExecStart", "TaskExecStdinWrite", "TaskExecStdinStatus", "TaskExecWait",
                "TaskExecPoll"]
    rt_stream = {"TaskExecStdioRead": "TaskExecStdioReadResponse"}
    rt_client_stream = ["TaskExecStdinWriteStream"]
    stats = fake.stats

    def wrap(name, fn, cp):
        def call(req, ctx):
            fake.wait_thawed("cp" if cp else "rt", ctx)
            if cp:
                fake.check_token(ctx)
            fake.inject(name, ctx)
            answer = fn(req, ctx)
            fake.lose_reply(name, ctx)
            fake.wait_thawed("cp" if cp else "rt", ctx)  # (a freeze that began meanwhile)
            return answer
        return call

    def timed_unary(path, call):
        def timed(req, ctx):
            t0 = time.perf_counter()
            try:
                return call(req, ctx)
            finally:
                stats.record(path, time.perf_counter() - t0, ctx.peer())
        return timed

    def timed_stream(path, call):
        def timed(req, ctx):
            t0 = time.perf_counter()
            try:
                yield from call(req, ctx)
            finally:
                stats.record(path, time.perf_counter() - t0, ctx.peer())
        return timed

    def handler(service, name, cp, resp_name=None, client_stream=False):
        req = getattr(pb, name + "Request")
        resp = getattr(pb, resp_name or name + "Response")
        call = wrap(name, getattr(fake, name), cp)
        if client_stream:
            make = grpc.stream_unary_rpc_method_handler
        elif resp_name:
            make = grpc.unary_stream_rpc_method_handler
        else:
            make = grpc.unary_unary_rpc_method_handler
        if stats:
            path = "/%s/%s" % (service, name)
            call = (timed_stream if resp_name else timed_unary)(path, call)
        return make(call, request_deserializer=req.FromString,
                    response_serializer=resp.SerializeToString)

    cp = {n: handler(CP, n, True) for n in cp_unary}
    cp.update({n: handler(CP, n, True, r) for n, r in cp_stream.items()})
    rt = {n: handler(RT, n, False) for n in rt_unary}
    rt.update({n: handler(RT, n, False, r) for n, r in rt_stream.items()})
    rt.update({n: handler(RT, n, False, client_stream=True) for n in rt_client_stream})
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
    ap.add_argument("--sandbox-mode", choices=("auto", "chroot", "host"), default="auto")
    ap.add_argument("--stats-file")
    ap.add_argument("--tls", action="store_true")
    ap.add_argument("--ca-file-out")
    ap.add_argument("--freeze-file")
    # HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS per connection, as real gRPC servers advertise
    # one (often 100); a client with more calls at once must open more connections. 0 leaves
    # grpcio's default (no limit advertised).
    ap.add_argument("--max-concurrent-streams", type=int, default=100)
    # The sync server runs each call in flight, streams included, on a worker thread of its
    # own, and every live sandbox holds a stream open: fewer workers than calls starve it.
    ap.add_argument("--workers", type=int, default=1024)
    args = ap.parse_args()
    if args.ca_file_out and not args.tls:
        ap.error("--ca-file-out needs --tls")
    tls_dir = tempfile.mkdtemp(prefix="modaltls-") if args.tls else None
    if tls_dir:  # removed at any exit: stop() below, or a failure before it is installed
        atexit.register(shutil.rmtree, tls_dir, True)
        ca_file, key, cert = make_tls(tls_dir)
    pb = load_pb(os.path.abspath(args.proto))
    fake = Fake(args, pb)
    options = [("grpc.max_receive_message_length", MAX_MESSAGE),
               ("grpc.max_send_message_length", 100 << 20)]
    if args.max_concurrent_streams > 0:
        options.append(("grpc.max_concurrent_streams", args.max_concurrent_streams))
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=args.workers), options=options)
    for h in handlers(fake, pb):
        server.add_generic_rpc_handlers((h,))
    if tls_dir:
        fake.port = server.add_secure_port("127.0.0.1:0",
                                           grpc.ssl_server_credentials([(key, cert)]))
    else:
        fake.port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    if args.ca_file_out:  # before the port file: a client that sees the port finds the CA
        write_atomically(args.ca_file_out, ca_file)
    write_atomically(args.port_file, str(fake.port))

    def write_stats(*_):
        if fake.stats:
            fake.stats.write()

    def stop(*_):
        for sb in list(fake.sandboxes.values()):
            sb.kill()
        server.stop(0)
        write_stats()
        shutil.rmtree(fake.root, ignore_errors=True)
        if tls_dir:
            shutil.rmtree(tls_dir, ignore_errors=True)
        os._exit(0)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGUSR1, write_stats)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
