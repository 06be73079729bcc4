/* store_sqlite.c: the sqlite backend (one WAL database per node, one transaction per batch).
 *
 * Tables (layout STORE_SQ_NODE_LAYOUT_VERSION):
 *   meta(key PRIMARY KEY, value)     layout_version, nodes, node_id, fib_bytes, pool_id, epoch
 *   paxos_state(id = 1, promised, truncated, fib, crc)  one row; fib is struct px_history's bytes
 *   log(batch PRIMARY KEY, kind, first, last, recs, crc) one row per committed batch and kind
 *                                    (more for a batch longer than sqlite's row limit, below)
 * pool_id is the identity of the pool (its registry's) and epoch the last run that opened the
 * store (store.h: struct store_params). Every row the state is rebuilt from carries `crc`, the
 * CRC-32C of its other columns (sq_state_crc, sq_log_crc), checked at load: a row changed
 * outside paxos-shm (an UPDATE through the sqlite3 shell, bit rot that leaves the file well
 * formed) is -EBADMSG naming the file and the row, never loaded. A file of layout 2 or 3 gets
 * the column and the checksums of its rows when it is first opened (layout 4); a file of layout
 * 4 is raised to 5 by its meta alone (none of its records carries a command).
 * A batch's ACCEPTED records are one row (kind 3) and its DECIDED records another (kind 4):
 * `recs` packs them one after the other, each as varints of the differences from the record
 * before it (instance, and ballot for ACCEPTED), the value's word as 8 bytes, the client id, and
 * the difference of the seq: about 12 bytes where a fixed layout takes 32, so a batch's commit
 * writes fewer pages (sq_enc_rec). A record whose client id has PX_VALUE_PAYLOAD (a command
 * longer than 8 bytes, store_put_cmd) is followed by the command's length as a varint and its
 * bytes (layout 5), covered by the row's crc like the rest; a length over CMD_BYTES_MAX or past
 * the end of the row is -EBADMSG at load. Kinds 1 and 2 are version 2's fixed layout (struct
 * sq_packed, native byte order), still read from a version-2 file.
 * One row per batch instead of one per record is what makes group commit pay: a node writes
 * a few hundred records per batch, and sqlite's cost is per statement and per page, not per
 * byte. A batch whose records of one kind would make a row longer than sqlite takes
 * (SQLITE_LIMIT_LENGTH, 1e9 bytes by default, counts the whole row) is split into several rows
 * of that kind, written in order within the batch's transaction. A later ACCEPTED of the same
 * instance supersedes an earlier one, bytes and all (later row wins at load). DECIDED stays
 * separate from ACCEPTED: a learner need not be an acceptor, and the chosen value may differ
 * from the value this acceptor accepted at a lower ballot, which phase 1 must still report.
 * TRUNCATE t deletes the rows whose `last` <= t; load skips instances <= t. u64 values are
 * stored as their int64 bit pattern.
 *
 * Per batch the records (with their commands' bytes), the promised ballot, truncation point and
 * fib are kept in memory and written at commit: at most two INSERTs and one UPDATE per batch
 * (a batch past sqlite's row limit INSERTs each full row as it fills, inside the batch's
 * transaction). At load the records are gathered and sorted first; a command's bytes are read
 * from their row (incremental blob I/O) only for the record that is handed out, one command in
 * memory at a time. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ipc/check.h"
#include "store_internal.h"

/* Wait this long for a file lock held by another process (e.g. the previous incarnation of
 * this node still exiting) before returning -EBUSY. */
#define STORE_BUSY_MS 2000
/* Page cache per connection (KiB, sqlite's negative cache_size): holds the hot end of the log
 * b-trees; 16 nodes x 8 MiB stays small. */
#define STORE_CACHE_KIB 8192
/* Page size of a new node store. A commit rewrites whole pages (the log's last leaf and its
 * overflow pages, the state row's page, the header page): with 1 KiB pages a 16-node run
 * writes 129 MB to the WALs, with 4 KiB pages 316 MB, for the same records. */
#define STORE_PAGE_BYTES 1024
/* WAL pages between automatic checkpoints: fewer, larger checkpoints; bounds the WAL (4 MiB
 * with 1 KiB pages, 16 MiB with the 4 KiB pages of a store made by an earlier release). */
#define STORE_WAL_CHECKPOINT_PAGES 4096
/* A store of long commands (store_params.cmd_bytes): sqlite's largest pages, so a 1 MiB command
 * is 16 pages, not 1024, and a checkpoint copies it in 16 reads; checkpoints every 16 MiB. */
#define STORE_BIG_PAGE_BYTES           65536
#define STORE_BIG_WAL_CHECKPOINT_PAGES 256
/* The WAL file is truncated back to this after a checkpoint. */
#define STORE_WAL_LIMIT_BYTES (64 * 1024 * 1024)

/* One record in a log row. */
struct sq_packed {
    uint64_t instance, ballot, word;
    uint32_t client_id, seq;
};
_Static_assert(sizeof(struct sq_packed) == 32, "packed record layout");

enum {
    SQ_KIND_ACCEPTED_V2 = 1, /* struct sq_packed records (layout 2) */
    SQ_KIND_DECIDED_V2 = 2,
    SQ_KIND_ACCEPTED = 3, /* varint records (sq_enc_rec) */
    SQ_KIND_DECIDED = 4,
};

/* Longest packed record: four varints of at most 10 bytes and the 8-byte word. */
#define SQ_REC_BYTES_MAX 48
/* Longest varint (a command's length). */
#define SQ_VARINT_MAX 10
/* Room a log row needs beside its recs blob: sqlite's length limit counts the row as it builds
 * it (a header of a few bytes, and kind, first, last and crc of at most 9 bytes each). */
#define SQ_ROW_OVERHEAD 256
/* A batch buffer grown past this by commands is given back at the end of the batch rather than
 * kept for the next one (records alone take about 12 bytes each). */
#define SQ_BUF_KEEP_BYTES ((size_t)4 << 20)

/* The records of the open batch, one growing buffer per kind (grown by doubling, so a node
 * reallocates only while its batches are still getting bigger; commands may need more at once).
 * prev is the record before the next one (zero at the start of a row). */
struct sq_buf {
    unsigned char *bytes;
    size_t len, cap;
    uint32_t count;
    uint64_t first, last;
    struct sq_packed prev;
};

struct store_sq {
    struct store base; /* first: struct store * <-> struct store_sq * */
    sqlite3 *db;
    sqlite3_stmt *st_begin, *st_commit, *st_rollback;
    sqlite3_stmt *st_log, *st_del, *st_state;
    /* The state machine's snapshot (sq_put_sm): prepared at the first put; sm_ready: its
     * tables exist in this connection's view (cleared when a batch rolls back). */
    sqlite3_stmt *st_sm_clear, *st_sm_part, *st_sm_state;
    bool sm_ready;
    /* A snapshot being written (store_sm_begin .. end): the part filling up (part_max bytes at
     * most), the parts written, the bytes so far and their CRC-32C from 0 (the header's, known
     * only at the end, goes in front of it then: ipc_crc32c_shift). */
    uint8_t *sm_wpart;
    size_t sm_wpart_len, sm_wpart_max;
    uint64_t sm_wparts, sm_wlen;
    uint32_t sm_wcrc;
    /* A snapshot being read (store_sm_open .. close): the row statement, the row at hand and
     * how far it was handed out, what the state row promised. */
    sqlite3_stmt *sm_rd;
    const uint8_t *sm_rrow;
    size_t sm_rrow_len, sm_rrow_at;
    int64_t sm_rnext;
    uint64_t sm_rleft;
    struct sq_buf buf[2]; /* [0] accepted, [1] decided */
    /* The last committed values plus this batch's changes. */
    px_ballot_t promised;
    px_inst_t truncated;
    struct px_history fib;
    bool state_dirty;
    int64_t pool_id, epoch; /* from meta; 0 when absent */
    int64_t next_batch;     /* the batch id of the next log row */
    px_inst_t log_last;     /* highest instance of any log row (0 when none) */
};

static struct store_sq *sq_of(struct store *s)
{
    STORE_ASSERT(s->kind == STORE_SQLITE);
    return (struct store_sq *)(void *)s;
}

/* Empties b for the next row of its kind. */
static void sq_buf_restart(struct sq_buf *b)
{
    *b = (struct sq_buf){.bytes = b->bytes, .cap = b->cap};
}

/* Empties b at the end of a batch; a buffer commands grew past SQ_BUF_KEEP_BYTES is freed. */
static void sq_buf_end(struct sq_buf *b)
{
    if (b->cap > SQ_BUF_KEEP_BYTES) {
        free(b->bytes);
        b->bytes = NULL;
        b->cap = 0;
    }
    sq_buf_restart(b);
}

int store_sq_limit_length(struct store *s, int bytes)
{
    return sqlite3_limit(sq_of(s)->db, SQLITE_LIMIT_LENGTH, bytes);
}

/* ---- the packing of log records (layout 3) ---- */

static size_t sq_put_varint(unsigned char *out, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        out[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    out[n++] = (unsigned char)v;
    return n;
}

/* Reads one varint at *at below end: false when it runs past end or over 64 bits. */
static bool sq_get_varint(const unsigned char **at, const unsigned char *end, uint64_t *v)
{
    *v = 0;
    for (unsigned shift = 0; shift < 64 && *at < end; shift += 7) {
        unsigned char b = *(*at)++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0)
            return shift < 63 || b <= 1;
    }
    return false;
}

/* The difference b - a as an unsigned number, small when |b - a| is (zigzag). */
static uint64_t sq_zigzag(uint64_t a, uint64_t b)
{
    uint64_t d = b - a;
    return (d << 1) ^ (0 - (d >> 63));
}

static uint64_t sq_unzigzag(uint64_t a, uint64_t z)
{
    return a + ((z >> 1) ^ (0 - (z & 1)));
}

/* Packs r after prev into out (SQ_REC_BYTES_MAX bytes of room); returns the bytes used. */
static size_t sq_enc_rec(unsigned char *out, const struct sq_packed *prev,
                         const struct sq_packed *r, bool accepted)
{
    size_t n = sq_put_varint(out, sq_zigzag(prev->instance, r->instance));
    if (accepted)
        n += sq_put_varint(out + n, sq_zigzag(prev->ballot, r->ballot));
    memcpy(out + n, &r->word, sizeof(r->word));
    n += sizeof(r->word);
    n += sq_put_varint(out + n, r->client_id);
    n += sq_put_varint(out + n, sq_zigzag(prev->seq, r->seq));
    STORE_ASSERT(n <= SQ_REC_BYTES_MAX);
    return n;
}

