#!/usr/bin/env python3
"""Tests of a pool across hosts: each host is a network namespace joined to the others by a
veth pair to a bridge in a hub namespace, and runs its own supervisor, as on real machines.

Usage: net.py PAXOS_SHM KEYGEN CASE   (ctest runs one CASE per test; CASE `list` lists them)
       net.py PAXOS_SHM KEYGEN pool HOSTS NODES JSON ARGS...   (one run, for bench/throughput)

Needs root (ip netns). Without it, or when namespaces cannot be made, a case prints why and
exits 77, which ctest reports as skipped. Every namespace (and with it every veth and the
bridge), every process and every segment a case made is removed on every exit path: normal
end, failed assertion, exception, SIGINT/SIGTERM.
"""
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

BIN = KEYGEN = None
CASES = {}
SKIP = 77


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def sh(*args, check=True):
    p = subprocess.run(list(args), capture_output=True, text=True)
    if check and p.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(args), p.stderr.strip()))
    return p


class Hosts:
    """Namespaces pxn<pid>-<host> on a bridge in pxn<pid>-hub, host k at 10.77.0.(k+1)."""

    def __init__(self, names, nodes_of, proposers=3):
        self.tag = "pxn%d" % os.getpid()
        self.names = names
        self.hub = self.tag + "-hub"
        self.made = []
        self.procs = {}
        self.dir = tempfile.mkdtemp(prefix="paxos-net-")
        self.pool = os.path.join(self.dir, "pool.ini")
        self.nodes_of = nodes_of
        self.proposers = proposers

    def ns(self, h):
        return "%s-%s" % (self.tag, h)

    def addr(self, h):
        return "10.77.0.%d" % (self.names.index(h) + 1)

    def __enter__(self):
        try:
            self._make()
        except Exception:
            self.cleanup()
            raise
        return self

    def __exit__(self, *exc):
        self.cleanup()
        return False

    def _make(self):
        sh("ip", "netns", "add", self.hub)
        self.made.append(self.hub)
        sh("ip", "-n", self.hub, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", self.hub, "link", "set", "br0", "up")
        for h in self.names:
            n = self.ns(h)
            sh("ip", "netns", "add", n)
            self.made.append(n)
            sh("ip", "-n", n, "link", "set", "lo", "up")
            # The pair is made in the host's namespace; its peer end moves to the hub.
            sh("ip", "-n", n, "link", "add", "eth0", "type", "veth", "peer", "name", "p-" + h,
               "netns", self.hub)
            sh("ip", "-n", n, "addr", "add", self.addr(h) + "/24", "dev", "eth0")
            sh("ip", "-n", n, "link", "set", "eth0", "up")
            sh("ip", "-n", self.hub, "link", "set", "p-" + h, "master", "br0")
            sh("ip", "-n", self.hub, "link", "set", "p-" + h, "up")
        lines = ["[pool]", "nodes = %d" % sum(len(v) for v in self.nodes_of.values()),
                 "proposers = %d" % self.proposers, ""]
        for k, h in enumerate(self.names):
            key = os.path.join(self.dir, h + ".key")
            pub = subprocess.run([KEYGEN, key], capture_output=True, text=True, check=True)
            lines += ["[host %s]" % h, "address = " + self.addr(h), "port = %d" % (7400 + k),
                      "nodes = " + ",".join(str(i) for i in self.nodes_of[h]),
                      pub.stdout.strip(), "secret_key_file = %s.key" % h, ""]
            os.makedirs(os.path.join(self.dir, "data-" + h))
        with open(self.pool, "w") as f:
            f.write("\n".join(lines))

    def start(self, h, extra=()):
        out = open(os.path.join(self.dir, "%s.out" % h), "a")
        err = open(os.path.join(self.dir, "%s.err" % h), "a")
        args = ["ip", "netns", "exec", self.ns(h), BIN, "--pool", self.pool, "--host", h,
                "--timeout", "240"]
        if "shm" not in extra:  # the shm store keeps nothing: no data dir (exit 2)
            args += ["--data-dir", os.path.join(self.dir, "data-" + h)]
        # ip netns exec execs the command: the pid is the supervisor's.
        self.procs[h] = subprocess.Popen(args + list(extra), stdout=out, stderr=err)
        out.close()
        err.close()
        return self.procs[h]

    def output(self, h, which):
        with open(os.path.join(self.dir, "%s.%s" % (h, which))) as f:
            return f.read()

    def wait(self, h, timeout=300):
        return self.procs[h].wait(timeout=timeout)

    def link(self, h, up):
        sh("ip", "-n", self.hub, "link", "set", "p-" + h, "up" if up else "down")

    def kill9(self, h):
        p = self.procs[h]
        p.kill()
        p.wait()
        for seg in glob.glob("/dev/shm/paxos-shm-%d" % p.pid):
            os.unlink(seg)

    def cleanup(self):
        for h, p in self.procs.items():
            if p.poll() is None:
                p.kill()
                p.wait()
            for seg in glob.glob("/dev/shm/paxos-shm-%d" % p.pid):
                os.unlink(seg)
        # Nodes and gateways die with their supervisor (PR_SET_PDEATHSIG); deleting a
        # namespace deletes its veth end, the pair, and the hub's bridge.
        for n in reversed(self.made):
            sh("ip", "netns", "del", n, check=False)
        self.made = []
        if os.environ.get("PAXOS_NET_KEEP"):
            print("kept", self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


def first_report(hosts, h):
    with open(os.path.join(hosts.dir, "report.json")) as f:
        return json.load(f)


def all_stderr(hosts):
    """Every host's stderr, each under its name: a host that failed to start may be another."""
    return "".join("--- host %s:\n%s" % (h, hosts.output(h, "err")) for h in hosts.names
                   if os.path.exists(os.path.join(hosts.dir, "%s.err" % h)))


def expect_verified(hosts, doc, code):
    assert code == 0, "first host exit %d, stderr:\n%s" % (code, all_stderr(hosts))
    assert doc["verified"] is True, doc
    assert doc["rounds_done"] == doc["rounds"], doc
    learners = [n for n in doc["per_node"] if "L" in n["roles"]]
    assert len(learners) == 9 and all(n["verdict"] == "ok" for n in learners), doc["per_node"]
    assert len({n["digest"] for n in learners}) == 1, "digests differ"


SPREAD = {"a": [0, 3, 6], "b": [1, 4, 7], "c": [2, 5, 8]}  # a proposer on every host


def run_pool(hosts, rounds, during=None, extra=()):
    for h in hosts.names[1:]:
        hosts.start(h, extra)
    a = hosts.start("a", ["--rounds", str(rounds), "--json",
                          os.path.join(hosts.dir, "report.json"), "--quiet"] + list(extra))
    if during:
        during(hosts)
    code = hosts.wait("a")
    doc = first_report(hosts, "a")
    expect_verified(hosts, doc, code)
    for h in hosts.names[1:]:
        c = hosts.wait(h, timeout=60)
        assert c == 0, "host %s exit %d:\n%s" % (h, c, hosts.output(h, "err"))
    return doc


def wait_applied_progress(hosts, seconds):
    time.sleep(seconds)
    assert hosts.procs["a"].poll() is None, "the run ended before the fault:\n" + \
        hosts.output("a", "err")


@case
def verify_3_hosts_x_3_nodes():
    with Hosts(["a", "b", "c"], SPREAD) as hosts:
        doc = run_pool(hosts, 20000, extra=["--store", "shm"])
        assert doc["nodes"] == 9, doc


@case
def partition_of_a_host_mid_run_verifies():
    def cut(hosts):
        wait_applied_progress(hosts, 1.5)
        hosts.link("b", False)  # host b off the network for longer than the dead-host timeout
        time.sleep(3)
        hosts.link("b", True)
    with Hosts(["a", "b", "c"], SPREAD) as hosts:
        run_pool(hosts, 60000, during=cut, extra=["--window", "8"])
        err = hosts.output("a", "err")
        assert "host b is not heard" in err, err


@case
def long_commands_across_3_hosts_verify():
    """Commands of 4 KiB, then of 200 KB on the shm store (each a stream of 40-byte DATA
    messages over many frames): every one of the 9 learners checks every command it applies
    byte for byte, and the first host's report counts the other hosts' checks too (it counted
    only its own 3 before: 3 x rounds). With no node restarted and nothing resubmitted that is
    exactly 9 x rounds. A command resubmitted (a slow build: the client's timeout) and chosen
    again is checked again as a duplicate, and a restarted node replays its log and checks
    again or catches up from a snapshot and checks fewer: then only more than the first host's
    own count is certain."""
    runs = ((["--command-bytes", "4096"], 3000),
            (["--command-bytes", "200000", "--store", "shm"], 200))
    for extra, rounds in runs:
        with Hosts(["a", "b", "c"], SPREAD) as hosts:
            doc = run_pool(hosts, rounds, extra=extra)
            cmds = doc["commands"]
            assert cmds["wrong"] == 0, (extra, cmds)
            if doc["restarts"] == 0 and doc["resubmits"] == 0:
                assert cmds["checked"] == 9 * rounds, (extra, cmds)
            else:
                assert cmds["checked"] > 3 * rounds, (extra, cmds, doc["restarts"],
                                                      doc["resubmits"])


@case
def restart_of_a_host_supervisor_mid_run_verifies():
    def restart(hosts):
        wait_applied_progress(hosts, 1.5)
        hosts.kill9("b")  # its nodes and gateway die with it
        time.sleep(2)
        hosts.start("b")
    with Hosts(["a", "b", "c"], SPREAD) as hosts:
        doc = run_pool(hosts, 60000, during=restart, extra=["--window", "8"])
        b_nodes = [n for n in doc["per_node"] if n["id"] in SPREAD["b"]]
        assert all(n["incarnation"] == 2 for n in b_nodes), b_nodes


def children(pid):
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True,
                         text=True).stdout
    return sorted(int(x) for x in out.split())


@case
def killed_gateway_is_restarted_and_the_run_verifies():
    # Before: host b's supervisor stopped its whole run when its gateway died, and host a
    # ended in "VERIFICATION FAILED" for want of b's learners' final states.
    def kill_gateway(hosts):
        wait_applied_progress(hosts, 1.5)
        before = children(hosts.procs["b"].pid)
        os.kill(before[0], signal.SIGKILL)  # the gateway: forked before the nodes
        time.sleep(1.0)
        again = set(children(hosts.procs["b"].pid)) - set(before)
        assert len(again) == 1, (before, again)  # the new gateway, and no node restarted
        os.kill(again.pop(), signal.SIGKILL)  # and once more, the restarted one
    with Hosts(["a", "b", "c"], SPREAD) as hosts:
        run_pool(hosts, 60000, during=kill_gateway, extra=["--window", "8"])
        err = hosts.output("b", "err")
        assert err.count("the gateway to the other hosts exited (status 137); restarted") == 2, err
        assert "stopping the run" not in err, err


@case
def host_lost_for_good_is_named_and_exits_3():
    # Before: exit 1 "VERIFICATION FAILED" although every learner that could be read agreed.
    with Hosts(["a", "b", "c"], SPREAD) as hosts:
        for h in ("b", "c"):
            hosts.start(h, ["--window", "8"])
        hosts.start("a", ["--rounds", "60000", "--window", "8", "--json",
                          os.path.join(hosts.dir, "report.json"), "--quiet"])
        wait_applied_progress(hosts, 1.5)
        hosts.kill9("b")  # and never back
        code = hosts.wait("a")
        err = hosts.output("a", "err")
        assert code == 3, "exit %d:\n%s" % (code, err)
        assert "host b was lost: its learners 1,4,7 sent no final state; the 6 learners reached" \
               " verified" in err, err
        doc = first_report(hosts, "a")
        assert doc["rounds_done"] == doc["rounds"] and doc["outcome"].startswith("HOST LOST"), doc
        verdicts = {n["id"]: n["verdict"] for n in doc["per_node"]}
        assert all(verdicts[i] == ("host lost" if i in SPREAD["b"] else "ok") for i in verdicts), \
            verdicts
        assert hosts.wait("c", timeout=60) == 0, hosts.output("c", "err")


@case
def first_host_lost_the_others_stop_within_a_bound():
    # Before: the other hosts ran on until their own --timeout (none here: for ever).
    with Hosts(["a", "b", "c"], SPREAD) as hosts:
        for h in ("b", "c"):
            hosts.start(h, ["--window", "8"])
        hosts.start("a", ["--rounds", "100000000", "--window", "8", "--quiet"])
        wait_applied_progress(hosts, 1.5)
        hosts.kill9("a")
        t0 = time.time()
        for h in ("b", "c"):
            code = hosts.wait(h, timeout=60)
            assert code == 3, (h, code, hosts.output(h, "err"))
            assert "the first host a has not been heard for 10 s" in hosts.output(h, "err")
        assert time.time() - t0 < 20, time.time() - t0


NO_NAMESPACES = set()  # cases that run anywhere (no root needed)


def anywhere(fn):
    NO_NAMESPACES.add(fn.__name__)
    return case(fn)


@anywhere
def bad_pool_input_exits_2_or_3_with_one_line():
    d = tempfile.mkdtemp(prefix="paxos-net-")
    try:
        key = os.path.join(d, "a.key")
        pub = subprocess.run([KEYGEN, key], capture_output=True, text=True, check=True)
        assert pub.stdout.startswith("public_key = ") and len(pub.stdout.strip()) == 53, pub
        assert oct(os.stat(key).st_mode & 0o777) == "0o600"
        again = subprocess.run([KEYGEN, key], capture_output=True, text=True)
        assert again.returncode == 3 and "File exists" in again.stderr, again  # never overwritten

        def run(text, host="a", extra=()):
            path = os.path.join(d, "pool.ini")
            with open(path, "w") as f:
                f.write(text)
            return subprocess.run([BIN, "--pool", path, "--host", host, "--store", "shm",
                                   "--rounds", "10", "--timeout", "30"] + list(extra),
                                  capture_output=True, text=True, timeout=60)
        good = ("[pool]\nnodes = 3\n[host a]\naddress = 127.0.0.1\nport = %d\nnodes = 0-2\n"
                "%s\nsecret_key_file = a.key\n" % (17000 + os.getpid() % 1000,
                                                    pub.stdout.strip()))
        p = run(good.replace("port = ", "prot = "))
        assert p.returncode == 2, p
        assert p.stderr.count("\n") == 1 and "pool.ini:5: unknown key 'prot'" in p.stderr, p.stderr
        p = run(good, host="z")
        assert p.returncode == 2 and "--host z" in p.stderr, p.stderr
        p = run(good.replace("nodes = 0-2", "nodes = 0-1"))
        assert p.returncode == 2 and "node 2 runs on no host" in p.stderr, p.stderr
        p = subprocess.run([BIN, "--pool", os.path.join(d, "pool.ini")], capture_output=True,
                           text=True)
        assert p.returncode == 2 and "--pool and --host go together" in p.stderr, p.stderr
        # A two-host file whose first host's address is not on this machine: exit 3, one line.
        key_b = os.path.join(d, "b.key")
        pub_b = subprocess.run([KEYGEN, key_b], capture_output=True, text=True, check=True)
        two = (good.replace("nodes = 0-2", "nodes = 0-1").replace("127.0.0.1", "192.0.2.1") +
               "[host b]\naddress = 127.0.0.1\nport = 1\nnodes = 2\n%s\nsecret_key_file = b.key\n"
               % pub_b.stdout.strip())
        p = run(two)
        assert p.returncode == 3 and "cannot listen on tcp://192.0.2.1" in p.stderr, p.stderr
        # The secret key file of another host: refused before anything starts.
        p = run(two.replace("secret_key_file = a.key", "secret_key_file = b.key"))
        assert p.returncode == 2 and "does not belong to the public_key of [host a]" in p.stderr, \
            p.stderr
        # A secret key file others may read (or write) is refused, as ssh refuses such a key;
        # it was accepted in silence.
        for mode in (0o644, 0o640, 0o606):
            os.chmod(key, mode)
            p = run(two)
            assert p.returncode == 2 and p.stderr.count("\n") == 1, (oct(mode), p.stderr)
            assert "a.key: permissions %04o are too open; chmod 600 " % mode in p.stderr, p.stderr
        os.chmod(key, 0o600)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def pool_run(hosts_n, nodes, json_path, args):
    """One pool of `nodes` nodes spread round-robin over `hosts_n` namespaced hosts, for the
    benchmark: the first host's JSON report goes to json_path; returns its exit code."""
    names = [chr(ord("a") + k) for k in range(hosts_n)]
    spread = {h: [i for i in range(nodes) if i % hosts_n == k] for k, h in enumerate(names)}
    with Hosts(names, spread, proposers=min(3, nodes)) as hosts:
        for h in names[1:]:
            hosts.start(h, ["--quiet"] + args)
        hosts.start("a", ["--json", json_path, "--quiet"] + args)
        code = hosts.wait("a")
        if code != 0:
            sys.stderr.write(hosts.output("a", "err"))
        for h in names[1:]:
            hosts.wait(h, timeout=60)
        return code


def can_make_namespaces():
    if os.geteuid() != 0:
        return "not root: network namespaces need CAP_SYS_ADMIN"
    if shutil.which("ip") is None:
        return "no ip command (iproute2)"
    probe = "pxn%d-probe" % os.getpid()
    p = sh("ip", "netns", "add", probe, check=False)
    if p.returncode != 0:
        return "cannot create a network namespace: " + p.stderr.strip()
    sh("ip", "netns", "del", probe, check=False)
    return None


def remove_stale():
    """Namespaces of an earlier run of this driver that was SIGKILLed (a ctest timeout), with
    the processes still in them: nothing else can clean them up."""
    p = sh("ip", "netns", "list", check=False)
    for line in p.stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        m = re.match(r"pxn(\d+)-", name)
        if not m or os.path.exists("/proc/%s" % m.group(1)):
            continue
        for pid in sh("ip", "netns", "pids", name, check=False).stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        sh("ip", "netns", "del", name, check=False)


def on_signal(sig, frame):
    raise KeyboardInterrupt  # unwinds through every `with Hosts` (cleanup)


def main():
    global BIN, KEYGEN
    if len(sys.argv) < 4 or (sys.argv[3] != "pool" and len(sys.argv) != 4):
        print(__doc__, file=sys.stderr)
        return 2
    BIN, KEYGEN, name = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2]), sys.argv[3]
    if name == "list":
        print("\n".join(CASES))
        return 0
    why = None if name in NO_NAMESPACES else can_make_namespaces()
    if why:
        print("SKIP %s: %s" % (name, why))
        return SKIP
    signal.signal(signal.SIGTERM, on_signal)
    if name not in NO_NAMESPACES:
        remove_stale()
    if name == "pool":  # pool HOSTS NODES JSON ARGS...: one run for bench/throughput
        return pool_run(int(sys.argv[4]), int(sys.argv[5]), sys.argv[6], sys.argv[7:])
    CASES[name]()
    print("PASS", name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
