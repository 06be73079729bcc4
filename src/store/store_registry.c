/* store_registry.c: the supervisor's registry, sqlite file `registry.db` in the data dir.
 *
 * Tables: meta(key, value) with layout_version, nodes and pool_id; nodes(id PRIMARY KEY, roles,
 * pid, incarnation, restarts, last_activity_ms); runs (the client's record, store.h: struct
 * store_run); stores(id PRIMARY KEY, promised, hwm): what each node's store was seen to hold
 * at least (store.h: struct store_known). Layout 3 added pool_id and `stores`; a registry of
 * layout 2 gains them at its first open. Normal (not exclusive) locking so that a person can
 * inspect the file with the sqlite3 shell during a run. Each update is its own transaction. */
#include <errno.h>
#include <stdio.h>
#include <sys/random.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

struct store_registry {
    sqlite3 *db;
    uint16_t nodes;
    sqlite3_stmt *st_put, *st_get;
    sqlite3_stmt *st_run_last, *st_run_insert, *st_run_update;
    sqlite3_stmt *st_known_get, *st_known_put;
    bool fresh;
    int64_t pool_id;
    char path[STORE_NAME_MAX];
    char err[STORE_ERR_MAX];
};

static int reg_fail(struct store_registry *r, const char *what, int rc)
{
    return store_sq_fail(r->err, sizeof(r->err), r->db, r->path, what, rc);
}

static const char *const reg_schema =
    "CREATE TABLE nodes(id INTEGER PRIMARY KEY, roles INTEGER NOT NULL,"
    " pid INTEGER NOT NULL, incarnation INTEGER NOT NULL,"
    " restarts INTEGER NOT NULL, last_activity_ms INTEGER NOT NULL);"
    "CREATE TABLE runs(id INTEGER PRIMARY KEY, started_ms INTEGER NOT NULL,"
    " ended_ms INTEGER NOT NULL, rounds INTEGER NOT NULL, in_doubt INTEGER NOT NULL,"
    " base INTEGER NOT NULL, submitted INTEGER NOT NULL, decided INTEGER NOT NULL,"
    " done INTEGER NOT NULL, outcome TEXT NOT NULL);";

/* What layout 3 adds to a registry of layout 2 (and to a new one). */
static const char *const reg_schema_3 =
    "CREATE TABLE IF NOT EXISTS stores(id INTEGER PRIMARY KEY, promised INTEGER NOT NULL,"
    " hwm INTEGER NOT NULL)";

/* A registry of an earlier build has no `runs` table: it holds no record of the rounds its
 * client submitted, so a continued run could not know what to expect. */
static int reg_check_runs(struct store_registry *r)
{
    sqlite3_stmt *st = NULL;
    int sq =
        sqlite3_prepare_v2(r->db, "SELECT 1 FROM sqlite_master WHERE name = 'runs'", -1, &st, NULL);
    if (sq == SQLITE_OK)
        sq = sqlite3_step(st);
    sqlite3_finalize(st);
    if (sq == SQLITE_ROW)
        return 0;
    if (sq == SQLITE_DONE)
        return store_fail_buf(r->err, sizeof(r->err), -EPROTO,
                              "%s: written by an earlier build that kept no record of the rounds"
                              " it submitted (no runs table)",
                              r->path);
    return reg_fail(r, "reading the schema", sq);
}

