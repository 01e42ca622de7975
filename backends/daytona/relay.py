"""relay.py - carries the rlm driver's channel over a Unix socket inside a Daytona sandbox.

Stdlib only; uploaded next to driver.py by the daytona backend. Two roles:

  python3 relay.py --daemon --socket PATH [--log FILE] -- python3 driver.py ARGS...
      Runs in a toolbox session (runAsync). Starts the driver as a child with pipes, keeps
      everything it writes in a log addressed by byte offset, and serves clients on PATH.

  python3 -S relay.py --connect PATH --op step --seq N --from OFF [--wait S] [--input FILE]
      One toolbox process/execute per exchange step. Sends its input (stdin, or FILE which is
      then removed) to the driver, then prints what the driver wrote from offset OFF on, up to
      and including the next complete frame (a `call` or `result`, or any other frame), or
      whatever there is when S seconds pass. Other ops: interrupt, restart, stop.

Why offsets and sequence numbers: a step can be retried (a 502, a dropped connection) or its
HTTP answer lost; input is written once per seq and output is re-read from the host's offset,
so a retry never loses or duplicates a byte.

What the client prints: one line `RLMRELAY1 {json header}` then exactly header.len bytes.
The header says gen (driver generation), from, len, exited (exit status, negative for a
signal, or null while it runs) and error (a string, when the step could not be served).
"""
import json
import os
import signal
import socket
import sys
import time

# subprocess and threading are imported by the daemon only: the client starts once per
# exchange step, and those imports are most of its start-up time.
subprocess = threading = None

MAGIC = b"RLMRELAY1 "
KEEP_AFTER_EXIT_S = 3600


def die_with_parent():
    """The driver (in its own process group, so a restart can kill all it forked) must not
    outlive the daemon: when the session is deleted, only the daemon's group is killed."""
    try:
        import ctypes
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


# ---- daemon -------------------------------------------------------------------------------

class Driver:
    def __init__(self, argv, log):
        self.argv, self.log = argv, log
        self.cond = threading.Condition()
        self.gen = 0
        self.proc = None
        self.spawn()

    def spawn(self):
        """Starts a fresh driver; the caller holds no lock or holds self.cond."""
        err = open(self.log, "ab") if self.log else subprocess.DEVNULL
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=err, start_new_session=True,
                                     preexec_fn=die_with_parent)
        if self.log:
            err.close()
        self.gen += 1
        self.base = 0  # offset of self.buf[0]
        self.buf = bytearray()
        self.eof = False
        self.exited = None
        self.last_seq = 0
        threading.Thread(target=self.pump, args=(self.proc, self.gen), daemon=True).start()

    def pump(self, proc, gen):
        fd = proc.stdout.fileno()
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            with self.cond:
                if gen != self.gen:
                    return
                if not data:
                    self.eof = True
                    self.cond.notify_all()
                    break
                self.buf += data
                self.cond.notify_all()
        rc = proc.wait()
        with self.cond:
            if gen == self.gen:
                self.exited = rc
                self.cond.notify_all()

    def kill(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass

    def step(self, seq, start, wait, data):
        with self.cond:
            gen = self.gen
            if data and seq > self.last_seq and self.exited is None:
                self.last_seq = seq
                stdin = self.proc.stdin
            else:
                stdin = None
        if stdin is not None:
            try:  # outside the lock: the driver may need us to read before it reads on
                stdin.write(data)
                stdin.flush()
            except (BrokenPipeError, OSError):
                pass
        deadline = time.monotonic() + wait
        with self.cond:
            if gen != self.gen:
                return {"error": "the driver was restarted"}, b""
            # What the host has seen (everything before start) is acknowledged: drop it.
            if start > self.base:
                cut = min(start - self.base, len(self.buf))
                del self.buf[:cut]
                self.base += cut
            while True:
                off = max(start - self.base, 0)
                avail = self.buf[off:]
                end = frame_end(avail)
                if end:
                    out = bytes(avail[:end])
                    break
                if self.eof and self.exited is not None:
                    out = bytes(avail)
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    out = bytes(avail)
                    break
                self.cond.wait(left)
            exited = self.exited if (self.eof and len(out) == len(avail)) else None
            return {"gen": self.gen, "from": self.base + off, "len": len(out),
                    "exited": exited}, out


def frame_end(buf):
    """Length of the prefix of buf that ends with the last complete frame (RS ... LF)."""
    rs = buf.find(b"\x1e")
    if rs < 0:
        return 0
    lf = buf.rfind(b"\n")
    return lf + 1 if lf > rs else 0


def recv_header(conn):
    line = bytearray()
    while not line.endswith(b"\n"):
        b = conn.recv(1)
        if not b:
            raise EOFError
        line += b
        if len(line) > 65536:
            raise ValueError("header too long")
    return json.loads(line)


def recv_exact(conn, n):
    chunks, got = [], 0
    while got < n:
        b = conn.recv(min(n - got, 1 << 20))
        if not b:
            raise EOFError
        chunks.append(b)
        got += len(b)
    return b"".join(chunks)


def serve_client(drv, conn):
    try:
        req = recv_header(conn)
        data = recv_exact(conn, int(req.get("len", 0)))
        op = req.get("op", "step")
        out = b""
        if op == "step":
            head, out = drv.step(int(req.get("seq", 0)), int(req.get("from", 0)),
                                 float(req.get("wait", 10)), data)
        elif op == "interrupt":
            try:
                os.kill(drv.proc.pid, signal.SIGINT)
                head = {"gen": drv.gen, "len": 0, "exited": drv.exited}
            except ProcessLookupError:
                head = {"error": "the driver is not running", "len": 0}
        elif op == "restart":
            with drv.cond:
                drv.kill()
                drv.spawn()
                head = {"gen": drv.gen, "len": 0, "exited": None}
        elif op == "stop":
            drv.kill()
            head = {"gen": drv.gen, "len": 0, "exited": drv.proc.returncode}
            conn.sendall(json.dumps(head).encode() + b"\n")
            os._exit(0)
        else:
            head = {"error": "unknown op %r" % op, "len": 0}
        conn.sendall(json.dumps(head).encode() + b"\n" + out)
    except Exception as e:  # one bad client must not take the daemon down
        try:
            conn.sendall(json.dumps({"error": "relay daemon: %r" % e, "len": 0}).encode()
                         + b"\n")
        except OSError:
            pass
    finally:
        conn.close()


def run_daemon(sock_path, log, argv):
    global subprocess, threading
    import subprocess
    import threading
    try:
        os.unlink(sock_path)
    except FileNotFoundError:
        pass
    drv = Driver(argv, log)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    tmp = sock_path + ".tmp"
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    srv.bind(tmp)
    os.chmod(tmp, 0o600)
    srv.listen(64)
    os.rename(tmp, sock_path)  # clients see the socket only once it accepts
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve_client, args=(drv, conn), daemon=True).start()


