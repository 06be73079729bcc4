/* check.h: a 16-bit integrity check of one IPC_SLOT_BYTES slot, kept inside the slot.
 *
 * The rings move opaque slots and never call this: the user of a ring decides where in its
 * slot format the 2 check bytes live (check_off), seals a slot once it is final, and checks
 * what it reads before trusting it. So a slot torn in shared memory (half of it from another
 * message), damaged by a stray write, or framed wrongly by a byte stream is recognised instead
 * of being used.
 *
 * The check: CRC-32C (Castagnoli) of the slot with the check bytes read as zero, folded to 16
 * bits by c ^ c >> 11 ^ c >> 22. Both steps are linear over GF(2), so whether damage
 * is detected depends only on which bits changed, never on the content:
 *   - every change of 1, 2 or 3 bits anywhere in the other 62 bytes is detected, and every
 *     change confined to 9 consecutive bits (minimum distance 4, whatever check_off; the unit
 *     test proves the distance exhaustively; 4 is the most 16 check bits can give 496 bits);
 *   - any other change (a torn slot, garbage, a shifted frame) passes with probability
 *     2^-16, about 1 in 65,536, as for any 16-bit check;
 *   - an all-zero slot (never written) does not pass.
 * Cost: about 6 ns per slot with the SSE4.2 crc32 instruction (chosen at run time); a CPU
 * without it takes a portable bitwise path with the same result, about 0.7 us per slot.
 *
 * Context: pure functions, any process or thread. */
#ifndef IPC_CHECK_H
#define IPC_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ipc/ring.h"

/* Bytes of the check inside a slot. */
#define IPC_CHECK_BYTES 2
/* Largest check_off: the check must lie inside the slot. */
#define IPC_CHECK_OFF_MAX (IPC_SLOT_BYTES - IPC_CHECK_BYTES)

/* The check of `slot` (IPC_SLOT_BYTES bytes) whose check bytes are at check_off. */
uint16_t ipc_check_compute(const void *slot, uint32_t check_off);
/* Writes the check into the slot's check bytes (little endian). */
void ipc_check_seal(void *slot, uint32_t check_off);
/* True if the slot's check bytes hold its check. */
bool ipc_check_ok(const void *slot, uint32_t check_off);
/* The portable path of ipc_check_compute, whatever the CPU (for tests). */
uint16_t ipc_check_compute_portable(const void *slot, uint32_t check_off);

/* CRC-32C of `bytes` bytes, continuing from crc (no inversion in or out: the caller chooses the
 * start, e.g. a seed that tells kinds of records apart). The same instruction or portable path
 * as the slot check; the shm store checks its records with it. */
uint32_t ipc_crc32c(uint32_t crc, const void *p, size_t bytes);
uint32_t ipc_crc32c_portable(uint32_t crc, const void *p, size_t bytes);
/* ipc_crc32c(crc, A || B, a + b) from its two halves, without A's bytes:
 * ipc_crc32c_shift(ipc_crc32c(crc, A, a), b) ^ ipc_crc32c(0, B, b). The CRC is linear, so a
 * stream whose first bytes are known only at its end (a snapshot's header) can be summed as it
 * goes. O(log b). */
uint32_t ipc_crc32c_shift(uint32_t crc, uint64_t bytes);

#endif
