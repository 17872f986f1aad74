/*
 * Linux: FICLONE / FICLONERANGE / FIDEDUPERANGE / FIEMAP, and a physical copy
 * that never shares blocks (sendfile, not copy_file_range: copy_file_range
 * reflinks on XFS and btrfs).
 */
#define _GNU_SOURCE
#include "platform.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <stdio.h>
#include <sys/sysmacros.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
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

static int fail(cf_error *err, const char *syscall, int errnum, int on_dest) {
  err->errnum = errnum;
  err->syscall = syscall;
  err->on_dest = on_dest;
  return -errnum;
}

/* ---- creating the destination without ever exposing a half-made file ---- */

typedef struct {
  int fd;
  int tmpfile;      /* 1: O_TMPFILE, nameless until linked */
  char *named_tmp;  /* a named temporary sibling (O_TMPFILE unsupported, or a symlink) */
} dest_t;

static char *dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  if (slash == NULL) return strdup(".");
  if (slash == path) return strdup("/");
  return strndup(path, (size_t)(slash - path));
}

static char *temp_sibling(const char *dst) {
  static unsigned counter;
  size_t n = strlen(dst) + 48;
  char *tmp = malloc(n);
  if (tmp == NULL) return NULL;
  const char *slash = strrchr(dst, '/');
  int dirlen = slash ? (int)(slash - dst + 1) : 0;
  /* The prefix lets later runs recognise and remove leftovers of a killed process. */
  /* The name part is cut to 200 bytes: NAME_MAX is 255 and dst's own name may use all of it. */
  snprintf(tmp, n, "%.*s.clonefile-tmp-%d-%u-%.200s", dirlen, dst, (int)getpid(),
           __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED), slash ? slash + 1 : dst);
  return tmp;
}

