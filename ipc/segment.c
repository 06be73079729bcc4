/* segment.c: creation, attachment and cleanup of the shared-memory segment (see segment.h). */
#include "ipc/segment.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <urcu/arch.h>
#include <urcu/system.h>
#include <urcu/uatomic.h>

#include "ipc/ipc_assert.h"

#define SEGMENT_PREFIX "paxos-shm-"

struct ipc_segment {
    unsigned char *base;
    size_t bytes;
    struct ipc_segment_header plan; /* layout and offsets, a private copy */
};

static void seg_err(char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void seg_err(char *err, size_t err_len, const char *fmt, ...)
{
    IPC_ASSERT(fmt != NULL);
    if (err == NULL || err_len == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_len, fmt, ap);
    va_end(ap);
}

static uint64_t round_up(uint64_t v, uint64_t to)
{
    IPC_ASSERT(to > 0);
    uint64_t r = (v + to - 1) / to * to;
    IPC_ASSERT(r >= v);
    IPC_ASSERT(r - v < to);
    return r;
}

static bool pow2_in(uint32_t v, uint32_t lo, uint32_t hi)
{
    IPC_ASSERT(lo >= 1); /* 0 & -1 == 0 would pass as a power of two */
    IPC_ASSERT(lo <= hi);
    return v >= lo && v <= hi && (v & (v - 1)) == 0;
}

/* Checks a layout; on failure writes why into err and returns -EINVAL. */
static int layout_check(const struct ipc_layout *l, char *err, size_t err_len)
{
    IPC_ASSERT(l != NULL);
    if (l->endpoints < 2 || l->endpoints > IPC_ENDPOINTS_MAX) {
        seg_err(err, err_len, "ipc layout: endpoints %" PRIu32 " not in 2..%d", l->endpoints,
                IPC_ENDPOINTS_MAX);
        return -EINVAL;
    }
    if (!pow2_in(l->ring_slots, 1, IPC_RING_SLOTS_MAX)) {
        seg_err(err, err_len, "ipc layout: ring_slots %" PRIu32 " not a power of two in 1..%u",
                l->ring_slots, IPC_RING_SLOTS_MAX);
        return -EINVAL;
    }
    if (l->bcast_slots != 0 && !pow2_in(l->bcast_slots, 1, IPC_BCAST_SLOTS_MAX)) {
        seg_err(err, err_len,
                "ipc layout: bcast_slots %" PRIu32 " not 0 or a power of two in 1..%u",
                l->bcast_slots, IPC_BCAST_SLOTS_MAX);
        return -EINVAL;
    }
    uint32_t producers_max = l->bcast_slots == 0 ? 0 : l->endpoints;
    if (producers_max > IPC_BCAST_CURSORS_MAX)
        producers_max = IPC_BCAST_CURSORS_MAX;
    if (l->bcast_producers > producers_max) {
        seg_err(err, err_len, "ipc layout: bcast_producers %" PRIu32 " not in 0..%" PRIu32,
                l->bcast_producers, producers_max);
        return -EINVAL;
    }
    if (l->user_bytes % 64 != 0 || l->user_bytes > IPC_USER_BYTES_MAX) {
        seg_err(err, err_len,
                "ipc layout: user_bytes %" PRIu64 " not a multiple of 64 in 0..%" PRIu64,
                l->user_bytes, IPC_USER_BYTES_MAX);
        return -EINVAL;
    }
    return 0;
}

/* Computes every offset of the layout into h (magic left 0). */
static int layout_plan(const struct ipc_layout *l, struct ipc_segment_header *h, char *err,
                       size_t err_len)
{
    IPC_ASSERT(h != NULL);
    int rc = layout_check(l, err, err_len);
    if (rc != 0)
        return rc;
    memset(h, 0, sizeof(*h));
    h->version = IPC_SEGMENT_VERSION;
    h->header_bytes = (uint32_t)round_up(sizeof(*h), IPC_LINE_BYTES);
    h->slot_bytes = IPC_SLOT_BYTES;
    h->line_bytes = IPC_LINE_BYTES;
    h->layout = *l;
    uint64_t e = l->endpoints;
    h->ctl_off = h->header_bytes;
    h->ring_off = h->ctl_off + e * sizeof(struct ipc_ctl);
    h->ring_stride = round_up(ipc_ring_bytes(l->ring_slots), IPC_LINE_BYTES);
    h->bcast_off = h->ring_off + e * (e - 1) * h->ring_stride;
    h->bcast_stride =
        l->bcast_slots ? round_up(ipc_bcast_bytes(l->bcast_slots), IPC_LINE_BYTES) : 0;
    h->user_off = h->bcast_off + (uint64_t)l->bcast_producers * h->bcast_stride;
    h->user_stride = round_up(l->user_bytes, IPC_LINE_BYTES);
    h->total_bytes = h->user_off + e * h->user_stride;
    /* the areas follow each other, each line-aligned */
    IPC_ASSERT(h->ctl_off < h->ring_off);
    IPC_ASSERT(h->ring_off <= h->bcast_off);
    IPC_ASSERT(h->bcast_off <= h->user_off);
    IPC_ASSERT(h->user_off <= h->total_bytes);
    IPC_ASSERT(h->ring_stride % IPC_LINE_BYTES == 0);
    IPC_ASSERT(h->bcast_stride % IPC_LINE_BYTES == 0);
    if (h->total_bytes > IPC_SEGMENT_BYTES_MAX) {
        seg_err(err, err_len, "ipc layout: segment would be %" PRIu64 " bytes, max %" PRIu64,
                h->total_bytes, IPC_SEGMENT_BYTES_MAX);
        return -EINVAL;
    }
    return 0;
}

static struct ipc_segment *segment_handle(void *base, size_t bytes,
                                          const struct ipc_segment_header *plan)
{
    IPC_ASSERT(base != NULL);
    IPC_ASSERT(bytes >= plan->total_bytes); /* every offset of the plan is mapped */
    struct ipc_segment *s = malloc(sizeof(*s));
    if (s == NULL)
        return NULL;
    s->base = base;
    s->bytes = bytes;
    s->plan = *plan;
    return s;
}

/* Initialises control blocks and rings of a fresh (zero-filled) segment; magic last. */
static void segment_init(struct ipc_segment *s)
{
    const struct ipc_layout *l = &s->plan.layout;
    struct ipc_segment_header *h = (struct ipc_segment_header *)(void *)s->base;
    IPC_ASSERT(h->magic == 0); /* a fresh, zero-filled segment */
    IPC_ASSERT(s->plan.magic == 0);
    *h = s->plan;
    h->owner_pid = (int32_t)getpid();
    for (uint32_t e = 0; e < l->endpoints; e++) {
        ipc_doorbell_init(&ipc_segment_ctl(s, e)->bell);
        int rc = ipc_life_init(&ipc_segment_ctl(s, e)->life); /* glibc: cannot fail */
        IPC_ASSERT(rc == 0);
    }
    for (uint32_t from = 0; from < l->endpoints; from++) {
        for (uint32_t to = 0; to < l->endpoints; to++) {
            if (from != to)
                ipc_ring_init(ipc_segment_ring(s, from, to), l->ring_slots);
        }
    }
    uint64_t everyone =
        l->bcast_producers >= 64 ? UINT64_MAX : (UINT64_C(1) << l->bcast_producers) - 1;
    for (uint32_t p = 0; p < l->bcast_producers; p++)
        ipc_bcast_init(ipc_segment_bcast(s, p), l->bcast_slots, everyone & ~(UINT64_C(1) << p));
    /* Release of magic: everything above is visible before an attacher accepts the segment.
     * Pairs with the cmm_smp_rmb() after the magic load in ipc_segment_attach. */
    cmm_smp_wmb();
    uatomic_set(&h->magic, IPC_SEGMENT_MAGIC);
}

int ipc_segment_create(const char *name, const struct ipc_layout *l, struct ipc_segment **out,
                       char *err, size_t err_len)
{
    IPC_ASSERT(name != NULL);
    IPC_ASSERT(l != NULL);
    IPC_ASSERT(out != NULL);
    struct ipc_segment_header plan;
    int rc = layout_plan(l, &plan, err, err_len);
    if (rc != 0)
        return rc;
    int fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0600);
    if (fd < 0) {
        rc = -errno;
        seg_err(err, err_len, "shm_open %s: %s%s", name, strerror(errno),
                errno == EEXIST ? " (another supervisor's, or stale: clean it)" : "");
        return rc;
    }
    void *base = MAP_FAILED;
    if (ftruncate(fd, (off_t)plan.total_bytes) != 0) {
        rc = -errno;
        seg_err(err, err_len, "ftruncate %s to %" PRIu64 " bytes: %s", name, plan.total_bytes,
                strerror(errno));
        goto fail;
    }
    /* Reserve the memory now: a tmpfs page that cannot be allocated later would be a SIGBUS
     * in the middle of a push instead of one clear error here. */
    int frc = posix_fallocate(fd, 0, (off_t)plan.total_bytes);
    if (frc != 0) {
        rc = -frc;
        seg_err(err, err_len, "reserving %" PRIu64 " bytes for %s: %s", plan.total_bytes, name,
                strerror(frc));
        goto fail;
    }
    base = mmap(NULL, plan.total_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) {
        rc = -errno;
        seg_err(err, err_len, "mmap %s: %s", name, strerror(errno));
        goto fail;
    }
    struct ipc_segment *s = segment_handle(base, plan.total_bytes, &plan);
    if (s == NULL) {
        rc = -ENOMEM;
        seg_err(err, err_len, "ipc segment handle: %s", strerror(ENOMEM));
        goto fail;
    }
    segment_init(s);
    IPC_ASSERT(uatomic_read(&((struct ipc_segment_header *)base)->magic) == IPC_SEGMENT_MAGIC);
    if (close(fd) != 0) {
        rc = -errno;
        seg_err(err, err_len, "close %s: %s", name, strerror(errno));
        free(s);
        fd = -1;
        goto fail;
    }
    *out = s;
    return 0;
fail:
    if (base != MAP_FAILED)
        (void)munmap(base, plan.total_bytes);
    if (fd >= 0)
        (void)close(fd);
    (void)shm_unlink(name);
    return rc;
}

