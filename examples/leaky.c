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

__attribute__((noinline)) static void handle(int request) {
    char *buffer = malloc(4096 + (size_t)(request % 64) * 64); /* freed: temporary */
    memset(buffer, 0, 4096);
    if (request % 10 == 0) remember(request);
    free(buffer);
}

int main(void) {
    for (int request = 0; request < 10000; request++) handle(request);
    return 0;
}
