/* The seam's <sys/clonefile.h>: macOS's declarations (clonefile(2)). */
#ifndef SEAM_SYS_CLONEFILE_H
#define SEAM_SYS_CLONEFILE_H
#include <stdint.h>
#define CLONE_NOFOLLOW 0x0001
#define CLONE_NOOWNERCOPY 0x0002
#define CLONE_ACL 0x0004
int clonefile(const char *src, const char *dst, uint32_t flags);
int clonefileat(int src_dirfd, const char *src, int dst_dirfd, const char *dst, uint32_t flags);
int fclonefileat(int srcfd, int dst_dirfd, const char *dst, uint32_t flags);
#endif