/* Unpacks the record at *at (after prev) into r: false when the bytes are not one record. */
static bool sq_dec_rec(const unsigned char **at, const unsigned char *end,
                       const struct sq_packed *prev, struct sq_packed *r, bool accepted)
{
    uint64_t inst = 0, ballot = 0, client = 0, seq = 0;
    if (!sq_get_varint(at, end, &inst) || (accepted && !sq_get_varint(at, end, &ballot)))
        return false;
    if (end - *at < (ptrdiff_t)sizeof(r->word))
        return false;
    memcpy(&r->word, *at, sizeof(r->word));
    *at += sizeof(r->word);
    if (!sq_get_varint(at, end, &client) || client > UINT32_MAX || !sq_get_varint(at, end, &seq))
        return false;
    uint64_t seq_abs = sq_unzigzag(prev->seq, seq);
    if (seq_abs > UINT32_MAX)
        return false;
    r->instance = sq_unzigzag(prev->instance, inst);
    r->ballot = accepted ? sq_unzigzag(prev->ballot, ballot) : 0;
    r->client_id = (uint32_t)client;
    r->seq = (uint32_t)seq_abs;
    return true;
}

/* ---- helpers shared with the registry ---- */

int store_sq_check_dir(const char *dir, char *err, size_t err_len)
{
    struct stat st;
    if (dir == NULL || dir[0] == '\0')
        return store_fail_buf(err, err_len, -EINVAL, "store: no data directory given");
    if (strlen(dir) + 32 >= STORE_NAME_MAX)
        return store_fail_buf(err, err_len, -ENAMETOOLONG,
                              "%s: data directory path is longer than %d bytes", dir,
                              STORE_NAME_MAX - 32);
    if (stat(dir, &st) != 0) {
        int e = errno;
        return store_fail_buf(err, err_len, -e, "%s: data directory: %s", dir, strerror(e));
    }
    if (!S_ISDIR(st.st_mode))
        return store_fail_buf(err, err_len, -ENOTDIR, "%s: data directory: %s", dir,
                              strerror(ENOTDIR));
    if (access(dir, W_OK | X_OK) != 0) {
        int e = errno;
        return store_fail_buf(err, err_len, -e, "%s: data directory is not writable: %s", dir,
                              strerror(e));
    }
    return 0;
}

/* The OS error behind an I/O error. sqlite does not record it on every path (a failed WAL
 * write at COMMIT leaves sqlite3_system_errno 0), so for SQLITE_IOERR the errno left by the
 * failed call is used; callers map an error right after the sqlite call that failed. */
static int store_sq_sys(sqlite3 *db, int rc)
{
    int saved = errno;
    int sys = db != NULL ? sqlite3_system_errno(db) : 0;
    if (sys == 0 && (rc & 0xff) == SQLITE_IOERR)
        sys = saved;
    return sys;
}

int store_sq_code(sqlite3 *db, int rc)
{
    int sys = store_sq_sys(db, rc);
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW:
        return 0;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return -EBADMSG;
    case SQLITE_FULL:
        return -ENOSPC;
    case SQLITE_IOERR:
        /* sqlite reports a write that hit RLIMIT_FSIZE (EFBIG) as an I/O error. */
        return sys == ENOSPC || sys == EFBIG || sys == EDQUOT ? -ENOSPC : -EIO;
    case SQLITE_CANTOPEN:
        if (rc == SQLITE_CANTOPEN_SYMLINK)
            return -ELOOP;
        return sys > 0 ? -sys : -EACCES;
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
        return -EACCES;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return -EBUSY;
    case SQLITE_NOMEM:
        return -ENOMEM;
    default:
        return -EIO;
    }
}

static const char *store_sq_cause(int code)
{
    switch (code) {
    case -EBADMSG:
        return "the database file is damaged or is not a database";
    case -ENOSPC:
        return "disk full or file size limit reached";
    case -EBUSY:
        return "the file is held by another process";
    case -ENOMEM:
        return "out of memory";
    case -EIO:
        return "I/O or database error";
    case -ELOOP:
        return "a symbolic link; a store does not follow links";
    default:
        return strerror(-code);
    }
}

int store_sq_fail(char *err, size_t err_len, sqlite3 *db, const char *path, const char *what,
                  int rc)
{
    int sys = store_sq_sys(db, rc);
    int code = store_sq_code(db, rc);
    const char *msg = db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    if (code == 0)
        code = -EIO; /* a caller reports a failure: never return success for it */
    if (sys != 0 && (rc & 0xff) != SQLITE_CORRUPT && (rc & 0xff) != SQLITE_NOTADB)
        return store_fail_buf(err, err_len, code, "%s: %s failed: %s (sqlite: %s; os: %s)", path,
                              what, store_sq_cause(code), msg, strerror(sys));
    return store_fail_buf(err, err_len, code, "%s: %s failed: %s (sqlite: %s)", path, what,
                          store_sq_cause(code), msg);
}

int store_sq_exec(sqlite3 *db, const char *path, const char *sql, char *err, size_t err_len)
{
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return store_sq_fail(err, err_len, db, path, sql, rc);
    return 0;
}

/* Runs a statement returning one text row (a PRAGMA); copies it into out. */
static int sq_text(sqlite3 *db, const char *path, const char *sql, char *out, size_t out_len,
                   char *err, size_t err_len)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        int code = store_sq_fail(err, err_len, db, path, sql, rc);
        sqlite3_finalize(st);
        return code;
    }
    const unsigned char *txt = sqlite3_column_text(st, 0);
    snprintf(out, out_len, "%s", txt != NULL ? (const char *)txt : "");
    sqlite3_finalize(st);
    return 0;
}

static int sq_pragmas(sqlite3 *db, const char *path, enum store_sync sync, bool exclusive,
                      bool big_pages, char *err, size_t err_len)
{
    char sql[256];
    char res[256];
    int rc = 0;
    /* Exclusive locking before WAL: the wal-index lives in heap memory (no -shm file), no lock
     * calls per transaction, and a second process opening the file gets -EBUSY. */
    if (exclusive)
        rc = store_sq_exec(db, path, "PRAGMA locking_mode=EXCLUSIVE", err, err_len);
    /* Node stores: small pages for a new file (an existing one keeps its own). */
    if (rc == 0 && exclusive)
        rc = store_sq_exec(db, path,
                           big_pages ? "PRAGMA page_size=" STORE_SQ_STR(STORE_BIG_PAGE_BYTES)
                                     : "PRAGMA page_size=" STORE_SQ_STR(STORE_PAGE_BYTES),
                           err, err_len);
    if (rc == 0)
        rc = sq_text(db, path, "PRAGMA journal_mode=WAL", res, sizeof(res), err, err_len);
    if (rc == 0 && strcmp(res, "wal") != 0)
        return store_fail_buf(err, err_len, -EIO, "%s: cannot switch to WAL mode (mode %s)", path,
                              res);
    /* --sync normal promises survival of a process crash: in WAL mode a commit has written its
     * frames to the OS when it returns, and a killed process loses nothing the OS holds, so no
     * fsync is needed, not even at checkpoints (synchronous=NORMAL fsyncs there: the multi-ms
     * stalls that made the p99). Power loss or an OS crash may lose recent batches or damage
     * the file (quick_check refuses it at the next open): that is --sync full's promise, which
     * fsyncs the WAL at every commit. */
    snprintf(sql, sizeof(sql),
             "PRAGMA synchronous=%s; PRAGMA cache_size=-%d; PRAGMA wal_autocheckpoint=%d;"
             " PRAGMA journal_size_limit=%d; PRAGMA temp_store=MEMORY",
             sync == STORE_SYNC_FULL ? "FULL" : "OFF", STORE_CACHE_KIB,
             big_pages ? STORE_BIG_WAL_CHECKPOINT_PAGES : STORE_WAL_CHECKPOINT_PAGES,
             STORE_WAL_LIMIT_BYTES);
    if (rc == 0)
        rc = store_sq_exec(db, path, sql, err, err_len);
    /* quick_check is O(pages) and the store is bounded by truncation: cheap at open. */
    if (rc == 0)
        rc = sq_text(db, path, "PRAGMA quick_check(1)", res, sizeof(res), err, err_len);
    if (rc == 0 && strcmp(res, "ok") != 0)
        return store_fail_buf(err, err_len, -EBADMSG,
                              "%s: the database file is damaged (quick_check: %s)", path, res);
    return rc;
}

/* The files sqlite may create beside a database: a link in their place would be followed out
 * of the data directory. */
static const char *const sq_companions[] = {"", "-wal", "-shm", "-journal"};

void store_sq_remove_db(const char *path)
{
    for (size_t i = 0; i < sizeof(sq_companions) / sizeof(sq_companions[0]); i++) {
        char name[STORE_NAME_MAX + 16];
        snprintf(name, sizeof(name), "%s%s", path, sq_companions[i]);
        (void)unlink(name);
    }
}

int store_sq_refuse_links(const char *path, char *err, size_t err_len)
{
    for (size_t i = 0; i < sizeof(sq_companions) / sizeof(sq_companions[0]); i++) {
        char name[STORE_NAME_MAX + 16];
        struct stat st;
        snprintf(name, sizeof(name), "%s%s", path, sq_companions[i]);
        if (lstat(name, &st) == 0 && S_ISLNK(st.st_mode))
            return store_fail_buf(err, err_len, -ELOOP,
                                  "%s: is a symbolic link; a store does not follow links (it"
                                  " would write outside the data directory)",
                                  name);
    }
    return 0;
}

int store_sqlite_check_files(const char *dir, uint16_t nodes, char *err, size_t err_len)
{
    char path[STORE_NAME_MAX];
    int rc = store_sq_check_dir(dir, err, err_len);
    snprintf(path, sizeof(path), "%s/registry.db", dir);
    if (rc == 0)
        rc = store_sq_refuse_links(path, err, err_len);
    for (uint32_t i = 0; rc == 0 && i < nodes; i++) {
        snprintf(path, sizeof(path), "%s/node-%u.db", dir, (unsigned)i);
        rc = store_sq_refuse_links(path, err, err_len);
    }
    return rc;
}

/* path with its directory resolved (sqlite's NOFOLLOW refuses a link anywhere in the path,
 * and the data directory may well be reached through one); path itself when it cannot be. */
static void sq_resolved(const char *path, char *out, size_t out_len)
{
    const char *slash = strrchr(path, '/');
    char dir[STORE_NAME_MAX];
    char real[PATH_MAX];
    snprintf(out, out_len, "%s", path);
    if (slash == NULL)
        snprintf(dir, sizeof(dir), ".");
    else
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
    if (slash == path)
        snprintf(dir, sizeof(dir), "/");
    if (realpath(dir, real) == NULL)
        return;
    int n = snprintf(out, out_len, "%s/%s", real, slash ? slash + 1 : path);
    if (n < 0 || (size_t)n >= out_len)
        snprintf(out, out_len, "%s", path);
}

