/*
 * Linux: FICLONE / FICLONERANGE / FIDEDUPERANGE / FIEMAP, a physical copy that never shares
 * blocks (sendfile, not copy_file_range: copy_file_range reflinks on XFS and btrfs), the Linux
 * xattr API, renameat2, statfs/statx. What macOS shares is in posix.c.
 */
#define _GNU_SOURCE
#include "posix.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/btrfs.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <linux/limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#ifndef STATX_MNT_ID
#define STATX_MNT_ID 0x00001000U
#endif
#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

int px_rename_noreplace(int from_dir, const char *from, int to_dir, const char *to) {
  /* Through syscall(2): glibc has the wrapper only since 2.28, and Node's oldest targets
   * predate it. */
  return (int)syscall(SYS_renameat2, from_dir, from, to_dir, to, RENAME_NOREPLACE);
}

int px_rename_exchange(int from_dir, const char *from, int to_dir, const char *to) {
  return (int)syscall(SYS_renameat2, from_dir, from, to_dir, to, RENAME_EXCHANGE);
}

/* ---- the destination: never seen half made ---- */

enum { DEST_DIRECT, DEST_TMPFILE, DEST_NAMED };

typedef struct {
  px_at at;  /* dst */
  px_at tmp; /* the caller's temp (DEST_NAMED) */
  int fd;    /* >= 0 once made */
  int how;   /* DEST_* */
} dest_t;

/* An O_TMPFILE in the directory that holds dst: that of a resolved name is open already ("."
 * names it); a plain path's is its dirname. -1 with errno on failure. */
static int tmpfile_open(const px_at *dst, mode_t mode) {
  const char *slash = dst->dir == AT_FDCWD ? strrchr(dst->name, '/') : NULL;
  if (slash == NULL) return openat(dst->dir, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, mode);
  char *dir = slash == dst->name ? strdup("/") : strndup(dst->name, (size_t)(slash - dst->name));
  if (dir == NULL) {
    errno = ENOMEM;
    return -1;
  }
  int fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, mode);
  int e = errno;
  free(dir);
  errno = e;
  return fd;
}

/* Creates the file that becomes dst: in place (CF_DIRECT), nameless (O_TMPFILE), or under the
 * caller's temp where O_TMPFILE is refused or CF_OVERWRITE is to replace dst. O_CREAT|O_EXCL
 * never follows a symlink and never reuses an existing file. */
static int dest_open(cf_at dst, const char *temp, mode_t mode, uint32_t flags, dest_t *d, cf_error *err) {
  int follow = flags & CF_FOLLOW_DIRS;
  d->fd = -1;
  d->how = DEST_DIRECT;
  d->tmp.owned = 0;
  if (px_resolve(dst, follow, 1, &d->at, err) < 0) return -err->errnum;
  if (flags & CF_DIRECT) {
    d->fd = openat(d->at.dir, d->at.name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    return d->fd < 0 ? fail(err, "open", errno, 1) : 0;
  }
  if (!(flags & CF_OVERWRITE)) {
    d->how = DEST_TMPFILE;
    if ((d->fd = tmpfile_open(&d->at, mode)) >= 0) return 0;
    /* O_TMPFILE is refused by filesystems that lack it (EOPNOTSUPP, EISDIR on old kernels). */
    if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL) return fail(err, "open", errno, 1);
  }
  d->how = DEST_NAMED;
  if (temp == NULL) return fail(err, "open", EINVAL, 1);
  if (px_resolve((cf_at){dst.dir, temp}, follow, 1, &d->tmp, err) < 0) return -err->errnum;
  d->fd = openat(d->tmp.dir, d->tmp.name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  return d->fd < 0 ? fail(err, "open", errno, 1) : 0;
}

/* linkat(2): AT_EMPTY_PATH names the open file itself but needs CAP_DAC_READ_SEARCH; without
 * it (ENOENT), the /proc/self/fd magic link does the same for the file's opener. */
static int link_tmpfile(int fd, const px_at *dst) {
  static int empty_path_refused;
  int refused = __atomic_load_n(&empty_path_refused, __ATOMIC_RELAXED);
  if (!refused) {
    if (linkat(fd, "", dst->dir, dst->name, AT_EMPTY_PATH) == 0) return 0;
    if (errno != ENOENT && errno != EPERM) return -1;
  }
  char proc[64];
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
  int rc = linkat(AT_FDCWD, proc, dst->dir, dst->name, AT_SYMLINK_FOLLOW);
  /* Only a /proc link that works where AT_EMPTY_PATH did not proves the capability missing. */
  if (rc == 0 && !refused) __atomic_store_n(&empty_path_refused, 1, __ATOMIC_RELAXED);
  return rc;
}

/* Gives the finished file its name. Without CF_OVERWRITE an existing dst is EEXIST. */
static int dest_publish(dest_t *d, uint32_t flags, cf_error *err) {
  if (d->how == DEST_DIRECT) return 0;
  if (d->how == DEST_TMPFILE) return link_tmpfile(d->fd, &d->at) == 0 ? 0 : fail(err, "link", errno, 1);
  return px_publish(&d->tmp, &d->at, (flags & CF_OVERWRITE) != 0, err);
}

/* Closes the file; after a failure (rc < 0) removes what dest_open made. */
static void dest_close(dest_t *d, int rc) {
  if (d->fd >= 0) {
    close(d->fd);
    if (rc < 0 && d->how == DEST_DIRECT) unlinkat(d->at.dir, d->at.name, 0);
    if (rc < 0 && d->how == DEST_NAMED) unlinkat(d->tmp.dir, d->tmp.name, 0);
  }
  px_release(&d->tmp);
  px_release(&d->at);
}

/* ---- data ---- */

/* Copies [off, end) and returns where it stopped (before `end` if the source shrank). */
static off_t copy_bytes(int sfd, int dfd, off_t off, off_t end, cf_error *err) {
  while (off < end) {
    if (lseek(dfd, off, SEEK_SET) < 0) return fail(err, "lseek", errno, 1);
    size_t want = (size_t)(end - off) > (1u << 30) ? (1u << 30) : (size_t)(end - off);
    ssize_t n = sendfile(dfd, sfd, &off, want);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail(err, "sendfile", errno, 0);
    }
    if (n == 0) break; /* the source shrank under us */
  }
  return off;
}