/* Checks a mapped header against this build; one line in err when it does not match. */
static int header_check(const struct ipc_segment_header *h, uint64_t file_bytes, const char *name,
                        struct ipc_segment_header *plan, char *err, size_t err_len)
{
    IPC_ASSERT(file_bytes >= sizeof(*h)); /* checked by the caller before mapping */
    IPC_ASSERT(plan != NULL);
    uint64_t magic = uatomic_read(&h->magic);
    /* Acquire of magic: pairs with the cmm_smp_wmb() before the magic store in
     * segment_init. */
    cmm_smp_rmb();
    if (magic != IPC_SEGMENT_MAGIC) {
        seg_err(err, err_len,
                "%s: not an initialised paxos-shm segment (magic 0x%016" PRIx64
                ", expected 0x%016" PRIx64 ")",
                name, magic, IPC_SEGMENT_MAGIC);
        return -EPROTO;
    }
    if (h->version != IPC_SEGMENT_VERSION || h->slot_bytes != IPC_SLOT_BYTES ||
        h->line_bytes != IPC_LINE_BYTES) {
        seg_err(err, err_len,
                "%s: segment layout version %" PRIu32 " (slot %" PRIu32 ", line %" PRIu32
                "), this build expects version %u (slot %d, line %d)",
                name, h->version, h->slot_bytes, h->line_bytes, IPC_SEGMENT_VERSION, IPC_SLOT_BYTES,
                IPC_LINE_BYTES);
        return -EPROTO;
    }
    struct ipc_layout l = h->layout;
    int rc = layout_plan(&l, plan, err, err_len);
    if (rc != 0)
        return -EPROTO;
    plan->magic = IPC_SEGMENT_MAGIC;
    plan->owner_pid = h->owner_pid;
    if (memcmp(plan, h, sizeof(*plan)) != 0 || plan->total_bytes != file_bytes) {
        seg_err(err, err_len,
                "%s: segment sizes do not match its layout (%" PRIu64 " bytes in file, %" PRIu64
                " expected)",
                name, file_bytes, plan->total_bytes);
        return -EPROTO;
    }
    return 0;
}