int store_sq_open_db(const char *path, enum store_sync sync, bool exclusive, bool big_pages,
                     sqlite3 **out, char *err, size_t err_len)
{
    sqlite3 *db = NULL;
    char real[PATH_MAX + STORE_NAME_MAX];
    *out = NULL;
    int rc = store_sq_refuse_links(path, err, err_len);
    if (rc != 0)
        return rc;
    /* NOFOLLOW: a link put in place of the file after the check above is refused too; sqlite
     * opens the -wal, -shm and -journal files with O_NOFOLLOW itself. */
    sq_resolved(path, real, sizeof(real));
    /* A node store (exclusive) gathers each commit's WAL frames into one write. */
    rc = sqlite3_open_v2(real, &db,
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOFOLLOW,
                         exclusive ? store_sq_vfs() : NULL);
    if (rc != SQLITE_OK) {
        int code = store_sq_fail(err, err_len, db, path, "open",
                                 db != NULL ? sqlite3_extended_errcode(db) : rc);
        sqlite3_close(db);
        return code;
    }
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, STORE_BUSY_MS);
    int code = sq_pragmas(db, path, sync, exclusive, big_pages, err, err_len);
    if (code != 0) {
        sqlite3_close(db);
        return code;
    }
    *out = db;
    return 0;
}

static int sq_count_tables(sqlite3 *db, const char *path, int64_t *n, char *err, size_t err_len)
{
    char res[32];
    int rc = sq_text(db, path, "SELECT count(*) FROM sqlite_master WHERE type = 'table'", res,
                     sizeof(res), err, err_len);
    if (rc == 0)
        *n = strtoll(res, NULL, 10);
    return rc;
}

static int sq_meta_get(sqlite3 *db, const char *path, const char *key, int64_t *value, bool *found,
                       char *err, size_t err_len)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = ?1", -1, &st, NULL);
    if (rc != SQLITE_OK) {
        /* Tables but no meta table: some other database. */
        sqlite3_finalize(st);
        return store_fail_buf(err, err_len, -EPROTO,
                              "%s: not a paxos-shm store (no meta table: %s)", path,
                              sqlite3_errmsg(db));
    }
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    *found = rc == SQLITE_ROW;
    if (rc == SQLITE_ROW)
        *value = sqlite3_column_int64(st, 0);
    int code = 0;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        code = store_sq_fail(err, err_len, db, path, "reading meta", rc);
    sqlite3_finalize(st);
    return code;
}

static int sq_meta_create(sqlite3 *db, const char *path, int64_t version,
                          const struct store_sq_kv *kv, int pairs, char *err, size_t err_len)
{
    char sql[256];
    int rc = store_sq_exec(db, path,
                           "CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL)"
                           " WITHOUT ROWID",
                           err, err_len);
    snprintf(sql, sizeof(sql), "INSERT INTO meta VALUES('layout_version', %lld)",
             (long long)version);
    if (rc == 0)
        rc = store_sq_exec(db, path, sql, err, err_len);
    for (int i = 0; rc == 0 && i < pairs; i++) {
        snprintf(sql, sizeof(sql), "INSERT INTO meta VALUES('%s', %lld)", kv[i].key,
                 (long long)kv[i].value);
        rc = store_sq_exec(db, path, sql, err, err_len);
    }
    return rc;
}

int store_sq_meta(sqlite3 *db, const char *path, struct store_sq_layout layout,
                  const struct store_sq_kv *kv, int pairs, bool *fresh, int64_t *version, char *err,
                  size_t err_len)
{
    int64_t tables = 0, v = 0;
    bool found = false;
    int rc = sq_count_tables(db, path, &tables, err, err_len);
    *fresh = rc == 0 && tables == 0;
    *version = layout.version;
    if (rc != 0 || *fresh)
        return rc != 0 ? rc : sq_meta_create(db, path, layout.version, kv, pairs, err, err_len);
    rc = sq_meta_get(db, path, "layout_version", &v, &found, err, err_len);
    if (rc == 0 && !found)
        return store_fail_buf(err, err_len, -EPROTO,
                              "%s: not a paxos-shm store (no layout version)", path);
    if (rc == 0 && (v < layout.oldest || v > layout.version) && layout.oldest == layout.version)
        return store_fail_buf(err, err_len, -EPROTO,
                              "%s: layout version %lld, this build reads version %lld", path,
                              (long long)v, (long long)layout.version);
    if (rc == 0 && (v < layout.oldest || v > layout.version))
        return store_fail_buf(err, err_len, -EPROTO,
                              "%s: layout version %lld, this build reads versions %lld to %lld",
                              path, (long long)v, (long long)layout.oldest,
                              (long long)layout.version);
    *version = v;
    for (int i = 0; rc == 0 && i < pairs; i++) {
        rc = sq_meta_get(db, path, kv[i].key, &v, &found, err, err_len);
        if (rc == 0 && (!found || v != kv[i].value))
            return store_fail_buf(err, err_len, kv[i].code_if_different,
                                  "%s: the store was made with %s = %lld, opened with %s = %lld",
                                  path, kv[i].key, found ? (long long)v : -1LL, kv[i].key,
                                  (long long)kv[i].value);
    }
    return rc;
}

/* ---- the node store ---- */

static const char *const sq_schema =
    "CREATE TABLE paxos_state(id INTEGER PRIMARY KEY CHECK (id = 1), promised INTEGER NOT NULL,"
    " truncated INTEGER NOT NULL, fib BLOB, crc INTEGER);"
    "CREATE TABLE log(batch INTEGER PRIMARY KEY, kind INTEGER NOT NULL,"
    " first INTEGER NOT NULL, last INTEGER NOT NULL, recs BLOB NOT NULL, crc INTEGER);"
    "INSERT INTO paxos_state VALUES(1, 0, 0, NULL, NULL);";

/* Seeds of the row checksums: a state row's bytes never pass as a log row's. */
#define SQ_SEED_STATE 0x5354u
#define SQ_SEED_LOG   0x4c4fu

static uint32_t sq_word_crc(uint32_t crc, uint64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    return ipc_crc32c(crc, b, sizeof(b));
}

/* The state row's checksum: promised, truncated and the fib bytes (none for a NULL fib). */
static uint32_t sq_state_crc(px_ballot_t promised, px_inst_t truncated, const void *fib,
                             size_t bytes)
{
    uint32_t crc = sq_word_crc(SQ_SEED_STATE, promised);
    crc = sq_word_crc(crc, truncated);
    crc = sq_word_crc(crc, bytes);
    return bytes > 0 ? ipc_crc32c(crc, fib, bytes) : crc;
}

/* A log row's checksum: batch, kind, first, last and the packed records. */
static uint32_t sq_log_crc(int64_t batch, int kind, int64_t first, int64_t last, const void *recs,
                           size_t bytes)
{
    uint32_t crc = sq_word_crc(SQ_SEED_LOG, (uint64_t)batch);
    crc = sq_word_crc(crc, (uint64_t)kind);
    crc = sq_word_crc(crc, (uint64_t)first);
    crc = sq_word_crc(crc, (uint64_t)last);
    crc = sq_word_crc(crc, bytes);
    return bytes > 0 ? ipc_crc32c(crc, recs, bytes) : crc;
}

static int sq_fail(struct store_sq *q, const char *what, int rc)
{
    return store_sq_fail(q->base.err, sizeof(q->base.err), q->db, q->base.name, what, rc);
}

static int sq_prepare(struct store_sq *q, const char *sql, sqlite3_stmt **st)
{
    int rc = sqlite3_prepare_v3(q->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
    return rc == SQLITE_OK ? 0 : sq_fail(q, "prepare", rc);
}

static int sq_prepare_all(struct store_sq *q)
{
    int rc = sq_prepare(q, "BEGIN", &q->st_begin);
    if (rc == 0)
        rc = sq_prepare(q, "COMMIT", &q->st_commit);
    if (rc == 0)
        rc = sq_prepare(q, "ROLLBACK", &q->st_rollback);
    if (rc == 0)
        rc = sq_prepare(q,
                        "INSERT INTO log(batch, kind, first, last, recs, crc)"
                        " VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
                        &q->st_log);
    if (rc == 0)
        rc = sq_prepare(q, "DELETE FROM log WHERE last <= ?1", &q->st_del);
    if (rc == 0)
        rc = sq_prepare(q,
                        "UPDATE paxos_state SET promised = ?1, truncated = ?2, fib = ?3, crc = ?4",
                        &q->st_state);
    return rc;
}

/* Steps a statement that returns no rows and resets it. */
static int sq_step(struct store_sq *q, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    int code = rc == SQLITE_DONE ? 0 : sq_fail(q, what, rc);
    sqlite3_reset(st);
    return code;
}

/* Reads the state row into q; check_crc: its checksum must match (layout 4). *crc_out (may be
 * NULL) gets the checksum the row should have. */
static int sq_read_state(struct store_sq *q, bool check_crc, uint32_t *crc_out)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(q->db, "SELECT promised, truncated, fib, crc FROM paxos_state", -1,
                                &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        int code = rc == SQLITE_DONE ? store_fail(&q->base, -EBADMSG, "paxos_state row missing")
                                     : sq_fail(q, "reading paxos_state", rc);
        sqlite3_finalize(st);
        return code;
    }
    q->promised = (px_ballot_t)sqlite3_column_int64(st, 0);
    q->truncated = (px_inst_t)sqlite3_column_int64(st, 1);
    const void *blob = sqlite3_column_blob(st, 2);
    int bytes = sqlite3_column_bytes(st, 2);
    int code = 0;
    if (blob != NULL && bytes == (int)sizeof(q->fib))
        memcpy(&q->fib, blob, sizeof(q->fib));
    else if (blob != NULL || sqlite3_column_type(st, 2) != SQLITE_NULL)
        code = store_fail(&q->base, -EBADMSG, "fib snapshot is %d bytes, expected %zu", bytes,
                          sizeof(q->fib));
    uint32_t want = sq_state_crc(q->promised, q->truncated, blob, blob != NULL ? (size_t)bytes : 0);
    if (code == 0 && check_crc && sqlite3_column_type(st, 3) == SQLITE_NULL)
        code = store_fail(&q->base, -EBADMSG,
                          "row paxos_state has no checksum (changed outside paxos-shm)");
    else if (code == 0 && check_crc && (uint32_t)sqlite3_column_int64(st, 3) != want)
        code = store_fail(&q->base, -EBADMSG,
                          "row paxos_state (promised ballot, truncation point, state machine"
                          " snapshot): checksum mismatch, the row was damaged or changed outside"
                          " paxos-shm");
    if (crc_out != NULL)
        *crc_out = want;
    sqlite3_finalize(st);
    return code;
}

/* Gives every log row of a file of an older layout its checksum (the column was just added):
 * the (batch, crc) pairs are gathered first, then written, so no row is updated under a scan. */
