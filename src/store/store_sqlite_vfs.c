/* store_sqlite_vfs.c: the node stores' sqlite VFS, the default one with one change: while the
 * store holds its WAL file (store_sq_wal_hold .. store_sq_wal_flush, around COMMIT), sqlite's
 * appends to the WAL are gathered in memory and reach the OS as one write.
 *
 * Why: sqlite writes each WAL frame as two calls (24-byte header, then the page), and a commit
 * of a node's batch is about ten frames: twenty pwrite calls per batch were the largest single
 * cost of the sqlite store (the profile of a 16-node run). One write per commit is the same
 * bytes in the same order.
 *
 * Durability is unchanged: store_sq_wal_flush runs inside store_commit, before it returns, so
 * every frame of a commit is with the OS (and fsynced, for --sync full: sqlite's xSync on the
 * WAL flushes first) before any reply leaves. A process killed before the flush leaves a WAL
 * without the batch's commit frame, or a torn tail, which WAL recovery discards at the next
 * open (frames are checksummed and salted), exactly as a kill in the middle of sqlite's own
 * writes does. Any read, size query, truncation, sync or close of the WAL flushes first, so
 * sqlite (a checkpoint run by COMMIT, a page read from the WAL) never sees a file without its
 * own earlier writes. A failed flush is sticky: every later call on the file fails, so no
 * checkpoint can copy frames that never reached the file.
 *
 * Context: as the store, one thread of one process; the VFS is registered once per process. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "store_internal.h"

#define SQV_NAME "paxos-shm"
/* Largest write handed to the default VFS at once: its unix write path keeps only the low 17
 * bits of the length (a longer one would be cut short and reported as a full disk). A batch's
 * commit is a few ten KiB, one write. */
#define SQV_WRITE_MAX ((size_t)96 * 1024)

/* Our part of an open file; the default VFS's file object follows it in the same allocation. */
struct sqv_file {
    sqlite3_file base; /* first: sqlite3_file * <-> struct sqv_file * */
    sqlite3_file *real;
    bool wal;  /* the file is a WAL (only those are ever held) */
    bool hold; /* appends go to buf until the flush */
    int failed;
    int failed_errno;
    unsigned char *buf;
    size_t len, cap;
    sqlite3_int64 off; /* file offset of buf[0] */
};

static sqlite3_vfs sqv_vfs;
static sqlite3_vfs *sqv_real;
static sqlite3_io_methods sqv_io;
static pthread_once_t sqv_once = PTHREAD_ONCE_INIT;
static int sqv_register_rc = SQLITE_ERROR;

static struct sqv_file *sqv_of(sqlite3_file *f)
{
    return (struct sqv_file *)(void *)f;
}

/* Writes the gathered bytes out: SQLITE_OK, or the default VFS's error (sticky, errno kept). */
static int sqv_flush(struct sqv_file *f)
{
    if (f->failed != SQLITE_OK) {
        errno = f->failed_errno;
        return f->failed;
    }
    if (f->len == 0)
        return SQLITE_OK;
    int rc = SQLITE_OK;
    for (size_t done = 0; rc == SQLITE_OK && done < f->len; done += SQV_WRITE_MAX) {
        size_t n = f->len - done < SQV_WRITE_MAX ? f->len - done : SQV_WRITE_MAX;
        rc =
            f->real->pMethods->xWrite(f->real, f->buf + done, (int)n, f->off + (sqlite3_int64)done);
    }
    f->len = 0;
    if (rc != SQLITE_OK) {
        f->failed = rc;
        f->failed_errno = errno;
    }
    return rc;
}

static int sqv_close(sqlite3_file *file)
{
    struct sqv_file *f = sqv_of(file);
    int rc = sqv_flush(f);
    int rc_close = f->real->pMethods->xClose(f->real);
    free(f->buf);
    f->buf = NULL;
    f->cap = 0;
    return rc != SQLITE_OK ? rc : rc_close;
}

