/* identity.c: a data directory is trusted only as far as it proves to be what the registry
 * says it is (store.h: struct store_ident, struct store_known).
 *
 * Before any node starts, every local node's store is read (store_sqlite_peek) and held
 * against the registry:
 *   - a store of another pool (its pool id is not the registry's) is refused;
 *   - a registry made new by this run while the directory holds node stores with a log (the
 *     registry was deleted or moved away) is refused: the new run's client ids would collide
 *     with requests the nodes already applied;
 *   - a store last opened by a run later than the registry's last run, or that applied more
 *     requests than the registry's record says were ever submitted, means the registry is
 *     older than the stores (restored from a backup): refused for the same reason;
 *   - a store missing, or holding less than the registry saw it hold (a lower promised ballot
 *     or highest instance: deleted, or restored from an older backup) is an acceptor with
 *     amnesia: Paxos assumes an acceptor never forgets a promise or an accepted value, so the
 *     run refuses rather than let it vote with a memory it does not have.
 * Each refusal is one line naming the file, what was found, and what the user can do; the run
 * exits 3 before anything is sent. What the stores hold is then recorded (the registry only
 * ever raises it), again after the nodes have stopped, so a later rollback is seen. The run's
 * epoch (its run id) and the pool id reach every node's store at open (node_config). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/cmd.h"
#include "store/store.h"
#include "supervisor/client.h"
#include "supervisor/sup.h"

static int refuse(struct sup *s)
{
    s->fatal = EXIT_RUNTIME;
    s->env.refused = true;
    return -1;
}

/* The highest global round a learner's snapshot shows applied: its request count (no-ops and
 * duplicates are not counted, and the rounds of a data dir are applied in order). */
static uint64_t applied_requests(const struct store_ident *id)
{
    return id->fib.requests;
}

static bool holds_nothing(const struct store_ident *id)
{
    return id->promised == 0 && id->hwm == 0 && id->fib.requests == 0;
}

/* The stores of one data dir, read before the run. */
struct ident_all {
    struct store_ident id[PX_NODES_MAX];
    struct store_known known[PX_NODES_MAX];
    bool local[PX_NODES_MAX];
};

/* Checks that concern the registry as a whole: missing while stores hold a log, or of another
 * pool than every store that records one. */
static int check_registry(struct sup *s, const struct ident_all *all, const struct store_run *last)
{
    const char *dir = s->env.data_dir;
    uint16_t nodes = (uint16_t)s->cfg->nodes;
    int64_t other = 0;
    bool mine = false, any = false;
    for (uint16_t i = 0; i < nodes; i++) {
        const struct store_ident *id = &all->id[i];
        if (!all->local[i] || !id->exists)
            continue;
        if (store_registry_fresh(s->env.registry) && !holds_nothing(id)) {
            fprintf(stderr,
                    "paxos-shm: %s/registry.db is missing but node-%u.db holds a log (%" PRIu64
                    " requests applied): without the client's record a new run would reuse"
                    " request ids the nodes already applied; put the registry back, or use an"
                    " empty --data-dir\n",
                    dir, i, applied_requests(id));
            s->env.discard_registry = true; /* the next run finds it missing too */
            return refuse(s);
        }
        any = true;
        if (id->pool_id == s->env.pool_id)
            mine = true;
        else if (id->pool_id != 0)
            other = id->pool_id;
    }
    if (!any && last->decided > 0) {
        fprintf(stderr,
                "paxos-shm: %s: every node store is missing; the %" PRIu64
                " rounds that earlier runs decided are gone from every node: put the stores"
                " back, or use an empty --data-dir to start a new pool\n",
                dir, last->decided);
        return refuse(s);
    }
    if (!mine && other != 0) {
        fprintf(stderr,
                "paxos-shm: %s/registry.db belongs to another pool (pool id %016" PRIx64
                ") than the node stores (%016" PRIx64 "): put this pool's registry back\n",
                dir, (uint64_t)s->env.pool_id, (uint64_t)other);
        return refuse(s);
    }
    return 0;
}

