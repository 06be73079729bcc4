#!/usr/bin/env python3
"""Smoke test of bench/throughput: `throughput --quick --json F` completes and F is valid JSON
with every expected field. Checks structure only, never a figure."""
import json
import os
import subprocess
import sys
import tempfile

exe = sys.argv[1]
with tempfile.TemporaryDirectory() as d:
    path = os.path.join(d, "t.json")
    p = subprocess.run([exe, "--quick", "--json", path], capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == 0, "exit %d\n%s\n%s" % (p.returncode, p.stdout, p.stderr)
    doc = json.load(open(path))
    for k in ("machine", "reps", "rounds", "rows"):
        assert k in doc, k
    for k in ("cores", "cpu", "kernel"):
        assert k in doc["machine"], k
    kinds = {r["kind"] for r in doc["rows"]}
    assert kinds == {"paxos-shm", "socket", "bare", "prototype"}, kinds
    stores = {r["store"] for r in doc["rows"] if r["kind"] == "paxos-shm"}
    assert stores == {"shm", "sqlite"}, stores
    for r in doc["rows"]:
        for k in ("nodes", "store", "window", "ok", "rounds_per_s", "latency_us",
                  "messages_per_round", "cpu_s_per_100k_rounds", "peak_rss_mb", "runs"):
            assert k in r, (k, r)
        assert r["ok"] is True, r
        for k in ("median", "min", "max"):
            assert k in r["rounds_per_s"], r
        for k in ("p50", "p99", "p999"):
            assert k in r["latency_us"], r
        assert len(r["runs"]) == doc["reps"], r
        if r["kind"] == "paxos-shm":
            for k in ("bare", "socket", "prototype"):
                assert k in r["ratio"], r
    assert "x bare" in p.stdout and "machine:" in p.stdout
print("throughput --quick: JSON complete")
