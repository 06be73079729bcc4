/* check.c: the slot check; what it detects is in check.h. */
#include "ipc/check.h"

#include <string.h>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

#include "ipc/ipc_assert.h"

/* CRC-32C, reflected polynomial 0x1EDC6F41 (iSCSI, ext4, SSE4.2 crc32). */
#define CHECK_CRC32C_REFLECTED 0x82f63b78u
/* 64-bit words of a slot. */
#define CHECK_WORDS (IPC_SLOT_BYTES / 8)

_Static_assert(IPC_SLOT_BYTES % 8 == 0, "a slot is whole 64-bit words");

/* 32 -> 16 bits, linear. The shifts were chosen (by search) so that the 512 single-bit
 * syndromes of a slot are distinct, non-zero and free of x ^ y == z: the minimum distance 4 of
 * check.h, wherever the check bytes are. */
static uint16_t check_fold(uint32_t crc)
{
    _Static_assert(IPC_CHECK_BYTES == 2, "the fold yields 16 bits");
    return (uint16_t)(crc ^ (crc >> 11) ^ (crc >> 22));
}

static bool check_byte_skipped(uint32_t i, uint32_t check_off)
{
    IPC_ASSERT(i < IPC_SLOT_BYTES);
    IPC_ASSERT(check_off <= IPC_CHECK_OFF_MAX);
    return i >= check_off && i < check_off + IPC_CHECK_BYTES;
}

static uint32_t check_crc_portable(const unsigned char *p, uint32_t check_off)
{
    IPC_ASSERT(p != NULL);
    IPC_ASSERT(check_off + IPC_CHECK_BYTES <= IPC_SLOT_BYTES);
    uint32_t crc = 0xffffffffu;
    for (uint32_t i = 0; i < IPC_SLOT_BYTES; i++) {
        crc ^= check_byte_skipped(i, check_off) ? 0u : p[i];
        for (int bit = 0; bit < 8; bit++)
            crc = (crc >> 1) ^ (CHECK_CRC32C_REFLECTED & (0u - (crc & 1u)));
    }
    return crc;
}

#if defined(__x86_64__)
/* The crc32 instruction takes the bytes of a word in memory order (x86 is little endian), so
 * this is the same CRC as check_crc_portable. The check bytes (at most two words) are masked
 * out of the loaded words: zeroing them in a copy first stalled store forwarding and cost 5
 * times the CRC. */
__attribute__((target("sse4.2"))) static uint32_t check_crc_sse42(const unsigned char *p,
                                                                  uint32_t check_off)
{
    IPC_ASSERT(check_off + IPC_CHECK_BYTES <= IPC_SLOT_BYTES);
    uint32_t lo_word = check_off / 8, hi_word = (check_off + 1) / 8;
    IPC_ASSERT(hi_word < CHECK_WORDS); /* both check bytes are inside the slot */
    uint64_t lo_mask = ~(UINT64_C(0xff) << (8 * (check_off % 8)));
    uint64_t hi_mask = ~(UINT64_C(0xff) << (8 * ((check_off + 1) % 8)));
    uint64_t crc = 0xffffffffu;
    for (uint32_t i = 0; i < CHECK_WORDS; i++) {
        uint64_t w;
        memcpy(&w, p + 8 * i, sizeof(w));
        if (i == lo_word)
            w &= lo_mask;
        if (i == hi_word)
            w &= hi_mask;
        crc = _mm_crc32_u64(crc, w);
    }
    return (uint32_t)crc;
}
#endif