static int check_node(struct sup *s, uint16_t i, const struct store_ident *id,
                      const struct store_known *known, int64_t last_run, uint64_t submitted)
{
    const char *dir = s->env.data_dir;
    int64_t pool = s->env.pool_id;
    if (id->exists && id->pool_id != 0 && id->pool_id != pool) {
        fprintf(stderr,
                "paxos-shm: %s/node-%u.db belongs to another pool (pool id %016" PRIx64
                "; this data directory's is %016" PRIx64 "): move it away and put back node %u's"
                " own store\n",
                dir, i, (uint64_t)id->pool_id, (uint64_t)pool, i);
        return refuse(s);
    }
    /* Only the first host of a pool keeps the client's record (runs); the others' stores are
     * stamped with epoch 0 and their registries record no run. */
    bool records = sup_net_first(s);
    if (records && id->exists && id->epoch > last_run) {
        fprintf(stderr,
                "paxos-shm: %s/registry.db is older than node-%u.db (the store was used by run"
                " %" PRId64 ", the registry's last run is %" PRId64 "): restored from a backup?"
                " put the registry's latest copy back\n",
                dir, i, id->epoch, last_run);
        return refuse(s);
    }
    if (records && id->exists && applied_requests(id) > submitted) {
        fprintf(stderr,
                "paxos-shm: %s/registry.db is older than node-%u.db (the node applied %" PRIu64
                " requests, the registry records %" PRIu64 " ever submitted): restored from a"
                " backup? put the registry's latest copy back\n",
                dir, i, applied_requests(id), submitted);
        return refuse(s);
    }
    if (known->found && (!id->exists || (holds_nothing(id) && known->hwm + known->promised > 0))) {
        fprintf(stderr,
                "paxos-shm: %s/node-%u.db is %s, but the registry saw it hold promised ballot"
                " %" PRIu64 " and instances up to %" PRIu64 ": an acceptor that forgot its"
                " promises could let two values be chosen; put the store back, or use an empty"
                " --data-dir for a new pool\n",
                dir, i, id->exists ? "empty" : "missing", (uint64_t)known->promised,
                (uint64_t)known->hwm);
        return refuse(s);
    }
    if (known->found && (id->promised < known->promised || id->hwm < known->hwm)) {
        fprintf(stderr,
                "paxos-shm: %s/node-%u.db was rolled back: it holds promised ballot %" PRIu64
                " and instances up to %" PRIu64 ", the registry saw it hold %" PRIu64
                " and %" PRIu64
                " (restored from an older backup?); an acceptor that forgot its promises could"
                " let two values be chosen: put its latest copy back\n",
                dir, i, (uint64_t)id->promised, (uint64_t)id->hwm, (uint64_t)known->promised,
                (uint64_t)known->hwm);
        return refuse(s);
    }
    return 0;
}

/* Reads node i's store into *id: 0, or -1 with the store's line printed. */
static int peek(const struct sup *s, uint16_t i, struct store_ident *id)
{
    char err[STORE_ERR_MAX] = "";
    if (store_sqlite_peek(s->env.data_dir, i, (uint16_t)s->cfg->nodes, s->sm == NULL, id, err,
                          sizeof(err)) == 0)
        return 0;
    fprintf(stderr, "paxos-shm: %s\n", err);
    return -1;
}

static int registry_failed(struct sup *s)
{
    fprintf(stderr, "paxos-shm: %s\n", store_registry_errmsg(s->env.registry));
    return refuse(s);
}

