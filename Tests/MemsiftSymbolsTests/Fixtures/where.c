/* Prints return addresses whose source lines are known, and the load bias
 * of the executable, for the symbolizer tests. Line numbers matter: the
 * tests name them. */
#define _GNU_SOURCE
#include <link.h>
#include <stdio.h>

__attribute__((noinline)) void *where(void) { return __builtin_return_address(0); }

static inline __attribute__((always_inline)) void *inlined_helper(void) {
    return where(); /* line 11 */
}

__attribute__((noinline)) void *plain_caller(void) {
    void *p = where(); /* line 15 */
    __asm__ volatile("" ::: "memory");
    return p;
}

static int first_bias(struct dl_phdr_info *info, size_t size, void *out) {
    (void)size;
    *(unsigned long *)out = info->dlpi_addr;
    return 1;
}

int main(void) {
    unsigned long bias = 0;
    dl_iterate_phdr(first_bias, &bias);
    void *a = plain_caller();
    void *b = inlined_helper(); /* line 30 */
    printf("%lx %lx %lx\n", bias, (unsigned long)a, (unsigned long)b);
    return 0;
}
