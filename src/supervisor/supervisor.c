/* supervisor.c: the paxos-shm supervisor process: the order of its parts (sup.h).
 *
 * Setup (one cleanup path, sup_teardown): data directory and registry -> segment -> fork the
 * nodes. Run: wait until they loaded their stores and elected a leader, drive the client's
 * rounds (restarting nodes that die, injecting chaos). End: wait for every learner to apply
 * the last decided instance, stop the nodes, verify their final states, fill the report once
 * from the parts and print it. */
#include "supervisor/supervisor.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/signals.h"
#include "common/util.h"
#include "node/node.h"
#include "node/transport.h"
#include "supervisor/client.h"
#include "supervisor/report.h"
#include "supervisor/sup.h"

static void fill_nodes(const struct sup *s, struct report *r)
{
    uint64_t elections = 0;
    for (uint16_t i = 0; i < s->cfg->nodes; i++) {
        const struct sup_node_end *e = &s->verify.nodes[i];
        struct report_node *n = &r->nodes[i];
        n->incarnation = s->members.procs[i].incarnation;
        n->restarts = s->members.procs[i].restarts;
        n->fib = e->fib;
        n->value = e->sm_digest;
        n->verdict = e->verdict;
        r->msgs += e->counters.msgs;
        r->ring_full += e->counters.ring_full;
        r->drops += e->counters.drops;
        r->lagged += e->counters.lagged;
        n->bad_messages = e->counters.bad_messages;
        r->bad_messages += e->counters.bad_messages;
        r->requests_dropped += e->counters.requests_dropped;
        r->cmds_checked += e->counters.cmds_checked;
        r->cmds_bad += e->counters.cmds_bad;
        r->cmd_torn += e->counters.cmd_torn;
        r->cmd_missing += e->counters.cmd_missing;
        elections += e->elections;
    }
    r->msgs += s->env.t ? s->env.t->stats.sent : 0;
    r->bad_messages += s->env.t ? s->env.t->stats.bad_messages : 0; /* the client's own */
    r->leader_changes = elections > 0 ? elections - 1 : 0;
}

static const char *outcome_of(const struct sup *s, int code)
{
    static char stopped[48];
    if (code > EXIT_SIGNAL_BASE && code != EXIT_SIGINT && code != EXIT_SIGTERM) {
        char name[24];
        snprintf(stopped, sizeof(stopped), "stopped (%s)",
                 px_signal_name(code - EXIT_SIGNAL_BASE, name, sizeof(name)));
        return stopped;
    }
    switch (code) {
    case EXIT_SIGINT:
        return "interrupted (SIGINT)";
    case EXIT_SIGTERM:
        return "terminated (SIGTERM)";
    case EXIT_VERIFIED:
    case EXIT_VERIFY_FAILED:
        return s->verify.verified ? "VERIFIED" : "VERIFICATION FAILED";
    case EXIT_RUNTIME:
        return s->verify.ran && s->verify.lost > 0 && s->verify.verified
                   ? "HOST LOST (the learners reached verified)"
                   : "runtime failure";
    default:
        return "runtime failure";
    }
}

/* The report, filled once from the parts. code: the exit code of the run. */
static void fill_report(struct sup *s, int code, struct report *r)
{
    const struct client *c = s->drive.client;
    memset(r, 0, sizeof(*r));
    r->cfg = s->cfg;
    r->rounds_done = s->record.resolving ? 0 : c->done;
    r->base = s->record.run.base;
    r->in_doubt = s->record.run.in_doubt;
    r->seconds = s->drive.seconds;
    r->latency_ns = &c->latency_ns;
    r->resubmits = c->resubmits;
    r->restarts = s->members.restarts;
    r->restarts_asked = s->members.restarts_asked;
    r->hangs = s->members.hangs;
    r->chaos_kills = s->chaos.kills;
    r->chaos_leader_kills = s->chaos.leader_kills;
    r->chaos_planned = s->cfg->chaos_kills;
    fill_nodes(s, r);
    if (s->verify.ran) {
        r->expected_value = s->verify.expected_value;
        r->learners = s->verify.learners;
        r->learners_ok = s->verify.learners_ok;
        r->hung_learners = s->verify.hung;
        r->verified = s->verify.verified;
    }
    r->outcome = outcome_of(s, code);
    sup_net_report(s, &r->net);
    sup_failover_report(s, &r->failover);
}

/* Waits for the forked pool, drives the rounds, stops the nodes and verifies. Returns the
 * exit code. */
static int run(struct sup *s)
{
    int rc = sup_wait_loaded(s);
    if (rc == 0)
        rc = sup_drive_run(s);
    if (rc == 0)
        (void)sup_converge(s); /* a node that did not converge fails verification */
    sup_stop_nodes(s);
    sup_net_collect(s); /* --pool: the other hosts' final states reach the segment */
    sup_collect(s);
    sup_members_note_all(s); /* last activity: the end of this run */
    if (sup_signal())
        return sup_signal_exit();
    if (rc != 0)
        return rc > 0 ? rc : EXIT_RUNTIME;
    sup_verify(s);
    if (s->verify.lost > 0 && s->verify.verified)
        return EXIT_RUNTIME; /* not a failed verification: a host's learners could not be read */
    return s->verify.verified ? EXIT_VERIFIED : EXIT_VERIFY_FAILED;
}