static int sq_checksum_log(struct store_sq *q)
{
    sqlite3_stmt *st = NULL, *up = NULL;
    int64_t(*pairs)[2] = NULL;
    size_t len = 0, cap = 0;
    int rc =
        sqlite3_prepare_v2(q->db, "SELECT batch, kind, first, last, recs FROM log", -1, &st, NULL);
    int code = rc == SQLITE_OK ? 0 : sq_fail(q, "reading the log", rc);
    while (code == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (len == cap) {
            size_t want = cap ? cap * 2 : 256;
            int64_t(*grown)[2] = realloc(pairs, want * sizeof(*grown));
            if (grown == NULL) {
                code = store_fail(&q->base, -ENOMEM, "out of memory checksumming the log");
                break;
            }
            pairs = grown;
            cap = want;
        }
        pairs[len][0] = sqlite3_column_int64(st, 0);
        pairs[len][1] = sq_log_crc(pairs[len][0], sqlite3_column_int(st, 1),
                                   sqlite3_column_int64(st, 2), sqlite3_column_int64(st, 3),
                                   sqlite3_column_blob(st, 4), (size_t)sqlite3_column_bytes(st, 4));
        len++;
    }
    if (code == 0 && rc != SQLITE_DONE)
        code = sq_fail(q, "reading the log", rc);
    sqlite3_finalize(st);
    if (code == 0) {
        rc = sqlite3_prepare_v2(q->db, "UPDATE log SET crc = ?2 WHERE batch = ?1", -1, &up, NULL);
        code = rc == SQLITE_OK ? 0 : sq_fail(q, "checksumming the log", rc);
    }
    for (size_t i = 0; code == 0 && i < len; i++) {
        sqlite3_bind_int64(up, 1, pairs[i][0]);
        sqlite3_bind_int64(up, 2, pairs[i][1]);
        rc = sqlite3_step(up);
        code = rc == SQLITE_DONE ? 0 : sq_fail(q, "checksumming the log", rc);
        sqlite3_reset(up);
    }
    sqlite3_finalize(up);
    free(pairs);
    return code;
}

int store_sq_meta_set(sqlite3 *db, const char *path, const char *key, int64_t value, char *err,
                      size_t err_len)
{
    char sql[128];
    snprintf(sql, sizeof(sql), "INSERT OR REPLACE INTO meta VALUES('%s', %lld)", key,
             (long long)value);
    return store_sq_exec(db, path, sql, err, err_len);
}

static int sq_meta_set(struct store_sq *q, const char *key, int64_t value)
{
    return store_sq_meta_set(q->db, q->base.name, key, value, q->base.err, sizeof(q->base.err));
}

/* The checksum the state row of a file of 2 or 3 gets: its fib bytes as they are (layout 5's
 * size, the value first; sq_strip_value takes it out after). */
static int sq_old_state_crc(struct store_sq *q, uint32_t *crc)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(q->db, "SELECT promised, truncated, fib FROM paxos_state", -1, &st,
                                NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        int code = rc == SQLITE_DONE ? store_fail(&q->base, -EBADMSG, "paxos_state row missing")
                                     : sq_fail(q, "reading paxos_state", rc);
        sqlite3_finalize(st);
        return code;
    }
    const void *blob = sqlite3_column_blob(st, 2);
    int bytes = sqlite3_column_bytes(st, 2);
    *crc = sq_state_crc((px_ballot_t)sqlite3_column_int64(st, 0),
                        (px_inst_t)sqlite3_column_int64(st, 1), blob,
                        blob != NULL ? (size_t)bytes : 0);
    sqlite3_finalize(st);
    return 0;
}

/* Layout 2 or 3 -> 4: the crc columns and the checksums of the rows already there. */
static int sq_add_checksums(struct store_sq *q)
{
    char *err = q->base.err;
    size_t len = sizeof(q->base.err);
    int rc = store_sq_exec(q->db, q->base.name,
                           "ALTER TABLE paxos_state ADD COLUMN crc INTEGER;"
                           "ALTER TABLE log ADD COLUMN crc INTEGER",
                           err, len);
    uint32_t crc = 0;
    if (rc == 0)
        rc = sq_old_state_crc(q, &crc);
    char sql[96];
    snprintf(sql, sizeof(sql), "UPDATE paxos_state SET crc = %lld", (long long)crc);
    if (rc == 0)
        rc = store_sq_exec(q->db, q->base.name, sql, err, len);
    if (rc == 0)
        rc = sq_checksum_log(q);
    return rc;
}

/* A file of an older layout -> this one: 2 or 3 gain the checksums (4); 4 -> 5 changes no row (a
 * layout-4 record never has PX_VALUE_PAYLOAD: client ids were below 2^31), only the version. */
static int sq_put_sm(struct store *s, const struct store_sm_snap *h, const void *bytes, size_t len);
static uint32_t sq_sm_head_crc_of(const struct store_sm_snap *h, const void *fib, size_t fib_len,
                                  uint64_t len, uint64_t parts);

/* Layout 6: the core's state of a file made by 5 or older holds the Fibonacci value first. */
#define SQ_OLD_FIB_BYTES (sizeof(struct px_history) + 8u)

/* The state machine's snapshot row of a file of 5 or older: its core state loses the value, its
 * checksum is checked as it was and made anew. 0 without the table or the row. */
static int sq_strip_sm_value(struct store_sq *q, bool *had)
{
    *had = false;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(q->db,
                           "SELECT idx, cmd_digest, applied, fib, len, parts, crc FROM sm_state"
                           " WHERE id = 1",
                           -1, &st, NULL) != SQLITE_OK) {
        sqlite3_finalize(st);
        return 0; /* no table */
    }
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_finalize(st);
        return rc == SQLITE_DONE ? 0 : sq_fail(q, "reading sm_state", rc);
    }
    *had = true;
    struct store_sm_snap h = {.index = (px_inst_t)sqlite3_column_int64(st, 0),
                              .cmd_digest = (uint64_t)sqlite3_column_int64(st, 1),
                              .applied = (uint64_t)sqlite3_column_int64(st, 2)};
    unsigned char old[SQ_OLD_FIB_BYTES];
    int code = 0;
    if (sqlite3_column_bytes(st, 3) != (int)sizeof(old))
        code = store_fail(&q->base, -EBADMSG,
                          "row sm_state: the core's state is %d bytes, expected %zu (layout 5)",
                          sqlite3_column_bytes(st, 3), sizeof(old));
    else
        memcpy(old, sqlite3_column_blob(st, 3), sizeof(old));
    uint64_t len = (uint64_t)sqlite3_column_int64(st, 4);
    uint64_t parts = (uint64_t)sqlite3_column_int64(st, 5);
    uint32_t want = (uint32_t)sqlite3_column_int64(st, 6);
    sqlite3_finalize(st);
    if (code != 0)
        return code;
    memcpy(&h.fib, old + 8, sizeof(h.fib));
    uint32_t crc_old = sq_sm_head_crc_of(&h, old, sizeof(old), len, parts);
    uint32_t crc_new = sq_sm_head_crc_of(&h, &h.fib, sizeof(h.fib), len, parts);
    rc = sqlite3_prepare_v2(q->db, "SELECT bytes FROM sm_part ORDER BY part", -1, &st, NULL);
    code = rc == SQLITE_OK ? 0 : sq_fail(q, "reading sm_part", rc);
    while (code == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const void *b = sqlite3_column_blob(st, 0);
        size_t n = (size_t)sqlite3_column_bytes(st, 0);
        crc_old = ipc_crc32c(crc_old, b, n);
        crc_new = ipc_crc32c(crc_new, b, n);
    }
    if (code == 0 && rc != SQLITE_DONE)
        code = sq_fail(q, "reading sm_part", rc);
    sqlite3_finalize(st);
    if (code == 0 && crc_old != want)
        code =
            store_fail(&q->base, -EBADMSG,
                       "the state machine's snapshot (layout 5): checksum mismatch, the rows were"
                       " damaged or changed outside paxos-shm");
    if (code != 0)
        return code;
    rc = sqlite3_prepare_v2(q->db, "UPDATE sm_state SET fib = ?1, crc = ?2 WHERE id = 1", -1, &st,
                            NULL);
    code = rc == SQLITE_OK ? 0 : sq_fail(q, "updating sm_state", rc);
    if (code == 0) {
        sqlite3_bind_blob(st, 1, &h.fib, (int)sizeof(h.fib), SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, crc_new);
        rc = sqlite3_step(st);
        code = rc == SQLITE_DONE ? 0 : sq_fail(q, "updating sm_state", rc);
    }
    sqlite3_finalize(st);
    return code;
}

/* Layout 5 (or older, with its checksums just added) to 6: the state row's value goes, checked
 * under the old checksum; a main job's store keeps it as its state machine's snapshot. */
static int sq_strip_value(struct store_sq *q, bool job)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(q->db, "SELECT promised, truncated, fib, crc FROM paxos_state", -1,
                                &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        int code = rc == SQLITE_DONE ? store_fail(&q->base, -EBADMSG, "paxos_state row missing")
                                     : sq_fail(q, "reading paxos_state", rc);
        sqlite3_finalize(st);
        return code;
    }
    px_ballot_t promised = (px_ballot_t)sqlite3_column_int64(st, 0);
    px_inst_t truncated = (px_inst_t)sqlite3_column_int64(st, 1);
    int bytes = sqlite3_column_bytes(st, 2);
    unsigned char old[SQ_OLD_FIB_BYTES];
    bool null = sqlite3_column_type(st, 2) == SQLITE_NULL;
    int code = 0;
    if (!null && bytes != (int)sizeof(old))
        code = store_fail(&q->base, -EBADMSG, "fib snapshot is %d bytes, expected %zu (layout 5)",
                          bytes, sizeof(old));
    else if (!null)
        memcpy(old, sqlite3_column_blob(st, 2), sizeof(old));
    if (code == 0 &&
        (uint32_t)sqlite3_column_int64(st, 3) !=
            sq_state_crc(promised, truncated, null ? NULL : old, null ? 0 : sizeof(old)))
        code = store_fail(&q->base, -EBADMSG,
                          "row paxos_state (layout 5): checksum mismatch, the row was damaged or"
                          " changed outside paxos-shm");
    sqlite3_finalize(st);
    if (code != 0 || null)
        return code;
    struct px_history hist;
    memcpy(&hist, old + 8, sizeof(hist));
    rc = sqlite3_prepare_v2(q->db, "UPDATE paxos_state SET fib = ?1, crc = ?2", -1, &st, NULL);
    code = rc == SQLITE_OK ? 0 : sq_fail(q, "updating paxos_state", rc);
    if (code == 0) {
        sqlite3_bind_blob(st, 1, &hist, (int)sizeof(hist), SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, sq_state_crc(promised, truncated, &hist, sizeof(hist)));
        rc = sqlite3_step(st);
        code = rc == SQLITE_DONE ? 0 : sq_fail(q, "updating paxos_state", rc);
    }
    sqlite3_finalize(st);
    bool had_sm = false;
    if (code == 0)
        code = sq_strip_sm_value(q, &had_sm);
    if (code == 0 && job && !had_sm && hist.applied > 0) {
        /* The main job's state machine stands where the core applied; its own digest of the
         * commands starts here (the old store kept none). */
        const struct store_sm_snap h = {
            .index = hist.applied, .cmd_digest = 0, .applied = hist.requests, .fib = hist};
        uint64_t value;
        memcpy(&value, old, sizeof(value)); /* the row's bytes are the struct's, host order */
        unsigned char le[8];
        for (int i = 0; i < 8; i++)
            le[i] = (unsigned char)(value >> (8 * i));
        code = sq_put_sm(&q->base, &h, le, sizeof(le)); /* cli/fib_sm.h: 8 bytes little endian */
    }
    return code;
}

