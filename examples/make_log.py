#!/usr/bin/env python3
"""Writes the demo's server log: about 5 MB of lines like

    2025-06-01T14:03:12.345Z ERROR payments    req=4f1c09ab upstream timeout: db-primary ...

from a fixed seed, so every machine gets the same file (and `make demo` the same answer).
Usage: make_log.py OUT [SIZE_BYTES]"""
import random
import sys

SERVICES = ["api-gateway", "auth", "payments", "orders", "search", "inventory"]
LEVELS = [("DEBUG", 18), ("INFO", 66), ("WARN", 11), ("ERROR", 5)]
ERRORS = [
    ("upstream timeout", "{dep} did not answer in {ms} ms"),
    ("connection refused", "{dep}:{port} refused the connection"),
    ("disk full", "no space left on /var/lib/{svc} ({pct}% used)"),
    ("out of memory", "worker {pid} killed by the OOM killer"),
    ("TLS handshake failed", "certificate for {dep} expired"),
    ("deadlock detected", "transaction {tx} rolled back"),
]
DEPS = ["db-primary", "db-replica", "cache", "queue", "ledger", "geo"]
PATHS = ["/v1/orders", "/v1/items", "/v1/login", "/v1/pay", "/v1/search", "/v1/stock"]


def error_kind(rng, service, hour):
    # Payments has a database incident in the afternoon; inventory's disk fills at night.
    if service == "payments" and 14 <= hour < 15 and rng.random() < 0.7:
        return ERRORS[0]
    if service == "inventory" and hour < 4 and rng.random() < 0.5:
        return ERRORS[2]
    return rng.choices(ERRORS, weights=[30, 22, 8, 12, 6, 5])[0]


def line(rng, t_ms):
    hour = (t_ms // 3_600_000) % 24
    ts = "2025-06-01T%02d:%02d:%02d.%03dZ" % (
        hour, (t_ms // 60_000) % 60, (t_ms // 1000) % 60, t_ms % 1000)
    service = rng.choice(SERVICES)
    weights = [w for _, w in LEVELS]
    if service == "payments" and 14 <= hour < 15:
        weights = [10, 40, 20, 30]  # the incident
    level = rng.choices([name for name, _ in LEVELS], weights=weights)[0]
    req = "%08x" % rng.getrandbits(32)
    if level == "ERROR":
        kind, detail = error_kind(rng, service, hour)
        msg = kind + ": " + detail.format(
            dep=rng.choice(DEPS), ms=rng.choice([1000, 3000, 5000]), port=rng.choice([5432, 6379, 5672]),
            svc=service, pct=rng.randint(97, 100), pid=rng.randint(1000, 9999),
            tx="%06x" % rng.getrandbits(24))
    elif level == "WARN":
        msg = "slow request %s %s took %d ms" % (rng.choice(["GET", "POST"]), rng.choice(PATHS),
                                                 rng.randint(800, 4000))
    elif level == "DEBUG":
        msg = "cache %s for key %s" % (rng.choice(["hit", "miss"]), req[:6])
    else:
        msg = "%s %s %d %d ms" % (rng.choice(["GET", "POST", "PUT"]), rng.choice(PATHS),
                                  rng.choice([200, 200, 200, 201, 204, 404]), rng.randint(2, 250))
    return "%s %-5s %-11s req=%s %s\n" % (ts, level, service, req, msg)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    size = int(sys.argv[2]) if len(sys.argv) > 2 else 5_000_000
    rng = random.Random(20250601)
    written, t_ms, out = 0, 0, []
    while written < size:
        t_ms += rng.randint(200, 1800)  # about one line a second over a day
        text = line(rng, t_ms)
        out.append(text)
        written += len(text)
    with open(sys.argv[1], "w", encoding="utf-8") as f:
        f.writelines(out)


if __name__ == "__main__":
    main()