int ipc_segment_attach(const char *name, struct ipc_segment **out, char *err, size_t err_len)
{
    IPC_ASSERT(name != NULL);
    IPC_ASSERT(out != NULL);
    int fd = shm_open(name, O_RDWR, 0);
    if (fd < 0) {
        int rc = -errno;
        seg_err(err, err_len, "shm_open %s: %s", name, strerror(errno));
        return rc;
    }
    int rc = 0;
    void *base = MAP_FAILED;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        seg_err(err, err_len, "fstat %s: %s", name, strerror(errno));
        goto out;
    }
    if ((uint64_t)st.st_size < sizeof(struct ipc_segment_header)) {
        rc = -EPROTO;
        seg_err(err, err_len, "%s: %lld bytes, too small for a paxos-shm segment", name,
                (long long)st.st_size);
        goto out;
    }
    base = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED) {
        rc = -errno;
        seg_err(err, err_len, "mmap %s: %s", name, strerror(errno));
        goto out;
    }
    struct ipc_segment_header plan;
    rc = header_check(base, (uint64_t)st.st_size, name, &plan, err, err_len);
    if (rc != 0)
        goto out;
    struct ipc_segment *s = segment_handle(base, (size_t)st.st_size, &plan);
    if (s == NULL) {
        rc = -ENOMEM;
        seg_err(err, err_len, "ipc segment handle: %s", strerror(ENOMEM));
        goto out;
    }
    IPC_ASSERT(s->plan.total_bytes == (uint64_t)st.st_size); /* header_check */
    *out = s;
    base = MAP_FAILED; /* owned by the handle now */