static int sq_upgrade(struct store_sq *q, int64_t from, bool job)
{
    int rc = from < 4 ? sq_add_checksums(q) : 0;
    if (rc == 0 && from < 6)
        rc = sq_strip_value(q, job);
    if (rc == 0 && from < 6)
        rc = sq_meta_set(q, "fib_bytes", (int64_t)sizeof(struct px_history));
    /* Its snapshots' command digests were chained with three mixes per command: the nodes of
     * this pool go on that way, or learners restored from snapshots at different indexes would
     * hold different digests of the same commands (store_sm_digest_version). */
    if (rc == 0 && from < 6)
        rc = sq_meta_set(q, "sm_digest", 1);
    if (rc == 0)
        rc = sq_meta_set(q, "layout_version", STORE_SQ_NODE_LAYOUT_VERSION);
    return rc;
}

/* The identity stamps (store.h: struct store_params): a store of another pool is -EXDEV, one
 * last opened by a later run than p->epoch is -ESTALE; a store without a pool id (new, or made
 * by a build that kept none) takes p's; the epoch is raised to p's. */
static int sq_stamp(struct store_sq *q, const struct store_params *p)
{
    bool found = false;
    int64_t v = 0;
    int rc =
        sq_meta_get(q->db, q->base.name, "pool_id", &v, &found, q->base.err, sizeof(q->base.err));
    if (rc != 0)
        return rc;
    q->pool_id = found ? v : 0;
    rc = sq_meta_get(q->db, q->base.name, "epoch", &v, &found, q->base.err, sizeof(q->base.err));
    if (rc != 0)
        return rc;
    q->epoch = found ? v : 0;
    if (p->pool_id != 0 && q->pool_id != 0 && q->pool_id != p->pool_id)
        return store_fail(&q->base, -EXDEV,
                          "belongs to another pool (pool id %016llx; this data directory's pool is"
                          " %016llx)",
                          (unsigned long long)q->pool_id, (unsigned long long)p->pool_id);
    if (p->epoch != 0 && q->epoch > p->epoch)
        return store_fail(&q->base, -ESTALE,
                          "last used by run %lld, later than this run (%lld): the registry is"
                          " older than the store",
                          (long long)q->epoch, (long long)p->epoch);
    if (p->pool_id != 0 && q->pool_id == 0) {
        rc = sq_meta_set(q, "pool_id", p->pool_id);
        q->pool_id = p->pool_id;
    }
    if (rc == 0 && p->epoch > q->epoch) {
        rc = sq_meta_set(q, "epoch", p->epoch);
        q->epoch = p->epoch;
    }
    return rc;
}

/* The next batch id and the highest instance of the log. */
static int sq_read_log_ends(struct store_sq *q)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(
        q->db, "SELECT coalesce(max(batch), 0), coalesce(max(last), 0) FROM log", -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    int code = rc == SQLITE_ROW ? 0 : sq_fail(q, "reading the log", rc);
    if (code == 0) {
        q->next_batch = sqlite3_column_int64(st, 0) + 1;
        q->log_last = (px_inst_t)sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    return code;
}

/* Checks meta (pool size, node id, px_history size, identity) and creates the tables of a new file
 * or brings an older layout's to this one, in one write transaction. */
static int sq_setup(struct store_sq *q, const struct store_params *p)
{
    /* A file of layout 5 or older holds the core's state with the value (sq_strip_value). */
    int64_t tables = 0, had = 0;
    bool found = false;
    if (sq_count_tables(q->db, q->base.name, &tables, q->base.err, sizeof(q->base.err)) == 0 &&
        tables > 0)
        (void)sq_meta_get(q->db, q->base.name, "layout_version", &had, &found, q->base.err,
                          sizeof(q->base.err)); /* a failure here is store_sq_meta's to say */
    q->base.err[0] = '\0';
    const struct store_sq_kv kv[] = {
        {"nodes", p->nodes, -EINVAL},
        {"node_id", p->node_id, -EINVAL},
        {"fib_bytes", (int64_t)(found && had < 6 ? SQ_OLD_FIB_BYTES : sizeof(struct px_history)),
         -EPROTO},
    };
    char *err = q->base.err;
    size_t len = sizeof(q->base.err);
    const struct store_sq_layout layout = {STORE_SQ_NODE_LAYOUT_VERSION,
                                           STORE_SQ_NODE_LAYOUT_OLDEST};
    bool fresh = false;
    int64_t version = 0;
    int rc = store_sq_exec(q->db, q->base.name, "BEGIN IMMEDIATE", err, len);
    if (rc != 0)
        return rc;
    rc = store_sq_meta(q->db, q->base.name, layout, kv, 3, &fresh, &version, err, len);
    if (rc == 0 && fresh)
        rc = store_sq_exec(q->db, q->base.name, sq_schema, err, len);
    if (rc == 0 && fresh) {
        char sql[96];
        snprintf(sql, sizeof(sql), "UPDATE paxos_state SET crc = %lld",
                 (long long)sq_state_crc(0, 0, NULL, 0));
        rc = store_sq_exec(q->db, q->base.name, sql, err, len);
    }
    /* An older file keeps its rows (read in their layout), gains their checksums and gets rows
     * of this one. */
    if (rc == 0 && version != STORE_SQ_NODE_LAYOUT_VERSION)
        rc = sq_upgrade(q, version, p->job);
    if (rc == 0)
        rc = sq_stamp(q, p);
    if (rc == 0)
        rc = store_sq_exec(q->db, q->base.name, "COMMIT", err, len);
    if (rc != 0 && !sqlite3_get_autocommit(q->db))
        sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
    if (rc == 0) {
        int64_t v = 0;
        found = false;
        rc = sq_meta_get(q->db, q->base.name, "sm_digest", &v, &found, q->base.err,
                         sizeof(q->base.err));
        q->base.sm_digest = found && v == 1 ? 1 : 0;
    }
    if (rc == 0)
        rc = sq_read_state(q, true, NULL);
    if (rc == 0)
        rc = sq_read_log_ends(q);
    if (rc == 0)
        rc = sq_prepare_all(q);
    return rc;
}

static void sq_close(struct store *s)
{
    struct store_sq *q = sq_of(s);
    if (q->db != NULL && !sqlite3_get_autocommit(q->db))
        sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL); /* discard the open batch */
    /* A store broken by a failed write leaves its WAL as it is for the next open's recovery. */
    if (q->db != NULL && q->base.failed != 0)
        sqlite3_db_config(q->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
    sqlite3_stmt *all[] = {q->st_begin, q->st_commit,   q->st_rollback, q->st_log,     q->st_del,
                           q->st_state, q->st_sm_clear, q->st_sm_part,  q->st_sm_state};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
        sqlite3_finalize(all[i]);
    sqlite3_close(q->db);
    free(q->buf[0].bytes);
    free(q->buf[1].bytes);
    free(q->sm_wpart);
    free(q);
}

/* One loaded record: its place in commit order decides which ACCEPTED of an instance wins. A
 * record with a command names where its bytes are (read when it is handed out). */
struct sq_loaded {
    struct px_rec rec;
    uint64_t order;
    int64_t row;               /* the log row (batch) holding its command bytes */
    uint32_t cmd_off, cmd_len; /* the bytes' offset in that row's recs, and their length */
};

static int sq_loaded_cmp(const void *pa, const void *pb)
{
    const struct sq_loaded *a = pa, *b = pb;
    if (a->rec.instance != b->rec.instance)
        return a->rec.instance < b->rec.instance ? -1 : 1;
    if (a->rec.type != b->rec.type)
        return a->rec.type == PX_REC_ACCEPTED ? -1 : 1; /* ACCEPTED before DECIDED */
    return a->order < b->order ? -1 : a->order > b->order;
}

/* The records loaded so far (a growing array). */
struct sq_load_acc {
    struct sq_loaded *all;
    size_t len, cap;
};

/* Where a loaded record's command bytes are: row 0 for a record without a command. */
struct sq_cmd_at {
    int64_t row;
    uint32_t off, len;
};

/* Appends one record above the truncation point to acc. */
static int sq_load_add(struct store_sq *q, struct sq_load_acc *acc, const struct sq_packed *rec,
                       bool accepted, struct sq_cmd_at at)
{
    if (rec->instance <= q->truncated)
        return 0;
    if (acc->len == acc->cap) {
        size_t want = acc->cap ? acc->cap * 2 : 1024;
        struct sq_loaded *grown = realloc(acc->all, want * sizeof(*grown));
        if (grown == NULL)
            return store_fail(&q->base, -ENOMEM, "out of memory loading the log");
        acc->all = grown;
        acc->cap = want;
    }
    struct sq_loaded *l = &acc->all[acc->len++];
    memset(l, 0, sizeof(*l));
    l->rec.type = accepted ? PX_REC_ACCEPTED : PX_REC_DECIDED;
    l->rec.instance = rec->instance;
    l->rec.ballot = accepted ? rec->ballot : 0;
    l->rec.value.word = rec->word;
    l->rec.value.client_id = rec->client_id;
    l->rec.value.seq = rec->seq;
    l->order = acc->len;
    l->row = at.row;
    l->cmd_off = at.off;
    l->cmd_len = at.len;
    return 0;
}

/* Appends the records of one log row (either layout) above the truncation point to acc. */
static int sq_load_row(struct store_sq *q, sqlite3_stmt *st, struct sq_load_acc *acc)
{
    int kind = sqlite3_column_int(st, 0);
    const unsigned char *p = sqlite3_column_blob(st, 1);
    int bytes = sqlite3_column_bytes(st, 1);
    bool v2 = kind == SQ_KIND_ACCEPTED_V2 || kind == SQ_KIND_DECIDED_V2;
    bool accepted = kind == SQ_KIND_ACCEPTED_V2 || kind == SQ_KIND_ACCEPTED;
    int64_t batch = sqlite3_column_int64(st, 2);
    uint32_t want = sq_log_crc(batch, kind, sqlite3_column_int64(st, 3),
                               sqlite3_column_int64(st, 4), p, p != NULL ? (size_t)bytes : 0);
    if (sqlite3_column_type(st, 5) == SQLITE_NULL || (uint32_t)sqlite3_column_int64(st, 5) != want)
        return store_fail(&q->base, -EBADMSG,
                          "row %lld of table log (instances %lld..%lld): checksum %s, the row was"
                          " damaged or changed outside paxos-shm",
                          (long long)batch, (long long)sqlite3_column_int64(st, 3),
                          (long long)sqlite3_column_int64(st, 4),
                          sqlite3_column_type(st, 5) == SQLITE_NULL ? "missing" : "mismatch");
    if ((!v2 && kind != SQ_KIND_ACCEPTED && kind != SQ_KIND_DECIDED) || bytes <= 0 || p == NULL ||
        (v2 && bytes % (int)sizeof(struct sq_packed) != 0))
        return store_fail(&q->base, -EBADMSG, "log row of kind %d with %d bytes", kind, bytes);
    const unsigned char *at = p, *end = p + bytes;
    struct sq_packed prev = {0}, rec;
    int rc = 0;
    while (rc == 0 && at < end) {
        struct sq_cmd_at cmd = {0, 0, 0};
        if (v2) {
            memcpy(&rec, at, sizeof(rec));
            at += sizeof(rec);
        } else if (!sq_dec_rec(&at, end, &prev, &rec, accepted)) {
            return store_fail(&q->base, -EBADMSG, "log row of kind %d: record at byte %td is cut",
                              kind, at - p);
        }
        if ((rec.client_id & PX_VALUE_PAYLOAD) != 0) {
            uint64_t len = 0;
            bool has_len = !v2 && sq_get_varint(&at, end, &len);
            if (!has_len || len > CMD_BYTES_MAX || len > (uint64_t)(end - at)) {
                const char *why = v2                    ? "is in a layout-2 row, which holds none"
                                  : !has_len            ? "has no length"
                                  : len > CMD_BYTES_MAX ? "is longer than CMD_BYTES_MAX"
                                                        : "runs past the end of the row";
                return store_fail(&q->base, -EBADMSG,
                                  "row %lld of table log (instances %lld..%lld): the command of"
                                  " instance %llu %s (length %llu, %td bytes left)",
                                  (long long)batch, (long long)sqlite3_column_int64(st, 3),
                                  (long long)sqlite3_column_int64(st, 4),
                                  (unsigned long long)rec.instance, why, (unsigned long long)len,
                                  end - at);
            }
            cmd = (struct sq_cmd_at){batch, (uint32_t)(at - p), (uint32_t)len};
            at += len;
        }
        prev = rec;
        rc = sq_load_add(q, acc, &rec, accepted, cmd);
    }
    return rc;
}

/* Reads the command bytes of loaded records from their log rows, one at a time. */
struct sq_cmd_reader {
    sqlite3_blob *blob; /* open on row `row`, or NULL */
    int64_t row;
    unsigned char *buf;
    size_t cap;
};

/* Where a zero-length command points: a record with a command always gets a non-NULL cmd. */
static const unsigned char sq_no_bytes[1];

/* Reads l's command bytes into rd->buf (grown as needed); *out points at them. */
static int sq_read_cmd(struct store_sq *q, struct sq_cmd_reader *rd, const struct sq_loaded *l,
                       const void **out)
{
    *out = sq_no_bytes;
    if (l->cmd_len == 0)
        return 0;
    int rc = SQLITE_OK;
    if (rd->blob == NULL)
        rc = sqlite3_blob_open(q->db, "main", "log", "recs", l->row, 0, &rd->blob);
    else if (rd->row != l->row)
        rc = sqlite3_blob_reopen(rd->blob, l->row);
    if (rc != SQLITE_OK)
        return sq_fail(q, "opening a log row to read a command", rc);
    rd->row = l->row;
    if (l->cmd_len > rd->cap) {
        unsigned char *grown = realloc(rd->buf, l->cmd_len);
        if (grown == NULL)
            return store_fail(&q->base, -ENOMEM, "out of memory for a command of %u bytes",
                              (unsigned)l->cmd_len);
        rd->buf = grown;
        rd->cap = l->cmd_len;
    }
    rc = sqlite3_blob_read(rd->blob, rd->buf, (int)l->cmd_len, (int)l->cmd_off);
    if (rc != SQLITE_OK)
        return sq_fail(q, "reading a command from the log", rc);
    *out = rd->buf;
    return 0;
}

/* Emits, in instance order, the last ACCEPTED and the last DECIDED of every instance, each with
 * its command's bytes. */
static int sq_emit(struct store_sq *q, struct sq_loaded *all, size_t len, store_each_fn each,
                   void *ctx)
{
    if (len == 0)
        return 0; /* all is NULL: qsort must not see it */
    qsort(all, len, sizeof(*all), sq_loaded_cmp);
    struct sq_cmd_reader rd = {0};
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < len; i++) {
        bool last_of_group = i + 1 == len || all[i + 1].rec.instance != all[i].rec.instance ||
                             all[i + 1].rec.type != all[i].rec.type;
        if (!last_of_group)
            continue;
        const void *cmd = NULL;
        uint32_t cmd_len = 0;
        if (cmd_has_payload(&all[i].rec.value)) {
            rc = sq_read_cmd(q, &rd, &all[i], &cmd);
            cmd_len = all[i].cmd_len;
        }
        if (rc == 0)
            each(ctx, &all[i].rec, cmd, cmd_len);
    }
    sqlite3_blob_close(rd.blob);
    free(rd.buf);
    return rc;
}

