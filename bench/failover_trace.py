#!/usr/bin/env python3
"""bench/failover_trace.py: where the time of a leader fail-over goes, from the lines alone.

Runs `paxos-shm --failover-every MS` with PAXOS_LOG=info PAXOS_LOG_TIME=1 (every log line starts
with CLOCK_MONOTONIC seconds, one clock for every process) and, for every SIGKILL of the leader,
times the steps after it: the supervisor learns of the death (the life lock's release), the first
and the last node hears of it, the successor hears of it, the successor wins phase 1, and
(from the JSON report) the client sees the next decision. Prints the median and p90 of each, in
ms after the SIGKILL. The log lines themselves cost a write(2) each, so the steps are a little
slower than in a run without logs; the report's own to-decision figure shows by how much.

Usage: bench/failover_trace.py BINARY [--nodes N] [--rounds R] [--store shm|sqlite] [--every MS]
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

LINE = re.compile(r"^(\d+\.\d+) paxos-shm\[(supervisor|node (\d+)\.\d+)\]: (.*)$")


def quantile(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary")
    ap.add_argument("--nodes", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=200000)
    ap.add_argument("--store", default="shm")
    ap.add_argument("--every", type=int, default=100)
    a = ap.parse_args()
    with tempfile.NamedTemporaryFile(suffix=".json") as js:
        env = dict(os.environ, PAXOS_LOG="info", PAXOS_LOG_TIME="1")
        p = subprocess.run([a.binary, "--nodes", str(a.nodes), "--rounds", str(a.rounds),
                            "--store", a.store, "--window", "1", "--failover-every",
                            str(a.every), "--json", js.name, "--quiet"],
                           capture_output=True, text=True, env=env)
        if p.returncode != 0:
            print("paxos-shm exited %d:\n%s" % (p.returncode, p.stderr[-2000:]), file=sys.stderr)
            return 1
        doc = json.load(open(js.name))
    lines = []
    for raw in p.stderr.splitlines():
        m = LINE.match(raw)
        if m:
            lines.append((float(m.group(1)), None if m.group(3) is None else int(m.group(3)),
                          m.group(4)))
    lines.sort(key=lambda x: x[0])
    steps = {k: [] for k in ("supervisor learns", "first node hears", "successor hears",
                             "last node hears", "successor wins phase 1")}
    for k, (t0, who, text) in enumerate(lines):
        m = re.match(r"failover: SIGKILL leader (\d+)$", text)
        if who is not None or not m:
            continue
        victim, heard, won, succ, notice = int(m.group(1)), {}, None, None, None
        for t, w, x in lines[k + 1:]:
            if w is None and x.startswith("failover: "):
                break  # the next event
            if w is None and notice is None and x.startswith("node %d incarnation" % victim) \
                    and "life lock" in x:
                notice = t
            if w is not None and x == "peer %d is down" % victim and w not in heard:
                heard[w] = t
            if w is not None and x == "became leader" and won is None:
                won, succ = t, w
        if notice is None or won is None or succ not in heard:
            continue
        ms = lambda t: (t - t0) * 1e3
        steps["supervisor learns"].append(ms(notice))
        steps["first node hears"].append(ms(min(heard.values())))
        steps["last node hears"].append(ms(max(heard.values())))
        steps["successor hears"].append(ms(heard[succ]))
        steps["successor wins phase 1"].append(ms(won))
    n = len(steps["supervisor learns"])
    fo = doc["failover"]
    print("%d nodes, %s, window 1, a SIGKILL of the leader every %d ms: %d kills traced of %d"
          % (a.nodes, a.store, a.every, n, fo["events"]))
    print("%-26s %8s %8s" % ("ms after the SIGKILL", "p50", "p90"))
    for name, xs in steps.items():
        print("%-26s %8.3f %8.3f" % (name, quantile(xs, 0.5), quantile(xs, 0.9)))
    to = [e[0] / 1e3 for e in fo["per_event"] if e[0] >= 0]
    print("%-26s %8.3f %8.3f" % ("client sees the decision", quantile(to, 0.5),
                                 quantile(to, 0.9)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
