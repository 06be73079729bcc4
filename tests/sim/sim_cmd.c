/* sim_cmd.c: the simulated client's commands (--cmd-bytes, --cmd-sizes).
 *
 * A request's command length is drawn from its key and the seed (no PRNG stream is advanced,
 * so the client of one seed submits the same commands whichever order it hands them out in,
 * and the supervisor's client, which numbers requests its own way, gets lengths as fixed):
 *   - a quarter of the requests get an inline command (0..CMD_INLINE_BYTES, when min allows):
 *     the value's 8 bytes, nothing beside it;
 *   - one in twenty gets exactly max (the longest the seed's drivers take);
 *   - the rest a length log-uniform over [max(min, 9), max]: most commands are short, a few
 *     are long, and every size class between shows up.
 * Its bytes are a function of the key, the increment (itself a function of the request) and
 * the length, so the checker recomputes every byte a learner applies and a command cut short
 * or padded differs from the one submitted in its length bytes and in every word of its
 * pattern.
 */
#include "sim.h"
#include "px_mix.h"

#include <string.h>

#define SIM_CMD_TOP_PCT    5u  /* requests whose command is exactly max long */
#define SIM_CMD_INLINE_PCT 25u /* requests whose command fits the value */

/* A uniform draw in [lo, hi] from h. */
static uint32_t sim_cmd_between(uint64_t h, uint32_t lo, uint32_t hi)
{
    return lo + (uint32_t)(h % ((uint64_t)hi - lo + 1u));
}

static uint32_t sim_bits(uint32_t x)
{
    return x == 0 ? 0 : 32u - (uint32_t)__builtin_clz(x);
}

uint32_t sim_cmd_len(const struct sim *s, uint64_t key)
{
    uint32_t lo = s->cmds.min, hi = s->cmds.max;
    if (hi == 0)
        return CMD_INLINE_BYTES;
    uint64_t h = px_mix64(s->opt.seed ^ 0x636d642e6c656e2eull ^ px_mix64(key));
    uint64_t h2 = px_mix64(h ^ PX_SPLITMIX64_GAMMA);
    uint32_t pct = (uint32_t)(h % 100u);
    if (pct < SIM_CMD_TOP_PCT || lo == hi)
        return hi;
    if (pct < SIM_CMD_TOP_PCT + SIM_CMD_INLINE_PCT && lo <= CMD_INLINE_BYTES)
        return sim_cmd_between(h2, lo, hi < CMD_INLINE_BYTES ? hi : CMD_INLINE_BYTES);
    uint32_t a = lo > CMD_INLINE_BYTES ? lo : CMD_INLINE_BYTES + 1u;
    if (a >= hi)
        return hi;
    /* Log-uniform: a size class (bit length) uniform over a's to hi's, then uniform in it. */
    uint32_t b = sim_cmd_between(h2, sim_bits(a), sim_bits(hi));
    uint32_t from = b <= 1 ? 0 : 1u << (b - 1u), to = b >= 32 ? UINT32_MAX : (1u << b) - 1u;
    if (from < a)
        from = a;
    if (to > hi)
        to = hi;
    return sim_cmd_between(px_mix64(h2), from, to);
}

/* Word k (8 bytes, little endian) of the command of (key, increment, len). */
static uint64_t sim_cmd_word(uint64_t key, uint64_t increment, uint32_t len, uint32_t k)
{
    if (k == 0)
        return increment;
    if (k == 1)
        return (uint64_t)len | px_mix64(key ^ len) << 32;
    return px_mix64(key ^ ((uint64_t)k * PX_SPLITMIX64_GAMMA) ^ ((uint64_t)len << 40));
}

void sim_cmd_fill(uint64_t key, uint64_t increment, uint32_t len, uint8_t *out)
{
    for (uint32_t i = 0; i < len; i += 8) {
        uint64_t w = sim_cmd_word(key, increment, len, i / 8u);
        for (uint32_t b = 0; b < 8 && i + b < len; b++)
            out[i + b] = (uint8_t)(w >> (8u * b));
    }
}

uint32_t sim_cmd_mismatch(uint64_t key, uint64_t increment, uint32_t len, const uint8_t *bytes)
{
    for (uint32_t i = 0; i < len; i += 8) {
        uint64_t w = sim_cmd_word(key, increment, len, i / 8u);
        for (uint32_t b = 0; b < 8 && i + b < len; b++)
            if (bytes[i + b] != (uint8_t)(w >> (8u * b)))
                return i + b;
    }
    return len;
}