static int reg_prepare(struct store_registry *r, const char *sql, sqlite3_stmt **st)
{
    int sq = sqlite3_prepare_v3(r->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
    return sq == SQLITE_OK ? 0 : reg_fail(r, "prepare", sq);
}

static int reg_prepare_all(struct store_registry *r)
{
    int rc =
        reg_prepare(r, "INSERT OR REPLACE INTO nodes VALUES(?1, ?2, ?3, ?4, ?5, ?6)", &r->st_put);
    if (rc == 0)
        rc = reg_prepare(r,
                         "SELECT roles, pid, incarnation, restarts, last_activity_ms"
                         " FROM nodes WHERE id = ?1",
                         &r->st_get);
    if (rc == 0)
        rc = reg_prepare(r,
                         "SELECT id, started_ms, ended_ms, rounds, in_doubt, base, submitted,"
                         " decided, done, outcome FROM runs ORDER BY id DESC LIMIT 1",
                         &r->st_run_last);
    if (rc == 0)
        rc = reg_prepare(r, "INSERT INTO runs VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                         &r->st_run_insert);
    if (rc == 0)
        rc = reg_prepare(r,
                         "UPDATE runs SET ended_ms = ?2, submitted = ?3, decided = ?4, done = ?5,"
                         " outcome = ?6 WHERE id = ?1",
                         &r->st_run_update);
    if (rc == 0)
        rc = reg_prepare(r, "SELECT promised, hwm FROM stores WHERE id = ?1", &r->st_known_get);
    if (rc == 0)
        rc = reg_prepare(r,
                         "INSERT INTO stores VALUES(?1, ?2, ?3) ON CONFLICT(id) DO UPDATE SET"
                         " promised = max(promised, excluded.promised),"
                         " hwm = max(hwm, excluded.hwm)",
                         &r->st_known_put);
    return rc;
}

/* Reads the pool id, or makes one (a new registry, or one of a build that kept none). */
static int reg_pool_id(struct store_registry *r)
{
    sqlite3_stmt *st = NULL;
    int sq =
        sqlite3_prepare_v2(r->db, "SELECT value FROM meta WHERE key = 'pool_id'", -1, &st, NULL);
    if (sq == SQLITE_OK)
        sq = sqlite3_step(st);
    if (sq == SQLITE_ROW)
        r->pool_id = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    if (sq == SQLITE_ROW && r->pool_id != 0)
        return 0;
    if (sq != SQLITE_ROW && sq != SQLITE_DONE)
        return reg_fail(r, "reading meta", sq);
    uint64_t id = 0;
    if (getrandom(&id, sizeof(id), 0) != (ssize_t)sizeof(id))
        return store_fail_buf(r->err, sizeof(r->err), -EIO, "%s: getrandom: %s", r->path,
                              strerror(errno));
    id &= 0x7fffffffffffffffull; /* positive: printed the same by sqlite3 and by us */
    if (id == 0)
        id = 1;
    r->pool_id = (int64_t)id;
    return store_sq_meta_set(r->db, r->path, "pool_id", r->pool_id, r->err, sizeof(r->err));
}

static int reg_setup(struct store_registry *r)
{
    const struct store_sq_kv kv[] = {{"nodes", r->nodes, -EINVAL}};
    bool fresh = false;
    int rc = store_sq_exec(r->db, r->path, "BEGIN IMMEDIATE", r->err, sizeof(r->err));
    if (rc != 0)
        return rc;
    const struct store_sq_layout layout = {STORE_REG_LAYOUT_VERSION, STORE_REG_LAYOUT_OLDEST};
    int64_t found = 0;
    rc = store_sq_meta(r->db, r->path, layout, kv, 1, &fresh, &found, r->err, sizeof(r->err));
    if (rc == 0 && fresh)
        rc = store_sq_exec(r->db, r->path, reg_schema, r->err, sizeof(r->err));
    if (rc == 0 && !fresh)
        rc = reg_check_runs(r);
    if (rc == 0)
        rc = store_sq_exec(r->db, r->path, reg_schema_3, r->err, sizeof(r->err));
    if (rc == 0 && found != STORE_REG_LAYOUT_VERSION)
        rc = store_sq_meta_set(r->db, r->path, "layout_version", STORE_REG_LAYOUT_VERSION, r->err,
                               sizeof(r->err));
    if (rc == 0)
        rc = reg_pool_id(r);
    r->fresh = fresh;
    if (rc == 0)
        rc = store_sq_exec(r->db, r->path, "COMMIT", r->err, sizeof(r->err));
    if (rc != 0 && !sqlite3_get_autocommit(r->db))
        sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
    if (rc != 0)
        return rc;
    return reg_prepare_all(r);
}

int store_registry_open(const char *dir, uint16_t nodes, enum store_sync sync,
                        struct store_registry **out, char *err, size_t err_len)
{
    STORE_ASSERT(out != NULL);
    *out = NULL;
    if (err != NULL && err_len > 0)
        err[0] = '\0';
    if (nodes == 0 || nodes > PX_NODES_MAX)
        return store_fail_buf(err, err_len, -EINVAL, "registry: pool size %u out of 1..%d",
                              (unsigned)nodes, PX_NODES_MAX);
    int rc = store_sq_check_dir(dir, err, err_len);
    if (rc != 0)
        return rc;
    struct store_registry *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return store_fail_buf(err, err_len, -ENOMEM, "%s: out of memory", dir);
    r->nodes = nodes;
    snprintf(r->path, sizeof(r->path), "%s/registry.db", dir);
    rc = store_sq_open_db(r->path, sync, false, false, &r->db, r->err, sizeof(r->err));
    if (rc == 0)
        rc = reg_setup(r);
    if (rc != 0) {
        store_fail_buf(err, err_len, rc, "%s", r->err);
        store_registry_close(r);
        return rc;
    }
    *out = r;
    return 0;
}

int store_registry_update(struct store_registry *r, uint16_t id, uint32_t roles, int pid,
                          uint32_t incarnation, uint32_t restarts, int64_t last_activity_ms)
{
    STORE_ASSERT(r != NULL);
    STORE_ASSERT(id < r->nodes);
    sqlite3_bind_int64(r->st_put, 1, id);
    sqlite3_bind_int64(r->st_put, 2, roles);
    sqlite3_bind_int64(r->st_put, 3, pid);
    sqlite3_bind_int64(r->st_put, 4, incarnation);
    sqlite3_bind_int64(r->st_put, 5, restarts);
    sqlite3_bind_int64(r->st_put, 6, last_activity_ms);
    int rc = sqlite3_step(r->st_put);
    int code = rc == SQLITE_DONE ? 0 : reg_fail(r, "update nodes", rc);
    sqlite3_reset(r->st_put);
    return code;
}

int store_registry_get(struct store_registry *r, uint16_t id, struct store_node_info *out)
{
    STORE_ASSERT(r != NULL && out != NULL);
    STORE_ASSERT(id < r->nodes);
    sqlite3_bind_int64(r->st_get, 1, id);
    int rc = sqlite3_step(r->st_get);
    int code = 0;
    if (rc == SQLITE_ROW) {
        out->roles = (uint32_t)sqlite3_column_int64(r->st_get, 0);
        out->pid = (int)sqlite3_column_int64(r->st_get, 1);
        out->incarnation = (uint32_t)sqlite3_column_int64(r->st_get, 2);
        out->restarts = (uint32_t)sqlite3_column_int64(r->st_get, 3);
        out->last_activity_ms = sqlite3_column_int64(r->st_get, 4);
    } else if (rc == SQLITE_DONE) {
        code = store_fail_buf(r->err, sizeof(r->err), -ENOENT, "%s: node %u not registered",
                              r->path, (unsigned)id);
    } else {
        code = reg_fail(r, "read nodes", rc);
    }
    sqlite3_reset(r->st_get);
    return code;
}

int store_registry_run_last(struct store_registry *r, struct store_run *out)
{
    STORE_ASSERT(r != NULL);
    STORE_ASSERT(out != NULL);
    sqlite3_stmt *st = r->st_run_last;
    int sq = sqlite3_step(st);
    int code = 0;
    memset(out, 0, sizeof(*out));
    if (sq == SQLITE_ROW) {
        out->id = sqlite3_column_int64(st, 0);
        out->started_ms = sqlite3_column_int64(st, 1);
        out->ended_ms = sqlite3_column_int64(st, 2);
        out->rounds = (uint64_t)sqlite3_column_int64(st, 3);
        out->in_doubt = (uint64_t)sqlite3_column_int64(st, 4);
        out->base = (uint64_t)sqlite3_column_int64(st, 5);
        out->submitted = (uint64_t)sqlite3_column_int64(st, 6);
        out->decided = (uint64_t)sqlite3_column_int64(st, 7);
        out->done = (uint64_t)sqlite3_column_int64(st, 8);
        const unsigned char *txt = sqlite3_column_text(st, 9);
        snprintf(out->outcome, sizeof(out->outcome), "%s", txt ? (const char *)txt : "");
        if (out->decided > out->submitted)
            code = store_fail_buf(r->err, sizeof(r->err), -EBADMSG,
                                  "%s: run %lld records more rounds decided than submitted",
                                  r->path, (long long)out->id);
    } else if (sq == SQLITE_DONE) {
        code = store_fail_buf(r->err, sizeof(r->err), -ENOENT, "%s: no run recorded", r->path);
    } else {
        code = reg_fail(r, "read runs", sq);
    }
    sqlite3_reset(st);
    return code;
}

static void reg_bind_run(sqlite3_stmt *st, const struct store_run *run)
{
    sqlite3_bind_int64(st, 1, run->id);
    sqlite3_bind_int64(st, 2, run->ended_ms);
    sqlite3_bind_int64(st, 3, (int64_t)run->submitted);
    sqlite3_bind_int64(st, 4, (int64_t)run->decided);
    sqlite3_bind_int64(st, 5, (int64_t)run->done);
    sqlite3_bind_text(st, 6, run->outcome, -1, SQLITE_TRANSIENT);
}

int store_registry_run_begin(struct store_registry *r, struct store_run *run)
{
    STORE_ASSERT(r != NULL);
    STORE_ASSERT(run->decided <= run->submitted);
    struct store_run last;
    int code = store_registry_run_last(r, &last);
    if (code != 0 && code != -ENOENT)
        return code;
    run->id = code == 0 ? last.id + 1 : 1;
    sqlite3_stmt *st = r->st_run_insert;
    sqlite3_bind_int64(st, 1, run->id);
    sqlite3_bind_int64(st, 2, run->started_ms);
    sqlite3_bind_int64(st, 3, run->ended_ms);
    sqlite3_bind_int64(st, 4, (int64_t)run->rounds);
    sqlite3_bind_int64(st, 5, (int64_t)run->in_doubt);
    sqlite3_bind_int64(st, 6, (int64_t)run->base);
    sqlite3_bind_int64(st, 7, (int64_t)run->submitted);
    sqlite3_bind_int64(st, 8, (int64_t)run->decided);
    sqlite3_bind_int64(st, 9, (int64_t)run->done);
    sqlite3_bind_text(st, 10, run->outcome, -1, SQLITE_TRANSIENT);
    int sq = sqlite3_step(st);
    code = sq == SQLITE_DONE ? 0 : reg_fail(r, "insert into runs", sq);
    sqlite3_reset(st);
    return code;
}

int store_registry_run_update(struct store_registry *r, const struct store_run *run)
{
    STORE_ASSERT(r != NULL);
    STORE_ASSERT(run->id > 0);
    STORE_ASSERT(run->decided <= run->submitted);
    sqlite3_stmt *st = r->st_run_update;
    reg_bind_run(st, run);
    int sq = sqlite3_step(st);
    int code = sq == SQLITE_DONE ? 0 : reg_fail(r, "update runs", sq);
    if (code == 0 && sqlite3_changes(r->db) != 1)
        code = store_fail_buf(r->err, sizeof(r->err), -EBADMSG, "%s: run %lld vanished", r->path,
                              (long long)run->id);
    sqlite3_reset(st);
    return code;
}

int store_registry_meta_get(struct store_registry *r, const char *key, int64_t *out, bool *found)
{
    sqlite3_stmt *st = NULL;
    *found = false;
    int sq = sqlite3_prepare_v2(r->db, "SELECT value FROM meta WHERE key = ?1", -1, &st, NULL);
    if (sq == SQLITE_OK)
        sq = sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    if (sq == SQLITE_OK)
        sq = sqlite3_step(st);
    if (sq == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        *found = true;
    }
    sqlite3_finalize(st);
    if (sq != SQLITE_ROW && sq != SQLITE_DONE)
        return reg_fail(r, "reading meta", sq);
    return 0;
}

int store_registry_meta_set(struct store_registry *r, const char *key, int64_t value)
{
    return store_sq_meta_set(r->db, r->path, key, value, r->err, sizeof(r->err));
}

bool store_registry_fresh(const struct store_registry *r)
{
    STORE_ASSERT(r != NULL);
    return r->fresh;
}

int64_t store_registry_pool_id(const struct store_registry *r)
{
    STORE_ASSERT(r != NULL);
    return r->pool_id;
}

int store_registry_known(struct store_registry *r, uint16_t id, struct store_known *out)
{
    STORE_ASSERT(r != NULL && out != NULL);
    STORE_ASSERT(id < r->nodes);
    memset(out, 0, sizeof(*out));
    sqlite3_bind_int64(r->st_known_get, 1, id);
    int sq = sqlite3_step(r->st_known_get);
    int code = 0;
    if (sq == SQLITE_ROW) {
        out->found = true;
        out->promised = (px_ballot_t)sqlite3_column_int64(r->st_known_get, 0);
        out->hwm = (px_inst_t)sqlite3_column_int64(r->st_known_get, 1);
    } else if (sq != SQLITE_DONE) {
        code = reg_fail(r, "read stores", sq);
    }
    sqlite3_reset(r->st_known_get);
    return code;
}

int store_registry_know(struct store_registry *r, uint16_t id, px_ballot_t promised, px_inst_t hwm)
{
    STORE_ASSERT(r != NULL);
    STORE_ASSERT(id < r->nodes);
    sqlite3_bind_int64(r->st_known_put, 1, id);
    sqlite3_bind_int64(r->st_known_put, 2, (int64_t)promised);
    sqlite3_bind_int64(r->st_known_put, 3, (int64_t)hwm);
    int sq = sqlite3_step(r->st_known_put);
    int code = sq == SQLITE_DONE ? 0 : reg_fail(r, "update stores", sq);
    sqlite3_reset(r->st_known_put);
    return code;
}

void store_registry_remove(const char *dir)
{
    char path[STORE_NAME_MAX];
    snprintf(path, sizeof(path), "%s/registry.db", dir);
    store_sq_remove_db(path);
}

void store_registry_close(struct store_registry *r)
{
    if (r == NULL)
        return;
    sqlite3_finalize(r->st_known_get);
    sqlite3_finalize(r->st_known_put);
    sqlite3_finalize(r->st_put);
    sqlite3_finalize(r->st_get);
    sqlite3_finalize(r->st_run_last);
    sqlite3_finalize(r->st_run_insert);
    sqlite3_finalize(r->st_run_update);
    sqlite3_close(r->db);
    free(r);
}

const char *store_registry_errmsg(const struct store_registry *r)
{
    STORE_ASSERT(r != NULL);
    return r->err;
}
