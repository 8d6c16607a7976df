/*
 * Linux calls the collector needs that Swift cannot import directly:
 * variadic functions (prctl, syscall), function-like macros (W*) and
 * headers outside Glibc's module (sys/xattr.h).
 */
#ifndef CMEMSIFT_SYS_H
#define CMEMSIFT_SYS_H

#include <sys/types.h>

/* Makes the caller a child subreaper: orphaned descendants are reparented to
 * it, so it can wait for every process of a run. Returns 0 or -errno. */
int CMemsiftSys_setChildSubreaper(void);

/* pidfd_open(2): a descriptor that polls readable once `pid` has exited.
 * Returns the descriptor or -errno. */
int CMemsiftSys_pidfdOpen(pid_t pid);

/* Whether the pidfd's process has exited (non-blocking). */
int CMemsiftSys_pidfdExited(int pidfd);

/* Whether `path` carries file capabilities (the security.capability xattr). */
int CMemsiftSys_hasFileCapabilities(const char *path);

int CMemsiftSys_WIFEXITED(int status);
int CMemsiftSys_WEXITSTATUS(int status);
int CMemsiftSys_WIFSIGNALED(int status);
int CMemsiftSys_WTERMSIG(int status);

#endif
