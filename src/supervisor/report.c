#include "supervisor/report.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cmd.h"

static void roles_str(const struct cli_config *c, uint32_t i, char out[4])
{
    uint32_t r = cli_roles(c, i);
    out[0] = r & PX_ROLE_PROPOSER ? 'P' : '-';
    out[1] = r & PX_ROLE_ACCEPTOR ? 'A' : '-';
    out[2] = r & PX_ROLE_LEARNER ? 'L' : '-';
    out[3] = '\0';
}

static double us(uint64_t ns)
{
    return (double)ns / 1000.0;
}

/* Messages that failed their check on arrival (dropped), by receiving node. */
static void report_bad_messages(const struct report *r, FILE *out)
{
    fprintf(out, "bad msgs    %" PRIu64 " dropped on arrival (failed their check)",
            r->bad_messages);
    const char *sep = ": ";
    uint64_t nodes_total = 0;
    for (uint32_t i = 0; i < r->cfg->nodes; i++) {
        if (r->nodes[i].bad_messages == 0)
            continue;
        fprintf(out, "%snode %u got %" PRIu64, sep, i, r->nodes[i].bad_messages);
        nodes_total += r->nodes[i].bad_messages;
        sep = ", ";
    }
    if (r->bad_messages > nodes_total)
        fprintf(out, "%sthe client got %" PRIu64, sep, r->bad_messages - nodes_total);
    fprintf(out, "\n");
}

int report_written(FILE *f)
{
    if (fflush(f) == 0 && !ferror(f))
        return 0;
    /* The errno of the write that failed: the last call that set it (report_print and
     * report_json clear it first, and nothing else they call fails). */
    return errno ? -errno : -EIO;
}

int report_print(const struct report *r, FILE *out)
{
    const struct cli_config *c = r->cfg;
    clearerr(out);
    errno = 0;
    double rate = r->seconds > 0 ? (double)r->rounds_done / r->seconds : 0;
    fprintf(out, "paxos-shm: %u nodes (%u proposers, %u acceptors, %u learners), store %s\n",
            c->nodes, c->proposers, c->acceptors, c->learners,
            c->store == CLI_STORE_SHM ? "shm" : "sqlite");
    fprintf(out, "rounds      %" PRIu64 " of %" PRIu64 " in %.3f s = %.0f rounds/s\n",
            r->rounds_done, c->rounds, r->seconds, rate);
    fprintf(out, "latency     p50 %.1f us  p99 %.1f us  max %.1f us\n",
            us(hist_quantile(r->latency_ns, 0.50)), us(hist_quantile(r->latency_ns, 0.99)),
            us(r->latency_ns->max));
    fprintf(out,
            "messages    %" PRIu64 " (%.1f per round)  ring-full %" PRIu64 "  drops %" PRIu64
            "  lagged %" PRIu64 "  resubmits %" PRIu64 "\n",
            r->msgs, r->rounds_done ? (double)r->msgs / (double)r->rounds_done : 0.0, r->ring_full,
            r->drops, r->lagged, r->resubmits);
    fprintf(out, "requests    %" PRIu64 " dropped by the nodes (request queue full; resubmitted)\n",
            r->requests_dropped);
    report_bad_messages(r, out);
    if (c->command_bytes > CMD_INLINE_BYTES)
        fprintf(out,
                "commands    %u bytes each: %" PRIu64
                " applied and checked on the learners, %" PRIu64 " wrong; streams torn %" PRIu64
                ", messages without their bytes %" PRIu64 "\n",
                c->command_bytes, r->cmds_checked, r->cmds_bad, r->cmd_torn, r->cmd_missing);
    if (r->net.hosts > 1)
        fprintf(out,
                "network     %u hosts; this host's gateway: frames %" PRIu64 " sent %" PRIu64
                " received, hwm-full %" PRIu64 ", drops %" PRIu64 ", bad frames %" PRIu64
                " messages %" PRIu64 ", lagged %" PRIu64 ", hosts marked down %" PRIu64
                ", gateway restarts %u\n",
                r->net.hosts, r->net.frames_sent, r->net.frames_received, r->net.hwm_full,
                r->net.drops, r->net.bad_frames, r->net.bad_messages, r->net.lagged,
                r->net.host_down, r->net.gateway_restarts);
    fprintf(
        out,
        "faults      restarts %u  chaos kills %u of %u planned (leader %u)  leader changes %" PRIu64
        "  hangs %u\n",
        r->restarts, r->chaos_kills, r->chaos_planned, r->chaos_leader_kills, r->leader_changes,
        r->hangs);
    const struct report_failover *fo = &r->failover;
    if (fo->on && fo->answered == 0)
        fprintf(out,
                "failover    %u leader %ss, none answered by another leader before the next event:"
                " nothing measured%s\n",
                fo->events, fo->signal,
                strcmp(fo->signal, "stop") == 0 && fo->every_ms / 2 < fo->hang_ms
                    ? " (each stop was shorter than the hang timeout: the leader was never"
                      " replaced)"
                    : "");
    else if (fo->on)
        fprintf(out,
                "failover    %u leader %ss (%u answered): to the next decision p50 %.1f us  "
                "p99 %.1f us  max %.1f us; worst commit p50 %.1f us  max %.1f us\n",
                fo->events, fo->signal, fo->answered, fo->to_decision_p50, fo->to_decision_p99,
                fo->to_decision_max, fo->worst_commit_p50, fo->worst_commit_max);
    if (r->base)
        fprintf(out,
                "continued   %" PRIu64 " rounds of earlier runs on this data (%" PRIu64
                " in doubt, resolved first)\n",
                r->base, r->in_doubt);
    if (r->learners > 0) /* verification ran */
        fprintf(out, "expected    value F(%" PRIu64 ") mod 2^64 = %" PRIu64 "\n",
                r->base + r->cfg->rounds + 1, r->expected_value);
    fprintf(out, "node roles incarnation   applied                value             digest  "
                 "verdict\n");
    for (uint32_t i = 0; i < c->nodes; i++) {
        const struct report_node *n = &r->nodes[i];
        char roles[4];
        roles_str(c, i, roles);
        fprintf(out, "%4u  %s  %11u %9" PRIu64 " %20" PRIu64 "  %016" PRIx64 "  %s\n", i, roles,
                n->incarnation, n->fib.applied, n->value, n->fib.digest,
                n->verdict ? n->verdict : "-");
    }
    if (r->hung_learners > 0)
        fprintf(out, "hung        %u learner%s still hung at the end: killed, left out\n",
                r->hung_learners, r->hung_learners == 1 ? "" : "s");
    fprintf(out, "verdict     %s (%u of %u learners verified)\n", r->outcome, r->learners_ok,
            r->learners);
    return report_written(out);
}

