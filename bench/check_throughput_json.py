#!/usr/bin/env python3
"""Smoke test of bench/throughput: `throughput --quick [ARGS...] --json F` completes and F is valid
JSON with every expected field. Checks structure only, never a figure.

usage: check_throughput_json.py THROUGHPUT [ARGS...]   (ARGS are passed on, after --quick)"""
import json
import os
import subprocess
import sys
import tempfile

exe = sys.argv[1]
extra = sys.argv[2:]
with tempfile.TemporaryDirectory() as d:
    path = os.path.join(d, "t.json")
    p = subprocess.run([exe, "--quick", *extra, "--json", path], capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == 0, "exit %d\n%s\n%s" % (p.returncode, p.stdout, p.stderr)
    doc = json.load(open(path))
    for k in ("machine", "reps", "rounds", "rows", "command_bytes", "mib_per_run", "skipped"):
        assert k in doc, k
    for k in ("cores", "cpu", "kernel"):
        assert k in doc["machine"], k
    sizes = doc["command_bytes"]
    assert sizes and all(isinstance(b, int) and b >= 8 for b in sizes), sizes
    kinds = {r["kind"] for r in doc["rows"]}
    assert kinds == {"paxos-shm", "socket", "bare", "prototype"}, kinds
    stores = {r["store"] for r in doc["rows"] if r["kind"] == "paxos-shm"}
    if "--store" not in extra:
        assert stores == {"shm", "sqlite"}, stores
    for r in doc["rows"]:
        for k in ("nodes", "store", "window", "ok", "command_bytes", "rounds", "rounds_per_s",
                  "commands_per_s", "mb_per_s", "latency_us", "messages_per_round",
                  "cpu_s_per_100k_rounds", "peak_rss_mb", "failed_runs", "runs"):
            assert k in r, (k, r)
        assert r["ok"] is True and r["failed_runs"] == 0, r
        b = r["command_bytes"]
        assert b in sizes, r
        for k in ("median", "min", "max"):
            assert k in r["rounds_per_s"], r
            assert k in r["commands_per_s"], r
            assert k in r["mb_per_s"], r
            # One command per round; MB/s of commands = rounds/s x bytes / 1e6.
            assert abs(r["commands_per_s"][k] - r["rounds_per_s"][k]) < 0.1, r
            mb = r["rounds_per_s"][k] * b / 1e6
            assert abs(r["mb_per_s"][k] - mb) <= 1e-3 + 1e-6 * mb, r
        for k in ("p50", "p99", "p999"):
            assert k in r["latency_us"], r
        assert len(r["runs"]) == doc["reps"], r
        if b > 8:
            # Both stores keep long commands; only paxos-shm and bare run at them.
            assert r["kind"] in ("paxos-shm", "bare"), r
        if r["kind"] == "paxos-shm":
            for k in ("bare", "socket", "prototype"):
                assert k in r["ratio"], r
            for k in ("streams_torn", "missing"):
                assert k in r["commands"], r
    for b in sizes:
        # At every length: a bare row for each (nodes, window) of the paxos-shm rows, and the
        # fraction of it that each paxos-shm row reached.
        bare = {(r["nodes"], r["window"]) for r in doc["rows"]
                if r["kind"] == "bare" and r["command_bytes"] == b}
        pax = [r for r in doc["rows"] if r["kind"] == "paxos-shm" and r["command_bytes"] == b]
        assert pax, ("no paxos-shm row at", b)
        for r in pax:
            assert (r["nodes"], r["window"]) in bare, r
            assert r["ratio"]["bare"] > 0, r
        for st in stores:
            assert any(r["store"] == st for r in pax), ("no paxos-shm row of store", st, "at", b)
    assert "x bare" in p.stdout and "machine:" in p.stdout
    if any(b > 8 for b in sizes):
        assert "of bare" in p.stdout
print("throughput --quick %s: JSON complete" % " ".join(extra))