/* Writes all n bytes at off (off < 0: at the file's position); *done counts those written, even
 * when it fails half way. */
static int write_all(int fd, const char *buf, size_t n, int64_t off, int64_t *done, cf_error *err) {
  for (size_t w = 0; w < n;) {
    ssize_t k = off < 0 ? write(fd, buf + w, n - w) : pwrite(fd, buf + w, n - w, (off_t)(off + (int64_t)w));
    if (k < 0 && errno == EINTR) continue;
    if (k < 0) return fail(err, "write", errno, 1);
    w += (size_t)k;
    *done += k;
  }
  return 0;
}

/* A file whose stat size is 0 may have content all the same (procfs, sysfs, some FUSE): read
 * to EOF, as GNU cp does. Returns the bytes copied. */
static int64_t copy_to_eof(int sfd, int dfd, cf_error *err) {
  char *buf = malloc(1 << 16);
  if (buf == NULL) return fail(err, "malloc", ENOMEM, 0);
  int64_t total = 0;
  int rc = 0;
  for (;;) {
    ssize_t n = read(sfd, buf, 1 << 16);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n < 0) rc = fail(err, "read", errno, 0);
      break;
    }
    if ((rc = write_all(dfd, buf, (size_t)n, -1, &total, err)) < 0) break;
  }
  free(buf);
  return rc < 0 ? rc : total;
}

/* A physical copy that keeps holes, as cp does (SEEK_DATA/SEEK_HOLE). Returns the size copied. */
static int64_t copy_data(int sfd, int dfd, off_t size, cf_error *err) {
  if (size == 0) return copy_to_eof(sfd, dfd, err);
  off_t pos = 0, written = 0, end = size;
  while (pos < size) {
    off_t data = lseek(sfd, pos, SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) break; /* only a hole remains */
      /* No SEEK_DATA here: copy everything. */
      if ((written = copy_bytes(sfd, dfd, pos, size, err)) < 0) return -err->errnum;
      if (written < size) end = written; /* the source shrank under us */
      break;
    }
    off_t hole = lseek(sfd, data, SEEK_HOLE);
    if (hole < 0) hole = size;
    if ((written = copy_bytes(sfd, dfd, data, hole, err)) < 0) return -err->errnum;
    if (written < hole) {
      end = written; /* the source shrank under us: the copy ends where it did */
      break;
    }
    pos = hole;
  }
  /* A hole at the end leaves the copy short of its size. Only then: on XFS an ftruncate to
   * the size a file has already waits for its writeback (a tenth of a second for 1 GiB). */
  if (written != end && ftruncate(dfd, end) != 0) return fail(err, "ftruncate", errno, 1);
  return end;
}