static int sqv_read(sqlite3_file *file, void *out, int n, sqlite3_int64 off)
{
    struct sqv_file *f = sqv_of(file);
    int rc = sqv_flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xRead(f->real, out, n, off);
}

/* Makes room for n more bytes in buf: false when memory is short (the caller writes through). */
static bool sqv_room(struct sqv_file *f, size_t n)
{
    if (f->len + n <= f->cap)
        return true;
    size_t want = f->cap ? f->cap : 64 * 1024;
    while (want < f->len + n)
        want *= 2;
    unsigned char *grown = realloc(f->buf, want);
    if (grown == NULL)
        return false;
    f->buf = grown;
    f->cap = want;
    return true;
}

static int sqv_write(sqlite3_file *file, const void *data, int n, sqlite3_int64 off)
{
    struct sqv_file *f = sqv_of(file);
    STORE_ASSERT(n >= 0);
    if (f->failed != SQLITE_OK)
        return f->failed;
    if (!f->hold)
        return f->real->pMethods->xWrite(f->real, data, n, off);
    /* Only an append to what is gathered joins it; any other write keeps the file order by
     * flushing first. */
    if (f->len > 0 && off != f->off + (sqlite3_int64)f->len) {
        int rc = sqv_flush(f);
        if (rc != SQLITE_OK)
            return rc;
    }
    if (!sqv_room(f, (size_t)n)) {
        int rc = sqv_flush(f);
        return rc != SQLITE_OK ? rc : f->real->pMethods->xWrite(f->real, data, n, off);
    }
    if (f->len == 0)
        f->off = off;
    memcpy(f->buf + f->len, data, (size_t)n);
    f->len += (size_t)n;
    return SQLITE_OK;
}

static int sqv_truncate(sqlite3_file *file, sqlite3_int64 size)
{
    struct sqv_file *f = sqv_of(file);
    int rc = sqv_flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xTruncate(f->real, size);
}

static int sqv_sync(sqlite3_file *file, int flags)
{
    struct sqv_file *f = sqv_of(file);
    int rc = sqv_flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xSync(f->real, flags);
}

static int sqv_file_size(sqlite3_file *file, sqlite3_int64 *size)
{
    struct sqv_file *f = sqv_of(file);
    int rc = sqv_flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xFileSize(f->real, size);
}

static int sqv_lock(sqlite3_file *file, int lock)
{
    struct sqv_file *f = sqv_of(file);
    return f->real->pMethods->xLock(f->real, lock);
}

static int sqv_unlock(sqlite3_file *file, int lock)
{
    struct sqv_file *f = sqv_of(file);
    return f->real->pMethods->xUnlock(f->real, lock);
}

static int sqv_check_reserved(sqlite3_file *file, int *out)
{
    struct sqv_file *f = sqv_of(file);
    return f->real->pMethods->xCheckReservedLock(f->real, out);
}

static int sqv_file_control(sqlite3_file *file, int op, void *arg)
{
    struct sqv_file *f = sqv_of(file);
    int rc = sqv_flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xFileControl(f->real, op, arg);
}

static int sqv_sector_size(sqlite3_file *file)
{
    struct sqv_file *f = sqv_of(file);
    return f->real->pMethods->xSectorSize(f->real);
}

static int sqv_device(sqlite3_file *file)
{
    struct sqv_file *f = sqv_of(file);
    return f->real->pMethods->xDeviceCharacteristics(f->real);
}

static int sqv_shm_map(sqlite3_file *file, int region, int bytes, int extend, void volatile **out)
{
    struct sqv_file *f = sqv_of(file);
    return f->real->pMethods->xShmMap(f->real, region, bytes, extend, out);
}

static int sqv_shm_lock(sqlite3_file *file, int offset, int n, int flags)
{
    struct sqv_file *f = sqv_of(file);
    return f->real->pMethods->xShmLock(f->real, offset, n, flags);
}

static void sqv_shm_barrier(sqlite3_file *file)
{
    struct sqv_file *f = sqv_of(file);
    f->real->pMethods->xShmBarrier(f->real);
}

