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

#endif