static int dest_open(const char *dst, mode_t mode, uint32_t flags, dest_t *d, cf_error *err) {
  d->fd = -1;
  d->tmpfile = 0;
  d->named_tmp = NULL;
  if (flags & CF_DIRECT) {
    d->fd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    return d->fd < 0 ? fail(err, "open", errno, 1) : 0;
  }
  char *dir = dir_of(dst);
  if (dir == NULL) return fail(err, "malloc", ENOMEM, 1);
  d->fd = open(dir, O_TMPFILE | O_WRONLY | O_CLOEXEC, mode);
  int e = errno;
  free(dir);
  if (d->fd >= 0) {
    d->tmpfile = 1;
    return 0;
  }
  /* O_TMPFILE is refused by filesystems that lack it (EOPNOTSUPP, EISDIR on old kernels). */
  if (e != EOPNOTSUPP && e != EISDIR && e != EINVAL) return fail(err, "open", e, 1);
  d->named_tmp = temp_sibling(dst);
  if (d->named_tmp == NULL) return fail(err, "malloc", ENOMEM, 1);
  d->fd = open(d->named_tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  return d->fd < 0 ? fail(err, "open", errno, 1) : 0;
}

/* linkat(2): AT_EMPTY_PATH names the open file itself but needs CAP_DAC_READ_SEARCH; without
 * it (ENOENT), the /proc/self/fd magic link does the same for the file's opener. */
static int link_tmpfile(int fd, const char *name) {
  static int empty_path_refused;
  int refused = __atomic_load_n(&empty_path_refused, __ATOMIC_RELAXED);
  if (!refused) {
    if (linkat(fd, "", AT_FDCWD, name, AT_EMPTY_PATH) == 0) return 0;
    if (errno != ENOENT && errno != EPERM) return -1;
  }
  char proc[64];
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
  int rc = linkat(AT_FDCWD, proc, AT_FDCWD, name, AT_SYMLINK_FOLLOW);
  /* Only a /proc link that works where AT_EMPTY_PATH did not proves the capability missing. */
  if (rc == 0 && !refused) __atomic_store_n(&empty_path_refused, 1, __ATOMIC_RELAXED);
  return rc;
}

/* Gives the finished file its name. Without CF_OVERWRITE an existing dst is EEXIST. */
static int dest_publish(const char *dst, uint32_t flags, dest_t *d, cf_error *err) {
  if (flags & CF_DIRECT) return 0;
  if (d->tmpfile) {
    if (!(flags & CF_OVERWRITE)) return link_tmpfile(d->fd, dst) == 0 ? 0 : fail(err, "link", errno, 1);
    /* Replacing: link under a temporary name, then rename over dst (atomic). */
    d->named_tmp = temp_sibling(dst);
    if (d->named_tmp == NULL) return fail(err, "malloc", ENOMEM, 1);
    if (link_tmpfile(d->fd, d->named_tmp) != 0) return fail(err, "link", errno, 1);
  }
  if (flags & CF_OVERWRITE) {
    if (rename(d->named_tmp, dst) != 0) return fail(err, "rename", errno, 1);
  } else if (syscall(SYS_renameat2, AT_FDCWD, d->named_tmp, AT_FDCWD, dst, RENAME_NOREPLACE) != 0) {
    int e = errno;
    if (e != EINVAL && e != ENOSYS) return fail(err, "rename", e, 1);
    /* No RENAME_NOREPLACE on this filesystem: link(2) refuses to clobber too. */
    if (link(d->named_tmp, dst) != 0) return fail(err, "link", errno, 1);
    unlink(d->named_tmp);
  }
  free(d->named_tmp);
  d->named_tmp = NULL;
  return 0;
}

static void dest_discard(const char *dst, uint32_t flags, dest_t *d) {
  if (d->fd >= 0) close(d->fd);
  if (flags & CF_DIRECT) {
    if (d->fd >= 0) unlink(dst);
  } else if (d->named_tmp != NULL) {
    unlink(d->named_tmp);
  }
  free(d->named_tmp);
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

/* A physical copy that keeps holes, as cp does (SEEK_DATA/SEEK_HOLE). */
static int copy_data(int sfd, int dfd, off_t size, cf_error *err) {
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
  return 0;
}

/* ---- metadata ---- */

/* ---- extended attributes, of an open file or (symlinks, FIFOs) of a path ---- */

typedef struct {
  int fd;           /* >= 0: f*xattr */
  const char *path; /* else l*xattr: the entry itself, never what a symlink points to */
  int follow;       /* ... or, reading a directory reached through a symlink, *xattr */
} xref;

static ssize_t x_list(const xref *x, char *buf, size_t size) {
  if (x->fd >= 0) return flistxattr(x->fd, buf, size);
  return x->follow ? listxattr(x->path, buf, size) : llistxattr(x->path, buf, size);
}
static ssize_t x_get(const xref *x, const char *name, void *buf, size_t size) {
  if (x->fd >= 0) return fgetxattr(x->fd, name, buf, size);
  return x->follow ? getxattr(x->path, name, buf, size) : lgetxattr(x->path, name, buf, size);
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

/* Returns how many ACL attributes it set (>= 0), or a negative errno. */
static int copy_xattrs(const xref *from, const xref *to, uint32_t flags, cf_error *err) {
  char stackbuf[4096];
  char *names = stackbuf;
  ssize_t len = x_list(from, names, sizeof stackbuf);
  if (len < 0 && errno == ERANGE) {
    len = x_list(from, NULL, 0);
    names = len > 0 ? malloc((size_t)len) : NULL;
    if (names == NULL) return fail(err, "malloc", ENOMEM, 0);
    len = x_list(from, names, (size_t)len);
  }
  if (len < 0) {
    int e = errno;
    if (names != stackbuf) free(names);
    return (e == ENOTSUP) ? 0 : fail(err, "listxattr", e, 0);
  }
  int rc = 0, acls = 0;
  char *value = NULL;
  for (char *name = names; name < names + len && rc == 0; name += strlen(name) + 1) {
    int acl = is_acl_name(name);
    if ((acl && !(flags & CF_ACL)) || is_private_name(name)) continue;
    if (value == NULL && (value = malloc(65536)) == NULL) {
      rc = fail(err, "malloc", ENOMEM, 0);
      break;
    }
    ssize_t vlen = x_get(from, name, value, 65536);
    if (vlen < 0) {
      if (errno == ENODATA) continue; /* removed since the listing */
      rc = fail(err, "getxattr", errno, 0);
      break;
    }
    if (x_set(to, name, value, (size_t)vlen) != 0) {
      /* Namespaces an unprivileged process may not write (trusted.*, security.*) and
       * a destination that stores no such attribute are skipped, as cp -a does. */
      int e = errno;
      if ((e == EPERM || e == ENOTSUP) && strncmp(name, "user.", 5) != 0 && !acl) continue;
      rc = fail(err, "setxattr", e, 1);
    } else {
      acls += acl;
    }
  }
  free(value);
  if (names != stackbuf) free(names);
  return rc < 0 ? rc : acls;
}

static int copy_meta(int sfd, int dfd, const struct stat *st, uint32_t flags, cf_error *err) {
  /* fchown and fchmod are each a logged transaction on XFS even when nothing changes: look
   * first (fstat is not), and change only what differs from what creating the file gave it. */
  struct stat now;
  if ((flags & (CF_OWNER | CF_MODE)) && fstat(dfd, &now) != 0) return fail(err, "fstat", errno, 1);
  /* Owner first: fchown(2) clears setuid/setgid and security.capability. */
  if ((flags & CF_OWNER) && (now.st_uid != st->st_uid || now.st_gid != st->st_gid)) {
    if (fchown(dfd, st->st_uid, st->st_gid) != 0 && errno != EPERM) return fail(err, "fchown", errno, 1);
    now.st_mode = (mode_t)-1; /* possibly changed (setid cleared): set the mode whatever it is */
  }
  xref from = {sfd, NULL, 0}, to = {dfd, NULL, 0};
  int acls = (flags & (CF_XATTR | CF_ACL)) ? copy_xattrs(&from, &to, flags, err) : 0;
  if (acls < 0) return acls;
  if (flags & CF_MODE) {
    mode_t mode = st->st_mode & ((flags & CF_SETID) ? 07777 : 01777);
    /* A POSIX ACL set above rewrote the group bits: set the mode again then too. */
    if ((acls > 0 || (now.st_mode & 07777) != mode) && fchmod(dfd, mode) != 0) return fail(err, "fchmod", errno, 1);
  }
  if (flags & CF_TIMES) {
    struct timespec ts[2] = {st->st_atim, st->st_mtim};
    if (futimens(dfd, ts) != 0) return fail(err, "futimens", errno, 1);
  }
  return 0;
}

/* ---- symlinks (CF_NOFOLLOW): recreated, like clonefile(2) with CLONE_NOFOLLOW ---- */

/* Metadata by path, for entries that are not opened (symlinks, FIFOs, device nodes, and
 * directories, whose source was listed with O_NOATIME so its times are still the original).
 * `now`, where known, is what dst already has: owner and mode are changed only if they differ. */
static int copy_meta_path(const char *src, int follow, const char *dst, const struct stat *st,
                          const struct stat *now, uint32_t flags, cf_error *err) {
  int owner_same = now != NULL && now->st_uid == st->st_uid && now->st_gid == st->st_gid;
  if ((flags & CF_OWNER) && !owner_same && lchown(dst, st->st_uid, st->st_gid) != 0 && errno != EPERM)
    return fail(err, "lchown", errno, 1);
  xref from = {-1, src, follow}, to = {-1, dst, 0};
  int acls = (flags & (CF_XATTR | CF_ACL)) ? copy_xattrs(&from, &to, flags, err) : 0;
  if (acls < 0) return acls;
  mode_t mode = st->st_mode & ((flags & CF_SETID) ? 07777 : 01777);
  /* chmod(2) follows symlinks, and a symlink's own mode means nothing on Linux. */
  int mode_same = now != NULL && owner_same && acls == 0 && (now->st_mode & 07777) == mode;
  if ((flags & CF_MODE) && !S_ISLNK(st->st_mode) && !mode_same && chmod(dst, mode) != 0)
    return fail(err, "chmod", errno, 1);
  struct timespec ts[2] = {st->st_atim, st->st_mtim};
  if ((flags & CF_TIMES) && utimensat(AT_FDCWD, dst, ts, AT_SYMLINK_NOFOLLOW) != 0)
    return fail(err, "utimensat", errno, 1);
  return 0;
}

/* An entry made under `name` (dst, or a temporary with CF_OVERWRITE): once finished it replaces
 * dst; if anything failed it is removed. Only for entries this process created. */
static int settle_entry(const char *name, const char *dst, int rc, cf_error *err) {
  if (rc == 0 && strcmp(name, dst) != 0 && rename(name, dst) != 0) rc = fail(err, "rename", errno, 1);
  if (rc < 0) unlink(name);
  return rc;
}

int cf_copy_symlink(const char *src, const char *dst, uint32_t flags, cf_error *err) {
  struct stat st;
  if (lstat(src, &st) != 0) return fail(err, "lstat", errno, 0);
  /* st_size of a symlink is its target's length; some filesystems report 0 (procfs). */
  size_t cap = st.st_size > 0 ? (size_t)st.st_size + 1 : 4096;
  char *target = malloc(cap);
  if (target == NULL) return fail(err, "malloc", ENOMEM, 0);
  ssize_t n = readlink(src, target, cap);
  if (n < 0 || (size_t)n >= cap) {
    free(target);
    return fail(err, "readlink", n < 0 ? errno : ENAMETOOLONG, 0);
  }
  target[n] = '\0';
  char *tmp = (flags & CF_OVERWRITE) ? temp_sibling(dst) : NULL;
  const char *name = tmp ? tmp : dst;
  int rc = symlink(target, name) != 0 ? fail(err, "symlink", errno, 1)
                                      : settle_entry(name, dst, copy_meta_path(src, 0, name, &st, NULL, flags, err), err);
  free(tmp);
  free(target);
  return rc;
}

/* ---- whole file ---- */

int cf_clone_file(const cf_file *src, const char *dst, int method, uint32_t flags, cf_clone_out *out,
                  cf_error *err) {
  out->size = 0;
  out->symlink = 0;
  int sfd = src->fd;
  if (sfd < 0) {
    /* O_NONBLOCK: opening a FIFO must not hang; it is refused below. */
    int oflags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | ((flags & CF_NOFOLLOW) ? O_NOFOLLOW : 0);
    sfd = open(src->path, oflags);
    if (sfd < 0) {
      int e = errno;
      struct stat lst;
      if (e == ELOOP && (flags & CF_NOFOLLOW) && lstat(src->path, &lst) == 0 && S_ISLNK(lst.st_mode)) {
        out->symlink = 1;
        return cf_copy_symlink(src->path, dst, flags, err);
      }
      return fail(err, "open", e, 0);
    }
  }
  struct stat st;
  int rc = 0;
  dest_t d = {.fd = -1, .tmpfile = 0, .named_tmp = NULL};
  if (fstat(sfd, &st) != 0) {
    rc = fail(err, "fstat", errno, 0);
    goto done;
  }
  if (!S_ISREG(st.st_mode)) {
    rc = fail(err, method == CF_METHOD_CLONE ? "ioctl_ficlone" : "copyfile",
              S_ISDIR(st.st_mode) ? EISDIR : EINVAL, 0);
    goto done;
  }
  /* A clone is complete once one ioctl returns, so it is made in place (O_EXCL, removed again
   * on failure) as cp and libuv do; building it aside first costs two more XFS transactions per
   * file. A copy, which takes long enough to be interrupted half way, is built as an O_TMPFILE
   * and only gets its name when complete. */
  if (method == CF_METHOD_CLONE && !(flags & CF_OVERWRITE)) flags |= CF_DIRECT;
  if ((rc = dest_open(dst, st.st_mode & 0777, flags, &d, err)) < 0) goto done;
  if (method == CF_METHOD_CLONE) {
    if (ioctl(d.fd, FICLONE, sfd) != 0) rc = fail(err, "ioctl_ficlone", errno, 0);
  } else {
    rc = copy_data(sfd, d.fd, st.st_size, err);
  }
  if (rc == 0) rc = copy_meta(sfd, d.fd, &st, flags, err);
  if (rc == 0) rc = dest_publish(dst, flags, &d, err);
  if (rc == 0) {
    out->size = (uint64_t)st.st_size;
    close(d.fd);
    d.fd = -1;
  }
done:
  if (rc < 0) dest_discard(dst, flags, &d);
  if (src->fd < 0) close(sfd);
  return rc;
}

/* ---- ranges ---- */

static int64_t source_end(int fd, uint64_t offset, uint64_t length, cf_error *err) {
  if (length != 0) return (int64_t)(offset + length);
  struct stat st;
  if (fstat(fd, &st) != 0) return fail(err, "fstat", errno, 0);
  return st.st_size;
}

int64_t cf_clone_range(int src_fd, int dst_fd, uint64_t src_offset, uint64_t dst_offset,
                       uint64_t length, int method, cf_error *err) {
  int64_t end = source_end(src_fd, src_offset, length, err);
  if (end < 0) return end;
  int64_t n = end > (int64_t)src_offset ? end - (int64_t)src_offset : 0;
  if (method == CF_METHOD_CLONE) {
    struct file_clone_range r = {
        .src_fd = src_fd, .src_offset = src_offset, .src_length = length, .dest_offset = dst_offset};
    if (ioctl(dst_fd, FICLONERANGE, &r) != 0) return fail(err, "ioctl_ficlonerange", errno, 0);
    return n;
  }
  char *buf = malloc(1 << 20);
  if (buf == NULL) return fail(err, "malloc", ENOMEM, 0);
  int64_t done = 0;
  while (done < n) {
    size_t want = (size_t)(n - done) < (1u << 20) ? (size_t)(n - done) : (1u << 20);
    ssize_t r = pread(src_fd, buf, want, (off_t)(src_offset + (uint64_t)done));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      if (r < 0) done = fail(err, "read", errno, 0);
      break; /* EOF before the range's end: copy what exists, as FICLONERANGE would refuse */
    }
    for (ssize_t w = 0; w < r;) {
      ssize_t k = pwrite(dst_fd, buf + w, (size_t)(r - w), (off_t)(dst_offset + (uint64_t)done + (uint64_t)w));
      if (k < 0 && errno == EINTR) continue;
      if (k < 0) {
        free(buf);
        return fail(err, "write", errno, 1);
      }
      w += k;
    }
    done += r;
  }
  free(buf);
  return done;
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

/* ---- filesystem facts ---- */

static const struct {
  uint64_t magic;
  const char *name;
  int can_clone;
} fs_types[] = {
    {0x9123683E, "btrfs", 1}, {0x58465342, "xfs", -1},    {0xEF53, "ext4", 0},
    {0x01021994, "tmpfs", 0}, {0x794C7630, "overlay", -1}, {0x6969, "nfs", -1},
    {0x2FC12FC1, "zfs", -1},  {0xCA451A4E, "bcachefs", 1}, {0xFE534D42, "smb2", -1},
    {0xFF534D42, "cifs", -1}, {0x7461636F, "ocfs2", 1},    {0x65735546, "fuse", -1},
    {0xF2F52010, "f2fs", 0},  {0x4D44, "vfat", 0},         {0x5346544E, "ntfs", 0},
    {0x2011BAB0, "exfat", 0}, {0x9FA0, "proc", 0},         {0x62656572, "sysfs", 0},
};

int cf_fs_info_get(const char *path, cf_fs_info *info, cf_error *err) {
  struct statfs sf;
  if (statfs(path, &sf) != 0) return fail(err, "statfs", errno, 0);
  memset(info, 0, sizeof *info);
  info->type = (uint64_t)(unsigned long)sf.f_type;
  info->block_size = (uint64_t)sf.f_bsize;
  info->can_clone = -1; /* XFS may be formatted without reflink; decided by a real clone */
  for (size_t i = 0; i < sizeof fs_types / sizeof fs_types[0]; i++) {
    if (fs_types[i].magic == info->type) {
      snprintf(info->name, sizeof info->name, "%s", fs_types[i].name);
      info->can_clone = fs_types[i].can_clone;
    }
  }
  struct statx stx;
  if (statx(AT_FDCWD, path, 0, STATX_MNT_ID, &stx) != 0) return fail(err, "statx", errno, 0);
  info->dev = ((uint64_t)stx.stx_dev_major << 32) | stx.stx_dev_minor;
  info->mount_id = (stx.stx_mask & STATX_MNT_ID) ? stx.stx_mnt_id : info->dev;
  return 0;
}

/* The whole extent map of an open file. Most files have one or two extents: the first FIEMAP
 * call uses a buffer on the stack, and the result grows only as far as needed. */
static int extents_of_fd(int fd, cf_extent **out, uint32_t *count, cf_error *err) {
  enum { BATCH = 32 };
  union {
    struct fiemap fm;
    char room[sizeof(struct fiemap) + BATCH * sizeof(struct fiemap_extent)];
  } buf;
  struct fiemap *fm = &buf.fm;
  *out = NULL;
  *count = 0;
  uint32_t cap = 0;
  int last = 0;
  uint64_t start = 0;
  while (!last) {
    memset(fm, 0, sizeof *fm);
    fm->fm_start = start;
    fm->fm_length = FIEMAP_MAX_OFFSET - start;
    fm->fm_flags = *count == 0 ? FIEMAP_FLAG_SYNC : 0;
    fm->fm_extent_count = BATCH;
    if (ioctl(fd, FS_IOC_FIEMAP, fm) != 0) return fail(err, "ioctl_fiemap", errno, 0);
    if (fm->fm_mapped_extents == 0) break;
    if (*count + fm->fm_mapped_extents > cap) {
      cap = (*count + fm->fm_mapped_extents) * 2;
      cf_extent *grown = realloc(*out, cap * sizeof(cf_extent));
      if (grown == NULL) return fail(err, "malloc", ENOMEM, 0);
      *out = grown;
    }
    for (uint32_t i = 0; i < fm->fm_mapped_extents; i++) {
      struct fiemap_extent *fe = &fm->fm_extents[i];
      (*out)[(*count)++] = (cf_extent){fe->fe_logical, fe->fe_physical, fe->fe_length, fe->fe_flags};
      start = fe->fe_logical + fe->fe_length;
      if (fe->fe_flags & FIEMAP_EXTENT_LAST) last = 1;
    }
  }
  return 0;
}

static int extents_at(int dirfd, const char *name, cf_extent **out, uint32_t *count, cf_error *err) {
  int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) return fail(err, "open", errno, 0);
  int rc = extents_of_fd(fd, out, count, err);
  close(fd);
  if (rc < 0) {
    free(*out);
    *out = NULL;
    *count = 0;
  }
  return rc;
}

int cf_extents(const char *path, cf_extent **out, uint32_t *count, cf_error *err) {
  return extents_at(AT_FDCWD, path, out, count, err);
}

/* Linux has no per-file "private size": usage() maps extents instead (FIEMAP_EXTENT_SHARED).
 * The name is mac.c's so errors read alike. */
int cf_file_space_get(const char *path, cf_file_space *out, cf_error *err) {
  (void)path;
  memset(out, 0, sizeof *out);
  return fail(err, "getattrlist", ENOTSUP, 0);
}

/* ---- trees ---- */

/* Appends a zeroed entry named n, growing both buffers as needed. */
static int add_entry(cf_dirent **ents, uint32_t *cap, char **buf, uint32_t *names_cap, uint32_t *names_len,
                     uint32_t *count, const char *n, cf_error *err) {
  size_t len = strlen(n) + 1;
  if (*count == *cap) {
    cf_dirent *grown = realloc(*ents, (*cap * 2) * sizeof **ents);
    if (grown == NULL) return fail(err, "malloc", ENOMEM, 0);
    *ents = grown;
    *cap *= 2;
  }
  if (*names_len + len > *names_cap) {
    uint32_t want = *names_cap;
    while (*names_len + len > want) want *= 2;
    char *grown = realloc(*buf, want);
    if (grown == NULL) return fail(err, "malloc", ENOMEM, 0);
    *buf = grown;
    *names_cap = want;
  }
  memcpy(*buf + *names_len, n, len);
  (*ents)[(*count)++] = (cf_dirent){.name = *names_len};
  *names_len += (uint32_t)len;
  return 0;
}

static void stat_into(cf_dirent *ent, const struct stat *st) {
  ent->mode = st->st_mode;
  ent->dev = st->st_dev;
  ent->ino = st->st_ino;
  ent->size = (uint64_t)st->st_size;
  ent->nlink = st->st_nlink;
}

/* CF_SCAN_EXTENTS, with the type from the listing: only a regular file needs more, and it is
 * opened for FIEMAP anyway, so fstat on it spares a second path lookup per file. A file that
 * cannot be opened (vanished, unreadable) gets its errno in ext_err. */
static void measure_entry(int dirfd, const char *name, unsigned char type, cf_dirent *ent) {
  static const mode_t modes[] = {[DT_FIFO] = S_IFIFO, [DT_CHR] = S_IFCHR, [DT_DIR] = S_IFDIR,
                                 [DT_BLK] = S_IFBLK,  [DT_REG] = S_IFREG, [DT_LNK] = S_IFLNK,
                                 [DT_SOCK] = S_IFSOCK};
  ent->mode = type < sizeof modes / sizeof modes[0] ? modes[type] : 0;
  if (type != DT_REG) return;
  struct stat st;
  int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) {
    ent->ext_err = errno;
    if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) stat_into(ent, &st);
    return;
  }
  cf_error e;
  if (fstat(fd, &st) != 0) {
    ent->ext_err = errno;
  } else {
    stat_into(ent, &st);
    if (extents_of_fd(fd, &ent->ext, &ent->ext_count, &e) < 0) {
      ent->ext_err = e.errnum;
      free(ent->ext);
      ent->ext = NULL;
      ent->ext_count = 0;
    }
  }
  close(fd);
}