/* ---- extended attributes, of an open file or of an entry (symlinks, FIFOs) by path ---- */

typedef struct {
  int fd;           /* >= 0: f*xattr */
  const char *path; /* else l*xattr: the entry itself, never what a symlink points to */
} xref;

static ssize_t x_list(const xref *x, char *buf, size_t size) {
  return x->fd >= 0 ? flistxattr(x->fd, buf, size) : llistxattr(x->path, buf, size);
}
static ssize_t x_get(const xref *x, const char *name, void *buf, size_t size) {
  return x->fd >= 0 ? fgetxattr(x->fd, name, buf, size) : lgetxattr(x->path, name, buf, size);
}
static int x_set(const xref *x, const char *name, const void *value, size_t size) {
  return x->fd >= 0 ? fsetxattr(x->fd, name, value, size, 0) : lsetxattr(x->path, name, value, size, 0);
}

static int is_acl_name(const char *name) {
  return strcmp(name, "system.posix_acl_access") == 0 || strcmp(name, "system.posix_acl_default") == 0;
}

/* Attributes that belong to one filesystem or one machine and are never copied, as
 * /etc/xattr.conf tells cp: XFS shows its own ACL copies to root as trusted.SGI_ACL_* (the
 * ACL itself comes through system.posix_acl_*), and EVM signatures are per machine. */
static int is_private_name(const char *name) {
  return strncmp(name, "trusted.SGI_", 12) == 0 || strncmp(name, "xfsroot.", 8) == 0 ||
         strcmp(name, "security.evm") == 0;
}

/* An attribute the destination cannot hold is left out, as cp -a does with a warning: no room
 * (ENOSPC), too big for this filesystem (E2BIG, ERANGE: ext4 without ea_inode), no such
 * attributes here (ENOTSUP), or a namespace an unprivileged process may not write (EPERM on
 * trusted.*, security.*). */
static int droppable(int e, const char *name) {
  if (e == ENOSPC || e == E2BIG || e == ERANGE || e == ENOTSUP) return 1;
  return e == EPERM && strncmp(name, "user.", 5) != 0 && !is_acl_name(name);
}

/* The names of x's attributes in *names (buf, or malloc'd where they do not fit): their total
 * length, or -1 with errno. */
static ssize_t list_names(const xref *x, char *buf, size_t size, char **names) {
  *names = buf;
  ssize_t len = x_list(x, buf, size);
  if (len >= 0 || errno != ERANGE) return len;
  if ((len = x_list(x, NULL, 0)) <= 0) return len;
  char *big = malloc((size_t)len);
  if (big == NULL) {
    errno = ENOMEM;
    return -1;
  }
  /* ERANGE again: one was added meanwhile. */
  if ((len = x_list(x, big, (size_t)len)) < 0) {
    int e = errno;
    free(big);
    errno = e;
    return -1;
  }
  *names = big;
  return len;
}

/* Returns 1 when it set an ACL, 0 when it set another attribute or left one out. */
static int copy_one(const xref *from, const xref *to, const char *name, char *value, cf_error *err) {
  ssize_t vlen = x_get(from, name, value, XATTR_SIZE_MAX);
  if (vlen < 0) return errno == ENODATA ? 0 : fail(err, "getxattr", errno, 0); /* ENODATA: removed */
  if (x_set(to, name, value, (size_t)vlen) == 0) return is_acl_name(name);
  int e = errno;
  if (!droppable(e, name)) return fail(err, "setxattr", e, 1);
  err->dropped = e;
  return 0;
}

/* Returns how many ACL attributes it set (>= 0), or a negative errno. */
static int copy_xattrs(const xref *from, const xref *to, uint32_t flags, cf_error *err) {
  char stackbuf[4096], *names, *value = NULL;
  ssize_t len = list_names(from, stackbuf, sizeof stackbuf, &names);
  if (len < 0) return errno == ENOTSUP ? 0 : fail(err, "listxattr", errno, 0);
  int rc = 0, acls = 0;
  for (char *name = names; name < names + len && rc >= 0; name += strlen(name) + 1) {
    if ((is_acl_name(name) && !(flags & CF_ACL)) || is_private_name(name)) continue;
    if (value == NULL && (value = malloc(XATTR_SIZE_MAX)) == NULL)
      rc = fail(err, "malloc", ENOMEM, 0);
    else if ((rc = copy_one(from, to, name, value, err)) > 0)
      acls += rc;
  }
  free(value);
  if (names != stackbuf) free(names);
  return rc < 0 ? rc : acls;
}

