/* test_check.c: the slot check (ipc/check.h). The check is linear, so "this change is
 * detected" depends on the changed bits only: the distance tests enumerate error patterns on
 * one slot and hold for every slot. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "ipc/check.h"
#include "ipc_test.h"

#define SLOT_BITS (IPC_SLOT_BYTES * 8)
/* Where the tests keep the check: byte 6, as struct px_msg does. */
#define CHECK_OFF 6u
/* Longest run of consecutive bits within which every change is detected (check.h). */
#define BURST_BITS_MAX 9u
#define TEAR_TRIALS    1000000u
#define TEAR_SEED      0x7ea2u

static void fill_random(unsigned char *slot, uint64_t *rng)
{
    for (int i = 0; i < IPC_SLOT_BYTES / 8; i++) {
        uint64_t w = ipc_test_mix((*rng)++);
        memcpy(slot + 8 * i, &w, 8);
    }
}

/* What flipping bit b changes in the check, for every bit outside the check bytes at off. */
static uint32_t syndromes(uint32_t off, uint16_t *out)
{
    unsigned char zero[IPC_SLOT_BYTES] = {0};
    uint16_t base = ipc_check_compute(zero, off);
    uint32_t n = 0;
    for (uint32_t b = 0; b < SLOT_BITS; b++) {
        if (b / 8 >= off && b / 8 < off + IPC_CHECK_BYTES)
            continue;
        unsigned char s[IPC_SLOT_BYTES] = {0};
        s[b / 8] = (unsigned char)(1u << (b % 8));
        out[n++] = ipc_check_compute(s, off) ^ base;
    }
    return n;
}

static void test_check_sealed_slot_passes_and_every_single_bit_flip_fails(void **state)
{
    (void)state;
    unsigned char slot[IPC_SLOT_BYTES];
    uint64_t rng = 1;
    fill_random(slot, &rng);
    ipc_check_seal(slot, CHECK_OFF);
    assert_true(ipc_check_ok(slot, CHECK_OFF));
    for (uint32_t b = 0; b < SLOT_BITS; b++) {
        slot[b / 8] ^= (unsigned char)(1u << (b % 8));
        assert_false(ipc_check_ok(slot, CHECK_OFF)); /* a flip in the check bytes fails too */
        slot[b / 8] ^= (unsigned char)(1u << (b % 8));
    }
}

static void test_check_detects_every_change_of_up_to_3_bits_at_every_offset(void **state)
{
    (void)state;
    static uint16_t syn[SLOT_BITS];
    static unsigned char seen[1u << 16];
    for (uint32_t off = 0; off <= IPC_CHECK_OFF_MAX; off++) {
        uint32_t n = syndromes(off, syn);
        assert_int_equal(n, SLOT_BITS - 16);
        memset(seen, 0, sizeof(seen));
        for (uint32_t i = 0; i < n; i++) {
            assert_int_not_equal(syn[i], 0); /* 1 bit */
            assert_int_equal(seen[syn[i]], 0);
            seen[syn[i]] = 1; /* 2 bits: syn[i] ^ syn[j] != 0 */
        }
        for (uint32_t i = 0; i < n; i++)
            for (uint32_t j = i + 1; j < n; j++)
                assert_int_equal(seen[syn[i] ^ syn[j]], 0); /* 3 bits */
    }
}

static void test_check_detects_every_change_within_9_consecutive_bits(void **state)
{
    (void)state;
    static uint16_t syn[SLOT_BITS];
    unsigned char zero[IPC_SLOT_BYTES] = {0};
    uint32_t off = IPC_CHECK_OFF_MAX; /* the check at the end: bits 0..495 are consecutive */
    uint16_t base = ipc_check_compute(zero, off);
    for (uint32_t b = 0; b < SLOT_BITS - 16; b++) {
        unsigned char s[IPC_SLOT_BYTES] = {0};
        s[b / 8] = (unsigned char)(1u << (b % 8));
        syn[b] = ipc_check_compute(s, off) ^ base;
    }
    /* Every pattern whose first and last changed bits are at most BURST_BITS_MAX apart. */
    for (uint32_t first = 0; first < SLOT_BITS - 16; first++) {
        for (uint32_t len = 1; len <= BURST_BITS_MAX && first + len <= SLOT_BITS - 16; len++) {
            uint32_t inner = len >= 2 ? len - 2 : 0;
            for (uint32_t m = 0; m < (1u << inner); m++) {
                uint16_t x = syn[first];
                if (len >= 2)
                    x ^= syn[first + len - 1];
                for (uint32_t k = 0; k < inner; k++)
                    if ((m >> k) & 1u)
                        x ^= syn[first + 1 + k];
                assert_int_not_equal(x, 0);
            }
        }
    }
}