# ---- client -------------------------------------------------------------------------------

def emit(head, body=b""):
    head["len"] = len(body)
    out = sys.stdout.buffer
    out.write(MAGIC + json.dumps(head).encode() + b"\n" + body)
    out.flush()


def run_client(opts):
    wait = float(opts.get("wait", "10"))
    if "input" in opts:
        with open(opts["input"], "rb") as f:
            data = f.read()
        os.unlink(opts["input"])
    elif opts.get("op", "step") == "step" and not sys.stdin.isatty():
        data = sys.stdin.buffer.read()
    else:
        data = b""
    req = {"op": opts.get("op", "step"), "seq": int(opts.get("seq", "0")),
           "from": int(opts.get("from", "0")), "wait": wait, "len": len(data)}
    deadline = time.monotonic() + max(wait, 1.0)
    while True:  # the daemon may still be starting: wait for its socket
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(opts["connect"])
            break
        except (FileNotFoundError, ConnectionRefusedError):
            s.close()
            if time.monotonic() > deadline:
                emit({"error": "no relay daemon listens on %s" % opts["connect"],
                      "nodaemon": True})
                return 3
            time.sleep(0.02)
    try:
        s.sendall(json.dumps(req).encode() + b"\n" + data)
        head = recv_header(s)
        body = recv_exact(s, int(head.get("len", 0)))
    except (EOFError, OSError, ValueError) as e:
        emit({"error": "relay daemon hung up: %r" % e, "nodaemon": True})
        return 3
    emit(head, body)
    return 0


def parse(argv):
    opts, rest = {}, []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            rest = argv[i + 1:]
            break
        if a == "--daemon":
            opts["daemon"] = "1"
        elif a.startswith("--") and i + 1 < len(argv):
            opts[a[2:]] = argv[i + 1]
            i += 1
        i += 1
    return opts, rest


def main():
    opts, rest = parse(sys.argv[1:])
    if "daemon" in opts:
        if not rest or "socket" not in opts:
            sys.stderr.write("usage: relay.py --daemon --socket PATH -- DRIVER ARGV\n")
            return 2
        run_daemon(opts["socket"], opts.get("log"), rest)
        return 0
    if "connect" not in opts:
        sys.stderr.write("usage: relay.py --connect PATH [--op OP] [--seq N] [--from OFF]\n")
        return 2
    return run_client(opts)


if __name__ == "__main__":
    sys.exit(main())
