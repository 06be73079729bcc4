/* store_registry.c: the supervisor's node registry, sqlite file `registry.db` in the data dir.
 *
 * Tables: meta(key, value) with layout_version and nodes; nodes(id PRIMARY KEY, roles, pid,
 * incarnation, restarts, last_activity_ms). Normal (not exclusive) locking so that a person can
 * inspect the file with the sqlite3 shell during a run. Each update is its own transaction. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

struct store_registry {
    sqlite3 *db;
    uint16_t nodes;
    sqlite3_stmt *st_put, *st_get;
    char path[STORE_NAME_MAX];
    char err[STORE_ERR_MAX];
};

static int reg_fail(struct store_registry *r, const char *what, int rc)
{
    return store_sq_fail(r->err, sizeof(r->err), r->db, r->path, what, rc);
}

static int reg_setup(struct store_registry *r)
{
    const struct store_sq_kv kv[] = {{"nodes", r->nodes, -EINVAL}};
    bool fresh = false;
    int rc = store_sq_exec(r->db, r->path, "BEGIN IMMEDIATE", r->err, sizeof(r->err));
    if (rc != 0)
        return rc;
    rc = store_sq_meta(r->db, r->path, kv, 1, &fresh, r->err, sizeof(r->err));
    if (rc == 0 && fresh)
        rc = store_sq_exec(r->db, r->path,
                           "CREATE TABLE nodes(id INTEGER PRIMARY KEY, roles INTEGER NOT NULL,"
                           " pid INTEGER NOT NULL, incarnation INTEGER NOT NULL,"
                           " restarts INTEGER NOT NULL, last_activity_ms INTEGER NOT NULL)",
                           r->err, sizeof(r->err));
    if (rc == 0)
        rc = store_sq_exec(r->db, r->path, "COMMIT", r->err, sizeof(r->err));
    if (rc != 0 && !sqlite3_get_autocommit(r->db))
        sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
    if (rc != 0)
        return rc;
    int sq =
        sqlite3_prepare_v3(r->db, "INSERT OR REPLACE INTO nodes VALUES(?1, ?2, ?3, ?4, ?5, ?6)", -1,
                           SQLITE_PREPARE_PERSISTENT, &r->st_put, NULL);
    if (sq == SQLITE_OK)
        sq = sqlite3_prepare_v3(r->db,
                                "SELECT roles, pid, incarnation, restarts, last_activity_ms"
                                " FROM nodes WHERE id = ?1",
                                -1, SQLITE_PREPARE_PERSISTENT, &r->st_get, NULL);
    return sq == SQLITE_OK ? 0 : reg_fail(r, "prepare", sq);
}

int store_registry_open(const char *dir, uint16_t nodes, struct store_registry **out, char *err,
                        size_t err_len)
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
    rc = store_sq_open_db(r->path, STORE_SYNC_NORMAL, false, &r->db, r->err, sizeof(r->err));
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

void store_registry_close(struct store_registry *r)
{
    if (r == NULL)
        return;
    sqlite3_finalize(r->st_put);
    sqlite3_finalize(r->st_get);
    sqlite3_close(r->db);
    free(r);
}

const char *store_registry_errmsg(const struct store_registry *r)
{
    STORE_ASSERT(r != NULL);
    return r->err;
}
