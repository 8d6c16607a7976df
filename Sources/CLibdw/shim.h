/* elfutils libdw/libdwfl for symbolization, and the two demanglers the
 * analyzer needs: the C++ ABI's (libstdc++) and the Swift runtime's. */
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <stddef.h>
#include <stdint.h>

char *__cxa_demangle(const char *mangled, char *buffer, size_t *length, int *status);

/* Exported by libswiftCore, which every Swift executable links. */
char *swift_demangle(const char *mangled, size_t length, char *buffer, size_t *buffer_size, uint32_t flags);