int px_copy_xattrs_fd(int sfd, int dfd, uint32_t flags, cf_error *err) {
  xref from = {sfd, NULL}, to = {dfd, NULL};
  return copy_xattrs(&from, &to, flags, err);
}

/* The path for l*xattr of an entry held as (directory, name): Linux has no *at xattr calls
 * before 6.13, so the directory is named by its /proc/self/fd link, which is the directory this
 * process holds (no path to it is resolved again, so nothing can redirect it), and l*xattr does
 * not follow the final component. NULL (ENAMETOOLONG) where it does not fit. */
static const char *entry_path(const px_at *at, char *buf, size_t size) {
  if (at->dir == AT_FDCWD) return at->name;
  int n = snprintf(buf, size, "/proc/self/fd/%d/%s", at->dir, at->name);
  return n > 0 && (size_t)n < size ? buf : NULL;
}

int px_copy_xattrs_at(const px_at *src, const px_at *dst, uint32_t flags, cf_error *err) {
  char sbuf[NAME_MAX + 64], dbuf[NAME_MAX + 64];
  xref from = {-1, entry_path(src, sbuf, sizeof sbuf)}, to = {-1, entry_path(dst, dbuf, sizeof dbuf)};
  if (from.path == NULL) return fail(err, "listxattr", ENAMETOOLONG, 0);
  if (to.path == NULL) return fail(err, "setxattr", ENAMETOOLONG, 1);
  return copy_xattrs(&from, &to, flags, err);
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Names (sorted) and values of x's attributes hashed, the filesystem's private ones left out. */
static int hash_xattrs(const xref *x, uint64_t *hash, cf_error *err) {
  char stackbuf[4096], *names, *value = NULL;
  const char **sorted = NULL;
  *hash = 0;
  ssize_t len = list_names(x, stackbuf, sizeof stackbuf, &names);
  if (len < 0) return errno == ENOTSUP ? 0 : fail(err, "listxattr", errno, 0);
  size_t n = 0, k = 0;
  for (char *name = names; name < names + len; name += strlen(name) + 1) n++;
  int rc = 0;
  if (n > 0 && ((sorted = malloc(n * sizeof *sorted)) == NULL || (value = malloc(XATTR_SIZE_MAX)) == NULL))
    rc = fail(err, "malloc", ENOMEM, 0);
  for (char *name = names; rc == 0 && name < names + len; name += strlen(name) + 1) sorted[k++] = name;
  if (rc == 0 && n > 1) qsort(sorted, n, sizeof *sorted, by_name);
  uint64_t h = PX_HASH0;
  for (size_t i = 0; rc == 0 && i < n; i++) {
    if (is_private_name(sorted[i])) continue;
    ssize_t vlen = x_get(x, sorted[i], value, XATTR_SIZE_MAX);
    if (vlen < 0 && errno == ENODATA) continue; /* removed since the listing */
    if (vlen < 0) rc = fail(err, "getxattr", errno, 0);
    else h = px_hash(px_hash(px_hash(h, sorted[i], strlen(sorted[i]) + 1), &vlen, sizeof vlen), value, (size_t)vlen);
  }
  if (rc == 0 && h != PX_HASH0) *hash = h;
  free(value);
  free(sorted);
  if (names != stackbuf) free(names);
  return rc;
}

int px_xattr_hash_fd(int fd, uint64_t *hash, cf_error *err) {
  xref x = {fd, NULL};
  return hash_xattrs(&x, hash, err);
}

int px_xattr_hash_at(const px_at *at, uint64_t *hash, cf_error *err) {
  char buf[NAME_MAX + 64];
  xref x = {-1, entry_path(at, buf, sizeof buf)};
  if (x.path == NULL) return fail(err, "listxattr", ENAMETOOLONG, 0);
  return hash_xattrs(&x, hash, err);
}

/* ---- btrfs subvolumes ---- */

int cf_subvol_snapshot(cf_at src, cf_at dst, int readonly, cf_error *err) {
  cf_stat st;
  int sfd = cf_open_dir(src, 0, &st, err);
  if (sfd < 0) return sfd;
  px_at d;
  int rc = px_resolve(dst, 0, 1, &d, err);
  if (rc == 0) {
    struct btrfs_ioctl_vol_args_v2 args;
    memset(&args, 0, sizeof args);
    args.fd = sfd;
    args.flags = readonly ? BTRFS_SUBVOL_RDONLY : 0;
    size_t len = strlen(d.name);
    if (len == 0 || len > BTRFS_SUBVOL_NAME_MAX || strchr(d.name, '/') != NULL) rc = fail(err, "ioctl_snap_create", EINVAL, 1);
    else {
      memcpy(args.name, d.name, len);
      int dirfd = d.dir, opened = -1;
      /* A plain path (CF_CWD): the ioctl goes to the directory that is to hold the snapshot. */
      if (dirfd == AT_FDCWD) dirfd = opened = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (dirfd < 0 || ioctl(dirfd, BTRFS_IOC_SNAP_CREATE_V2, &args) != 0) rc = fail(err, "ioctl_snap_create", errno, 1);
      if (opened >= 0) close(opened);
    }
    px_release(&d);
  }
  cf_close_dir(sfd);
  return rc;
}

int cf_subvol_delete(cf_at at, cf_error *err) {
  px_at d;
  int rc = px_resolve(at, 0, 1, &d, err);
  if (rc < 0) return rc;
  struct btrfs_ioctl_vol_args_v2 args;
  memset(&args, 0, sizeof args);
  size_t len = strlen(d.name);
  int dirfd = d.dir, opened = -1;
  if (dirfd == AT_FDCWD) dirfd = opened = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (len == 0 || len > BTRFS_SUBVOL_NAME_MAX || strchr(d.name, '/') != NULL) rc = fail(err, "ioctl_snap_destroy", EINVAL, 1);
  else {
    memcpy(args.name, d.name, len);
    if (dirfd < 0 || ioctl(dirfd, BTRFS_IOC_SNAP_DESTROY_V2, &args) != 0) rc = fail(err, "ioctl_snap_destroy", errno, 1);
  }
  if (opened >= 0) close(opened);
  px_release(&d);
  return rc;
}

/* ---- whole file ---- */

/* Clones or copies the open regular file sfd to a new dst, with its metadata. */
static int clone_fd(int sfd, cf_at dst, const char *temp, int method, uint32_t flags, cf_clone_out *out,
                    cf_error *err) {
  struct stat st;
  if (fstat(sfd, &st) != 0) return fail(err, "fstat", errno, 0);
  if (!S_ISREG(st.st_mode))
    return fail(err, method == CF_METHOD_CLONE ? "ioctl_ficlone" : "copyfile", S_ISDIR(st.st_mode) ? EISDIR : EINVAL, 0);
  dest_t d;
  int rc = dest_open(dst, temp, st.st_mode & 0777, flags, &d, err);
  int64_t size = st.st_size;
  if (rc == 0 && method == CF_METHOD_CLONE && ioctl(d.fd, FICLONE, sfd) != 0) rc = fail(err, "ioctl_ficlone", errno, 0);
  if (rc == 0 && method != CF_METHOD_CLONE && (size = copy_data(sfd, d.fd, st.st_size, err)) < 0) rc = (int)size;
  if (rc == 0) rc = px_copy_meta_fd(sfd, d.fd, &st, flags, err);
  if (rc == 0) rc = dest_publish(&d, flags, err);
  if (rc == 0) out->size = (uint64_t)size;
  dest_close(&d, rc);
  return rc;
}

int cf_clone_file(const cf_file *src, cf_at dst, const char *temp, int method, uint32_t flags,
                  cf_clone_out *out, cf_error *err) {
  out->size = 0;
  if (src->fd >= 0) return clone_fd(src->fd, dst, temp, method, flags, out, err);
  px_at s;
  if (px_resolve(src->at, flags & CF_FOLLOW_DIRS, 0, &s, err) < 0) return -err->errnum;
  /* O_NONBLOCK: opening a FIFO must not hang; it is refused in clone_fd. */
  int nofollow = (flags & CF_NOFOLLOW) ? O_NOFOLLOW : 0;
  int sfd = openat(s.dir, s.name, O_RDONLY | O_CLOEXEC | O_NONBLOCK | nofollow);
  int e = errno;
  struct stat lst;
  int symlink = sfd < 0 && e == ELOOP && nofollow && fstatat(s.dir, s.name, &lst, AT_SYMLINK_NOFOLLOW) == 0 &&
                S_ISLNK(lst.st_mode);
  px_release(&s);
  if (symlink) return cf_copy_symlink(src->at, dst, temp, flags, err);
  if (sfd < 0) return fail(err, "open", e, 0);
  int rc = clone_fd(sfd, dst, temp, method, flags, out, err);
  close(sfd);
  return rc;
}

/* ---- ranges ---- */

static int64_t source_end(int fd, uint64_t offset, uint64_t length, cf_error *err) {
  if (length != 0) return (int64_t)(offset + length);
  struct stat st;
  if (fstat(fd, &st) != 0) return fail(err, "fstat", errno, 0);
  return st.st_size;
}

/* cf_clone_range's copy: pread/pwrite, which share nothing. A failure half way puts the bytes
 * written before it in err->bytes. */
static int64_t copy_range(int src_fd, int dst_fd, uint64_t src_offset, uint64_t dst_offset, int64_t n,
                          cf_error *err) {
  char *buf = malloc(1 << 20);
  if (buf == NULL) return fail(err, "malloc", ENOMEM, 0);
  int64_t done = 0;
  int rc = 0;
  while (done < n && rc == 0) {
    size_t want = (size_t)(n - done) < (1u << 20) ? (size_t)(n - done) : (1u << 20);
    ssize_t r = pread(src_fd, buf, want, (off_t)(src_offset + (uint64_t)done));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) rc = fail(err, "read", errno, 0);
    if (r <= 0) break; /* EOF before the range's end: copy what exists, as FICLONERANGE would refuse */
    rc = write_all(dst_fd, buf, (size_t)r, (int64_t)(dst_offset + (uint64_t)done), &done, err);
  }
  free(buf);
  if (rc < 0) err->bytes = (uint64_t)done;
  return rc < 0 ? rc : done;
}

