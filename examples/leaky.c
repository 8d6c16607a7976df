/* An example for the README: a "service" whose cache grows and never shrinks,
 * next to request buffers that are freed. Run it under memsift to see the
 * leak and the peak. */
#include <stdlib.h>
#include <string.h>

struct entry {
    struct entry *next;
    char payload[240];
};

static struct entry *cache;

__attribute__((noinline)) static void remember(int request) {
    struct entry *e = malloc(sizeof *e); /* never evicted: grows forever */
    memset(e->payload, request & 0xff, sizeof e->payload);
    e->next = cache;
    cache = e;
}

/* Reads the buffer, so the compiler cannot drop the malloc/free pair. */
__attribute__((noinline)) static unsigned checksum(const char *buffer, size_t n) {
    unsigned sum = 0;
    for (size_t i = 0; i < n; i += 64) sum += (unsigned char)buffer[i];
    return sum;
}

static unsigned total;

__attribute__((noinline)) static void handle(int request) {
    size_t size = 4096 + (size_t)(request % 64) * 64;
    char *buffer = malloc(size); /* freed: temporary */
    memset(buffer, request & 0xff, size);
    total += checksum(buffer, size);
    if (request % 10 == 0) remember(request);
    free(buffer);
}

int main(void) {
    for (int request = 0; request < 10000; request++) handle(request);
    return total == 1 ? 1 : 0;
}