static int sq_load(struct store *s, struct px_durable *d, store_each_fn each, void *ctx)
{
    struct store_sq *q = sq_of(s);
    sqlite3_stmt *st = NULL;
    int rc = sq_read_state(q, true, NULL);
    if (rc != 0)
        return rc;
    d->promised = q->promised;
    d->fib = q->fib;
    if (each == NULL)
        return 0;
    rc = sq_prepare(q, "SELECT kind, recs, batch, first, last, crc FROM log ORDER BY batch", &st);
    struct sq_load_acc acc = {0};
    int step = SQLITE_DONE;
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW)
        rc = sq_load_row(q, st, &acc);
    if (rc == 0 && step != SQLITE_DONE)
        rc = sq_fail(q, "reading the log", step);
    sqlite3_finalize(st);
    if (rc == 0) {
        store_emit_truncate(q->truncated, each, ctx);
        rc = sq_emit(q, acc.all, acc.len, each, ctx);
    }
    free(acc.all);
    return rc;
}

static int sq_begin(struct store *s)
{
    struct store_sq *q = sq_of(s);
    q->state_dirty = false;
    for (int k = 0; k < 2; k++)
        sq_buf_end(&q->buf[k]);
    return sq_step(q, q->st_begin, "begin");
}

/* The longest recs blob of one log row: what sqlite takes in one row (SQLITE_LIMIT_LENGTH) less
 * the room of the other columns. */
static size_t sq_row_max(struct store_sq *q)
{
    int limit = sqlite3_limit(q->db, SQLITE_LIMIT_LENGTH, -1);
    return limit > SQ_ROW_OVERHEAD ? (size_t)limit - SQ_ROW_OVERHEAD : 0;
}

static int sq_write_buf(struct store_sq *q, int kind, struct sq_buf *b);

static int sq_put_entry(struct store_sq *q, const struct px_rec *r, const void *cmd,
                        uint32_t cmd_len)
{
    bool accepted = r->type == PX_REC_ACCEPTED;
    int kind = accepted ? SQ_KIND_ACCEPTED : SQ_KIND_DECIDED;
    struct sq_buf *b = &q->buf[accepted ? 0 : 1];
    bool has_cmd = cmd_has_payload(&r->value);
    size_t need = SQ_REC_BYTES_MAX + (has_cmd ? SQ_VARINT_MAX + (size_t)cmd_len : 0);
    size_t row_max = sq_row_max(q);
    if (need > row_max)
        return store_fail(&q->base, -EMSGSIZE,
                          "the command of instance %llu (%u bytes) does not fit in one log row"
                          " (sqlite takes %zu bytes per row: SQLITE_LIMIT_LENGTH)",
                          (unsigned long long)r->instance, (unsigned)cmd_len,
                          row_max + SQ_ROW_OVERHEAD);
    /* This kind's records so far would make a row longer than sqlite takes: they become one row
     * now (in the batch's transaction), the rest the next. */
    if (b->count > 0 && b->len + need > row_max) {
        int rc = sq_write_buf(q, kind, b);
        if (rc != 0)
            return rc;
    }
    if (b->cap - b->len < need) {
        size_t want = b->cap ? b->cap * 2 : 16 * 1024;
        if (want < b->len + need)
            want = b->len + need;
        unsigned char *grown = realloc(b->bytes, want);
        if (grown == NULL)
            return store_fail(&q->base, -ENOMEM, "out of memory for the batch (%zu bytes)", want);
        b->bytes = grown;
        b->cap = want;
    }
    if (b->count == 0 || r->instance < b->first)
        b->first = r->instance;
    if (b->count == 0 || r->instance > b->last)
        b->last = r->instance;
    struct sq_packed rec = {
        .instance = r->instance,
        .ballot = accepted ? r->ballot : 0,
        .word = r->value.word,
        .client_id = r->value.client_id,
        .seq = r->value.seq,
    };
    b->len += sq_enc_rec(b->bytes + b->len, &b->prev, &rec, accepted);
    if (has_cmd) {
        b->len += sq_put_varint(b->bytes + b->len, cmd_len);
        if (cmd_len > 0)
            memcpy(b->bytes + b->len, cmd, cmd_len);
        b->len += cmd_len;
    }
    b->prev = rec;
    b->count++;
    return 0;
}

static int sq_truncate(struct store_sq *q, px_inst_t upto)
{
    if (upto <= q->truncated)
        return 0;
    q->truncated = upto;
    q->state_dirty = true;
    sqlite3_bind_int64(q->st_del, 1, (int64_t)upto);
    return sq_step(q, q->st_del, "truncate the log");
}

static int sq_put(struct store *s, const struct px_rec *r)
{
    struct store_sq *q = sq_of(s);
    switch (r->type) {
    case PX_REC_PROMISE:
        q->promised = r->ballot;
        q->state_dirty = true;
        return 0;
    case PX_REC_ACCEPTED:
    case PX_REC_DECIDED:
        return r->instance <= q->truncated ? 0 : sq_put_entry(q, r, NULL, 0);
    case PX_REC_TRUNCATE:
        return sq_truncate(q, r->instance);
    }
    STORE_ASSERT(!"unknown record type");
    return -EINVAL;
}

static int sq_put_cmd(struct store *s, const struct px_rec *r, const void *cmd, uint32_t cmd_len)
{
    struct store_sq *q = sq_of(s);
    return r->instance <= q->truncated ? 0 : sq_put_entry(q, r, cmd, cmd_len);
}