int64_t cf_clone_range(int src_fd, int dst_fd, uint64_t src_offset, uint64_t dst_offset,
                       uint64_t length, int method, cf_error *err) {
  int64_t end = source_end(src_fd, src_offset, length, err);
  if (end < 0) return end;
  int64_t n = end > (int64_t)src_offset ? end - (int64_t)src_offset : 0;
  if (method != CF_METHOD_CLONE) return copy_range(src_fd, dst_fd, src_offset, dst_offset, n, err);
  struct file_clone_range r = {
      .src_fd = src_fd, .src_offset = src_offset, .src_length = length, .dest_offset = dst_offset};
  if (ioctl(dst_fd, FICLONERANGE, &r) != 0) return fail(err, "ioctl_ficlonerange", errno, 0);
  return n;
}

int64_t cf_dedupe_range(int src_fd, int dst_fd, uint64_t src_offset, uint64_t dst_offset,
                        uint64_t length, cf_error *err) {
  /* The header's info[] is a flexible array: a union gives it room for one entry without
   * the GNU extension of a flexible struct inside another (clang rejects that with -Werror). */
  union {
    struct file_dedupe_range head;
    char room[sizeof(struct file_dedupe_range) + sizeof(struct file_dedupe_range_info)];
  } r;
  struct file_dedupe_range_info *info = &r.head.info[0];
  memset(&r, 0, sizeof r);
  int64_t total = 0;
  /* The kernel caps one call (1 GiB, 16 MiB on btrfs): loop on bytes_deduped. */
  while ((uint64_t)total < length) {
    r.head.src_offset = src_offset + (uint64_t)total;
    r.head.src_length = length - (uint64_t)total;
    r.head.dest_count = 1;
    info->dest_fd = dst_fd;
    info->dest_offset = dst_offset + (uint64_t)total;
    info->bytes_deduped = 0;
    info->status = 0;
    if (ioctl(src_fd, FIDEDUPERANGE, &r.head) != 0) return fail(err, "ioctl_fideduperange", errno, 0);
    if (info->status == FILE_DEDUPE_RANGE_DIFFERS) return fail(err, "ioctl_fideduperange", EBADE, 1);
    if (info->status < 0) return fail(err, "ioctl_fideduperange", -info->status, 1);
    if (info->bytes_deduped == 0) break;
    total += (int64_t)info->bytes_deduped;
  }
  return total;
}