static void test_check_of_an_all_zero_slot_is_not_zero(void **state)
{
    (void)state;
    unsigned char zero[IPC_SLOT_BYTES] = {0};
    assert_false(ipc_check_ok(zero, CHECK_OFF));
}

static void test_check_portable_path_equals_the_fast_path(void **state)
{
    (void)state;
    unsigned char slot[IPC_SLOT_BYTES];
    uint64_t rng = 99;
    for (int i = 0; i < 10000; i++) {
        fill_random(slot, &rng);
        uint32_t off = (uint32_t)(i % (IPC_CHECK_OFF_MAX + 1));
        assert_int_equal(ipc_check_compute(slot, off), ipc_check_compute_portable(slot, off));
        size_t len = (size_t)(i % (IPC_SLOT_BYTES + 1)); /* words and a tail */
        assert_int_equal(ipc_crc32c((uint32_t)i, slot, len),
                         ipc_crc32c_portable((uint32_t)i, slot, len));
    }
}

static void test_crc32c_is_the_castagnoli_crc(void **state)
{
    (void)state;
    /* The standard check value of CRC-32C: "123456789" -> 0xe3069283 (inverted in and out). */
    assert_int_equal(~ipc_crc32c(0xffffffffu, "123456789", 9), 0xe3069283u);
    assert_int_equal(~ipc_crc32c_portable(0xffffffffu, "123456789", 9), 0xe3069283u);
}

/* The CRC of A || B from the CRC of A (any start) and B's own: every split of a buffer, lengths
 * from 0 to past a word and a long tail. */
static void test_crc32c_shift_joins_two_halves(void **state)
{
    (void)state;
    unsigned char buf[3000];
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (unsigned char)(i * 131u + (i >> 3));
    const size_t lens[] = {0, 1, 7, 8, 9, 64, 255, 1000, sizeof(buf)};
    for (size_t l = 0; l < sizeof(lens) / sizeof(lens[0]); l++) {
        size_t len = lens[l];
        for (size_t cut = 0; cut <= len; cut += len > 64 ? 37 : 1) {
            uint32_t seed = (uint32_t)(0x9e3779b9u * (len + cut + 1));
            uint32_t whole = ipc_crc32c(seed, buf, len);
            uint32_t a = ipc_crc32c(seed, buf, cut);
            uint32_t b = ipc_crc32c(0, buf + cut, len - cut);
            assert_int_equal(ipc_crc32c_shift(a, len - cut) ^ b, whole);
        }
    }
    /* Far past any buffer here: a shift by 2^33 bytes is a shift by 2^32, twice. */
    uint32_t c = 0x12345678u;
    assert_int_equal(ipc_crc32c_shift(c, UINT64_C(1) << 33),
                     ipc_crc32c_shift(ipc_crc32c_shift(c, UINT64_C(1) << 32), UINT64_C(1) << 32));
    assert_int_equal(ipc_crc32c_shift(c, 0), c);
}

/* The tear seen in a run: one 8-byte word of a slot from another message. A fixed seed, so the
 * count is exact; about TEAR_TRIALS / 65536 = 15 tears may pass. */
static void test_check_catches_torn_slots_but_one_in_about_65536(void **state)
{
    (void)state;
    unsigned char a[IPC_SLOT_BYTES], b[IPC_SLOT_BYTES];
    uint64_t rng = TEAR_SEED;
    uint32_t passed = 0;
    for (uint32_t t = 0; t < TEAR_TRIALS; t++) {
        fill_random(a, &rng);
        fill_random(b, &rng);
        ipc_check_seal(a, CHECK_OFF);
        ipc_check_seal(b, CHECK_OFF);
        uint32_t word =
            1 + (uint32_t)(ipc_test_mix(rng++) % 7); /* not word 0: it holds the check */
        memcpy(a + 8 * word, b + 8 * word, 8);
        if (ipc_check_ok(a, CHECK_OFF))
            passed++;
    }
    print_message("torn slots passing the check: %u of %u\n", passed, TEAR_TRIALS);
    assert_true(passed <= 4 * TEAR_TRIALS / 65536);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check_sealed_slot_passes_and_every_single_bit_flip_fails),
        cmocka_unit_test(test_check_detects_every_change_of_up_to_3_bits_at_every_offset),
        cmocka_unit_test(test_check_detects_every_change_within_9_consecutive_bits),
        cmocka_unit_test(test_check_of_an_all_zero_slot_is_not_zero),
        cmocka_unit_test(test_check_portable_path_equals_the_fast_path),
        cmocka_unit_test(test_crc32c_is_the_castagnoli_crc),
        cmocka_unit_test(test_crc32c_shift_joins_two_halves),
        cmocka_unit_test(test_check_catches_torn_slots_but_one_in_about_65536),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
