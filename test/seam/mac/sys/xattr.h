/* The seam's <sys/xattr.h>: macOS's signatures (a position and options argument). */
#ifndef SEAM_SYS_XATTR_H
#define SEAM_SYS_XATTR_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
ssize_t flistxattr(int fd, char *namebuff, size_t size, int options);
ssize_t fgetxattr(int fd, const char *name, void *value, size_t size, uint32_t position, int options);
int fsetxattr(int fd, const char *name, const void *value, size_t size, uint32_t position, int options);
int fremovexattr(int fd, const char *name, int options);
#endif