/* The most destinations one FIDEDUPERANGE takes: the kernel refuses a struct larger than a
 * page (4096 / 32 - 1 = 127); duperemove uses 120. */
#define DEDUPE_DESTS 120
/* How far ahead of the kernel's compare each file is read (posix_fadvise WILLNEED). */
#define DEDUPE_WINDOW ((uint64_t)32 << 20)

/* The extent map of each open file into maps[i] (NULL, 0 where it cannot be read). */
static void map_all(const int *fds, uint32_t n, cf_extent **maps, uint32_t *counts) {
  for (uint32_t i = 0; maps != NULL && i < n; i++) {
    cf_error e = {0};
    maps[i] = NULL;
    counts[i] = 0;
    if (fds[i] >= 0 && px_extents_fd(fds[i], &maps[i], &counts[i], &e) < 0) maps[i] = NULL, counts[i] = 0;
  }
}

int cf_dedupe_files(const cf_at *at, uint32_t n, uint64_t length, int32_t *status, uint64_t *deduped,
                    cf_stat *before, cf_stat *after, cf_extent **maps, uint32_t *map_counts, cf_error *err) {
  int *fds = calloc(n > 0 ? n : 1, sizeof(int));
  struct file_dedupe_range *r = calloc(1, sizeof(struct file_dedupe_range) + DEDUPE_DESTS * sizeof(struct file_dedupe_range_info));
  uint32_t *live = calloc(n > 0 ? n : 1, sizeof(uint32_t));
  int rc = 0;
  if (fds == NULL || r == NULL || live == NULL) {
    rc = fail(err, "malloc", ENOMEM, 0);
    goto out;
  }
  for (uint32_t i = 0; i < n; i++) {
    struct stat st;
    cf_error e = {0};
    deduped[i] = 0;
    fds[i] = px_open_read(at[i], &st, &e);
    status[i] = fds[i] < 0 ? -e.errnum : 0;
    if (fds[i] >= 0) px_stat_into(&before[i], &st);
  }
  if (fds[0] < 0) {
    rc = fail(err, "open", -status[0], 0);
    goto out;
  }
  map_all(fds, n, maps, map_counts);
  /* Destinations still going, chunk after chunk: the kernel caps one call (16 MiB on btrfs,
   * 1 GiB elsewhere), and says how far it went in bytes_deduped. */
  for (uint32_t first = 1; first < n; first += DEDUPE_DESTS) {
    uint32_t end = first + DEDUPE_DESTS < n ? first + DEDUPE_DESTS : n;
    uint64_t off = 0;
    while (off < length) {
      uint32_t m = 0;
      for (uint32_t i = first; i < end; i++) {
        if (status[i] != 0 || deduped[i] != off) continue;
        live[m] = i;
        r->info[m] = (struct file_dedupe_range_info){.dest_fd = fds[i], .dest_offset = off};
        m++;
      }
      if (m == 0) break;
      /* The kernel compares page by page (read_mapping_folio), with no readahead: on a cold
       * cache it would read 4 KiB at a time. Ask for the next window of every file at once. */
      uint64_t window = length - off < DEDUPE_WINDOW ? length - off : DEDUPE_WINDOW;
      if (first == 1 || off > 0) posix_fadvise(fds[0], (off_t)off, (off_t)window, POSIX_FADV_WILLNEED);
      for (uint32_t k = 0; k < m; k++) posix_fadvise(fds[live[k]], (off_t)off, (off_t)window, POSIX_FADV_WILLNEED);
      r->src_offset = off;
      r->src_length = length - off;
      r->dest_count = (uint16_t)m;
      r->reserved1 = 0;
      r->reserved2 = 0;
      if (ioctl(fds[0], FIDEDUPERANGE, r) != 0) {
        int e = errno;
        for (uint32_t k = 0; k < m; k++) status[live[k]] = -e;
        break;
      }
      uint64_t step = 0;
      for (uint32_t k = 0; k < m; k++) {
        struct file_dedupe_range_info *info = &r->info[k];
        uint32_t i = live[k];
        if (info->status == FILE_DEDUPE_RANGE_DIFFERS) status[i] = -EBADE;
        else if (info->status < 0) status[i] = info->status;
        else if (info->bytes_deduped == 0) status[i] = -EIO;
        else {
          deduped[i] += info->bytes_deduped;
          if (step == 0 || info->bytes_deduped < step) step = info->bytes_deduped;
        }
      }
      if (step == 0) break;
      /* every destination moves on by the same amount (the kernel's cap applies to all); one that
       * went less far is left behind and stops the loop for itself */
      off += step;
    }
  }
  for (uint32_t i = 0; i < n; i++) {
    struct stat st;
    if (fds[i] >= 0 && fstat(fds[i], &st) == 0) px_stat_into(&after[i], &st);
    else if (fds[i] >= 0) memset(&after[i], 0, sizeof after[i]);
  }
  if (maps != NULL) map_all(fds, n, maps + n, map_counts + n);
out:
  for (uint32_t i = 0; fds != NULL && i < n; i++) if (fds[i] >= 0) close(fds[i]);
  free(fds);
  free(r);
  free(live);
  return rc;
}