static int json_fail(struct report_json_out *o, int e)
{
    fprintf(stderr, "paxos-shm: --json %s: %s\n", o->path, strerror(e));
    return -e;
}

int report_json_open(const char *path, struct report_json_out *o)
{
    memset(o, 0, sizeof(*o));
    o->path = path;
    if (strcmp(path, "-") == 0) {
        o->f = stdout;
        return 0;
    }
    /* Not truncated now: an existing file keeps its content until the report replaces it. */
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    o->created = fd >= 0;
    if (fd < 0 && errno == EEXIST)
        fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return json_fail(o, errno);
    o->f = fdopen(fd, "w");
    if (o->f == NULL) {
        int e = errno;
        close(fd);
        return json_fail(o, e);
    }
    return 0;
}

void report_json_close(struct report_json_out *o)
{
    if (o->f == NULL || o->f == stdout)
        return;
    fclose(o->f);
    if (o->created)
        unlink(o->path); /* never written: leave no empty file behind */
    o->f = NULL;
}

static void report_json_failover(const struct report_failover *fo, FILE *f)
{
    if (!fo->on)
        return;
    if (fo->answered == 0) /* nothing measured: no figure that looks like one */
        fprintf(f,
                ",\"failover\":{\"signal\":\"%s\",\"every_ms\":%u,\"events\":%u,\"answered\":0,"
                "\"to_decision_us\":null,\"worst_commit_us\":null,\"per_event\":[",
                fo->signal, fo->every_ms, fo->events);
    else
        fprintf(f,
                ",\"failover\":{\"signal\":\"%s\",\"every_ms\":%u,\"events\":%u,\"answered\":%u,"
                "\"to_decision_us\":{\"p50\":%.1f,\"p99\":%.1f,\"max\":%.1f},"
                "\"worst_commit_us\":{\"p50\":%.1f,\"p99\":%.1f,\"max\":%.1f},\"per_event\":[",
                fo->signal, fo->every_ms, fo->events, fo->answered, fo->to_decision_p50,
                fo->to_decision_p99, fo->to_decision_max, fo->worst_commit_p50,
                fo->worst_commit_p99, fo->worst_commit_max);
    for (uint32_t i = 0; i < fo->events; i++)
        fprintf(f, "%s[%.1f,%.1f]", i ? "," : "", fo->to_decision_us[i], fo->worst_commit_us[i]);
    fprintf(f, "],\"plot\":{\"event\":%u,\"from_ms\":%d,\"decisions_per_ms\":[", fo->plot_event,
            -REPORT_PLOT_BEFORE_MS);
    for (uint32_t i = 0; i < REPORT_PLOT_MS; i++)
        fprintf(f, "%s%u", i ? "," : "", fo->plot[i]);
    fprintf(f, "]}}");
}

/* A write of the report that failed: one line naming --json, where it went and why. */
static int json_write_fail(struct report_json_out *o, int e)
{
    fprintf(stderr, "paxos-shm: --json %s: writing the JSON report%s: %s\n", o->path,
            o->f == stdout ? " to stdout" : "", strerror(e));
    return -e;
}