out:
    if (base != MAP_FAILED)
        (void)munmap(base, (size_t)st.st_size);
    if (close(fd) != 0 && rc == 0) {
        rc = -errno;
        seg_err(err, err_len, "close %s: %s", name, strerror(errno));
        ipc_segment_close(*out);
        *out = NULL;
    }
    return rc;
}

int ipc_segment_unlink(const char *name)
{
    IPC_ASSERT(name != NULL);
    IPC_ASSERT(name[0] == '/'); /* a POSIX shm name */
    if (shm_unlink(name) != 0 && errno != ENOENT)
        return -errno;
    return 0;
}

void ipc_segment_close(struct ipc_segment *s)
{
    if (s == NULL)
        return;
    IPC_ASSERT(s->base != NULL);
    int rc = munmap(s->base, s->bytes);
    IPC_ASSERT(rc == 0); /* only EINVAL (a corrupted handle) can fail */
    free(s);
}

void ipc_segment_name(char *buf, size_t len, pid_t owner)
{
    IPC_ASSERT(owner > 0);
    int n = snprintf(buf, len, "/" SEGMENT_PREFIX "%ld", (long)owner);
    IPC_ASSERT(n > 0);
    IPC_ASSERT((size_t)n < len);
}

/* The owner pid of a segment file name "paxos-shm-<pid>", or 0 if the name is not one. */
static pid_t stale_owner(const char *file)
{
    IPC_ASSERT(file != NULL);
    size_t plen = strlen(SEGMENT_PREFIX);
    if (strncmp(file, SEGMENT_PREFIX, plen) != 0)
        return 0;
    const char *digits = file + plen;
    if (*digits < '1' || *digits > '9')
        return 0;
    char *end = NULL;
    errno = 0;
    long pid = strtol(digits, &end, 10);
    if (errno != 0 || *end != '\0' || pid <= 0 || pid > INT32_MAX)
        return 0;
    return (pid_t)pid;
}