static int sqv_shm_unmap(sqlite3_file *file, int delete_flag)
{
    struct sqv_file *f = sqv_of(file);
    return f->real->pMethods->xShmUnmap(f->real, delete_flag);
}

static int sqv_fetch(sqlite3_file *file, sqlite3_int64 off, int n, void **out)
{
    struct sqv_file *f = sqv_of(file);
    int rc = sqv_flush(f);
    if (rc != SQLITE_OK)
        return rc;
    return f->real->pMethods->xFetch(f->real, off, n, out);
}

static int sqv_unfetch(sqlite3_file *file, sqlite3_int64 off, void *p)
{
    struct sqv_file *f = sqv_of(file);
    return f->real->pMethods->xUnfetch(f->real, off, p);
}

static int sqv_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags,
                    int *out_flags)
{
    struct sqv_file *f = sqv_of(file);
    (void)vfs;
    memset(f, 0, sizeof(*f));
    f->real = (sqlite3_file *)(void *)((unsigned char *)file + sizeof(*f));
    f->wal = (flags & SQLITE_OPEN_WAL) != 0;
    int rc = sqv_real->xOpen(sqv_real, name, f->real, flags, out_flags);
    /* sqlite calls xClose when pMethods is set, even after a failed open: mirror the default
     * VFS, which sets it only for a file it must close. */
    f->base.pMethods = f->real->pMethods != NULL ? &sqv_io : NULL;
    return rc;
}

static void sqv_init(void)
{
    sqv_real = sqlite3_vfs_find(NULL);
    if (sqv_real == NULL)
        return;
    sqv_vfs = *sqv_real; /* every other call goes straight to the default VFS */
    sqv_vfs.pNext = NULL;
    sqv_vfs.zName = SQV_NAME;
    sqv_vfs.szOsFile = (int)sizeof(struct sqv_file) + sqv_real->szOsFile;
    sqv_vfs.xOpen = sqv_open;
    sqv_io = (sqlite3_io_methods){
        .iVersion = 3,
        .xClose = sqv_close,
        .xRead = sqv_read,
        .xWrite = sqv_write,
        .xTruncate = sqv_truncate,
        .xSync = sqv_sync,
        .xFileSize = sqv_file_size,
        .xLock = sqv_lock,
        .xUnlock = sqv_unlock,
        .xCheckReservedLock = sqv_check_reserved,
        .xFileControl = sqv_file_control,
        .xSectorSize = sqv_sector_size,
        .xDeviceCharacteristics = sqv_device,
        .xShmMap = sqv_shm_map,
        .xShmLock = sqv_shm_lock,
        .xShmBarrier = sqv_shm_barrier,
        .xShmUnmap = sqv_shm_unmap,
        .xFetch = sqv_fetch,
        .xUnfetch = sqv_unfetch,
    };
    sqv_register_rc = sqlite3_vfs_register(&sqv_vfs, 0);
}

const char *store_sq_vfs(void)
{
    pthread_once(&sqv_once, sqv_init);
    return sqv_register_rc == SQLITE_OK ? SQV_NAME : NULL;
}

/* db's WAL file when it is one of ours and open, else NULL. */
static struct sqv_file *sqv_wal_of(sqlite3 *db)
{
    sqlite3_file *file = NULL;
    if (sqlite3_file_control(db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &file) != SQLITE_OK ||
        file == NULL || file->pMethods != &sqv_io)
        return NULL;
    struct sqv_file *f = sqv_of(file);
    return f->wal ? f : NULL;
}

void store_sq_wal_hold(sqlite3 *db)
{
    struct sqv_file *f = sqv_wal_of(db);
    if (f != NULL)
        f->hold = true;
}

int store_sq_wal_flush(sqlite3 *db)
{
    struct sqv_file *f = sqv_wal_of(db);
    if (f == NULL)
        return SQLITE_OK;
    f->hold = false;
    return sqv_flush(f);
}
