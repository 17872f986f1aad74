/*
 * The macOS fake: clonefile(2) and its siblings, renameatx_np(2), chflags(2), getattrlist(2)
 * and the xattr/acl calls with macOS signatures, run on the real Linux filesystem under the
 * rules of xnu and the man pages; plus the libc calls seam-mac.h routes here so that BSD
 * flags and filesystems without hard links behave as on macOS. Compiled without seam-mac.h:
 * inside this file every call is the real Linux one.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "../seam.h"

/* The values of seam-mac.h and the fake headers (not included here: they shadow Linux's). */
#define UF_IMMUTABLE 0x00000002
#define UF_APPEND 0x00000004
#define SF_IMMUTABLE 0x00020000
#define SF_APPEND 0x00040000
#define LOCKED (UF_IMMUTABLE | UF_APPEND | SF_IMMUTABLE | SF_APPEND)
#define CLONE_NOFOLLOW 0x0001
#define CLONE_ACL 0x0004
#define RENAME_EXCL 0x00000004
#define RENAME_SWAP 0x00000002

/* ---- injections and the call log: seam.c ---- */

enum { MAX = 64 };

/* Records the call; returns -1 with errno set when a failure is injected for it. */
static int enter(const char *call, unsigned long arg) {
  long err = seam_enter(call, arg);
  if (err == 0) return 0;
  errno = (int)err;
  return -1;
}

/* ---- BSD flags: kept per inode, as the filesystem keeps them ---- */

static struct {
  dev_t dev;
  ino_t ino;
  uint32_t flags;
} flags_tab[MAX];
static int n_flags;

static uint32_t *flags_slot(dev_t dev, ino_t ino, int make) {
  for (int i = 0; i < n_flags; i++)
    if (flags_tab[i].dev == dev && flags_tab[i].ino == ino) return &flags_tab[i].flags;
  if (!make || n_flags == MAX) return NULL;
  flags_tab[n_flags].dev = dev;
  flags_tab[n_flags].ino = ino;
  flags_tab[n_flags].flags = 0;
  return &flags_tab[n_flags++].flags;
}

static uint32_t flags_of(const struct stat *st) {
  uint32_t *f = flags_slot(st->st_dev, st->st_ino, 0);
  return f ? *f : 0;
}

/* The flags of the entry (dir, name), not following a final symlink. */
static uint32_t flags_at(int dir, const char *name) {
  struct stat st;
  return fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0 ? flags_of(&st) : 0;
}

int fchflags(int fd, unsigned int flags) {
  struct stat st;
  if (enter("fchflags", flags) < 0) return -1;
  if (fstat(fd, &st) != 0) return -1;
  /* chflags(2): "Only the super-user can change the SF_ flags" (EPERM otherwise). */
  if (geteuid() != 0 && ((flags ^ flags_of(&st)) & (SF_IMMUTABLE | SF_APPEND))) return errno = EPERM, -1;
  *flags_slot(st.st_dev, st.st_ino, 1) = flags;
  return 0;
}

int chflags(const char *path, unsigned int flags) {
  int fd = open(path, O_PATH | O_NOFOLLOW);
  if (fd < 0) return -1;
  int rc = fchflags(fd, flags);
  close(fd);
  return rc;
}

/* The stat calls fill st_flags (seam-mac.h: a reserved field of glibc's struct stat). */
int seam_fstat(int fd, struct stat *st) {
  if (fstat(fd, st) != 0) return -1;
  st->__glibc_reserved[0] = flags_of(st);
  return 0;
}

int seam_fstatat(int dir, const char *name, struct stat *st, int how) {
  if (fstatat(dir, name, st, how) != 0) return -1;
  st->__glibc_reserved[0] = flags_of(st);
  return 0;
}

/* What the BSD flags forbid (EPERM): renaming, unlinking or changing an immutable or
 * append-only entry. */
int seam_renameat(int fd1, const char *n1, int fd2, const char *n2) {
  if (enter("renameat", 0) < 0) return -1;
  if (flags_at(fd1, n1) & LOCKED) return errno = EPERM, -1;
  if (flags_at(fd2, n2) & LOCKED) return errno = EPERM, -1;
  return renameat(fd1, n1, fd2, n2);
}

int seam_unlinkat(int dir, const char *name, int how) {
  if (enter("unlinkat", (unsigned long)how) < 0) return -1;
  if (flags_at(dir, name) & LOCKED) return errno = EPERM, -1;
  return unlinkat(dir, name, how);
}

int seam_fchmodat(int dir, const char *name, mode_t mode, int how) {
  if (enter("fchmodat", mode) < 0) return -1;
  if (flags_at(dir, name) & LOCKED) return errno = EPERM, -1;
  return fchmodat(dir, name, mode, how);
}

int seam_fchownat(int dir, const char *name, uid_t uid, gid_t gid, int how) {
  if (enter("fchownat", uid) < 0) return -1;
  if (flags_at(dir, name) & LOCKED) return errno = EPERM, -1;
  return fchownat(dir, name, uid, gid, how);
}

