#!/usr/bin/python3
"""test_faults.py - the Modal backend against faults injected by the fake Modal.

    test_faults.py CONFORMANCE PLUGIN_DIR [RLM_CLI]

Each case runs a slice of the conformance suite through with_fake.py (which also fails on a
leaked sandbox) with some --fault flags, and checks the documented outcome: retryable errors,
late images, empty task ids, throttling, dropped output streams, broken stdin streams (resumed
from TaskExecStdinStatus's offset) and expiring JWTs are absorbed; the image builder version
is the environment's unless the option or MODAL_IMAGE_BUILDER_VERSION names one; a sandbox
without the fs-tools helper moves files through the legacy file API, and without that through
sh + cat;
bad credentials fail fast with RLM_EAUTH; UNAVAILABLE past the retry budget is RLM_ETRANSIENT.
With RLM_CLI, `rlm smoke --backend modal` must pass every step (volume included) against the
fake.
"""
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
WITH_FAKE = os.path.join(HERE, "with_fake.py")


def run(conformance, plugins, faults, filt, env_prefix=(), extra=()):
    cmd = ["/usr/bin/python3", WITH_FAKE]
    for f in faults:
        cmd += ["--fault", f]
    cmd += ["--"] + list(env_prefix) + [conformance, "--set", "backend=modal", "--set",
                                        'plugin_path=["%s"]' % plugins, "--filter", filt]
    for e in extra:
        cmd += ["--set", e]
    t0 = time.time()
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=500)
    return p.returncode, p.stdout, time.time() - t0


def main():
    conformance, plugins = sys.argv[1], sys.argv[2]
    chroot = os.geteuid() == 0 and shutil.which("unshare") is not None
    failures = []

    def absorbed(name, faults, filt="test_upload_download_binary_round_trip", expect=(),
                 env_prefix=(), extra=()):
        rc, out, secs = run(conformance, plugins, faults, filt, env_prefix, extra)
        expect = [expect] if isinstance(expect, str) else list(expect)
        ok = rc == 0 and "PASSED  ] 1 test" in out and "no sandbox leaked" in out and \
            all(e in out for e in expect)
        print("%-40s %s (%.1f s)" % (name, "ok" if ok else "FAILED", secs))
        if not ok:
            failures.append(name)
            print(out[-3000:])

    def fails_with(name, faults, code, env_prefix=(), max_s=None):
        rc, out, secs = run(conformance, plugins, faults, "test_exec_keeps_state_between_cells",
                            env_prefix)
        ok = rc != 0 and code in out and "no sandbox leaked" in out and \
            (max_s is None or secs < max_s)
        print("%-40s %s (%.1f s)" % (name, "ok" if ok else "FAILED", secs))
        if not ok:
            failures.append(name)
            print(out[-3000:])

    absorbed("unavailable_is_retried", ["unavailable=AppGetOrCreate:3",
                                        "unavailable=SandboxCreate:2",
                                        "unavailable=TaskExecStart:3",
                                        "unavailable=TaskExecStdinWrite:2"])
    absorbed("late_image_and_empty_task_ids", ["image_late=4", "task_id_empty=5"])
    # The first SandboxCreate is carried out but its answer lost; the retry must reuse its
    # x-idempotency-key, or a second sandbox is made and the first leaks (with_fake fails).
    absorbed("lost_create_answer_makes_no_second_sandbox", ["lose_reply=SandboxCreate:1"])
    absorbed("throttling_waits_retry_after", ["throttle=SandboxCreate:3",
                                              "throttle=ImageGetOrCreate:2"])
    absorbed("dropped_stream_resumes_by_offset", ["stdio_drop=1"],
             "test_exec_keeps_state_between_cells")
    absorbed("expired_jwt_is_refreshed", ["jwt_ttl=1", "task_id_empty=0"],
             "test_sleep_times_out_and_keeps_state")
    # Uploads stream stdin as the SDKs do; broken streams resume at the router's offset (the
    # round trip checks every byte). The fault only hits TaskExecStdinWriteStream.
    absorbed("broken_stdin_stream_resumes_at_router_offset", ["stdin_stream_drop=2:4"],
             "test_upload_download_large_file_into_new_dir",
             expect="injected stdin stream drop")
    # The fake's builder takes only the listed versions; its environment says 2025.06.
    absorbed("image_builder_version_is_the_environments", ["builder_versions=2025.06"],
             "test_exec_keeps_state_between_cells")
    absorbed("image_builder_version_option_overrides", ["builder_versions=2024.04"],
             "test_exec_keeps_state_between_cells",
             extra=['backends.modal.image_builder_version="2024.04"'])
    absorbed("image_builder_version_env_overrides", ["builder_versions=2023.12"],
             "test_exec_keeps_state_between_cells",
             env_prefix=["env", "MODAL_IMAGE_BUILDER_VERSION=2023.12"])
    # File transfer: fs-tools first; without the helper binary the legacy file API (V1
    # sandboxes); without that too, sh + cat. The status line names the way that was kept.
    absorbed("file_transfer_uses_fs_tools", [], expect='"file_transfer":"fs-tools"')
    # The fallbacks write absolute sandbox paths with sh: only the fake's chroot mode (root,
    # unshare) maps those into the sandbox; as plain host processes they would hit the host.
    if not chroot:
        print("file transfer fallbacks: skipped (the fake runs sandboxes as host processes "
              "unless root with unshare)")
    fallback = absorbed if chroot else (lambda *a, **k: None)
    fallback("missing_fs_tools_falls_back_to_legacy_api", ["fs_tools=missing"],
             expect='"file_transfer":"legacy"')
    fallback("refused_fs_tools_falls_back_to_legacy_api", ["fs_tools=start_error"],
             expect='"file_transfer":"legacy"')
    fallback("no_fs_tools_no_legacy_api_falls_back_to_shell",
             ["fs_tools=missing", "legacy_fs=unimplemented"], expect='"file_transfer":"shell"')
    fallback("legacy_api_absorbs_unavailable", ["fs_tools=missing",
                                                "unavailable=ContainerFilesystemExec:2",
                                                "unavailable=ContainerFilesystemExecGetOutput:2"],
             expect='"file_transfer":"legacy"')
    fails_with("unauthenticated_fails_fast", [], "RLM_EAUTH",
               ["env", "MODAL_TOKEN_SECRET=as-wrong"], max_s=20)
    fails_with("unavailable_past_budget_is_transient", ["unavailable=AppGetOrCreate:50"],
               "RLM_ETRANSIENT")
    if len(sys.argv) > 3 and chroot:  # its volume step writes /data
        t0 = time.time()
        p = subprocess.run(["/usr/bin/python3", WITH_FAKE, "--", sys.argv[3], "smoke",
                            "--backend", "modal", "--set",
                            'plugin_path=["%s"]' % plugins], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=500)
        ok = p.returncode == 0 and "smoke: all steps passed" in p.stdout and \
            "no sandbox leaked" in p.stdout
        print("%-40s %s (%.1f s)" % ("rlm_smoke_backend_modal", "ok" if ok else "FAILED",
                                     time.time() - t0))
        if not ok:
            failures.append("rlm_smoke_backend_modal")
            print(p.stdout[-3000:])
    if failures:
        print("FAILED: " + ", ".join(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