int cf_scan_dir(const char *path, int how, cf_dirent **entries, uint32_t *count, char **names,
                cf_error *err) {
  int follow = how & CF_SCAN_FOLLOW;
  *entries = NULL;
  *names = NULL;
  *count = 0;
  /* O_NOATIME: reading the directory must not move the atime the clone is to be given
   * (open(2): only for the owner or CAP_FOWNER, hence the retry without it). */
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOATIME);
  if (fd < 0 && errno == EPERM) fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return fail(err, "opendir", errno, 0);
  DIR *d = fdopendir(fd);
  if (d == NULL) {
    int e = errno;
    close(fd);
    return fail(err, "opendir", e, 0);
  }
  uint32_t cap = 64, names_cap = 4096, names_len = 0;
  cf_dirent *ents = malloc(cap * sizeof *ents);
  char *buf = malloc(names_cap);
  int rc = (ents == NULL || buf == NULL) ? fail(err, "malloc", ENOMEM, 0) : 0;
  struct dirent *de;
  while (rc == 0 && (errno = 0, de = readdir(d)) != NULL) {
    const char *n = de->d_name;
    if (n[0] == '.' && (n[1] == '\0' || (n[1] == '.' && n[2] == '\0'))) continue;
    struct stat st;
    if ((how & CF_SCAN_EXTENTS) && de->d_type != DT_UNKNOWN) {
      if ((rc = add_entry(&ents, &cap, &buf, &names_cap, &names_len, count, n, err)) < 0) break;
      measure_entry(dirfd(d), n, de->d_type, &ents[*count - 1]);
      continue;
    }
    if (fstatat(dirfd(d), n, &st, follow ? 0 : AT_SYMLINK_NOFOLLOW) != 0) {
      int e = errno;
      /* Following, a dangling symlink is kept as the link itself (cp -L reports it). */
      if (e == ENOENT && follow && fstatat(dirfd(d), n, &st, AT_SYMLINK_NOFOLLOW) == 0) {
      } else if (e == ENOENT) {
        continue; /* vanished since the listing: not an entry any more */
      } else {
        rc = fail(err, "fstatat", e, 0);
        break;
      }
    }
    if ((rc = add_entry(&ents, &cap, &buf, &names_cap, &names_len, count, n, err)) < 0) break;
    cf_dirent *ent = &ents[*count - 1];
    stat_into(ent, &st);
    if ((how & CF_SCAN_EXTENTS) && S_ISREG(st.st_mode)) {
      /* A file that fails (vanished, unreadable) is reported in ext_err, not fatal. */
      cf_error e;
      if (extents_at(dirfd(d), n, &ent->ext, &ent->ext_count, &e) < 0) ent->ext_err = e.errnum;
    }
  }
  if (rc == 0 && errno != 0) rc = fail(err, "readdir", errno, 0);
  closedir(d);
  if (rc < 0) {
    for (uint32_t i = 0; i < *count; i++) free(ents[i].ext);
    free(ents);
    free(buf);
    *count = 0;
    return rc;
  }
  *entries = ents;
  *names = buf;
  return 0;
}