/* link(2): msdosfs, exFAT and SMB have no hard links (inject ENOTSUP). */
int seam_linkat(int fd1, const char *n1, int fd2, const char *n2, int how) {
  if (enter("linkat", (unsigned long)how) < 0) return -1;
  return linkat(fd1, n1, fd2, n2, how);
}

/* renameatx_np(2): RENAME_EXCL is "EEXIST if to exists"; filesystems without it say ENOTSUP
 * (inject it). RENAME_SWAP exchanges the two (Linux's RENAME_EXCHANGE); both flags together
 * are EINVAL. Immutable entries: EPERM, as for rename(2). */
int renameatx_np(int fromfd, const char *from, int tofd, const char *to, unsigned int flags) {
  if (enter("renameatx_np", flags) < 0) return -1;
  if (flags_at(fromfd, from) & LOCKED) return errno = EPERM, -1;
  if ((flags & RENAME_SWAP) && (flags_at(tofd, to) & LOCKED)) return errno = EPERM, -1;
  if ((flags & ~(unsigned)(RENAME_EXCL | RENAME_SWAP)) || flags == (RENAME_EXCL | RENAME_SWAP)) return errno = EINVAL, -1;
  unsigned how = (flags & RENAME_EXCL) ? RENAME_NOREPLACE : (flags & RENAME_SWAP) ? RENAME_EXCHANGE : 0;
  return renameat2(fromfd, from, tofd, to, how);
}

/* ---- clonefile(2), as xnu's clonefile_internal() does it ---- */

/* The data, mode (without setuid/setgid: clonefile(2)) and BSD flags of the open regular file
 * sfd, into a new file at (dir, name). */
static int clone_into(int sfd, int dir, const char *name) {
  struct stat st;
  if (fstat(sfd, &st) != 0) return -1;
  int dfd = openat(dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, st.st_mode & 0777);
  if (dfd < 0) return -1;
  char buf[65536];
  ssize_t r;
  off_t off = 0;
  while ((r = pread(sfd, buf, sizeof buf, off)) > 0) {
    if (write(dfd, buf, (size_t)r) != r) {
      close(dfd);
      return -1;
    }
    off += r;
  }
  struct stat dst;
  fchmod(dfd, st.st_mode & 01777);
  fstat(dfd, &dst);
  if (flags_of(&st)) *flags_slot(dst.st_dev, dst.st_ino, 1) = flags_of(&st);
  close(dfd);
  return r < 0 ? -1 : 0;
}

/* The destination lookup: NDINIT(CREATE, follow = CLONE_NOFOLLOW ? NOFOLLOW : FOLLOW); an
 * existing entry is EEXIST; with FOLLOW a dangling symlink leads the creation to its target. */
static int dest_lookup(int dir, const char *name, uint32_t flags, int *cdir, char *cname, size_t size) {
  struct stat st;
  *cdir = dir;
  snprintf(cname, size, "%s", name);
  if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) != 0) return errno == ENOENT ? 0 : -1;
  if ((flags & CLONE_NOFOLLOW) || !S_ISLNK(st.st_mode)) return errno = EEXIST, -1;
  if (fstatat(dir, name, &st, 0) == 0) return errno = EEXIST, -1;
  ssize_t n = readlinkat(dir, name, cname, size - 1);
  if (n < 0) return -1;
  cname[n] = '\0'; /* followed: the clone is made where the link points */
  return 0;
}

int fclonefileat(int srcfd, int dst_dirfd, const char *dst, uint32_t flags) {
  if (enter("fclonefileat", flags) < 0) return -1;
  if (flags & ~(uint32_t)(CLONE_NOFOLLOW | 0x2 | CLONE_ACL)) return errno = EINVAL, -1;
  struct stat st;
  if (fstat(srcfd, &st) != 0) return -1;
  if (!S_ISREG(st.st_mode)) return errno = S_ISDIR(st.st_mode) ? ENOTSUP : EINVAL, -1; /* the fake clones files only */
  int cdir;
  char cname[PATH_MAX];
  if (dest_lookup(dst_dirfd, dst, flags, &cdir, cname, sizeof cname) != 0) return -1;
  return clone_into(srcfd, cdir, cname);
}

int clonefileat(int src_dirfd, const char *src, int dst_dirfd, const char *dst, uint32_t flags) {
  if (enter("clonefileat", flags) < 0) return -1;
  struct stat st;
  if (fstatat(src_dirfd, src, &st, (flags & CLONE_NOFOLLOW) ? AT_SYMLINK_NOFOLLOW : 0) != 0) return -1;
  int cdir;
  char cname[PATH_MAX];
  if (dest_lookup(dst_dirfd, dst, flags, &cdir, cname, sizeof cname) != 0) return -1;
  if (S_ISLNK(st.st_mode)) { /* CLONE_NOFOLLOW: "The symbolic link is itself cloned" */
    char target[PATH_MAX];
    ssize_t n = readlinkat(src_dirfd, src, target, sizeof target - 1);
    if (n < 0) return -1;
    target[n] = '\0';
    if (symlinkat(target, cdir, cname) != 0) return -1;
    struct stat made;
    if (flags_of(&st) && fstatat(cdir, cname, &made, AT_SYMLINK_NOFOLLOW) == 0)
      *flags_slot(made.st_dev, made.st_ino, 1) = flags_of(&st);
    return 0;
  }
  int sfd = openat(src_dirfd, src, O_RDONLY | O_CLOEXEC);
  if (sfd < 0) return -1;
  int rc = S_ISREG(st.st_mode) ? clone_into(sfd, cdir, cname) : (errno = ENOTSUP, -1);
  close(sfd);
  return rc;
}

