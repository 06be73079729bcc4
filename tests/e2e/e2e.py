#!/usr/bin/env python3
"""End-to-end tests of the paxos-shm binary: real processes, real shared memory, kills and bad
input. Usage: e2e.py BINARY CASE   (ctest runs one CASE per test; `e2e.py BINARY list` lists them)
"""
import ctypes
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

BIN = None
CASES = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def run(args, timeout=600, env=None):
    e = dict(os.environ)
    if env:
        e.update(env)
    return subprocess.run([BIN] + args, capture_output=True, text=True, timeout=timeout, env=e)


def segments_of(pid):
    return glob.glob("/dev/shm/paxos-shm-%d*" % pid)


def run_json(args, timeout=600):
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        path = f.name
    try:
        p = run(args + ["--json", path, "--quiet"], timeout=timeout)
        doc = None
        if os.path.getsize(path) > 0:
            with open(path) as f:
                doc = json.load(f)
        return p, doc
    finally:
        os.unlink(path)


def expect_verified(args, timeout=600):
    p, doc = run_json(args, timeout)
    assert p.returncode == 0, "exit %d, stderr:\n%s" % (p.returncode, p.stderr)
    assert doc is not None and doc["verified"] is True, doc
    assert doc["rounds_done"] == doc["rounds"], doc
    learners = [n for n in doc["per_node"] if "L" in n["roles"]]
    assert len(learners) == doc["learners"], doc
    assert all(n["verdict"] == "ok" for n in learners), doc["per_node"]
    assert len({n["digest"] for n in learners}) == 1, "digests differ"
    # a request the nodes dropped is never silent: the summary always counts them
    assert isinstance(doc.get("requests_dropped"), int), doc
    return doc


def sanitized():
    """The binary is an AddressSanitizer build (slower: fewer rounds where they cost time)."""
    with open(BIN, "rb") as f:
        return b"__asan_init" in f.read()


def fib(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, (a + b) % (1 << 64)
    return a


# --- runs that must verify ------------------------------------------------------------------


@case
def verify_1_node():
    doc = expect_verified(["--nodes", "1", "--rounds", "2000", "--store", "shm"])
    assert doc["expected_value"] == fib(2001)


@case
def verify_3_nodes():
    doc = expect_verified(["--nodes", "3", "--rounds", "20000"])
    assert doc["expected_value"] == fib(20001)


@case
def planted_state_machine_bug_is_a_wrong_value():
    # Run with the build whose Fibonacci state machine skips the increment of every 1000th index
    # on every learner alike (tests/e2e/CMakeLists.txt): the learners agree with each other, so
    # only a verdict that computes F(R + 1) itself, not from the state machine, catches it.
    for store in ("sqlite", "shm"):
        p, doc = run_json(["--nodes", "3", "--rounds", "5000", "--store", store])
        assert p.returncode == 1, "exit %d, stderr:\n%s" % (p.returncode, p.stderr)
        assert doc is not None and doc["verified"] is False, doc
        learners = [n for n in doc["per_node"] if "L" in n["roles"]]
        assert all(n["verdict"] == "WRONG VALUE" for n in learners), doc["per_node"]
        assert len({n["value"] for n in learners}) == 1, "the learners should agree"
        assert learners[0]["value"] != doc["expected_value"], doc


@case
def verify_5_nodes_shm():
    expect_verified(["--nodes", "5", "--rounds", "50000", "--store", "shm"])


@case
def verify_16_nodes():
    expect_verified(["--nodes", "16", "--rounds", "30000", "--store", "shm"])


@case
def verify_16_nodes_sqlite():
    expect_verified(["--nodes", "16", "--rounds", "20000", "--store", "sqlite"])


@case
def verify_several_proposers():
    expect_verified(["--nodes", "5", "--proposers", "5", "--rounds", "20000", "--store", "shm"])


@case
def verify_subset_of_learners():
    doc = expect_verified(["--nodes", "5", "--learners", "2", "--rounds", "20000",
                           "--store", "shm"])
    assert doc["learners"] == 2


@case
def verify_window_1():
    expect_verified(["--nodes", "3", "--window", "1", "--rounds", "2000", "--store", "shm"])


@case
def verify_rotation():
    doc = expect_verified(["--nodes", "5", "--proposers", "5", "--rotate", "1000",
                           "--rounds", "20000", "--store", "shm"])
    assert doc["leader_changes"] >= 10, doc["leader_changes"]


# --- chaos ------------------------------------------------------------------------------------


def chaos(store, nodes, rounds, kills, seed):
    doc = expect_verified(["--nodes", str(nodes), "--rounds", str(rounds), "--chaos", str(kills),
                           "--seed", str(seed), "--store", store, "--timeout", "300"])
    assert doc["chaos_kills"] >= kills, doc
    assert doc["chaos_leader_kills"] >= 1, doc
    assert doc["restarts"] >= kills, doc
    return doc


@case
def chaos_5_nodes_shm():
    chaos("shm", 5, 100000, 20, 7)


@case
def chaos_16_nodes_shm():
    chaos("shm", 16, 100000, 25, 11)


@case
def chaos_5_nodes_sqlite():
    chaos("sqlite", 5, 60000, 20, 13)


@case
def chaos_kill_at_the_end_is_restarted_before_verification():
    # One node, its chaos kill among the last rounds: the run used to stop the pool while the
    # victim was dead (or not reloaded yet), so it published no final state and the run failed
    # verification (4 of 6 tries). The end of the run waits for every chaos victim to be back.
    for _ in range(6):
        doc = expect_verified(["--nodes", "1", "--rounds", "313", "--store", "shm", "--window",
                               "1024", "--seed", "684077459", "--rotate", "10", "--chaos", "6",
                               "--chaos-any"])
        assert doc["restarts"] == doc["chaos_kills"], doc


@case
def chaos_makes_every_kill_it_was_asked_for():
    # --chaos 5 on 3 nodes over 1,000 rounds: the run is over in milliseconds, and a kill whose
    # moment came while its pick could not die (the last victim still restarting, a majority to
    # keep) was dropped at the end: 2 of 5 happened, and nothing said so.
    for seed in (1, 2, 3):
        doc = expect_verified(["--nodes", "3", "--rounds", "1000", "--store", "shm", "--chaos",
                               "5", "--seed", str(seed)])
        assert doc["chaos_kills"] == 5 and doc["chaos_planned"] == 5, doc
        assert doc["restarts"] == 5, doc


@case
def chaos_that_cannot_kill_says_so():
    # Two acceptors and no --chaos-any: no kill may leave a majority, so none happens, and the
    # report says 0 of 3 planned instead of hiding the difference.
    p = run(["--nodes", "2", "--rounds", "500", "--store", "shm", "--chaos", "3", "--json", "-",
             "--quiet"],
            timeout=60)
    assert p.returncode == 0, (p.returncode, p.stderr)
    doc = json.loads(p.stdout)
    assert doc["chaos_kills"] == 0 and doc["chaos_planned"] == 3, doc
    # ... and says so on stderr, at the start, in one line: `--nodes 1 --chaos 3` made 0 of 3
    # kills without a word.
    for nodes, acceptors in (("1", "1 acceptor"), ("2", "2 acceptors")):
        p = run(["--nodes", nodes, "--rounds", "500", "--store", "shm", "--chaos", "3"],
                timeout=60)
        assert p.returncode == 0, (nodes, p.returncode, p.stderr)
        lines = [l for l in p.stderr.splitlines() if l.strip()]
        assert lines == ["paxos-shm: --chaos 3: no kill can leave a majority of the %s up, so "
                         "none will be made (--chaos-any allows them)" % acceptors], p.stderr
        assert "chaos kills 0 of 3 planned" in p.stdout, p.stdout
    # A pool where a kill can keep the majority (or --chaos-any) says nothing of the kind.
    for args in (["--nodes", "3"], ["--nodes", "2", "--acceptors", "1"],
                 ["--nodes", "1", "--chaos-any"]):
        p = run(args + ["--rounds", "500", "--store", "shm", "--chaos", "3"], timeout=60)
        assert p.returncode == 0 and p.stderr == "", (args, p.returncode, p.stderr)
        assert "chaos kills 3 of 3 planned" in p.stdout, (args, p.stdout)


@case
def chaos_shm_store_stays_bounded_across_restarts():
    # Seeds that, before the node loop put a batch's TRUNCATE records first, made a restarted
    # node's shm store report "log area full" (exit 3) in about 1 run of 4.
    for nodes, seed in ((5, 202), (16, 212), (5, 216), (16, 218)):
        chaos("shm", nodes, 60000, 20, seed)


# --- bad input: exit 2 and one line naming the flag ---------------------------------------------

BAD = [
    (["--nodes"], "--nodes"),
    (["--nodes", "0"], "--nodes"),
    (["--nodes", "-3"], "--nodes"),
    (["--nodes", "abc"], "--nodes"),
    (["--nodes", "5x"], "--nodes"),
    (["--nodes", "65"], "--nodes"),
    (["--nodes", "99999999999999999999999"], "--nodes"),
    (["--rounds", "0"], "--rounds"),
    (["--rounds", ""], "--rounds"),
    (["--rounds", "1e6"], "--rounds"),
    (["--window", "0"], "--window"),
    (["--window", "100000"], "--window"),
    (["--ring-slots", "1000"], "--ring-slots"),
    (["--ring-slots", "32"], "--ring-slots"),
    (["--nodes", "3", "--proposers", "4"], "--proposers"),
    (["--nodes", "3", "--acceptors", "0"], "--acceptors"),
    (["--nodes", "3", "--learners", "0"], "--learners"),
    (["--seed", "-1"], "--seed"),
    (["--chaos", "x"], "--chaos"),
    (["--store", "mysql"], "--store"),
    (["--sync", "sometimes"], "--sync"),
    (["--timeout", "-1"], "--timeout"),
    (["--bogus"], "--bogus"),
    (["stray"], "stray"),
]


@case
def bad_input_exits_2_naming_the_flag():
    for args, flag in BAD:
        p = run(args, timeout=10)
        assert p.returncode == 2, (args, p.returncode, p.stderr)
        lines = [l for l in p.stderr.splitlines() if l.strip()]
        assert len(lines) == 1, (args, p.stderr)
        assert flag in lines[0], (args, lines[0])
        assert p.stdout == "", (args, p.stdout)


@case
def bad_paxos_log_exits_2():
    p = run(["--nodes", "1", "--rounds", "1"], timeout=10, env={"PAXOS_LOG": "loud"})
    assert p.returncode == 2 and "PAXOS_LOG" in p.stderr, p.stderr


@case
def paxos_log_accepts_any_case_and_cuts_a_long_value():
    for level in ("DEBUG", "Info", "tRaCe", "ERROR"):
        p = run(["--nodes", "1", "--rounds", "10", "--store", "shm", "--quiet"], timeout=60,
                env={"PAXOS_LOG": level})
        assert p.returncode == 0, (level, p.returncode, p.stderr[-500:])
    p = run(["--nodes", "1", "--rounds", "1"], timeout=10, env={"PAXOS_LOG": "x" * 5000})
    assert p.returncode == 2, p.returncode
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and "PAXOS_LOG" in lines[0], p.stderr[:300]
    assert len(lines[0]) < 200, len(lines[0])


@case
def paxos_log_error_and_help_name_the_same_levels():
    p = run(["--nodes", "1", "--rounds", "1"], timeout=10, env={"PAXOS_LOG": "loud"})
    assert p.returncode == 2
    levels = "error|info|debug|trace"
    assert levels in p.stderr, p.stderr
    h = run(["--help"], timeout=10)
    assert "PAXOS_LOG=" + levels in h.stdout, h.stdout


def expect_json_refused(path):
    # Checked before anything starts: a run of a billion rounds would otherwise only fail at
    # its end (--timeout 5 bounds the wait for the old behaviour).
    p = run(["--nodes", "3", "--rounds", "1000000000", "--store", "shm", "--timeout", "5",
             "--json", path], timeout=120)
    assert p.returncode == 2, (path, p.returncode, p.stderr[-500:])
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and "--json" in lines[0] and path in lines[0], (path, p.stderr)
    assert p.stdout == "", p.stdout


@case
def unwritable_json_path_exits_2_before_the_run():
    with tempfile.TemporaryDirectory() as d:
        expect_json_refused(os.path.join(d, "no-such-dir", "out.json"))
        expect_json_refused(d)  # a directory


@case
def json_file_is_replaced_only_at_the_end():
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "out.json")
        with open(path, "w") as f:
            f.write("x" * 100000)
        p = run(["--nodes", "1", "--rounds", "10", "--store", "shm", "--quiet", "--json", path],
                timeout=60)
        assert p.returncode == 0, p.stderr
        doc = json.load(open(path))
        assert doc["verified"] is True, doc


