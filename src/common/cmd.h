/* cmd.h: a command as the layers above the core see it. The core carries a struct px_value:
 * the request (client id, seq) and 8 opaque bytes (`increment`). A command of up to
 * CMD_INLINE_BYTES fits there. A longer one sets PX_VALUE_PAYLOAD in client_id, keeps its first
 * 8 bytes in `increment`, and its whole bytes travel beside the value (node/payload.h: DATA
 * streams ahead of the message that carries the value) and are stored beside the record
 * (store.h: store_put_cmd). A request names one command: its bytes are found by cmd_key. */
#ifndef PX_CMD_H
#define PX_CMD_H

#include <stdbool.h>
#include <stdint.h>

#include "paxos/px.h"

/* The largest command any path carries (rings, stores, catch-up): 64 MiB. */
#define CMD_BYTES_MAX (64u << 20)
/* Commands up to this long ride inside the value itself. */
#define CMD_INLINE_BYTES 8u

/* The request a command belongs to, as one word: its bytes are looked up by it. */
static inline uint64_t cmd_key(const struct px_value *v)
{
    return ((uint64_t)px_value_client(v) << PX_REQUEST_CLIENT_SHIFT) | v->seq;
}
static inline bool cmd_has_payload(const struct px_value *v)
{
    return (v->client_id & PX_VALUE_PAYLOAD) != 0;
}

/* Commands of a library pool (a struct pxs_state_machine, include/paxos-shm/paxos_shm.h) are
 * 0 bytes or more: one of at most CMD_LIB_INLINE_MAX bytes rides in `increment` with its length
 * in the last byte (cmd_lib_pack); a longer one travels beside the value as above, its first 8
 * bytes in `increment`. The main job's commands are never shorter than 8 bytes and keep all 8
 * bytes of `increment` for the Fibonacci step. */
#define CMD_LIB_INLINE_MAX 7u
static inline uint64_t cmd_lib_pack(const void *bytes, uint32_t len)
{
    uint8_t b[8] = {0};
    const uint8_t *src = (const uint8_t *)bytes;
    for (uint32_t i = 0; i < len && i < CMD_LIB_INLINE_MAX; i++)
        b[i] = src[i];
    b[7] = (uint8_t)len;
    uint64_t w = 0;
    for (int i = 7; i >= 0; i--)
        w = (w << 8) | b[i];
    return w;
}
/* The bytes and length of an inline library command (out holds CMD_LIB_INLINE_MAX bytes). */
static inline uint32_t cmd_lib_unpack(uint64_t w, uint8_t *out)
{
    uint32_t len = (uint32_t)(w >> 56);
    if (len > CMD_LIB_INLINE_MAX)
        len = CMD_LIB_INLINE_MAX; /* never made so; a damaged value cannot overrun out */
    for (uint32_t i = 0; i < len; i++)
        out[i] = (uint8_t)(w >> (8 * i));
    return len;
}

/* Keys of the payload plane beyond commands (a command's key has bit 63 clear: client ids are
 * < 2^31). A result: what a learner's state machine returned for a request, streamed to the
 * client ahead of the CLIENT_REPLY (its first 4 bytes the status, little-endian, then the
 * result bytes). A snapshot: a state machine's state streamed ahead of a SNAPSHOT message. */
#define CMD_KEY_RESULT   (1ull << 63)
#define CMD_KEY_SNAPSHOT (3ull << 62)
static inline uint64_t cmd_result_key(const struct px_value *v)
{
    return CMD_KEY_RESULT | cmd_key(v);
}

#endif
