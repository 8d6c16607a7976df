#define _GNU_SOURCE
#include "CMemsiftSys.h"

#include <errno.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

int CMemsiftSys_setChildSubreaper(void) { return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0 ? 0 : -errno; }

int CMemsiftSys_pidfdOpen(pid_t pid) {
    long fd = syscall(SYS_pidfd_open, pid, 0);
    return fd >= 0 ? (int)fd : -errno;
}

int CMemsiftSys_pidfdExited(int pidfd) {
    struct pollfd p = {.fd = pidfd, .events = POLLIN};
    return poll(&p, 1, 0) > 0 && (p.revents & (POLLIN | POLLHUP | POLLERR));
}

int CMemsiftSys_WIFEXITED(int status) { return WIFEXITED(status); }
int CMemsiftSys_WEXITSTATUS(int status) { return WEXITSTATUS(status); }
int CMemsiftSys_WIFSIGNALED(int status) { return WIFSIGNALED(status); }
int CMemsiftSys_WTERMSIG(int status) { return WTERMSIG(status); }

int CMemsiftSys_hasFileCapabilities(const char *path) {
    return getxattr(path, "security.capability", NULL, 0) > 0;
}