@case
def help_and_version_exit_0():
    p = run(["--help"], timeout=10)
    assert p.returncode == 0 and "--nodes" in p.stdout and "Exit codes" in p.stdout
    p = run(["--version"], timeout=10)
    assert p.returncode == 0 and p.stdout.startswith("paxos-shm ")


# --- signals and leftovers --------------------------------------------------------------------


def children_of(pid):
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True,
                         text=True).stdout
    return [int(x) for x in out.split()]


def ignored_signals(pid):
    """The signals process pid ignores (SigIgn of /proc/PID/status)."""
    for line in open("/proc/%d/status" % pid):
        if line.startswith("SigIgn:"):
            mask = int(line.split()[1], 16)
            return {n + 1 for n in range(64) if mask >> n & 1}
    return set()


def interrupt(sig, code, whole_group=False):
    """A long sqlite run on a fresh data directory (under a TMPDIR of its own), stopped by sig
    sent to the supervisor, or with whole_group to its whole process group as a terminal's
    hang-up or an ssh disconnect does. A clean stop: exit code, the report, no segment left in
    /dev/shm, no node left alive, the fresh data directory removed."""
    tmp = tempfile.mkdtemp(prefix="paxos-e2e-")
    p = None
    try:
        p = subprocess.Popen([BIN, "--nodes", "5", "--rounds", "1000000000"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=dict(os.environ, TMPDIR=tmp), start_new_session=True)
        deadline = time.time() + 20
        while time.time() < deadline and len(children_of(p.pid)) < 5:
            time.sleep(0.05)
        assert segments_of(p.pid), "segment not created"
        assert len(os.listdir(tmp)) == 1, os.listdir(tmp)  # the fresh data directory
        kids = children_of(p.pid)
        assert len(kids) == 5, kids
        time.sleep(1.0)
        if whole_group:
            # The nodes leave the stop to the supervisor: a signal to the group must not kill
            # them before it stops them (SIGTERM excepted: a plain `kill` of a node kills it).
            for k in kids:
                assert sig == signal.SIGTERM or sig in ignored_signals(k), \
                    "node %d does not ignore %s" % (k, sig)
            os.killpg(p.pid, sig)
        else:
            p.send_signal(sig)
        out, err = p.communicate(timeout=30)
        assert p.returncode == code, (p.returncode, err)
        assert "rounds" in out and "verdict" in out, out
        if whole_group:  # no node restarted once the stop signal came
            assert re.search(r"^faults +restarts 0 ", out, re.M), out
        assert not segments_of(p.pid), "segment left behind"
        for k in kids:
            assert not os.path.exists("/proc/%d" % k) or \
                open("/proc/%d/stat" % k).read().split()[2] == "Z", "node %d survived" % k
        assert os.listdir(tmp) == [], "data directory left behind: %s" % os.listdir(tmp)
    finally:
        if p is not None and p.poll() is None:  # a failed check: leave no run behind
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


@case
def sigint_stops_everything():
    interrupt(signal.SIGINT, 130)


@case
def sigterm_stops_everything():
    interrupt(signal.SIGTERM, 143)


# Before, each of these killed the supervisor (exit 128 + the signal) and left its segment in
# /dev/shm and its fresh data directory behind.
@case
def sighup_stops_everything():
    interrupt(signal.SIGHUP, 129)


@case
def sigquit_stops_everything():
    interrupt(signal.SIGQUIT, 131)


@case
def sigusr1_stops_everything():
    interrupt(signal.SIGUSR1, 138)


@case
def sigusr2_stops_everything():
    interrupt(signal.SIGUSR2, 140)


@case
def sighup_of_the_whole_process_group_stops_everything():
    interrupt(signal.SIGHUP, 129, whole_group=True)


@case
def sigterm_of_the_whole_process_group_stops_everything():
    # The nodes die of it (SIGTERM keeps its default in them); they were restarted when their
    # death was seen before the supervisor's own signal.
    interrupt(signal.SIGTERM, 143, whole_group=True)


@case
def every_other_stop_signal_stops_like_sigterm():
    for sig in (signal.SIGALRM, signal.SIGVTALRM, signal.SIGPROF, signal.SIGXCPU, signal.SIGIO,
                signal.SIGPWR, signal.SIGRTMIN, signal.SIGRTMAX):
        p = subprocess.Popen([BIN, "--nodes", "3", "--rounds", "1000000000", "--store", "shm"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 20
        while time.time() < deadline and len(children_of(p.pid)) < 3:
            time.sleep(0.05)
        time.sleep(0.5)
        p.send_signal(sig)
        try:
            out, err = p.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            raise
        assert p.returncode == 128 + sig, (sig, p.returncode, err)
        assert "verdict     stopped (" in out, out[-300:]
        assert not segments_of(p.pid), (sig, "segment left behind")


# --- the report's writes are checked ----------------------------------------------------------


def expect_write_error(args, stdout, needle):
    """A run whose report cannot be written exits 3 with one line naming what failed and the
    real cause, and still cleans up (segment, fresh data directory)."""
    tmp = tempfile.mkdtemp(prefix="paxos-e2e-")
    try:
        p = subprocess.Popen([BIN, "--nodes", "3", "--rounds", "100"] + args, stdout=stdout,
                             stderr=subprocess.PIPE, text=True, env=dict(os.environ, TMPDIR=tmp))
        _, err = p.communicate(timeout=120)
        assert p.returncode == 3, (args, p.returncode, err)
        lines = [l for l in err.splitlines() if l.strip()]
        assert len(lines) == 1 and needle in lines[0], (args, err)
        assert not segments_of(p.pid), "segment left behind"
        assert os.listdir(tmp) == [], "data directory left behind: %s" % os.listdir(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@case
def json_to_a_closed_pipe_exits_3_saying_so():
    # `paxos-shm --json - | head -c 0`: SIGPIPE killed the supervisor (141) before its teardown.
    for args, needle in ((["--json", "-"], "writing the summary to stdout: Broken pipe"),
                         (["--json", "-", "--quiet"],
                          "--json -: writing the JSON report to stdout: Broken pipe")):
        r, w = os.pipe()
        os.close(r)
        try:
            expect_write_error(args, w, needle)
        finally:
            os.close(w)


@case
def summary_to_a_full_stdout_exits_3_saying_so():
    # `paxos-shm > /dev/full` exited 0 with nothing on stderr.
    with open("/dev/full", "w") as full:
        expect_write_error([], full,
                           "paxos-shm: writing the summary to stdout: No space left on device")


@case
def json_to_a_full_device_exits_3_naming_the_cause():
    # `--json /dev/full` said "Invalid argument" (its ftruncate), not the full device.
    expect_write_error(["--quiet", "--json", "/dev/full"], subprocess.DEVNULL,
                       "paxos-shm: --json /dev/full: writing the JSON report: "
                       "No space left on device")


@case
def sigkill_of_the_supervisor_kills_every_node():
    # PR_SET_PDEATHSIG: the nodes die with the supervisor. This process becomes the subreaper
    # of the orphans, so it sees how each one ended instead of the machine's init (which may
    # reap orphaned zombies late).
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    p = subprocess.Popen([BIN, "--nodes", "5", "--rounds", "1000000000", "--store", "shm",
                          "--quiet"])
    deadline = time.time() + 20
    while time.time() < deadline and len(children_of(p.pid)) < 5:
        time.sleep(0.05)
    kids = children_of(p.pid)
    assert len(kids) == 5, kids
    time.sleep(0.5)
    p.kill()
    p.wait()
    how = {}
    deadline = time.time() + 30
    while len(how) < len(kids) and time.time() < deadline:
        for k in kids:
            if k not in how:
                pid, st = os.waitpid(k, os.WNOHANG)
                if pid == k:
                    how[k] = st
        time.sleep(0.01)
    assert len(how) == len(kids), ("nodes still running", set(kids) - set(how))
    assert all(os.WIFSIGNALED(st) and os.WTERMSIG(st) == signal.SIGKILL
               for st in how.values()), how


@case
def stale_segment_is_removed():
    # A pid that is surely dead: a child that already exited.
    dead = subprocess.Popen(["true"])
    dead.wait()
    path = "/dev/shm/paxos-shm-%d" % dead.pid
    with open(path, "wb") as f:
        f.write(b"\0" * 4096)
    try:
        expect_verified(["--nodes", "1", "--rounds", "10", "--store", "shm"])
        assert not os.path.exists(path), "stale segment still there"
    finally:
        if os.path.exists(path):
            os.unlink(path)


@case
def no_segment_left_after_a_run():
    p = subprocess.Popen([BIN, "--nodes", "3", "--rounds", "1000", "--store", "shm", "--quiet"])
    p.wait(timeout=120)
    assert p.returncode == 0
    assert not segments_of(p.pid)


# --- durable storage ----------------------------------------------------------------------------


# --- long commands (--command-bytes): bytes beside the value, checked on every learner -------

def expect_commands_checked(doc, size):
    assert doc["command_bytes"] == size, doc
    c = doc["commands"]
    assert c["wrong"] == 0, doc
    # every learner applied and checked every round's command once at least (a learner that
    # installed a snapshot skips what it replaced, so the sum is the bound, not each node)
    assert c["checked"] >= doc["rounds_done"], doc


@case
def long_commands_of_every_size_verify():
    for size in (9, 37, 4096, 65536):
        doc = expect_verified(["--nodes", "3", "--rounds", "3000" if size < 65536 else "600",
                               "--command-bytes", str(size), "--timeout", "300"])
        expect_commands_checked(doc, size)


@case
def one_mib_commands_under_chaos_verify():
    rounds = "150" if sanitized() else "400"
    doc = expect_verified(["--nodes", "5", "--rounds", rounds, "--command-bytes", "1048576",
                           "--chaos", "4", "--seed", "3", "--window", "16", "--timeout", "400"],
                          timeout=500)
    expect_commands_checked(doc, 1048576)
    assert doc["chaos_kills"] >= 4, doc


@case
def long_commands_under_chaos_at_16_nodes_verify():
    doc = expect_verified(["--nodes", "16", "--rounds", "4000", "--command-bytes", "1000",
                           "--chaos", "8", "--seed", "5", "--timeout", "300"])
    expect_commands_checked(doc, 1000)


@case
def long_commands_with_proposers_that_learn_nothing_under_chaos_verify():
    # A proposer that is no learner keeps forwarded requests queued after they were decided and
    # truncated (it cannot tell they were applied); leading later, it proposed one whose bytes
    # were gone, and its failed batch stopped the run (soak seed 5 case 174). It restarts now.
    for _ in range(3):
        doc = expect_verified(["--nodes", "6", "--rounds", "1418", "--window", "4",
                               "--seed", "322819421", "--proposers", "2", "--acceptors", "5",
                               "--learners", "4", "--sync", "full", "--rotate", "10",
                               "--chaos", "10", "--command-bytes", "100", "--timeout", "300"])
        expect_commands_checked(doc, 100)


@case
def long_commands_continue_across_runs_and_kills():
    with tempfile.TemporaryDirectory() as d:
        first = expect_verified(["--nodes", "3", "--rounds", "2000", "--command-bytes", "3000",
                                 "--data-dir", d])
        expect_commands_checked(first, 3000)
        p = subprocess.Popen([BIN, "--nodes", "3", "--rounds", "1000000000", "--data-dir", d,
                              "--command-bytes", "3000", "--quiet"])
        time.sleep(2.0)
        kids = children_of(p.pid)
        p.kill()
        p.wait()
        deadline = time.time() + 10
        while time.time() < deadline and any(os.path.exists("/proc/%d" % k) for k in kids):
            time.sleep(0.05)
        doc = expect_verified(["--nodes", "3", "--rounds", "500", "--command-bytes", "3000",
                               "--data-dir", d])
        assert doc["base"] > 2000, doc
        assert doc["expected_value"] == fib(doc["base"] + 501), doc
        expect_commands_checked(doc, 3000)


@case
def continued_run_with_another_command_length_exits_2():
    with tempfile.TemporaryDirectory() as d:
        expect_verified(["--nodes", "3", "--rounds", "300", "--command-bytes", "3000",
                         "--data-dir", d])
        for other in ("8", "3001"):
            p = run(["--nodes", "3", "--rounds", "10", "--command-bytes", other, "--data-dir", d])
            assert p.returncode == 2, (other, p.returncode, p.stderr)
            assert "--command-bytes 3000" in p.stderr, p.stderr
            assert len(p.stderr.strip().splitlines()) == 1, p.stderr
        doc = expect_verified(["--nodes", "3", "--rounds", "300", "--command-bytes", "3000",
                               "--data-dir", d])
        assert doc["base"] == 300, doc


@case
def long_commands_on_the_shm_store_verify_under_chaos():
    # The shm store keeps them in each node's command area (store_shm.c): every size, kills of
    # nodes mid-batch (chaos), and 1 MiB commands whose records wrap the area many times.
    for size in (9, 4096, 65536):
        doc = expect_verified(["--nodes", "3", "--rounds", "3000" if size < 65536 else "600",
                               "--store", "shm", "--command-bytes", str(size), "--timeout", "300"])
        expect_commands_checked(doc, size)
    doc = expect_verified(["--nodes", "5", "--rounds", "4000", "--store", "shm",
                           "--command-bytes", "3000", "--chaos", "6", "--seed", "7",
                           "--timeout", "300"])
    expect_commands_checked(doc, 3000)
    assert doc["chaos_kills"] >= 6, doc
    rounds = "100" if sanitized() else "300"
    doc = expect_verified(["--nodes", "5", "--rounds", rounds, "--store", "shm",
                           "--command-bytes", "1048576", "--chaos", "4", "--seed", "3",
                           "--window", "16", "--timeout", "400"], timeout=500)
    expect_commands_checked(doc, 1048576)


@case
def long_commands_bad_sizes_exit_2():
    for args, needle in ((["--command-bytes", "7"], "--command-bytes"),
                         (["--command-bytes", str(64 * 1024 * 1024 + 1)], "--command-bytes"),
                         # more than the shm store's command areas may reserve (node.h)
                         (["--command-bytes", "1048576", "--store", "shm", "--nodes", "64"],
                          "do not fit the command areas"),
                         (["--command-bytes", str(64 * 1024 * 1024), "--store", "shm"],
                          "do not fit the command areas")):
        p = run(["--nodes", "3", "--rounds", "10"] + args)
        assert p.returncode == 2, (args, p.returncode, p.stderr)
        assert needle in p.stderr and len(p.stderr.strip().splitlines()) == 1, (args, p.stderr)
    # what does fit runs: 2 MB commands on 3 nodes (a window of 3)
    expect_verified(["--nodes", "3", "--rounds", "20", "--store", "shm",
                     "--command-bytes", "2000000"])


@case
def two_runs_on_one_data_dir_continue_the_log():
    with tempfile.TemporaryDirectory() as d:
        first = expect_verified(["--nodes", "3", "--rounds", "5000", "--data-dir", d])
        assert first["base"] == 0, first
        second = expect_verified(["--nodes", "3", "--rounds", "5000", "--data-dir", d])
        assert second["base"] == 5000, second
        assert second["expected_value"] == fib(10001), second
        assert all(n["requests"] == 10000 for n in second["per_node"]), second["per_node"]


@case
def kill_9_of_the_whole_pool_loses_no_decided_round():
    with tempfile.TemporaryDirectory() as d:
        p = subprocess.Popen([BIN, "--nodes", "3", "--rounds", "1000000000", "--data-dir", d,
                              "--quiet"])
        time.sleep(3.0)
        kids = children_of(p.pid)
        assert len(kids) == 3, kids
        p.kill()  # SIGKILL the supervisor: the nodes die with it (PR_SET_PDEATHSIG)
        p.wait()
        deadline = time.time() + 10
        while time.time() < deadline and any(os.path.exists("/proc/%d" % k) for k in kids):
            time.sleep(0.05)
        # The next run removes the dead supervisor's segment and continues the same log: every
        # round decided before the kill is still applied exactly once (F(base + R + 1)).
        doc = expect_verified(["--nodes", "3", "--rounds", "2000", "--data-dir", d])
        assert doc["base"] > 0, doc
        assert not segments_of(p.pid), "stale segment of the killed supervisor left"


def interrupt_mid_run(d, sig, nodes=3):
    """Starts a long run on data dir d, lets it decide rounds with a full window in flight, then
    sends sig to the supervisor and waits until every node is gone."""
    p = subprocess.Popen([BIN, "--nodes", str(nodes), "--rounds", "1000000000", "--data-dir", d,
                          "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 20
    while time.time() < deadline and len(children_of(p.pid)) < nodes:
        time.sleep(0.05)
    kids = children_of(p.pid)
    assert len(kids) == nodes, kids
    time.sleep(1.5)
    p.send_signal(sig)
    p.wait(timeout=60)
    expected = {signal.SIGTERM: 143, signal.SIGINT: 130, signal.SIGKILL: -signal.SIGKILL}[sig]
    assert p.returncode == expected, (p.returncode, p.stderr.read())
    deadline = time.time() + 10
    while time.time() < deadline and any(os.path.exists("/proc/%d" % k) for k in kids):
        time.sleep(0.05)


def expect_continued(d, rounds):
    """A continued run on d verifies against the supervisor's own record: F(base + R + 1), and
    every learner applied base + R requests."""
    doc = expect_verified(["--nodes", "3", "--rounds", str(rounds), "--data-dir", d])
    assert doc["base"] > 0, doc
    assert doc["expected_value"] == fib(doc["base"] + rounds + 1), doc
    assert all(n["requests"] == doc["base"] + rounds for n in doc["per_node"]), doc["per_node"]
    return doc


def continue_after(sig):
    # Fewer new rounds than the interrupted run had in flight: rounds it submitted and never
    # saw decided are decided now (the new leader's phase 1 finds them accepted), and the
    # expectation must count them. Four cycles: one alone passed by luck about half the time.
    with tempfile.TemporaryDirectory() as d:
        base = 0
        for _ in range(4):
            interrupt_mid_run(d, sig)
            doc = expect_continued(d, 10)
            assert doc["base"] > base, (doc["base"], base)
            base = doc["base"] + 10


@case
def continued_run_after_sigterm_of_the_supervisor_verifies():
    continue_after(signal.SIGTERM)


@case
def continued_run_after_sigkill_of_the_supervisor_verifies():
    continue_after(signal.SIGKILL)


@case
def copy_of_an_interrupted_data_dir_verifies():
    with tempfile.TemporaryDirectory() as top:
        d = os.path.join(top, "a")
        os.mkdir(d)
        interrupt_mid_run(d, signal.SIGKILL)
        copy = os.path.join(top, "b")
        shutil.copytree(d, copy)
        on_copy = expect_continued(copy, 10)
        on_original = expect_continued(d, 10)
        assert on_copy["base"] == on_original["base"], (on_copy["base"], on_original["base"])


def db_files(d, name):
    return [os.path.join(d, name + x) for x in ("", "-wal", "-shm")
            if os.path.exists(os.path.join(d, name + x))]


def remove_db(d, name):
    for f in db_files(d, name):
        os.unlink(f)


def copy_db(src, dst, name):
    remove_db(dst, name)
    for f in db_files(src, name):
        shutil.copy(f, dst)


def expect_refused(d, needle, nodes=5, times=2, extra=()):
    # The refusal is one line, exit 3, before anything is sent; asked again it says the same.
    for _ in range(times):
        p = run(["--nodes", str(nodes), "--rounds", "100", "--data-dir", d, "--quiet"] +
                list(extra), timeout=120)
        assert p.returncode == 3, (p.returncode, p.stderr)
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1 and needle in lines[0], lines
    return lines[0]


def pool_with_backup(d, rounds=500, nodes=5):
    """A pool of `nodes` with `rounds` decided, a backup of its data dir at rounds/2."""
    backup = tempfile.mkdtemp()
    expect_verified(["--nodes", str(nodes), "--rounds", str(rounds // 2), "--data-dir", d])
    shutil.copytree(d, backup, dirs_exist_ok=True)
    expect_verified(["--nodes", str(nodes), "--rounds", str(rounds - rounds // 2),
                     "--data-dir", d])
    return backup


@case
def continued_run_without_the_client_record_exits_3():
    # The nodes hold 500 applied requests; with the supervisor's own record gone a new run
    # would reuse request ids they already applied: refused before anything is sent, again at
    # the next try, and the record put back continues the log.
    with tempfile.TemporaryDirectory() as d, tempfile.TemporaryDirectory() as keep:
        expect_verified(["--nodes", "3", "--rounds", "500", "--data-dir", d])
        copy_db(d, keep, "registry.db")
        remove_db(d, "registry.db")
        expect_refused(d, "registry.db is missing", nodes=3)
        copy_db(keep, d, "registry.db")
        doc = expect_verified(["--nodes", "3", "--rounds", "100", "--data-dir", d])
        assert doc["base"] == 500, doc


@case
def node_store_of_another_pool_exits_3_naming_it():
    with tempfile.TemporaryDirectory() as d, tempfile.TemporaryDirectory() as other, \
            tempfile.TemporaryDirectory() as keep:
        expect_verified(["--nodes", "5", "--rounds", "300", "--data-dir", d])
        expect_verified(["--nodes", "5", "--rounds", "900", "--data-dir", other])  # ahead
        copy_db(d, keep, "node-2.db")
        copy_db(other, d, "node-2.db")
        expect_refused(d, "node-2.db belongs to another pool")
        copy_db(keep, d, "node-2.db")  # the healthy nodes' history is intact
        doc = expect_verified(["--nodes", "5", "--rounds", "100", "--data-dir", d])
        assert doc["base"] == 300 and doc["expected_value"] == fib(401), doc


@case
def registry_of_another_pool_exits_3():
    with tempfile.TemporaryDirectory() as d, tempfile.TemporaryDirectory() as other:
        expect_verified(["--nodes", "5", "--rounds", "300", "--data-dir", d])
        expect_verified(["--nodes", "5", "--rounds", "300", "--data-dir", other])
        copy_db(other, d, "registry.db")
        expect_refused(d, "registry.db belongs to another pool")


@case
def registry_of_another_pool_with_another_command_length_exits_3():
    # The identity comes first: the registry of a pool of 8-byte commands copied into a pool of
    # 9-byte ones said "made with --command-bytes 8", exit 2 (soak seed 11 cases 33 and 37).
    with tempfile.TemporaryDirectory() as d, tempfile.TemporaryDirectory() as other:
        expect_verified(["--nodes", "5", "--rounds", "300", "--command-bytes", "9",
                         "--data-dir", d])
        expect_verified(["--nodes", "5", "--rounds", "300", "--data-dir", other])
        copy_db(other, d, "registry.db")
        expect_refused(d, "registry.db belongs to another pool", extra=("--command-bytes", "9"))


@case
def registry_from_an_older_backup_exits_3():
    # Before: exit 0, VERIFIED, while every request was answered "applied earlier".
    with tempfile.TemporaryDirectory() as d:
        backup = pool_with_backup(d)
        try:
            copy_db(backup, d, "registry.db")
            expect_refused(d, "registry.db is older than node-0.db")
        finally:
            shutil.rmtree(backup)


@case
def registry_backed_up_mid_run_and_restored_exits_3():
    # The same run's registry, copied while the run went on: its record says fewer requests
    # were submitted than the nodes applied.
    with tempfile.TemporaryDirectory() as d, tempfile.TemporaryDirectory() as keep:
        sup = subprocess.Popen([BIN, "--nodes", "3", "--rounds", "3000000", "--data-dir", d,
                                "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(1.0)
        copy_db(d, keep, "registry.db")
        sup.communicate(timeout=300)
        assert sup.returncode == 0, sup.returncode
        copy_db(keep, d, "registry.db")
        expect_refused(d, "registry.db is older than node-0.db", nodes=3)


@case
def deleted_node_store_exits_3_naming_it():
    with tempfile.TemporaryDirectory() as d, tempfile.TemporaryDirectory() as keep:
        expect_verified(["--nodes", "5", "--rounds", "300", "--data-dir", d])
        copy_db(d, keep, "node-1.db")
        remove_db(d, "node-1.db")
        expect_refused(d, "node-1.db is missing")
        copy_db(keep, d, "node-1.db")
        doc = expect_verified(["--nodes", "5", "--rounds", "100", "--data-dir", d])
        assert doc["base"] == 300, doc


@case
def every_node_store_deleted_exits_3_saying_the_rounds_are_gone():
    # Before: exit 1 "verification failed", as if something had computed a wrong value.
    with tempfile.TemporaryDirectory() as d:
        expect_verified(["--nodes", "5", "--rounds", "300", "--data-dir", d])
        for i in range(5):
            remove_db(d, "node-%d.db" % i)
        line = expect_refused(d, "every node store is missing")
        assert "300 rounds" in line, line


@case
def majority_of_node_stores_rolled_back_exits_3():
    # Before: depending on the seed, acceptors that forgot their promises voted again.
    with tempfile.TemporaryDirectory() as d:
        backup = pool_with_backup(d)
        try:
            for i in (0, 1, 2):
                copy_db(backup, d, "node-%d.db" % i)
            expect_refused(d, "node-0.db was rolled back")
        finally:
            shutil.rmtree(backup)


def holds_file(pid, name):
    try:
        fds = os.listdir("/proc/%d/fd" % pid)
        return any(os.readlink("/proc/%d/fd/%s" % (pid, fd)).startswith(name) or
                   os.path.basename(os.readlink("/proc/%d/fd/%s" % (pid, fd))).startswith(name)
                   for fd in fds)
    except OSError:
        return False


def edit_db(path, sql):
    subprocess.run(["sqlite3", path, sql], check=True, capture_output=True, timeout=60)


@case
def state_row_changed_through_sqlite_exits_3_naming_the_row():
    # One byte of the stored snapshot changed through SQLite: the file stays well formed, as
    # silent bit rot looks. Before: loaded and used, exit 1 WRONG VALUE.
    with tempfile.TemporaryDirectory() as d:
        expect_verified(["--nodes", "5", "--rounds", "300", "--data-dir", d])
        edit_db(os.path.join(d, "node-3.db"),
                "UPDATE paxos_state SET fib = cast(substr(fib, 1, 8) || x'00' || substr(fib, 10)"
                " AS blob)")
        line = expect_refused(d, "node-3.db: row paxos_state")
        assert "checksum mismatch" in line, line


@case
def log_row_changed_through_sqlite_exits_3_naming_the_row():
    with tempfile.TemporaryDirectory() as d:
        expect_verified(["--nodes", "5", "--rounds", "300", "--data-dir", d])
        edit_db(os.path.join(d, "node-4.db"),
                "UPDATE log SET recs = x'00' || substr(recs, 2)"
                " WHERE batch = (SELECT max(batch) FROM log)")
        p = run(["--nodes", "5", "--rounds", "100", "--data-dir", d, "--quiet"], timeout=120)
        assert p.returncode == 3, (p.returncode, p.stderr)
        assert re.search(r"node-4\.db: row \d+ of table log .*checksum mismatch", p.stderr), \
            p.stderr


@case
def node_store_removed_while_the_pool_runs_is_not_made_again():
    # A store deleted under a running node, then the node killed: its restart must not come
    # back as a blank acceptor.
    with tempfile.TemporaryDirectory() as d:
        sup = subprocess.Popen([BIN, "--nodes", "3", "--rounds", "50000000", "--data-dir", d,
                                "--quiet", "--timeout", "120"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 30
        while time.time() < deadline and len(children_of(sup.pid)) < 3:
            time.sleep(0.05)
        time.sleep(0.5)
        remove_db(d, "node-1.db")
        victim = [pid for pid in children_of(sup.pid) if holds_file(pid, "node-1.db")]
        assert len(victim) == 1, victim
        os.kill(victim[0], signal.SIGKILL)
        _, err = sup.communicate(timeout=200)
        assert sup.returncode == 3, (sup.returncode, err)
        assert "node-1.db: missing" in err, err
        assert not os.path.exists(os.path.join(d, "node-1.db")), os.listdir(d)


@case
def shm_store_with_a_data_dir_exits_2():
    with tempfile.TemporaryDirectory() as d:
        p = run(["--store", "shm", "--rounds", "10", "--data-dir", d])
        assert p.returncode == 2, (p.returncode, p.stderr)
        assert "--data-dir" in p.stderr and "--store sqlite" in p.stderr, p.stderr
        assert os.listdir(d) == [], os.listdir(d)


@case
def data_dir_in_use_is_refused_at_once_naming_the_holder():
    # Before: the second supervisor waited about 2 s, printed ten lines and a summary of zeros.
    with tempfile.TemporaryDirectory() as d:
        sup = subprocess.Popen([BIN, "--nodes", "3", "--rounds", "50000000", "--data-dir", d,
                                "--quiet", "--timeout", "120"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        try:
            deadline = time.time() + 30
            while time.time() < deadline and len(children_of(sup.pid)) < 3:
                time.sleep(0.05)
            t0 = time.time()
            p = run(["--nodes", "3", "--rounds", "10", "--data-dir", d], timeout=60)
            took = time.time() - t0
            assert p.returncode == 3, (p.returncode, p.stderr)
            lines = p.stderr.strip().splitlines()
            assert len(lines) == 1 and "in use by process %d" % sup.pid in lines[0], lines
            assert p.stdout == "", p.stdout
            assert took < 1.0, took
        finally:
            sup.send_signal(signal.SIGTERM)
            sup.wait(timeout=60)
        expect_verified(["--nodes", "3", "--rounds", "10", "--data-dir", d])  # the lock is free


def failpoint_run(failpoint, store):
    """A run in which every node SIGKILLs itself at the failpoint with probability 1/100 per
    batch must still verify, after at least three restarts."""
    e = dict(os.environ, PAXOS_FAILPOINT=failpoint)
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        path = f.name
    try:
        p = subprocess.run([BIN, "--nodes", "3", "--rounds", "20000", "--store", store,
                            "--timeout", "300", "--json", path, "--quiet"],
                           capture_output=True, text=True, timeout=400, env=e)
        doc = json.load(open(path))
    finally:
        os.unlink(path)
    assert p.returncode == 0, (p.returncode, p.stderr[-2000:])
    assert doc["verified"] and doc["restarts"] >= 3, doc


@case
def failpoint_kill_between_persist_and_send_still_verifies():
    failpoint_run("after-persist:100", "sqlite")


@case
def failpoint_kill_between_receive_and_persist_still_verifies():
    failpoint_run("before-persist:100", "shm")


@case
def failpoint_kill_mid_send_sqlite_still_verifies():
    failpoint_run("mid-send:20", "sqlite")


@case
def failpoint_kill_between_receive_and_persist_sqlite_still_verifies():
    failpoint_run("before-persist:100", "sqlite")


def fsyncs_and_batches(sync):
    """Runs 3 sqlite nodes under strace; returns {node: (fsync calls, batches persisted)} of
    every node process (the supervisor's own syncs, for the client record, are not counted)."""
    work = tempfile.mkdtemp()
    try:
        data = os.path.join(work, "data")
        os.mkdir(data)
        trace = os.path.join(work, "trace")
        # LeakSanitizer cannot run under ptrace: in the sanitizer build it would fail every
        # process at exit, so leaks are checked by every other case, not this one.
        asan = os.environ.get("ASAN_OPTIONS", "")
        e = dict(os.environ, PAXOS_LOG="debug",
                 ASAN_OPTIONS=(asan + ":" if asan else "") + "detect_leaks=0")
        p = subprocess.run(["strace", "-f", "-qq", "-o", trace, "-e", "trace=fsync,fdatasync",
                            BIN, "--nodes", "3", "--rounds", "3000", "--window", "4", "--store",
                            "sqlite", "--sync", sync, "--data-dir", data, "--quiet"],
                           capture_output=True, text=True, timeout=300, env=e)
        assert p.returncode == 0, (p.returncode, p.stderr[-2000:])
        pid_node = {int(m.group(2)): int(m.group(1)) for m in
                    re.finditer(r"node (\d+) incarnation \d+ is pid (\d+)", p.stderr)}
        batches = {int(m.group(1)): int(m.group(2)) for m in
                   re.finditer(r"\[node (\d+)\.\d+\]: loops .* batches (\d+) ", p.stderr)}
        syncs = {n: 0 for n in pid_node.values()}
        for line in open(trace):
            pid = int(line.split()[0])
            if pid in pid_node and re.search(r"\b(fsync|fdatasync)\(", line):
                syncs[pid_node[pid]] += 1
        assert len(pid_node) == 3 and sorted(batches) == [0, 1, 2], (pid_node, batches)
        return {n: (syncs[n], batches[n]) for n in batches}
    finally:
        shutil.rmtree(work)


@case
def sync_full_fsyncs_every_batch():
    # --sync full promises power-loss durability: the WAL is synced at every commit, and the
    # node sends a batch's replies only after its commit returned (the driver's order).
    for node, (syncs, batches) in fsyncs_and_batches("full").items():
        assert batches >= 100, (node, batches)
        assert syncs >= batches, "node %d: %d fsyncs for %d batches" % (node, syncs, batches)


@case
def sync_normal_does_not_fsync_per_batch():
    # --sync normal promises survival of a process crash only (the failpoint cases above kill
    # nodes between receive, persist and send): the OS holds every commit, no fsync is paid.
    for node, (syncs, batches) in fsyncs_and_batches("normal").items():
        assert batches >= 100, (node, batches)
        assert syncs <= 8, "node %d: %d fsyncs for %d batches" % (node, syncs, batches)


def expect_storage_error(args, needle, env=None):
    p = run(args + ["--quiet"], timeout=120, env=env)
    assert p.returncode == 3, (args, p.returncode, p.stderr)
    assert needle in p.stderr, (needle, p.stderr)
    return p


@case
def missing_data_dir_exits_3_naming_it():
    expect_storage_error(["--nodes", "3", "--rounds", "10", "--data-dir", "/nonexistent/px"],
                         "/nonexistent/px")


@case
def data_dir_under_a_file_exits_3():
    with tempfile.NamedTemporaryFile() as f:
        expect_storage_error(["--nodes", "3", "--rounds", "10", "--data-dir",
                              f.name + "/sub"], f.name)


@case
def corrupt_database_exits_3_and_spares_the_others():
    with tempfile.TemporaryDirectory() as d:
        expect_verified(["--nodes", "3", "--rounds", "500", "--data-dir", d])
        victim = os.path.join(d, "node-1.db")
        saved = open(victim, "rb").read()
        with open(victim, "r+b") as f:
            f.write(b"this is not a sqlite database at all" * 4)
        expect_storage_error(["--nodes", "3", "--rounds", "10", "--data-dir", d], "node-1.db")
        # Put the damaged file back as it was: the failed run must have cost nobody anything
        # committed, so the pool continues the same log from round 500.
        with open(victim, "wb") as f:
            f.write(saved)
        doc = expect_verified(["--nodes", "3", "--rounds", "500", "--data-dir", d])
        assert doc["base"] == 500, doc


@case
def truncated_database_exits_3():
    with tempfile.TemporaryDirectory() as d:
        expect_verified(["--nodes", "3", "--rounds", "500", "--data-dir", d])
        victim = os.path.join(d, "node-0.db")
        size = os.path.getsize(victim)
        with open(victim, "r+b") as f:
            f.truncate(size // 3 if size > 4096 else 100)
        for suffix in ("-wal", "-shm"):
            if os.path.exists(victim + suffix):
                os.unlink(victim + suffix)
        expect_storage_error(["--nodes", "3", "--rounds", "10", "--data-dir", d], "node-0.db")


@case
def data_dir_of_another_pool_size_exits_3():
    with tempfile.TemporaryDirectory() as d:
        expect_verified(["--nodes", "3", "--rounds", "100", "--data-dir", d])
        expect_storage_error(["--nodes", "5", "--rounds", "10", "--data-dir", d], d)


@case
def full_disk_exits_3():
    # A 2 MiB tmpfs as the data directory fills up within the run (needs root to mount; the
    # tests run as root in CI). Where mounting is not allowed the case says so and fails.
    with tempfile.TemporaryDirectory() as d:
        m = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", d],
                           capture_output=True, text=True)
        assert m.returncode == 0, "cannot mount a small tmpfs: %s" % m.stderr
        try:
            p = subprocess.run([BIN, "--nodes", "3", "--rounds", "1000000", "--data-dir", d,
                                "--quiet", "--timeout", "120"], capture_output=True, text=True,
                               timeout=200)
            assert p.returncode == 3, (p.returncode, p.stderr[-2000:])
            lines = [l for l in p.stderr.splitlines() if "node-" in l or "registry" in l]
            assert lines, p.stderr[-2000:]
            assert any("full" in l or "space" in l for l in lines), lines
        finally:
            subprocess.run(["umount", d])


def expect_link_refused(name, target_size=None):
    """A symbolic link `name` in the data dir (pointing outside it) makes the run stop with
    exit 3 and one line naming the file, and the target outside is neither created nor
    written."""
    with tempfile.TemporaryDirectory() as top:
        d = os.path.join(top, "data")
        outside = os.path.join(top, "outside")
        os.mkdir(d)
        os.mkdir(outside)
        target = os.path.join(outside, "target")
        if target_size is not None:
            with open(target, "wb") as f:
                f.write(b"\0" * target_size)
        os.symlink(target, os.path.join(d, name))
        p = run(["--nodes", "3", "--rounds", "10", "--data-dir", d, "--quiet"], timeout=120)
        assert p.returncode == 3, (name, p.returncode, p.stderr)
        lines = [l for l in p.stderr.splitlines() if l.strip()]
        assert len(lines) == 1, (name, p.stderr)
        assert name in lines[0] and "link" in lines[0], (name, lines[0])
        if target_size is None:
            assert os.listdir(outside) == [], ("created outside", os.listdir(outside))
        else:
            assert os.path.getsize(target) == target_size, "target written"
            assert open(target, "rb").read() == b"\0" * target_size, "target written"
            assert sorted(os.listdir(outside)) == ["target"], os.listdir(outside)


@case
def dangling_symlink_as_a_node_database_exits_3():
    expect_link_refused("node-0.db")


@case
def dangling_symlink_as_the_registry_exits_3():
    expect_link_refused("registry.db")


@case
def symlink_to_an_empty_file_exits_3_and_leaves_it_empty():
    expect_link_refused("node-1.db", target_size=0)
    expect_link_refused("registry.db", target_size=0)


@case
def symlinked_wal_or_shm_companion_exits_3_naming_it():
    for name in ("node-2.db-wal", "registry.db-wal", "registry.db-shm"):
        expect_link_refused(name)


@case
def data_dir_reached_through_a_symlink_verifies():
    # Links inside the data dir are refused; the directory itself may be reached through one.
    with tempfile.TemporaryDirectory() as top:
        real = os.path.join(top, "real")
        os.mkdir(real)
        os.symlink(real, os.path.join(top, "link"))
        expect_verified(["--nodes", "3", "--rounds", "500", "--data-dir",
                         os.path.join(top, "link")])
        assert "node-0.db" in os.listdir(real) and "registry.db" in os.listdir(real)


# --- hung nodes (SIGSTOP): detected, replaced as leader, caught up, or left out -------------

HANG_ROUNDS = "60000"  # window 1, shm: several seconds of drive, longer than any stop below


def stop_node_during_a_run(which, seconds, forever=False):
    """Runs 5 shm nodes at window 1, SIGSTOPs the leader or a follower once the pool is at
    steady state, SIGCONTs it `seconds` later (never if `forever`); returns (exit code, JSON
    report, victim id)."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        path = f.name
    env = dict(os.environ)
    env["PAXOS_LOG"] = "info"
    p = subprocess.Popen([BIN, "--nodes", "5", "--rounds", HANG_ROUNDS, "--window", "1",
                          "--store", "shm", "--json", path, "--quiet"],
                         stderr=subprocess.PIPE, text=True, env=env)
    pids, leader, lines = {}, [None], []

    def read():
        for line in p.stderr:
            lines.append(line)
            m = re.search(r"node (\d+) incarnation \d+ is pid (\d+)", line)
            if m:
                pids[int(m.group(1))] = int(m.group(2))
            m = re.search(r"\[node (\d+)\.\d+\]: became leader", line)
            if m:
                leader[0] = int(m.group(1))

    t = threading.Thread(target=read, daemon=True)
    t.start()
    try:
        deadline = time.time() + 60
        while leader[0] is None and time.time() < deadline:
            time.sleep(0.05)
        assert leader[0] is not None, "no leader elected:\n" + "".join(lines)
        time.sleep(1.0)  # steady state
        assert p.poll() is None, "the run ended before the stop"
        victim = leader[0] if which == "leader" else (leader[0] + 4) % 5
        os.kill(pids[victim], signal.SIGSTOP)
        if not forever:
            time.sleep(seconds)
            assert p.poll() is None, "the run ended while the node was stopped: too short"
            os.kill(pids[victim], signal.SIGCONT)
        p.wait(timeout=600)
        t.join(timeout=10)
        doc = None
        if os.path.getsize(path) > 0:
            with open(path) as f:
                doc = json.load(f)
        log = "".join(lines)
        return p.returncode, doc, victim, log
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.unlink(path)


def expect_stop_and_resume_verifies(which):
    code, doc, victim, log = stop_node_during_a_run(which, 3.0)
    assert code == 0, "exit %d:\n%s" % (code, log[-4000:])
    assert doc["verified"] is True and doc["hung_learners"] == 0, doc
    assert all(n["verdict"] == "ok" for n in doc["per_node"]), doc["per_node"]
    assert doc["hangs"] >= 1, doc  # the stop was seen as a hang ...
    assert "node %d hung" % victim in log and "node %d resumed" % victim in log, log[-4000:]
    assert doc["per_node"][victim]["incarnation"] == 1, doc  # ... not as a death
    return doc, victim, log


@case
def follower_stopped_3s_and_resumed_catches_up_and_verifies():
    expect_stop_and_resume_verifies("follower")


@case
def leader_stopped_3s_is_replaced_then_steps_down_catches_up_and_verifies():
    doc, victim, log = expect_stop_and_resume_verifies("leader")
    assert doc["leader_changes"] >= 1, doc
    # another node led while the old leader was stopped
    after = log[log.index("node %d hung" % victim):]
    assert re.search(r"\[node (?!%d\.)\d+\.\d+\]: became leader" % victim, after), after[-4000:]


@case
def node_stopped_for_good_is_reported_hung_and_the_others_verify():
    code, doc, victim, log = stop_node_during_a_run("follower", 0, forever=True)
    assert code == 0, "exit %d:\n%s" % (code, log[-4000:])
    assert doc["rounds_done"] == doc["rounds"], doc
    assert doc["verified"] is True and doc["hung_learners"] == 1, doc
    for n in doc["per_node"]:
        assert n["verdict"] == ("hung" if n["id"] == victim else "ok"), doc["per_node"]


def stuck_node_run(failpoint):
    """5 shm nodes at window 1; node 4 stops making progress for good after a while (the
    failpoint): returns (exit code, JSON report, log)."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        path = f.name
    try:
        env = {"PAXOS_LOG": "info", "PAXOS_FAILPOINT": failpoint}
        p = run(["--nodes", "5", "--rounds", "20000", "--window", "1", "--store", "shm",
                 "--json", path, "--quiet"], timeout=600, env=env)
        doc = json.load(open(path)) if os.path.getsize(path) > 0 else None
        return p.returncode, doc, p.stderr
    finally:
        os.unlink(path)


def expect_stuck_node_hung(failpoint, why):
    code, doc, log = stuck_node_run(failpoint)
    assert code == 0, "exit %d:\n%s" % (code, log[-4000:])
    assert doc["verified"] is True and doc["hung_learners"] == 1, doc
    assert doc["per_node"][4]["verdict"] == "hung", doc["per_node"]
    assert re.search(r"node 4 hung \(%s for \d+ ms\)" % why, log), log[-4000:]


@case
def node_busy_without_progress_is_reported_hung():
    # A node that gets the CPU and makes no loop iteration is stuck, whatever the load.
    expect_stuck_node_hung("spin:4", "given CPU without progress")


@case
def node_blocked_for_good_is_reported_hung():
    expect_stuck_node_hung("block:4", "blocked")


@case
def no_false_hang_at_64_nodes_on_a_small_machine():
    # Before: 30-64 hangs at 64 nodes on 2 cores with no fault at all: silence alone was
    # judged, while the nodes only waited for a CPU.
    rounds = "10000" if sanitized() else "50000"
    doc = expect_verified(["--nodes", "64", "--rounds", rounds], timeout=600)
    assert doc["hangs"] == 0, (doc["hangs"], doc["leader_changes"])


@case
def failover_that_measured_nothing_says_so():
    # Before: "0 answered ... p50 0.0 us", a figure that looked measured. A 25 ms stop is under
    # the hang timeout: the leader is never replaced, so no fail-over happens to be timed.
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        p = run(["--nodes", "5", "--rounds", "20000", "--store", "shm", "--window", "1",
                 "--failover-every", "50", "--failover-signal", "stop", "--json", f.name])
        assert p.returncode == 0, (p.returncode, p.stderr)
        line = [l for l in p.stdout.splitlines() if l.startswith("failover")]
        assert len(line) == 1 and "none answered" in line[0] and "nothing measured" in line[0] \
            and "p50" not in line[0], line
        doc = json.load(open(f.name))
        assert doc["failover"]["answered"] == 0 and doc["failover"]["to_decision_us"] is None, \
            doc["failover"]


def main():
    global BIN
    BIN = os.path.abspath(sys.argv[1])
    name = sys.argv[2]
    if name == "list":
        print("\n".join(CASES))
        return 0
    CASES[name]()
    print("%s: passed" % name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
