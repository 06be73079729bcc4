/* pool_file.h: the pool file of a pool that spans several hosts (INI, documented in README.md
 * "A pool across hosts").
 *
 *   [pool]                      the pool as a whole
 *   nodes = 9                   node ids 0..nodes-1, 1..64
 *   proposers = 3               nodes 0..P-1 propose (default min(3, nodes))
 *   acceptors = 9               nodes 0..A-1 accept (default nodes)
 *   learners = 9                the last L nodes learn (default nodes)
 *   [host NAME]                 one per host, in order; the first one runs the client
 *   address = 10.7.0.1          IPv4 or IPv6 literal: the only address this host binds
 *   port = 7400                 TCP port, 1..65535
 *   nodes = 0-2                 the node ids this host runs: ids and ranges, comma separated
 *   public_key = <40 Z85 chars> the host's CURVE public key (paxos-shm-keygen prints it)
 *   secret_key_file = a.key     where that host finds its secret key (relative paths are
 *                               relative to the pool file's directory)
 * Blank lines and lines starting with '#' or ';' are ignored. Every node id belongs to exactly
 * one host; names, address:port pairs and public keys are unique.
 *
 * Context: plain parsing, any process; no allocation. */
#ifndef PX_NET_POOL_FILE_H
#define PX_NET_POOL_FILE_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

/* Hosts in one pool: more than a pool of 64 nodes can usefully spread over. */
#define NET_HOSTS_MAX 16
/* A host name: short, it names the host in error lines and on the command line. */
#define NET_HOST_NAME_MAX 32
/* An address literal (INET6_ADDRSTRLEN is 46). */
#define NET_ADDRESS_MAX 64
/* Z85 text of a 32-byte CURVE key. */
#define NET_KEY_TEXT_BYTES 40
/* Node ids a pool file may name (PX_NODES_MAX). */
#define NET_NODES_MAX 64

struct net_host {
    char name[NET_HOST_NAME_MAX];
    char address[NET_ADDRESS_MAX];
    uint16_t port;
    uint64_t nodes_mask; /* bit i: node i runs on this host */
    char public_key[NET_KEY_TEXT_BYTES + 1];
    char secret_key_file[PATH_MAX]; /* resolved against the pool file's directory */
};

struct net_pool {
    uint32_t nodes, proposers, acceptors, learners;
    uint32_t hosts;
    struct net_host host[NET_HOSTS_MAX];
    uint8_t host_of[NET_NODES_MAX]; /* the host index of every node id < nodes */
};

/* Reads and checks the pool file at path. 0, or -1 with one line "path:line: what is wrong"
 * (or "path: ..." for whole-file problems) in err. */
int net_pool_load(const char *path, struct net_pool *out, char *err, size_t err_len);
/* The index of host `name`, or -1. */
int net_pool_host_index(const struct net_pool *p, const char *name);
/* Reads the secret key of host h from its secret_key_file (40 Z85 characters, a trailing
 * newline allowed; a file that group or others may read, write or execute is refused, as ssh
 * refuses such a private key) and checks that it belongs to the host's public_key. 0, or -1
 * with one line in err. */
int net_pool_read_secret(const struct net_pool *p, uint32_t h, char out[NET_KEY_TEXT_BYTES + 1],
                         char *err, size_t err_len);

#endif