int ipc_segment_clean_stale(unsigned *removed)
{
    IPC_ASSERT(removed != NULL);
    *removed = 0;
    DIR *dir = opendir(IPC_SHM_DIR);
    if (dir == NULL)
        return -errno;
    int rc = 0;
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(dir);
        if (de == NULL) {
            rc = errno != 0 ? -errno : 0;
            break;
        }
        pid_t owner = stale_owner(de->d_name);
        if (owner == 0 || kill(owner, 0) == 0 || errno != ESRCH)
            continue; /* not ours, or the owner lives (EPERM: alive, another user's) */
        char name[IPC_SEGMENT_NAME_MAX];
        ipc_segment_name(name, sizeof(name), owner);
        if (ipc_segment_unlink(name) == 0)
            (*removed)++;
    }
    if (closedir(dir) != 0 && rc == 0)
        rc = -errno;
    return rc;
}

const struct ipc_layout *ipc_segment_layout(const struct ipc_segment *s)
{
    IPC_ASSERT(s != NULL);
    return &s->plan.layout;
}

size_t ipc_segment_bytes(const struct ipc_segment *s)
{
    IPC_ASSERT(s != NULL);
    IPC_ASSERT(s->bytes >= s->plan.total_bytes);
    return s->bytes;
}

void *ipc_segment_base(const struct ipc_segment *s)
{
    IPC_ASSERT(s != NULL);
    IPC_ASSERT(((uintptr_t)s->base % IPC_LINE_BYTES) == 0); /* mmap is page-aligned */
    return s->base;
}

struct ipc_ring *ipc_segment_ring(struct ipc_segment *s, uint32_t from, uint32_t to)
{
    uint32_t e = s->plan.layout.endpoints;
    IPC_ASSERT(from < e);
    IPC_ASSERT(to < e);
    IPC_ASSERT(from != to);
    uint64_t index = (uint64_t)from * (e - 1) + (to < from ? to : to - 1);
    IPC_ASSERT(index < (uint64_t)e * (e - 1)); /* one ring per ordered pair */
    return (struct ipc_ring *)(void *)(s->base + s->plan.ring_off + index * s->plan.ring_stride);
}

struct ipc_bcast *ipc_segment_bcast(struct ipc_segment *s, uint32_t producer)
{
    IPC_ASSERT(producer < s->plan.layout.bcast_producers);
    IPC_ASSERT(s->plan.bcast_stride != 0); /* a layout with broadcast rings */
    return (struct ipc_bcast *)(void *)(s->base + s->plan.bcast_off +
                                        (uint64_t)producer * s->plan.bcast_stride);
}

struct ipc_ctl *ipc_segment_ctl(struct ipc_segment *s, uint32_t endpoint)
{
    IPC_ASSERT(endpoint < s->plan.layout.endpoints);
    IPC_ASSERT(s->plan.ctl_off + ((uint64_t)endpoint + 1) * sizeof(struct ipc_ctl) <=
               s->plan.ring_off);
    return (struct ipc_ctl *)(void *)(s->base + s->plan.ctl_off +
                                      (uint64_t)endpoint * sizeof(struct ipc_ctl));
}

void *ipc_segment_user(struct ipc_segment *s, uint32_t endpoint)
{
    IPC_ASSERT(endpoint < s->plan.layout.endpoints);
    if (s->plan.layout.user_bytes == 0)
        return NULL;
    IPC_ASSERT(s->plan.user_off + ((uint64_t)endpoint + 1) * s->plan.user_stride <= s->bytes);
    return s->base + s->plan.user_off + (uint64_t)endpoint * s->plan.user_stride;
}