int report_json(const struct report *r, struct report_json_out *o)
{
    PX_ASSERT(o->f != NULL);
    FILE *f = o->f;
    struct stat st;
    /* Only a regular file has a length to cut (a device such as /dev/full has none: EINVAL). */
    if (f != stdout &&
        (fstat(fileno(f), &st) != 0 || (S_ISREG(st.st_mode) && ftruncate(fileno(f), 0) != 0)))
        return json_fail(o, errno);
    clearerr(f);
    errno = 0;
    const struct cli_config *c = r->cfg;
    double rate = r->seconds > 0 ? (double)r->rounds_done / r->seconds : 0;
    fprintf(f,
            "{\"nodes\":%u,\"proposers\":%u,\"acceptors\":%u,\"learners\":%u,"
            "\"store\":\"%s\",\"window\":%u,\"rounds\":%" PRIu64 ",\"rounds_done\":%" PRIu64
            ",\"base\":%" PRIu64 ",\"in_doubt\":%" PRIu64 ",\"seconds\":%.6f,\"rounds_per_s\":%.1f,"
            "\"latency_us\":{\"p50\":%.1f,\"p99\":%.1f,\"p999\":%.1f,\"max\":%.1f},"
            "\"messages\":%" PRIu64 ",\"ring_full\":%" PRIu64 ",\"drops\":%" PRIu64
            ",\"lagged\":%" PRIu64 ",\"resubmits\":%" PRIu64 ",\"restarts\":%u,"
            "\"chaos_kills\":%u,\"chaos_leader_kills\":%u,\"leader_changes\":%" PRIu64
            ",\"expected_value\":%" PRIu64 ",\"verified\":%s,\"outcome\":\"%s\",",
            c->nodes, c->proposers, c->acceptors, c->learners,
            c->store == CLI_STORE_SHM ? "shm" : "sqlite", c->window, c->rounds, r->rounds_done,
            r->base, r->in_doubt, r->seconds, rate, us(hist_quantile(r->latency_ns, 0.50)),
            us(hist_quantile(r->latency_ns, 0.99)), us(hist_quantile(r->latency_ns, 0.999)),
            us(r->latency_ns->max), r->msgs, r->ring_full, r->drops, r->lagged, r->resubmits,
            r->restarts, r->chaos_kills, r->chaos_leader_kills, r->leader_changes,
            r->expected_value, r->verified ? "true" : "false", r->outcome);
    if (r->net.hosts > 1)
        fprintf(f,
                "\"network\":{\"hosts\":%u,\"frames_sent\":%" PRIu64 ",\"frames_received\":%" PRIu64
                ",\"hwm_full\":%" PRIu64 ",\"drops\":%" PRIu64 ",\"bad_frames\":%" PRIu64
                ",\"bad_messages\":%" PRIu64 ",\"lagged\":%" PRIu64 ",\"missed\":%" PRIu64
                ",\"status_dropped\":%" PRIu64 ",\"host_down\":%" PRIu64
                ",\"gateway_restarts\":%u},",
                r->net.hosts, r->net.frames_sent, r->net.frames_received, r->net.hwm_full,
                r->net.drops, r->net.bad_frames, r->net.bad_messages, r->net.lagged, r->net.missed,
                r->net.status_dropped, r->net.host_down, r->net.gateway_restarts);
    fprintf(f, "\"hangs\":%u,\"hung_learners\":%u,\"restarts_asked\":%u,", r->hangs,
            r->hung_learners, r->restarts_asked);
    fprintf(f,
            "\"command_bytes\":%u,\"commands\":{\"checked\":%" PRIu64 ",\"wrong\":%" PRIu64
            ",\"streams_torn\":%" PRIu64 ",\"missing\":%" PRIu64 "},",
            c->command_bytes, r->cmds_checked, r->cmds_bad, r->cmd_torn, r->cmd_missing);
    fprintf(f, "\"chaos_planned\":%u,", r->chaos_planned);
    fprintf(f, "\"bad_messages\":%" PRIu64 ",\"requests_dropped\":%" PRIu64 ",\"per_node\":[",
            r->bad_messages, r->requests_dropped);
    for (uint32_t i = 0; i < c->nodes; i++) {
        const struct report_node *n = &r->nodes[i];
        char roles[4];
        roles_str(c, i, roles);
        fprintf(f,
                "%s{\"id\":%u,\"roles\":\"%s\",\"incarnation\":%u,\"restarts\":%u,"
                "\"applied\":%" PRIu64 ",\"value\":%" PRIu64 ",\"digest\":\"%016" PRIx64
                "\",\"requests\":%" PRIu64 ",\"bad_messages\":%" PRIu64 ",\"verdict\":\"%s\"}",
                i ? "," : "", i, roles, n->incarnation, n->restarts, n->fib.applied, n->value,
                n->fib.digest, n->fib.requests, n->bad_messages, n->verdict ? n->verdict : "-");
    }
    fprintf(f, "]");
    report_json_failover(&r->failover, f);
    fprintf(f, "}\n");
    int rc = report_written(f);
    if (f == stdout)
        return rc == 0 ? 0 : json_write_fail(o, -rc);
    if (fclose(f) != 0 && rc == 0)
        rc = -errno;
    if (rc != 0)
        json_write_fail(o, -rc);
    o->f = NULL;
    o->created = false;
    return rc;
}