/* Verify-then-swap is macOS's dedupe (FIDEDUPERANGE needs none here); the name is mac.c's. */
int cf_swap_files(const cf_at *at, const char *const *temps, uint32_t n, int32_t *status, uint64_t *deduped,
                  cf_stat *before, cf_stat *after, cf_error *err) {
  (void)at, (void)temps, (void)n, (void)status, (void)deduped, (void)before, (void)after;
  return fail(err, "renameatx_np", ENOTSUP, 0);
}

/* ---- filesystem facts ---- */

/* Linux names no filesystem type and says nothing of clones (XFS may be formatted without
 * reflink): TypeScript maps f_type, and a real clone decides. */
int cf_fs_info_get(const char *path, cf_fs_info *info, cf_error *err) {
  struct statfs sf;
  if (statfs(path, &sf) != 0) return fail(err, "statfs", errno, 0);
  memset(info, 0, sizeof *info);
  info->type = (uint64_t)(unsigned long)sf.f_type;
  info->block_size = (uint64_t)sf.f_bsize;
  info->can_clone = -1;
  struct statx stx;
  if (statx(AT_FDCWD, path, 0, STATX_MNT_ID, &stx) != 0) return fail(err, "statx", errno, 0);
  info->dev = ((uint64_t)stx.stx_dev_major << 32) | stx.stx_dev_minor;
  info->mount_id = (stx.stx_mask & STATX_MNT_ID) ? stx.stx_mnt_id : info->dev;
  return 0;
}