int clonefile(const char *src, const char *dst, uint32_t flags) { return clonefileat(AT_FDCWD, src, AT_FDCWD, dst, flags); }

/* ---- the rest, as small as mac.c needs ---- */

/* The xattr calls with macOS's signatures (these replace libc's for the test program, which
 * uses none): the fake keeps no extended attributes. */
ssize_t flistxattr(int fd, char *names, size_t size, int options) {
  (void)fd, (void)names, (void)size, (void)options;
  return enter("flistxattr", 0) < 0 ? -1 : 0;
}
ssize_t fgetxattr(int fd, const char *name, void *value, size_t size, uint32_t position, int options) {
  (void)fd, (void)name, (void)value, (void)size, (void)position, (void)options;
  return enter("fgetxattr", 0) < 0 ? -1 : (errno = ENODATA, -1);
}
int fsetxattr(int fd, const char *name, const void *value, size_t size, uint32_t position, int options) {
  (void)fd, (void)name, (void)value, (void)size, (void)position, (void)options;
  return enter("fsetxattr", 0) < 0 ? -1 : 0;
}
int fremovexattr(int fd, const char *name, int options) {
  (void)fd, (void)name, (void)options;
  return enter("fremovexattr", 0) < 0 ? -1 : (errno = ENODATA, -1);
}

typedef struct seam_acl *acl_t;
acl_t acl_get_fd_np(int fd, int type) {
  (void)fd, (void)type;
  errno = ENOENT; /* no extended ACL */
  return NULL;
}
int acl_set_fd_np(int fd, acl_t acl, int type) {
  (void)fd, (void)acl, (void)type;
  return 0;
}
acl_t acl_init(int count) {
  static char empty;
  (void)count;
  return enter("acl_init", 0) < 0 ? NULL : (acl_t)(void *)&empty;
}
int acl_free(void *obj) {
  (void)obj;
  return 0;
}

struct seam_statfs {
  uint32_t f_bsize;
  char f_fstypename[16];
  char f_mntonname[1024];
};
int statfs(const char *path, struct seam_statfs *buf) {
  struct stat st;
  if (enter("statfs", 0) < 0 || stat(path, &st) != 0) return -1;
  memset(buf, 0, sizeof *buf);
  buf->f_bsize = 4096;
  snprintf(buf->f_fstypename, sizeof buf->f_fstypename, "apfs");
  snprintf(buf->f_mntonname, sizeof buf->f_mntonname, "/");
  return 0;
}

/* Volume capabilities: APFS says it clones. */
int getattrlist(const char *path, void *list, void *buf, size_t size, unsigned int options) {
  (void)path, (void)list, (void)options;
  if (enter("getattrlist", 0) < 0) return -1;
  uint32_t answer[9] = {sizeof answer, 0, 0x00010000, 0, 0, 0, 0x00010000, 0, 0};
  memcpy(buf, answer, size < sizeof answer ? size : sizeof answer);
  return 0;
}

int getattrlistat(int fd, const char *path, void *list, void *buf, size_t size, unsigned long options) {
  (void)fd, (void)path, (void)list, (void)buf, (void)size, (void)options;
  if (enter("getattrlistat", 0) < 0) return -1;
  return errno = ENOTSUP, -1;
}

/* The birth time (ATTR_CMN_CRTIME) of an open file: the fake answers the file's mtime (Linux
 * keeps no settable birth time) and records what is set. */
int fgetattrlist(int fd, void *list, void *buf, size_t size, unsigned int options) {
  (void)list, (void)options;
  struct stat st;
  if (enter("fgetattrlist", 0) < 0 || fstat(fd, &st) != 0) return -1;
  uint32_t length = 4 + sizeof(struct timespec);
  if (size < length) return errno = ERANGE, -1;
  memcpy(buf, &length, 4);
  memcpy((char *)buf + 4, &st.st_mtim, sizeof st.st_mtim);
  return 0;
}
int fsetattrlist(int fd, void *list, void *buf, size_t size, unsigned int options) {
  (void)list, (void)options, (void)size;
  struct timespec t;
  memcpy(&t, buf, sizeof t);
  if (enter("fsetattrlist", (unsigned long)t.tv_sec) < 0) return -1;
  struct stat st;
  return fstat(fd, &st);
}
