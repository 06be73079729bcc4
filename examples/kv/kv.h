/* kv.h: a key-value store as a paxos-shm state machine (struct pxs_state_machine): put, get,
 * delete and compare-and-swap on binary keys and values, with snapshot, restore and digest.
 * The command encoding is in README.md; kv_encode_* make commands, kv_new a store. */
#ifndef PXS_EXAMPLE_KV_H
#define PXS_EXAMPLE_KV_H

#include <stddef.h>
#include <stdint.h>

#include <paxos-shm/paxos_shm.h>

enum kv_op { KV_PUT = 1, KV_GET = 2, KV_DEL = 3, KV_CAS = 4 };

/* apply's status for a command. */
enum kv_status {
    KV_OK = 0,           /* done; a get's result is the value */
    KV_NOT_FOUND = 1,    /* get, delete, cas: no such key */
    KV_CAS_MISMATCH = 2, /* cas: the current value is not the expected one (nothing changed) */
    KV_BAD_COMMAND = 3,  /* the command is not a valid encoding (nothing changed) */
    KV_SUMMARY = 4,      /* get of a value over KV_RESULT_VALUE_MAX: the result is its summary */
};

#define KV_KEY_MAX          4096u
#define KV_HEADER           5u /* op byte, key length (u32 LE) */
#define KV_CAS_ABSENT       0xffffffffu
#define KV_RESULT_VALUE_MAX PXS_RESULT_MAX
#define KV_SUMMARY_BYTES    16u /* the value's length (u64 LE), then kv_hash of it (u64 LE) */

struct kv;

/* An empty store; NULL when out of memory. */
struct kv *kv_new(void);
void kv_free(struct kv *kv);
/* Fills sm with kv's callbacks (apply, snapshot, restore, digest), ctx = kv. */
void kv_state_machine(struct kv *kv, struct pxs_state_machine *sm);

/* Commands, written to out (kv_*_size bytes of it); they return the length. */
size_t kv_put_size(size_t klen, size_t vlen);
size_t kv_encode_put(uint8_t *out, const void *key, size_t klen, const void *val, size_t vlen);
size_t kv_key_cmd_size(size_t klen);
size_t kv_encode_get(uint8_t *out, const void *key, size_t klen);
size_t kv_encode_del(uint8_t *out, const void *key, size_t klen);
/* expected NULL: swap only when the key is absent. */
size_t kv_cas_size(size_t klen, size_t elen, size_t vlen);
size_t kv_encode_cas(uint8_t *out, const void *key, size_t klen, const void *expected, size_t elen,
                     const void *val, size_t vlen);

/* FNV-1a of bytes; and what one entry adds to the store's digest (the digest is the sum over
 * the entries plus the count, whatever the order they were made in). */
uint64_t kv_hash(const void *bytes, size_t len);
uint64_t kv_entry_digest(const void *key, size_t klen, const void *val, size_t vlen);

/* The store's digest and size, without a pool (tests, the driver's model). */
uint64_t kv_digest(const struct kv *kv);
uint64_t kv_count(const struct kv *kv);

#endif
