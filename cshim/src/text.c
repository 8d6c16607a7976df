/*
 * Building paths and messages inside the target: no stdio (it allocates and
 * locks), no allocation.
 */
#include "internal.h"

#include <unistd.h>

size_t ms_append(char *buf, size_t at, size_t cap, const char *s) {
    while (*s && at + 1 < cap) buf[at++] = *s++;
    buf[at] = 0;
    return at;
}

size_t ms_append_u64(char *buf, size_t at, size_t cap, uint64_t v) {
    char digits[24];
    int d = 0;
    do {
        digits[d++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (d && at + 1 < cap) buf[at++] = digits[--d];
    buf[at] = 0;
    return at;
}

void ms_warn(const char *a, const char *b, const char *c, const char *d) {
    /* One write, so lines from several processes do not interleave. */
    char line[512];
    size_t n = ms_append(line, 0, sizeof line - 1, "memsift: ");
    const char *parts[] = {a, b, c, d};
    for (size_t i = 0; i < 4; i++)
        if (parts[i]) n = ms_append(line, n, sizeof line - 1, parts[i]);
    line[n++] = '\n';
    ssize_t ignored = write(STDERR_FILENO, line, n);
    (void)ignored;
}