int sup_identity_check(struct sup *s)
{
    struct sup_env *e = &s->env;
    if (e->registry == NULL)
        return 0;
    e->pool_id = store_registry_pool_id(e->registry);
    struct store_run last;
    int rc = store_registry_run_last(e->registry, &last);
    if (rc != 0 && rc != -ENOENT)
        return registry_failed(s);
    if (rc == -ENOENT)
        memset(&last, 0, sizeof(last));
    /* The id store_registry_run_begin gives this run (sup_record_begin); a host of a pool other
     * than the first records no run, and stamps nothing. */
    e->epoch = sup_net_first(s) ? last.id + 1 : 0;
    static struct ident_all all; /* static: 64 snapshots; one run per process */
    memset(&all, 0, sizeof(all));
    uint16_t nodes = (uint16_t)s->cfg->nodes;
    for (uint16_t i = 0; i < nodes; i++) {
        all.local[i] = sup_net_local(s, i);
        if (!all.local[i])
            continue;
        if (peek(s, i, &all.id[i]) != 0)
            return refuse(s);
        if (store_registry_known(e->registry, i, &all.known[i]) != 0)
            return registry_failed(s);
    }
    if (check_registry(s, &all, &last) != 0)
        return -1;
    for (uint16_t i = 0; i < nodes; i++)
        if (all.local[i] &&
            check_node(s, i, &all.id[i], &all.known[i], last.id, last.submitted) != 0)
            return -1;
    for (uint16_t i = 0; i < nodes; i++)
        if (all.local[i] && all.id[i].exists &&
            store_registry_know(e->registry, i, all.id[i].promised, all.id[i].hwm) != 0)
            return registry_failed(s);
    /* Only once the files proved to be this pool's: a registry of another pool is that. */
    /* A request names one command: the rounds in doubt are resubmitted with their bytes, which
     * depend on the command length of the runs that made them. */
    int64_t made = CMD_INLINE_BYTES;
    bool found = false;
    if (store_registry_meta_get(e->registry, "command_bytes", &made, &found) != 0)
        return registry_failed(s);
    if (!found)
        made = CMD_INLINE_BYTES; /* a data dir of a build before long commands */
    if (last.id != 0 && made != (int64_t)s->cfg->command_bytes) {
        fprintf(stderr,
                "paxos-shm: %s: its log was made with %s %lld; continue it with the same (or "
                "use another %s)\n",
                e->data_dir, s->sm ? "pxs_config.command_max" : "--command-bytes", (long long)made,
                s->sm ? "data dir" : "--data-dir");
        s->fatal = EXIT_USAGE;
        s->env.refused = true;
        return -1;
    }
    if (sup_net_first(s) && (!found || made != (int64_t)s->cfg->command_bytes) &&
        store_registry_meta_set(e->registry, "command_bytes", s->cfg->command_bytes) != 0)
        return registry_failed(s);
    /* The main job's Fibonacci and a library's state machine never share a log. */
    int64_t lib = 0;
    if (store_registry_meta_get(e->registry, "library", &lib, &found) != 0)
        return registry_failed(s);
    if (!found)
        lib = 0; /* the main job's, or a data dir of a build before the library */
    if (last.id != 0 && lib != (s->sm != NULL)) {
        fprintf(stderr, "paxos-shm: %s: its log is %s; continue it with the same\n", e->data_dir,
                lib ? "a library state machine's, not the Fibonacci job's"
                    : "the Fibonacci job's, not a library state machine's");
        s->fatal = EXIT_USAGE;
        s->env.refused = true;
        return -1;
    }
    if (sup_net_first(s) && (!found || lib != (s->sm != NULL)) &&
        store_registry_meta_set(e->registry, "library", s->sm != NULL) != 0)
        return registry_failed(s);
    return 0;
}

void sup_identity_note(struct sup *s)
{
    struct sup_env *e = &s->env;
    if (e->registry == NULL || e->pool_id == 0 || e->refused)
        return;
    uint16_t nodes = (uint16_t)s->cfg->nodes;
    for (uint16_t i = 0; i < nodes; i++) {
        struct store_ident id;
        if (!sup_net_local(s, i) || peek(s, i, &id) != 0) /* the next run says so too */
            continue;
        if (id.exists && id.pool_id == e->pool_id &&
            store_registry_know(e->registry, i, id.promised, id.hwm) != 0) {
            fprintf(stderr, "paxos-shm: %s\n", store_registry_errmsg(e->registry));
            return;
        }
    }
}