static int sq_put_fib(struct store *s, const struct px_history *f)
{
    struct store_sq *q = sq_of(s);
    q->fib = *f;
    q->state_dirty = true;
    return 0;
}

/* Writes one kind's records gathered so far as one log row and empties b for the next. */
static int sq_write_buf(struct store_sq *q, int kind, struct sq_buf *b)
{
    if (b->count == 0)
        return 0;
    STORE_ASSERT(b->len <= INT_MAX); /* below sq_row_max when the row was gathered */
    int64_t batch = q->next_batch;
    sqlite3_bind_int64(q->st_log, 1, batch);
    sqlite3_bind_int(q->st_log, 2, kind);
    sqlite3_bind_int64(q->st_log, 3, (int64_t)b->first);
    sqlite3_bind_int64(q->st_log, 4, (int64_t)b->last);
    sqlite3_bind_blob(q->st_log, 5, b->bytes, (int)b->len, SQLITE_STATIC);
    sqlite3_bind_int64(
        q->st_log, 6,
        sq_log_crc(batch, kind, (int64_t)b->first, (int64_t)b->last, b->bytes, b->len));
    int rc = sq_step(q, q->st_log, kind == SQ_KIND_ACCEPTED ? "insert accepted" : "insert decided");
    if (rc == 0)
        q->next_batch++;
    if (rc == 0 && b->last > q->log_last)
        q->log_last = b->last;
    if (rc == 0)
        sq_buf_restart(b);
    return rc;
}

static int sq_commit(struct store *s)
{
    struct store_sq *q = sq_of(s);
    int rc = sq_write_buf(q, SQ_KIND_ACCEPTED, &q->buf[0]);
    if (rc == 0)
        rc = sq_write_buf(q, SQ_KIND_DECIDED, &q->buf[1]);
    if (rc == 0 && q->state_dirty) {
        sqlite3_bind_int64(q->st_state, 1, (int64_t)q->promised);
        sqlite3_bind_int64(q->st_state, 2, (int64_t)q->truncated);
        sqlite3_bind_blob(q->st_state, 3, &q->fib, (int)sizeof(q->fib), SQLITE_STATIC);
        sqlite3_bind_int64(q->st_state, 4,
                           sq_state_crc(q->promised, q->truncated, &q->fib, sizeof(q->fib)));
        rc = sq_step(q, q->st_state, "update paxos_state");
    }
    /* COMMIT writes the batch's frames (and may run a checkpoint); they reach the OS as one
     * write at the flush, before this returns: the reply waits for it (store.h). */
    if (rc == 0) {
        store_sq_wal_hold(q->db);
        rc = sq_step(q, q->st_commit, "commit");
        int flushed = store_sq_wal_flush(q->db);
        if (rc == 0 && flushed != SQLITE_OK)
            rc = store_sq_fail(q->base.err, sizeof(q->base.err), NULL, q->base.name,
                               "commit (writing the WAL)", flushed);
    }
    if (rc != 0 && !sqlite3_get_autocommit(q->db)) {
        sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
        q->sm_ready = false; /* the tables this batch made are gone with it */
    }
    for (int k = 0; k < 2; k++)
        sq_buf_end(&q->buf[k]);
    return rc;
}

/* ---- the state machine's snapshot (store_put_sm_snapshot) ----
 * sm_state(id = 1, idx, cmd_digest, applied, fib, len, parts, crc): where the snapshot stood
 * and how its bytes are split; sm_part(part, bytes): the bytes, parts 0 .. parts - 1, each at
 * most what sqlite takes in one row. crc is the CRC-32C of the state row's other columns and of
 * every part's bytes in order. Both tables are made by the first put (a store of the main job
 * never has them). */
#define SQ_SEED_SM 0x534du

static const char *const sq_sm_schema =
    "CREATE TABLE IF NOT EXISTS sm_state(id INTEGER PRIMARY KEY CHECK (id = 1),"
    " idx INTEGER NOT NULL, cmd_digest INTEGER NOT NULL, applied INTEGER NOT NULL,"
    " fib BLOB NOT NULL, len INTEGER NOT NULL, parts INTEGER NOT NULL, crc INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS sm_part(part INTEGER PRIMARY KEY, bytes BLOB NOT NULL);";

/* The state row's words and the core's state fib[0..fib_len) (h->fib, or a layout-5 file's). */
static uint32_t sq_sm_head_crc_of(const struct store_sm_snap *h, const void *fib, size_t fib_len,
                                  uint64_t len, uint64_t parts)
{
    uint32_t crc = sq_word_crc(SQ_SEED_SM, h->index);
    crc = sq_word_crc(crc, h->cmd_digest);
    crc = sq_word_crc(crc, h->applied);
    crc = ipc_crc32c(crc, fib, fib_len);
    crc = sq_word_crc(crc, len);
    return sq_word_crc(crc, parts);
}

static uint32_t sq_sm_head_crc(const struct store_sm_snap *h, uint64_t len, uint64_t parts)
{
    return sq_sm_head_crc_of(h, &h->fib, sizeof(h->fib), len, parts);
}

/* The snapshot's tables and statements, once per connection (again after a rolled-back batch
 * that made the tables). */