uint32_t ipc_crc32c_portable(uint32_t crc, const void *p, size_t bytes)
{
    IPC_ASSERT(p != NULL || bytes == 0);
    const unsigned char *b = p;
    for (size_t i = 0; i < bytes; i++) {
        crc ^= b[i];
        for (int bit = 0; bit < 8; bit++)
            crc = (crc >> 1) ^ (CHECK_CRC32C_REFLECTED & (0u - (crc & 1u)));
    }
    return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc32c_sse42(uint32_t crc, const unsigned char *p,
                                                               size_t bytes)
{
    IPC_ASSERT(p != NULL || bytes == 0);
    uint64_t c = crc;
    for (; bytes >= 8; bytes -= 8, p += 8) {
        uint64_t w;
        memcpy(&w, p, sizeof(w));
        c = _mm_crc32_u64(c, w);
    }
    uint32_t c32 = (uint32_t)c;
    if (bytes >= 4) { /* one instruction instead of four (the records of the shm store) */
        uint32_t w;
        memcpy(&w, p, sizeof(w));
        c32 = _mm_crc32_u32(c32, w);
        bytes -= 4;
        p += 4;
    }
    IPC_ASSERT(bytes < 4); /* the words are done: only a tail of bytes is left */
    for (; bytes > 0; bytes--, p++)
        c32 = _mm_crc32_u8(c32, *p);
    return c32;
}
#endif

uint32_t ipc_crc32c(uint32_t crc, const void *p, size_t bytes)
{
    IPC_ASSERT(p != NULL || bytes == 0);
#if defined(__x86_64__)
    if (__builtin_cpu_supports("sse4.2"))
        return crc32c_sse42(crc, p, bytes);
#endif
    return ipc_crc32c_portable(crc, p, bytes);
}

/* a(x) * b(x) mod P, reflected: bit 31 is x^0. */
static uint32_t crc_mul(uint32_t a, uint32_t b)
{
    uint32_t m = UINT32_C(1) << 31, p = 0;
    for (;;) {
        if (a & m) {
            p ^= b;
            if ((a & (m - 1)) == 0)
                break;
        }
        m >>= 1;
        b = b & 1 ? (b >> 1) ^ CHECK_CRC32C_REFLECTED : b >> 1;
    }
    return p;
}

uint32_t ipc_crc32c_shift(uint32_t crc, uint64_t bytes)
{
    /* crc * x^(8 bytes) mod P: x^(2^k) by squaring, starting from x^8 (one byte). */
    uint32_t sq = UINT32_C(1) << 23; /* x^8 */
    uint32_t x = UINT32_C(1) << 31;  /* x^0 */
    for (; bytes > 0; bytes >>= 1, sq = crc_mul(sq, sq))
        if (bytes & 1)
            x = crc_mul(x, sq);
    return crc_mul(x, crc);
}

uint16_t ipc_check_compute_portable(const void *slot, uint32_t check_off)
{
    IPC_ASSERT(slot != NULL);
    IPC_ASSERT(check_off <= IPC_CHECK_OFF_MAX);
    return check_fold(check_crc_portable(slot, check_off));
}

uint16_t ipc_check_compute(const void *slot, uint32_t check_off)
{
    IPC_ASSERT(slot != NULL);
    IPC_ASSERT(check_off <= IPC_CHECK_OFF_MAX);
#if defined(__x86_64__)
    if (__builtin_cpu_supports("sse4.2"))
        return check_fold(check_crc_sse42(slot, check_off));
#endif
    return check_fold(check_crc_portable(slot, check_off));
}

void ipc_check_seal(void *slot, uint32_t check_off)
{
    IPC_ASSERT(slot != NULL);
    uint16_t c = ipc_check_compute(slot, check_off);
    unsigned char le[IPC_CHECK_BYTES] = {(unsigned char)c, (unsigned char)(c >> 8)};
    memcpy((unsigned char *)slot + check_off, le, sizeof(le));
}

bool ipc_check_ok(const void *slot, uint32_t check_off)
{
    IPC_ASSERT(slot != NULL);
    IPC_ASSERT(check_off <= IPC_CHECK_OFF_MAX);
    unsigned char le[IPC_CHECK_BYTES];
    memcpy(le, (const unsigned char *)slot + check_off, sizeof(le));
    uint16_t stored = (uint16_t)(le[0] | (le[1] << 8));
    return stored == ipc_check_compute(slot, check_off);
}
