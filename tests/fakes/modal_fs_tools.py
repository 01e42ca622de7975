#!/usr/bin/python3
"""modal_fs_tools.py - the fake of Modal's in-sandbox file helper
/__modal/.bin/modal-sandbox-fs-tools (shared/reference/modal-api.md sections 4.3 and 4.4), and
the sandbox path resolver that tests/fakes/modal_server.py also uses for the legacy file API.

    modal_fs_tools.py [--root DIR [--mount /PATH=HOSTDIR[:ro]]...] REQUEST_JSON

REQUEST_JSON is {"WriteFile": {"path": "/abs"}} (stdin bytes -> the file: parents created, an
existing file replaced by a new inode with mode 0644, binary safe) or {"ReadFile": {"path":
"/abs"}} (the file's bytes -> stdout). Paths must be absolute. Exit 0 on success; otherwise exit
1 with one JSON line on stderr: {"error_kind": "NotFound" | "PermissionDenied" | "IsDirectory" |
"NotDirectory" | "AlreadyExists" | "DirectoryNotEmpty" | "FileTooLarge" | "InvalidInput" |
"Other", "message": ..., "detail": ...}.

Without --root the helper runs inside the sandbox (the fake's chroot mode) and uses the paths
as they are. With --root (the fake's host mode) a sandbox path /X is resolved inside DIR: mount
points (--mount, e.g. the volume at /data) first, symlinks followed inside the sandbox, ".."
never above /, so nothing resolves outside DIR and the mounts.
"""
import argparse
import errno
import json
import os
import sys
import tempfile

CHUNK = 1 << 20

KINDS = {
    errno.ENOENT: "NotFound",
    errno.EACCES: "PermissionDenied",
    errno.EPERM: "PermissionDenied",
    errno.EROFS: "PermissionDenied",
    errno.EISDIR: "IsDirectory",
    errno.ENOTDIR: "NotDirectory",
    errno.EEXIST: "AlreadyExists",
    errno.ENOTEMPTY: "DirectoryNotEmpty",
    errno.EFBIG: "FileTooLarge",
    errno.EINVAL: "InvalidInput",
}


class SandboxFs:
    """Maps absolute sandbox paths to host paths: the sandbox root plus mounts.

    mounts: (sandbox path, host directory, read only) triples. Symlinks met on the way are
    followed as the sandbox would see them (an absolute target starts again at the sandbox's
    /), so a link pointing at /etc inside the sandbox never reaches the host's /etc unless /etc
    is itself a mount."""

    def __init__(self, root, mounts=()):
        self.root = root
        self.mounts = sorted(((tuple(path_parts(p)), d, ro) for p, d, ro in mounts),
                             key=lambda m: -len(m[0]))

    def _host(self, parts):
        for mp, d, ro in self.mounts:
            if tuple(parts[:len(mp)]) == mp:
                return os.path.join(d, *parts[len(mp):]), ro
        return os.path.join(self.root, *parts), False

    def _is_mount_point(self, parts):
        return any(tuple(parts) == mp for mp, _, _ in self.mounts)

    def resolve(self, path, follow_last=True):
        """The host path of absolute sandbox path `path` and whether it is read only. Raises
        OSError (EINVAL for a relative path, ELOOP for too many links)."""
        if not path.startswith("/"):
            raise OSError(errno.EINVAL, "path must be absolute", path)
        todo = path_parts(path)
        done = []
        hops = 0
        while todo:
            c = todo.pop(0)
            if c == "..":
                if done:
                    done.pop()
                continue
            cand = done + [c]
            host, _ = self._host(cand)
            if (todo or follow_last) and not self._is_mount_point(cand) and \
                    os.path.islink(host):
                hops += 1
                if hops > 40:
                    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
                target = os.readlink(host)
                if target.startswith("/"):
                    done = []
                todo = path_parts(target) + todo
                continue
            done = cand
        return self._host(done)


def path_parts(p):
    return [c for c in p.split("/") if c not in ("", ".")]


def write_file(fs, path, src):
    """Replaces the file at sandbox path `path` with the bytes of binary stream `src`."""
    host, ro = fs.resolve(path, follow_last=False) if fs else (_absolute(path), False)
    if ro:
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), path)
    parent = os.path.dirname(host)
    if os.path.lexists(parent) and not os.path.isdir(parent):
        raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
    try:
        os.makedirs(parent, exist_ok=True)
    except FileExistsError:  # a file where a parent directory should be
        raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), path)
    if os.path.isdir(host) and not os.path.islink(host):
        raise OSError(errno.EISDIR, os.strerror(errno.EISDIR), path)
    fd, tmp = tempfile.mkstemp(dir=parent, prefix=".fs-tools-")
    try:
        with os.fdopen(fd, "wb") as f:
            while True:
                data = src.read(CHUNK)
                if not data:
                    break
                f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, host)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def read_file(fs, path, dst):
    """Copies the file at sandbox path `path` to binary stream `dst`."""
    host, _ = fs.resolve(path) if fs else (_absolute(path), False)
    with open(host, "rb") as f:
        while True:
            data = f.read(CHUNK)
            if not data:
                break
            dst.write(data)
    dst.flush()


def _absolute(path):
    if not path.startswith("/"):
        raise OSError(errno.EINVAL, "path must be absolute", path)
    return path


def fail(kind, message, detail):
    sys.stderr.write(json.dumps({"error_kind": kind, "message": message, "detail": detail}) +
                     "\n")
    return 1


def main(argv):
    ap = argparse.ArgumentParser(prog="modal-sandbox-fs-tools")
    ap.add_argument("--root")
    ap.add_argument("--mount", action="append", default=[])
    ap.add_argument("request")
    args = ap.parse_args(argv)
    fs = None
    if args.root:
        mounts = []
        for m in args.mount:
            p, _, d = m.partition("=")
            ro = d.endswith(":ro")
            mounts.append((p, d[:-3] if ro else d, ro))
        fs = SandboxFs(args.root, mounts)
    try:
        req = json.loads(args.request)
        (op, body), = req.items()
        path = body["path"]
        if not isinstance(path, str):
            raise TypeError("path is not a string")
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        return fail("InvalidInput", "bad request", "%s: %s" % (args.request, e))
    try:
        if op == "WriteFile":
            write_file(fs, path, sys.stdin.buffer)
        elif op == "ReadFile":
            read_file(fs, path, sys.stdout.buffer)
        else:
            return fail("NotSupported", "unknown operation %s" % op, args.request)
    except OSError as e:
        msg = "%s (os error %d)" % (e.strerror or str(e), e.errno or 0)
        return fail(KINDS.get(e.errno, "Other"), msg, path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
