#!/usr/bin/env python3
"""Smoke test of bench/failover: `failover --quick --json F` completes and F is valid JSON with
every expected field. Checks structure only, never a figure."""
import json
import os
import subprocess
import sys
import tempfile

exe = sys.argv[1]
with tempfile.TemporaryDirectory() as d:
    path = os.path.join(d, "f.json")
    p = subprocess.run([exe, "--quick", "--json", path], capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == 0, "exit %d\n%s\n%s" % (p.returncode, p.stdout, p.stderr)
    doc = json.load(open(path))
    for k in ("every_ms", "stop_every_ms", "configs", "plot"):
        assert k in doc, k
    assert len(doc["configs"]) == 1, doc["configs"]
    for c in doc["configs"]:
        for k in ("nodes", "store", "window", "ok", "rounds_per_s", "kill", "stop"):
            assert k in c, (k, c)
        assert c["ok"] is True, c
        for k in ("no_faults", "kill_every_1s"):
            assert k in c["rounds_per_s"], c
        for kind in ("kill", "stop"):
            ev = c[kind]
            for k in ("events", "unanswered", "to_decision_us", "worst_commit_us"):
                assert k in ev, (kind, k, ev)
            assert ev["events"] + ev["unanswered"] >= (3 if kind == "kill" else 2), ev
            for part in ("to_decision_us", "worst_commit_us"):
                for k in ("p50", "p99", "max"):
                    assert k in ev[part], (kind, part, k)
    for k in ("nodes", "store", "window", "from_ms", "decisions_per_ms"):
        assert k in doc["plot"], k
    assert len(doc["plot"]["decisions_per_ms"]) == 120, doc["plot"]
    assert "to decision" in p.stdout, p.stdout
print("failover --quick: JSON complete")
