#!/usr/bin/env python3
"""A stand-in for the paxos-shm binary that misbehaves on purpose, one way per SOAK_FAKE_MODE,
so that selftest.py can prove the soak notices each way (a checker that never fails proves
nothing). It takes the binary's flags, ignores most of them, and writes the --json summary.

Modes: ok, verdict_failed, lies (exit 0, VERIFIED, a wrong value), stderr, orphan (leaves a
process in its group), segment (leaves a segment), hang, abort.
"""
import argparse
import json
import os
import signal
import sys
import time


def fib(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, (a + b) % (1 << 64)
    return a


def summary(nodes, rounds, value_of, verdict_of):
    per_node = [{"id": i, "roles": "PAL", "incarnation": 1, "restarts": 0, "applied": rounds,
                 "value": value_of(i), "digest": "00000000000000aa", "requests": rounds,
                 "verdict": verdict_of(i)} for i in range(nodes)]
    verified = all(n["verdict"] == "ok" for n in per_node)
    return {"nodes": nodes, "learners": nodes, "rounds": rounds, "rounds_done": rounds,
            "base": 0, "restarts": 0, "chaos_kills": 0, "expected_value": fib(rounds + 1),
            "verified": verified,
            "outcome": "VERIFIED" if verified else "VERIFICATION FAILED", "per_node": per_node}


def finish(doc, path, code):
    with open(path, "w") as f:
        json.dump(doc, f)
    ok = sum(1 for n in doc["per_node"] if n["verdict"] == "ok")
    print("verdict     %s (%d of %d learners verified)" % (doc["outcome"], ok, doc["nodes"]))
    sys.stdout.flush()
    os._exit(code)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--nodes", type=int, default=5)
    p.add_argument("--rounds", type=int, default=100)
    p.add_argument("--json")
    a, _ = p.parse_known_args()
    mode = os.environ.get("SOAK_FAKE_MODE", "ok")
    right = fib(a.rounds + 1)
    if mode == "hang":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # only the group kill ends it
        time.sleep(3600)
    if mode == "abort":
        os.abort()
    if mode == "stderr":
        print("paxos-shm: node 1: assertion failed: n->base <= n->commit", file=sys.stderr)
    if mode == "orphan" and os.fork() == 0:
        time.sleep(60)
        os._exit(0)
    if mode == "segment":
        open("/dev/shm/paxos-shm-%d" % os.getpid(), "wb").close()
    if mode == "verdict_failed":
        finish(summary(a.nodes, a.rounds, lambda i: right + (i == 0),
                       lambda i: "WRONG VALUE" if i == 0 else "ok"), a.json, 1)
    if mode == "lies":
        finish(summary(a.nodes, a.rounds, lambda i: right + 1, lambda i: "ok"), a.json, 0)
    finish(summary(a.nodes, a.rounds, lambda i: right, lambda i: "ok"), a.json, 0)


if __name__ == "__main__":
    main()
