#!/usr/bin/env python3
"""test_online.py - the conformance suite against the real Modal service.

    test_online.py CONFORMANCE PLUGIN_DIR

Skipped (exit 77) unless MODAL_TOKEN_ID and MODAL_TOKEN_SECRET are set. Uses MODAL_SERVER_URL
and MODAL_ENVIRONMENT when set, the plugin's defaults otherwise (api.modal.com, the
python:3.12-slim image, app "rlm").
"""
import os
import subprocess
import sys


def main():
    if not os.environ.get("MODAL_TOKEN_ID") or not os.environ.get("MODAL_TOKEN_SECRET"):
        print("modal_online: MODAL_TOKEN_ID/MODAL_TOKEN_SECRET not set; skipped")
        return 77
    conformance, plugins = sys.argv[1], sys.argv[2]
    return subprocess.call([conformance, "--set", "backend=modal", "--set",
                            'plugin_path=["%s"]' % plugins, "--set",
                            "backends.modal.app_name=rlm-conformance",
                            "--set", "backends.modal.volume_name=rlm-conformance"])


if __name__ == "__main__":
    sys.exit(main())