static int sq_sm_prepare(struct store_sq *q)
{
    if (q->sm_ready)
        return 0;
    int rc = store_sq_exec(q->db, q->base.name, sq_sm_schema, q->base.err, sizeof(q->base.err));
    if (rc == 0 && q->st_sm_clear == NULL)
        rc = sq_prepare(q, "DELETE FROM sm_part", &q->st_sm_clear);
    if (rc == 0 && q->st_sm_part == NULL)
        rc = sq_prepare(q, "INSERT INTO sm_part(part, bytes) VALUES(?1, ?2)", &q->st_sm_part);
    if (rc == 0 && q->st_sm_state == NULL)
        rc = sq_prepare(q,
                        "INSERT OR REPLACE INTO sm_state(id, idx, cmd_digest, applied, fib,"
                        " len, parts, crc) VALUES(1, ?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                        &q->st_sm_state);
    q->sm_ready = rc == 0;
    return rc;
}

static int sq_sm_begin(struct store *s)
{
    struct store_sq *q = sq_of(s);
    size_t row_max = sq_row_max(q);
    if (row_max == 0)
        return store_fail(&q->base, -EMSGSIZE, "sqlite takes no row for a snapshot");
    q->sm_wpart_max = row_max < STORE_SM_PART_BYTES ? row_max : STORE_SM_PART_BYTES;
    q->sm_wpart_len = 0;
    q->sm_wparts = q->sm_wlen = 0;
    q->sm_wcrc = 0;
    int rc = sq_sm_prepare(q);
    if (rc == 0)
        rc = sq_step(q, q->st_sm_clear, "clear the last snapshot");
    return rc;
}

static int sq_sm_part_out(struct store_sq *q, const void *bytes, size_t n)
{
    sqlite3_bind_int64(q->st_sm_part, 1, (int64_t)q->sm_wparts);
    sqlite3_bind_blob64(q->st_sm_part, 2, bytes, n, SQLITE_STATIC);
    int rc = sq_step(q, q->st_sm_part, "insert a snapshot part");
    q->sm_wparts += rc == 0;
    return rc;
}

/* Whole parts go straight from the caller's bytes; a part is gathered only across writes. */
static int sq_sm_write(struct store *s, const void *bytes, size_t len)
{
    struct store_sq *q = sq_of(s);
    const uint8_t *p = bytes;
    q->sm_wcrc = ipc_crc32c(q->sm_wcrc, p, len);
    q->sm_wlen += len;
    while (len > 0) {
        if (q->sm_wpart_len == 0 && len >= q->sm_wpart_max) {
            int rc = sq_sm_part_out(q, p, q->sm_wpart_max);
            if (rc != 0)
                return rc;
            p += q->sm_wpart_max;
            len -= q->sm_wpart_max;
            continue;
        }
        if (q->sm_wpart == NULL && (q->sm_wpart = malloc(q->sm_wpart_max)) == NULL)
            return store_fail(&q->base, -ENOMEM, "out of memory for a snapshot part");
        size_t n = q->sm_wpart_max - q->sm_wpart_len;
        if (n > len)
            n = len;
        memcpy(q->sm_wpart + q->sm_wpart_len, p, n);
        q->sm_wpart_len += n;
        p += n;
        len -= n;
        if (q->sm_wpart_len == q->sm_wpart_max) {
            int rc = sq_sm_part_out(q, q->sm_wpart, q->sm_wpart_len);
            q->sm_wpart_len = 0;
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

static int sq_sm_end(struct store *s, const struct store_sm_snap *h)
{
    struct store_sq *q = sq_of(s);
    int rc = q->sm_wpart_len > 0 ? sq_sm_part_out(q, q->sm_wpart, q->sm_wpart_len) : 0;
    q->sm_wpart_len = 0;
    if (q->sm_wpart_max >= STORE_SM_PART_BYTES) {
        free(q->sm_wpart); /* a part of a large state: not kept between snapshots */
        q->sm_wpart = NULL;
    }
    if (rc != 0)
        return rc;
    uint32_t crc =
        ipc_crc32c_shift(sq_sm_head_crc(h, q->sm_wlen, q->sm_wparts), q->sm_wlen) ^ q->sm_wcrc;
    const int64_t v[] = {(int64_t)h->index,   (int64_t)h->cmd_digest, (int64_t)h->applied,
                         (int64_t)q->sm_wlen, (int64_t)q->sm_wparts,  (int64_t)crc};
    for (int i = 0; i < 3; i++)
        sqlite3_bind_int64(q->st_sm_state, i + 1, v[i]);
    sqlite3_bind_blob64(q->st_sm_state, 4, &h->fib, sizeof(h->fib), SQLITE_STATIC);
    for (int i = 3; i < 6; i++)
        sqlite3_bind_int64(q->st_sm_state, i + 2, v[i]);
    return sq_step(q, q->st_sm_state, "write the snapshot");
}

static int sq_put_sm(struct store *s, const struct store_sm_snap *h, const void *bytes, size_t len)
{
    int rc = sq_sm_begin(s);
    if (rc == 0 && len > 0)
        rc = sq_sm_write(s, bytes, len);
    return rc == 0 ? sq_sm_end(s, h) : rc;
}

/* The state row: 0 with *found false when there is none (no table: never a snapshot). */
static int sq_sm_head(struct store_sq *q, struct store_sm_snap *h, uint64_t *len, int64_t *parts,
                      uint32_t *crc, bool *found)
{
    sqlite3_stmt *st = NULL;
    *found = false;
    int rc =
        sqlite3_prepare_v2(q->db,
                           "SELECT idx, cmd_digest, applied, fib, len, parts, crc FROM sm_state"
                           " WHERE id = 1",
                           -1, &st, NULL);
    if (rc != SQLITE_OK) {
        sqlite3_finalize(st);
        return 0;
    }
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        sqlite3_finalize(st);
        return 0;
    }
    if (rc != SQLITE_ROW) {
        int code = sq_fail(q, "reading sm_state", rc);
        sqlite3_finalize(st);
        return code;
    }
    h->index = (px_inst_t)sqlite3_column_int64(st, 0);
    h->cmd_digest = (uint64_t)sqlite3_column_int64(st, 1);
    h->applied = (uint64_t)sqlite3_column_int64(st, 2);
    int code = 0;
    if (sqlite3_column_bytes(st, 3) != (int)sizeof(h->fib))
        code = store_fail(&q->base, -EBADMSG,
                          "row sm_state: the core's state is %d bytes, expected %zu",
                          sqlite3_column_bytes(st, 3), sizeof(h->fib));
    else
        memcpy(&h->fib, sqlite3_column_blob(st, 3), sizeof(h->fib));
    int64_t want_len = sqlite3_column_int64(st, 4);
    *parts = sqlite3_column_int64(st, 5);
    *crc = (uint32_t)sqlite3_column_int64(st, 6);
    sqlite3_finalize(st);
    if (code == 0 && (want_len < 0 || *parts < 0 || (uint64_t)want_len > SIZE_MAX - 1))
        code = store_fail(&q->base, -EBADMSG, "row sm_state: length %lld in %lld parts",
                          (long long)want_len, (long long)*parts);
    if (code != 0) {
        memset(h, 0, sizeof(*h));
        return code;
    }
    *len = (uint64_t)want_len;
    *found = true;
    return 0;
}

/* The parts in order, each checked to follow the last and to fit the length; into buf when
 * it is not NULL. Then the count, the length and the checksum against the state row. */
static int sq_sm_scan(struct store_sq *q, const struct store_sm_snap *h, uint64_t want_len,
                      int64_t parts, uint32_t want_crc, unsigned char *buf)
{
    uint32_t crc = sq_sm_head_crc(h, want_len, (uint64_t)parts);
    uint64_t have = 0;
    int64_t next = 0;
    sqlite3_stmt *st = NULL;
    int rc =
        sqlite3_prepare_v2(q->db, "SELECT part, bytes FROM sm_part ORDER BY part", -1, &st, NULL);
    int code = rc == SQLITE_OK ? 0 : sq_fail(q, "reading sm_part", rc);
    while (code == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t part = sqlite3_column_int64(st, 0);
        const unsigned char *b = sqlite3_column_blob(st, 1);
        size_t n = (size_t)sqlite3_column_bytes(st, 1);
        if (part != next || n > want_len - have) {
            code =
                store_fail(&q->base, -EBADMSG,
                           "table sm_part: part %lld (%zu bytes) does not follow part %lld of"
                           " a snapshot of %llu bytes",
                           (long long)part, n, (long long)next - 1, (unsigned long long)want_len);
            break;
        }
        if (buf != NULL && n > 0)
            memcpy(buf + have, b, n);
        crc = ipc_crc32c(crc, b, n);
        have += n;
        next++;
    }
    if (code == 0 && rc != SQLITE_DONE)
        code = sq_fail(q, "reading sm_part", rc);
    sqlite3_finalize(st);
    if (code == 0 && (next != parts || have != want_len))
        code = store_fail(&q->base, -EBADMSG,
                          "the state machine's snapshot has %lld parts of %llu bytes, its row says"
                          " %lld of %llu",
                          (long long)next, (unsigned long long)have, (long long)parts,
                          (unsigned long long)want_len);
    if (code == 0 && crc != want_crc)
        code = store_fail(&q->base, -EBADMSG,
                          "the state machine's snapshot (tables sm_state, sm_part): checksum"
                          " mismatch, the rows were damaged or changed outside paxos-shm");
    return code;
}

static int sq_load_sm(struct store *s, struct store_sm_snap *h, void **bytes, size_t *len,
                      bool *found)
{
    struct store_sq *q = sq_of(s);
    uint64_t want_len = 0;
    int64_t parts = 0;
    uint32_t want_crc = 0;
    bool there = false;
    int code = sq_sm_head(q, h, &want_len, &parts, &want_crc, &there);
    if (code != 0 || !there)
        return code;
    unsigned char *buf = malloc(want_len > 0 ? (size_t)want_len : 1u);
    if (buf == NULL)
        return store_fail(&q->base, -ENOMEM, "out of memory for a snapshot of %llu bytes",
                          (unsigned long long)want_len);
    code = sq_sm_scan(q, h, want_len, parts, want_crc, buf);
    if (code != 0) {
        free(buf);
        memset(h, 0, sizeof(*h));
        return code;
    }
    *bytes = buf;
    *len = (size_t)want_len;
    *found = true;
    return 0;
}

/* Checks the snapshot in one pass over its parts (nothing kept), then opens a second pass that
 * store_sm_read hands out: a damaged snapshot fails here, before its first byte is used. */
static int sq_sm_open(struct store *s, struct store_sm_snap *h, uint64_t *len, bool *found)
{
    struct store_sq *q = sq_of(s);
    uint64_t want_len = 0;
    int64_t parts = 0;
    uint32_t want_crc = 0;
    int code = sq_sm_head(q, h, &want_len, &parts, &want_crc, found);
    if (code != 0 || !*found)
        return code;
    code = sq_sm_scan(q, h, want_len, parts, want_crc, NULL);
    if (code == 0) {
        int rc = sqlite3_prepare_v2(q->db, "SELECT part, bytes FROM sm_part ORDER BY part", -1,
                                    &q->sm_rd, NULL);
        code = rc == SQLITE_OK ? 0 : sq_fail(q, "reading sm_part", rc);
    }
    if (code != 0) {
        sqlite3_finalize(q->sm_rd);
        q->sm_rd = NULL;
        memset(h, 0, sizeof(*h));
        *found = false;
        return code;
    }
    q->sm_rrow = NULL;
    q->sm_rrow_len = q->sm_rrow_at = 0;
    q->sm_rnext = 0;
    q->sm_rleft = want_len;
    *len = want_len;
    return 0;
}

static long sq_sm_read(struct store *s, void *buf, size_t cap)
{
    struct store_sq *q = sq_of(s);
    while (q->sm_rrow_at == q->sm_rrow_len && q->sm_rleft > 0) {
        int rc = sqlite3_step(q->sm_rd);
        if (rc != SQLITE_ROW)
            return rc == SQLITE_DONE ? store_fail(&q->base, -EBADMSG,
                                                  "table sm_part: parts missing since the check")
                                     : sq_fail(q, "reading sm_part", rc);
        size_t n = (size_t)sqlite3_column_bytes(q->sm_rd, 1);
        if (sqlite3_column_int64(q->sm_rd, 0) != q->sm_rnext || n > q->sm_rleft)
            return store_fail(&q->base, -EBADMSG, "table sm_part: parts changed since the check");
        q->sm_rrow = sqlite3_column_blob(q->sm_rd, 1);
        q->sm_rrow_len = n;
        q->sm_rrow_at = 0;
        q->sm_rnext++;
    }
    size_t n = q->sm_rrow_len - q->sm_rrow_at;
    if (n > cap)
        n = cap;
    if (n > 0)
        memcpy(buf, q->sm_rrow + q->sm_rrow_at, n);
    q->sm_rrow_at += n;
    q->sm_rleft -= n;
    return (long)n;
}

static void sq_sm_close(struct store *s)
{
    struct store_sq *q = sq_of(s);
    sqlite3_finalize(q->sm_rd);
    q->sm_rd = NULL;
    q->sm_rrow = NULL;
}

static const struct store_ops sq_ops = {
    .load = sq_load,
    .begin = sq_begin,
    .put = sq_put,
    .put_cmd = sq_put_cmd,
    .put_fib = sq_put_fib,
    .commit = sq_commit,
    .put_sm = sq_put_sm,
    .load_sm = sq_load_sm,
    .sm_begin = sq_sm_begin,
    .sm_write = sq_sm_write,
    .sm_end = sq_sm_end,
    .sm_open = sq_sm_open,
    .sm_read = sq_sm_read,
    .sm_close = sq_sm_close,
    .close = sq_close,
};

int store_sqlite_open(const struct store_params *p, struct store **out, char *err, size_t err_len)
{
    int rc = store_sq_check_dir(p->dir, err, err_len);
    if (rc != 0)
        return rc;
    struct store_sq *q = calloc(1, sizeof(*q));
    if (q == NULL)
        return store_fail_buf(err, err_len, -ENOMEM, "%s: out of memory", p->dir);
    q->base.ops = &sq_ops;
    q->base.kind = STORE_SQLITE;
    q->base.node_id = p->node_id;
    q->base.nodes = p->nodes;
    snprintf(q->base.name, sizeof(q->base.name), "%s/node-%u.db", p->dir, (unsigned)p->node_id);
    struct stat st;
    if (p->must_exist && lstat(q->base.name, &st) != 0 && errno == ENOENT)
        rc = store_fail(&q->base, -ENOENT,
                        "missing: the store was removed while the pool ran (an acceptor must"
                        " not forget what it promised)");
    if (rc == 0)
        rc = store_sq_open_db(q->base.name, p->sync, true, p->cmd_bytes > CMD_INLINE_BYTES, &q->db,
                              q->base.err, sizeof(q->base.err));
    if (rc == 0)
        rc = sq_setup(q, p);
    if (rc != 0) {
        store_fail_buf(err, err_len, rc, "%s", q->base.err);
        sq_close(&q->base);
        return rc;
    }
    *out = &q->base;
    return 0;
}

int store_sqlite_peek(const char *dir, uint16_t id, uint16_t nodes, bool job,
                      struct store_ident *out, char *err, size_t err_len)
{
    STORE_ASSERT(out != NULL);
    memset(out, 0, sizeof(*out));
    if (err != NULL && err_len > 0)
        err[0] = '\0';
    char path[STORE_NAME_MAX];
    snprintf(path, sizeof(path), "%s/node-%u.db", dir, (unsigned)id);
    struct stat st;
    if (lstat(path, &st) != 0 && errno == ENOENT)
        return 0;
    const struct store_params p = {.kind = STORE_SQLITE,
                                   .dir = dir,
                                   .node_id = id,
                                   .nodes = nodes,
                                   .sync = STORE_SYNC_NORMAL,
                                   .job = job};
    struct store *s = NULL;
    int rc = store_open(&p, &s, err, err_len);
    if (rc != 0)
        return rc;
    const struct store_sq *q = (const struct store_sq *)(const void *)s;
    out->exists = true;
    out->pool_id = q->pool_id;
    out->epoch = q->epoch;
    out->promised = q->promised;
    out->fib = q->fib;
    out->hwm = q->truncated;
    if (q->log_last > out->hwm)
        out->hwm = q->log_last;
    if (q->fib.applied > out->hwm)
        out->hwm = q->fib.applied;
    store_close(s);
    return 0;
}