/* Room for n more extents in *out (capacity *cap). */
static int extents_grow(cf_extent **out, uint32_t count, uint32_t n, uint32_t *cap) {
  if (count + n <= *cap) return 0;
  *cap = (count + n) * 2;
  cf_extent *grown = realloc(*out, *cap * sizeof(cf_extent));
  if (grown == NULL) return -1;
  *out = grown;
  return 0;
}

/* The whole extent map of an open file. Most files have one or two extents: the first FIEMAP
 * call uses a buffer on the stack, and the result grows only as far as needed. */
int px_extents_fd(int fd, cf_extent **out, uint32_t *count, cf_error *err) {
  enum { BATCH = 32 };
  union {
    struct fiemap fm;
    char room[sizeof(struct fiemap) + BATCH * sizeof(struct fiemap_extent)];
  } buf;
  struct fiemap *fm = &buf.fm;
  *out = NULL;
  *count = 0;
  uint32_t cap = 0;
  int last = 0, rc = 0;
  uint64_t start = 0;
  while (!last && rc == 0) {
    memset(fm, 0, sizeof *fm);
    fm->fm_start = start;
    fm->fm_length = FIEMAP_MAX_OFFSET - start;
    fm->fm_flags = *count == 0 ? FIEMAP_FLAG_SYNC : 0;
    fm->fm_extent_count = BATCH;
    if (ioctl(fd, FS_IOC_FIEMAP, fm) != 0) rc = fail(err, "ioctl_fiemap", errno, 0);
    else if (fm->fm_mapped_extents == 0) break;
    else if (extents_grow(out, *count, fm->fm_mapped_extents, &cap) != 0) rc = fail(err, "malloc", ENOMEM, 0);
    for (uint32_t i = 0; rc == 0 && i < fm->fm_mapped_extents; i++) {
      struct fiemap_extent *fe = &fm->fm_extents[i];
      (*out)[(*count)++] = (cf_extent){fe->fe_logical, fe->fe_physical, fe->fe_length, fe->fe_flags};
      start = fe->fe_logical + fe->fe_length;
      if (fe->fe_flags & FIEMAP_EXTENT_LAST) last = 1;
    }
  }
  if (rc < 0) {
    free(*out);
    *out = NULL;
    *count = 0;
  }
  return rc;
}

int cf_extents(cf_at at, cf_extent **out, uint32_t *count, cf_error *err) {
  *out = NULL;
  *count = 0;
  px_at r;
  if (px_resolve(at, 0, 0, &r, err) < 0) return -err->errnum;
  int fd = openat(r.dir, r.name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  int rc = fd < 0 ? fail(err, "open", errno, 0) : px_extents_fd(fd, out, count, err);
  if (fd >= 0) close(fd);
  px_release(&r);
  return rc;
}

/* Linux has no per-file "private size": usage() maps extents instead (FIEMAP_EXTENT_SHARED).
 * The name is mac.c's so errors read alike. */
int cf_file_space_get(cf_at at, cf_file_space *out, cf_error *err) {
  (void)at;
  memset(out, 0, sizeof *out);
  return fail(err, "getattrlist", ENOTSUP, 0);
}
