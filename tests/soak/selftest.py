#!/usr/bin/env python3
"""Proves that tests/soak/run notices every way a run can go wrong, by pointing it at
fake_paxos.py in each of its modes, and that its draws are a pure function of (seed, case).
Usage: selftest.py   (exit 0 when every check holds; ctest runs it as soak_selftest)
"""
import importlib.machinery
import importlib.util
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
RUN = os.path.join(HERE, "run")
FAKE = os.path.join(HERE, "fake_paxos.py")

# mode -> (outcome the soak must report, a phrase one of its reasons must hold)
EXPECT = {
    "ok": ("verified", None),
    "verdict_failed": ("failed", "WRONG VALUE on node 0"),
    "lies": ("failed", "verified, but F(base + R + 1) is"),
    "stderr": ("failed", "stderr: paxos-shm: node 1: assertion failed"),
    "orphan": ("failed", "processes left after the supervisor exited"),
    "segment": ("failed", "segment /dev/shm/paxos-shm-"),
    "hang": ("hung", "no exit within"),
    "abort": ("failed", "killed by SIGABRT"),
}
# Timeouts scaled down so that the hanging fake is declared hung within about a second; the
# other modes keep a margin of tens of seconds, so a loaded machine cannot make them "hung".
HANG_TIME_SCALE = "0.02"
TIME_SCALE = "0.5"


def load_run():
    loader = importlib.machinery.SourceFileLoader("soak_run", RUN)
    spec = importlib.util.spec_from_loader("soak_run", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


def plain_case(run, seed):
    """A case of `seed` with no injected fault and no chaos: one run the fake can answer."""
    for k in range(1000):
        c = run.draw_case(seed, k)
        if c["fault"] == "none" and not c["config"]["chaos"]:
            return k
    raise AssertionError("no plain case among the first 1000 of seed %d" % seed)


def check_pure(run):
    a = [json.dumps(run.draw_case(s, k), sort_keys=True) for s in (1, 2) for k in range(50)]
    b = [json.dumps(run.draw_case(s, k), sort_keys=True) for s in (1, 2) for k in range(50)]
    assert a == b, "draw_case is not a pure function of (seed, case)"
    assert len(set(a)) == len(a), "two cases drew the same configuration"
    assert run.fib(1) == 1 and run.fib(2) == 1 and run.fib(93) == 12200160415121876738
    assert run.fib(94) == (run.fib(92) + run.fib(93)) % (1 << 64), "fib wraps mod 2^64"


def soak_with(mode, case, work):
    out = os.path.join(work, mode + ".json")
    env = dict(os.environ, SOAK_FAKE_MODE=mode)
    scale = HANG_TIME_SCALE if mode == "hang" else TIME_SCALE
    p = subprocess.run([sys.executable, RUN, "--binary", FAKE, "--seed", "1", "--case",
                        str(case), "--time-scale", scale, "--json", out, "--quiet",
                        "--work", os.path.join(work, mode)],
                       capture_output=True, text=True, env=env, timeout=120)
    with open(out) as f:
        return p, json.load(f)["cases"][0]


def check_mode(mode, case, work):
    outcome, phrase = EXPECT[mode]
    p, rec = soak_with(mode, case, work)
    assert rec["outcome"] == outcome, (mode, rec["outcome"], rec["reasons"])
    assert p.returncode == (0 if outcome == "verified" else 1), (mode, p.returncode, p.stderr)
    if phrase:
        assert any(phrase in r for r in rec["reasons"]), (mode, phrase, rec["reasons"])
        assert "tests/soak/run --seed 1 --case %d" % case in p.stdout, p.stdout
    pgid = rec["phases"][0]["sup_pid"]
    run = load_run()
    assert not run.group_members(pgid), "%s: the soak left processes" % mode
    assert not os.path.exists("/dev/shm/paxos-shm-%d" % pgid), "%s: segment left" % mode


def main():
    run = load_run()
    check_pure(run)
    case = plain_case(run, 1)
    with tempfile.TemporaryDirectory(prefix="soak-selftest-") as work:
        for mode in EXPECT:
            check_mode(mode, case, work)
            print("selftest: %-15s -> %s" % (mode, EXPECT[mode][0]))
    print("selftest: passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