int cf_make_dir(const char *path, uint32_t mode, int merge, cf_error *err) {
  if (mkdir(path, (mode_t)mode) == 0) return 0;
  int e = errno;
  struct stat st;
  if (e == EEXIST && merge && lstat(path, &st) == 0 && S_ISDIR(st.st_mode)) return 1;
  return fail(err, "mkdir", e, 1);
}

int cf_make_special(const char *src, const char *dst, uint32_t flags, cf_error *err) {
  struct stat st;
  if (lstat(src, &st) != 0) return fail(err, "lstat", errno, 0);
  char *tmp = (flags & CF_OVERWRITE) ? temp_sibling(dst) : NULL;
  const char *name = tmp ? tmp : dst;
  int rc = mknod(name, st.st_mode & (S_IFMT | 0777), st.st_rdev) != 0
               ? fail(err, "mknod", errno, 1)
               : settle_entry(name, dst, copy_meta_path(src, 0, name, &st, NULL, flags, err), err);
  free(tmp);
  return rc;
}

int cf_copy_dir_meta(const char *src, const char *dst, uint32_t flags, cf_error *err) {
  /* By path: two stats instead of two opens, two fstats and two closes a directory. stat, not
   * lstat, for the source: following symlinks, a directory may be reached through one. */
  struct stat st, now;
  if (stat(src, &st) != 0) return fail(err, "stat", errno, 0);
  if (lstat(dst, &now) != 0) return fail(err, "lstat", errno, 1);
  return copy_meta_path(src, 1, dst, &st, &now, flags, err);
}

int cf_hard_link(const char *existing, const char *dst, uint32_t flags, cf_error *err) {
  char *tmp = (flags & CF_OVERWRITE) ? temp_sibling(dst) : NULL;
  const char *name = tmp ? tmp : dst;
  int rc = link(existing, name) != 0 ? fail(err, "link", errno, 1) : settle_entry(name, dst, 0, err);
  free(tmp);
  return rc;
}

int cf_rename(const char *from, const char *to, int noreplace, cf_error *err) {
  if (!noreplace) return rename(from, to) != 0 ? fail(err, "rename", errno, 1) : 0;
  if (syscall(SYS_renameat2, AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0) return 0;
  return fail(err, "rename", errno, 1);
}
