/* The seam's <sys/mount.h>: macOS's struct statfs (the fields mac.c reads) and statfs(2). */
#ifndef SEAM_SYS_MOUNT_H
#define SEAM_SYS_MOUNT_H
#include <stdint.h>
struct statfs {
  uint32_t f_bsize;
  char f_fstypename[16];
  char f_mntonname[1024];
};
int statfs(const char *path, struct statfs *buf);
#endif
