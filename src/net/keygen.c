/* keygen.c: paxos-shm-keygen FILE -- makes a CURVE key pair for one host of a pool: writes the
 * secret key to FILE (created, mode 0600, never overwritten) and prints the line for the
 * host's section of the pool file, "public_key = ...". Exit 0, 2 usage, 3 failure. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <zmq.h>

int main(int argc, char **argv)
{
    if (argc != 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: paxos-shm-keygen FILE  (writes the secret key to FILE, prints "
                        "the public key line for the pool file)\n");
        return argc == 2 && strcmp(argv[1], "--help") == 0 ? 0 : 2;
    }
    char pub[41], sec[41];
    if (zmq_curve_keypair(pub, sec) != 0) {
        fprintf(stderr, "paxos-shm-keygen: %s (libzmq without CURVE?)\n", zmq_strerror(errno));
        return 3;
    }
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "paxos-shm-keygen: %s: %s\n", argv[1], strerror(errno));
        return 3;
    }
    char line[42];
    memcpy(line, sec, 40);
    line[40] = '\n';
    ssize_t w = write(fd, line, 41);
    int e = errno;
    if (close(fd) != 0 && w == 41) {
        w = -1;
        e = errno;
    }
    if (w != 41) {
        fprintf(stderr, "paxos-shm-keygen: %s: %s\n", argv[1], w < 0 ? strerror(e) : "short write");
        unlink(argv[1]);
        return 3;
    }
    printf("public_key = %s\n", pub);
    return 0;
}
