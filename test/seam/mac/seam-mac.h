/*
 * The macOS seam: force-included (-include) when mac.c and posix.c are compiled on Linux with
 * gcc for test/seam/mac-test.c. It supplies what macOS has and Linux lacks (names, flags,
 * st_flags) and routes the calls whose macOS behaviour the tests depend on to the fake in
 * mac-fake.c, which runs them on the real Linux filesystem under the rules xnu applies. The
 * fake headers beside it (sys/clonefile.h, sys/attr.h, sys/acl.h, sys/xattr.h, sys/mount.h)
 * shadow Linux's with macOS's declarations. What it does not model: ARCHITECTURE.md, "The
 * syscall seam".
 */
#ifndef SEAM_MAC_H
#define SEAM_MAC_H
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

/* <sys/stat.h> of macOS: the BSD file flags (chflags(2)) and st_flags, which glibc's struct
 * stat lacks: it borrows a reserved field, filled by the fake's fstat/fstatat. */
#define UF_IMMUTABLE 0x00000002
#define UF_APPEND 0x00000004
#define SF_IMMUTABLE 0x00020000
#define SF_APPEND 0x00040000
#define st_flags __glibc_reserved[0]

/* <fcntl.h> of macOS. O_SYMLINK opens a symlink itself: O_PATH | O_NOFOLLOW does on Linux. */
#define O_SYMLINK (O_PATH | O_NOFOLLOW)
#define F_GETPATH 50
#define ENOATTR ENODATA

/* <stdio.h> of macOS: renameatx_np(2). */
#define RENAME_SWAP 0x00000002
#define RENAME_EXCL 0x00000004
int renameatx_np(int fromfd, const char *from, int tofd, const char *to, unsigned int flags);

/* <unistd.h> of macOS: chflags(2). */
int fchflags(int fd, unsigned int flags);
int chflags(const char *path, unsigned int flags);

/* The libc calls the fake observes or refuses as macOS would (immutable files, filesystems
 * without hard links); mac-fake.c defines them over the real ones. */
int seam_fstat(int fd, struct stat *st);
int seam_fstatat(int dir, const char *name, struct stat *st, int flags);
int seam_linkat(int fd1, const char *n1, int fd2, const char *n2, int flags);
int seam_renameat(int fd1, const char *n1, int fd2, const char *n2);
int seam_unlinkat(int dir, const char *name, int flags);
int seam_fchmodat(int dir, const char *name, mode_t mode, int flags);
int seam_fchownat(int dir, const char *name, uid_t uid, gid_t gid, int flags);
#define fstat seam_fstat
#define fstatat seam_fstatat
#define linkat seam_linkat
#define renameat seam_renameat
#define unlinkat seam_unlinkat
#define fchmodat seam_fchmodat
#define fchownat seam_fchownat

#endif