/* Runs, then records how the run ended in the client's record. */
static int run_and_record(struct sup *s)
{
    int code = run(s);
    sup_record_end(s, outcome_of(s, code));
    if (s->fatal && code < EXIT_SIGNAL_BASE)
        code = EXIT_RUNTIME; /* the record could not be written */
    return code;
}

static int spawn_all(struct sup *s)
{
    for (uint16_t i = 0; i < s->cfg->nodes; i++)
        if (sup_net_local(s, i) && sup_spawn(s, i) != 0)
            return -1;
    return 0;
}

int sup_run(const struct cli_config *cfg, const struct pxs_state_machine *job)
{
    static struct sup s; /* static: the per-node tables are large; one run per process */
    static struct report rep;
    static struct cli_config pool_cfg; /* --pool: cfg with the pool file's nodes and roles */
    struct report_json_out json = {0};
    memset(&s, 0, sizeof(s));
    s.env.lock_fd = -1;
    s.job = job;
    if (cfg->pool_path) {
        if (sup_net_load(&s, cfg, &pool_cfg) != 0)
            return EXIT_USAGE;
        cfg = &pool_cfg;
    }
    if (cfg->store == CLI_STORE_SHM &&
        !node_shm_arena_fits(cfg->command_bytes, cfg->window, (uint16_t)cfg->nodes,
                             cfg->sm_state_max)) {
        fprintf(stderr,
                "paxos-shm: --store shm: commands of %u bytes on %u nodes do not fit the "
                "command areas the segment may reserve (%llu MiB per node, %llu MiB in all, "
                "room for %u truncated-late commands and a window): use shorter commands, fewer "
                "nodes or --store sqlite\n",
                cfg->command_bytes, cfg->nodes,
                (unsigned long long)(node_shm_arena_bytes(cfg->command_bytes, cfg->window,
                                                          (uint16_t)cfg->nodes, 0) >>
                                     20),
                (unsigned long long)(NODE_SHM_ARENA_TOTAL >> 20), NODE_SHM_TRUNCATE_SLACK);
        return EXIT_USAGE;
    }
    if (cfg->json_path && report_json_open(cfg->json_path, &json) != 0)
        return EXIT_USAGE;
    s.drive.leader = PX_NODE_NONE;
    s.drive.handed_to = PX_NODE_NONE;
    s.cfg = cfg;
    s.drive.client = malloc(sizeof(*s.drive.client));
    if (s.drive.client == NULL || sup_chaos_plan(&s) != 0 || sup_failover_init(&s) != 0) {
        fprintf(stderr, "paxos-shm: out of memory\n");
        sup_teardown(&s);
        report_json_close(&json);
        return EXIT_RUNTIME;
    }
    client_init(s.drive.client, cfg->rounds, sup_client_window(cfg), 0);
    sup_install_signals();
    int code = EXIT_RUNTIME;
    bool ready = sup_setup_data_dir(&s) == 0 && sup_setup_segment(&s) == 0 &&
                 sup_watch_start(&s) == 0 && sup_net_start(&s) == 0 &&
                 (!sup_net_first(&s) || sup_record_begin(&s) == 0) && spawn_all(&s) == 0;
    if (ready && !sup_net_first(&s)) {
        code = sup_net_follow(&s); /* another host of a pool: the first one reports */
        int e = report_written(stdout);
        if (e != 0) {
            fprintf(stderr, "paxos-shm: writing to stdout: %s\n", strerror(-e));
            code = code == EXIT_VERIFIED ? EXIT_RUNTIME : code;
        }
    } else if (ready) {
        code = run_and_record(&s);
        fill_report(&s, code, &rep);
        /* A report that could not be written is a failure of the run (exit 3 unless it had
         * failed already), said in one line per destination. */
        int e = cfg->quiet ? 0 : report_print(&rep, stdout);
        if (e != 0) {
            fprintf(stderr, "paxos-shm: writing the summary to stdout: %s\n", strerror(-e));
            code = code == EXIT_VERIFIED ? EXIT_RUNTIME : code;
        }
        bool json_to_failed_stdout = e != 0 && json.f == stdout; /* said once */
        if (cfg->json_path && !json_to_failed_stdout && report_json(&rep, &json) != 0 &&
            code == EXIT_VERIFIED)
            code = EXIT_RUNTIME;
    } else {
        sup_record_end(&s, "not started"); /* a row begun before a node failed to start */
        if (s.fatal == EXIT_USAGE)
            code = EXIT_USAGE; /* the flags do not fit the data dir (identity.c) */
    }
    sup_teardown(&s);
    report_json_close(&json);
    return code;
}
