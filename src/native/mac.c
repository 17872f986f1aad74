/*
 * macOS: clonefile(2) / fclonefileat(2) for clones, a pread/pwrite loop for copies that
 * share nothing. APFS has no range clone, no compare-and-share and no extent map, so those
 * calls say ENOTSUP and the TypeScript side decides what to do instead.
 *
 * UNTESTED: this file has only ever been compiled and linked (scripts/check-cross.sh, zig cc
 * -target aarch64-macos / x86_64-macos against zig's copy of the macOS SDK headers and
 * libSystem stubs). It has never run on a Mac. Every behaviour described below is what the man pages promise, not
 * what was observed.
 *
 * Metadata on the clone path: clonefile(2) itself copies mode, BSD flags, xattrs and
 * timestamps, whatever CF_MODE / CF_TIMES / CF_XATTR say; we keep that (a clone that looks
 * less like its source would surprise nobody favourably) and only add what it leaves out:
 * the owner (CF_OWNER), setuid/setgid (CF_SETID) and, on kernels without CLONE_ACL, the ACL.
 * The copy method does what the flags ask (owner, xattrs, ACL, mode, times) but copies
 * neither BSD file flags (chflags(2)) nor the birth time.
 */
#include "platform.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/acl.h>
#include <sys/attr.h>
#include <sys/clonefile.h>
#include <sys/mount.h>
#include <sys/param.h>
#include <sys/stat.h>
#include <unistd.h>

#if __has_include(<sys/xattr.h>)
#include <sys/xattr.h>
#else
/* zig 0.11's macOS headers (used by scripts/check-cross.sh) have no <sys/xattr.h>; these are
 * the declarations the macOS SDK has, see getxattr(2), setxattr(2), listxattr(2). */
ssize_t flistxattr(int fd, char *namebuff, size_t size, int options);
ssize_t fgetxattr(int fd, const char *name, void *value, size_t size, uint32_t position, int options);
int fsetxattr(int fd, const char *name, const void *value, size_t size, uint32_t position, int options);
#endif

#ifndef CLONE_ACL
/* macOS 13 SDK; older SDKs lack the name and older kernels the flag (they answer EINVAL). */
#define CLONE_ACL 0x0004
#endif

static int fail(cf_error *err, const char *syscall, int errnum, int on_dest) {
  err->errnum = errnum;
  err->syscall = syscall;
  err->on_dest = on_dest;
  return -errnum;
}

/* Same scheme as linux.c: the prefix lets later runs recognise leftovers of a killed process. */
static char *temp_sibling(const char *dst) {
  static unsigned counter;
  size_t n = strlen(dst) + 48;
  char *tmp = malloc(n);
  if (tmp == NULL) return NULL;
  const char *slash = strrchr(dst, '/');
  int dirlen = slash ? (int)(slash - dst + 1) : 0;
  /* The name part is cut to 200 bytes: NAME_MAX is 255 and dst's own name may use all of it. */
  snprintf(tmp, n, "%.*s.clonefile-tmp-%d-%u-%.200s", dirlen, dst, (int)getpid(),
           __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED), slash ? slash + 1 : dst);
  return tmp;
}

/* ---- metadata helpers shared by clone and copy ---- */

/* ACLs are not xattrs on macOS (listxattr(2) hides them): acl(3) is the only way to copy
 * one. The destination is an open file (dfd >= 0) or, for a fresh clone, a name. */
static int copy_acl(int sfd, int dfd, const char *dname, cf_error *err) {
  acl_t acl = acl_get_fd_np(sfd, ACL_TYPE_EXTENDED);
  if (acl == NULL) {
    /* ENOENT: the source has no extended ACL; ENOTSUP: its filesystem keeps none. */
    return (errno == ENOENT || errno == ENOTSUP) ? 0 : fail(err, "acl_get_fd_np", errno, 0);
  }
  int rc = 0;
  if (dfd >= 0 && acl_set_fd_np(dfd, acl, ACL_TYPE_EXTENDED) != 0)
    rc = fail(err, "acl_set_fd_np", errno, 1);
  else if (dfd < 0 && acl_set_link_np(dname, ACL_TYPE_EXTENDED, acl) != 0)
    rc = fail(err, "acl_set_link_np", errno, 1);
  acl_free(acl);
  return rc;
}

/* One attribute, sized first: resource forks (com.apple.ResourceFork) can be megabytes. */
static int copy_xattr(int sfd, int dfd, const char *name, cf_error *err) {
  ssize_t size = fgetxattr(sfd, name, NULL, 0, 0, 0);
  if (size < 0) return errno == ENOATTR ? 0 : fail(err, "fgetxattr", errno, 0); /* ENOATTR: gone since the listing */
  char *value = malloc(size > 0 ? (size_t)size : 1);
  if (value == NULL) return fail(err, "malloc", ENOMEM, 0);
  int rc = 0;
  ssize_t got = fgetxattr(sfd, name, value, (size_t)size, 0, 0);
  if (got < 0) {
    rc = errno == ENOATTR ? 0 : fail(err, "fgetxattr", errno, 0);
  } else if (fsetxattr(dfd, name, value, (size_t)got, 0, 0) != 0) {
    /* System-managed attributes (com.apple.rootless, ...) refuse ordinary processes with
     * EPERM; cp -p skips them too. Everything else is the caller's data and must arrive. */
    if (!(errno == EPERM && strncmp(name, "com.apple.", 10) == 0)) rc = fail(err, "fsetxattr", errno, 1);
  }
  free(value);
  return rc;
}

/* Options 0, not XATTR_SHOWCOMPRESSION: the copy holds decompressed bytes, so the decmpfs
 * attribute of a compressed source must not follow them. */
static int copy_xattrs(int sfd, int dfd, cf_error *err) {
  ssize_t len = flistxattr(sfd, NULL, 0, 0);
  if (len < 0) return errno == ENOTSUP ? 0 : fail(err, "flistxattr", errno, 0);
  if (len == 0) return 0;
  char *names = malloc((size_t)len);
  if (names == NULL) return fail(err, "malloc", ENOMEM, 0);
  int rc = 0;
  len = flistxattr(sfd, names, (size_t)len, 0);
  if (len < 0) rc = fail(err, "flistxattr", errno, 0); /* ERANGE: one was added meanwhile */
  for (char *name = names; rc == 0 && name < names + len; name += strlen(name) + 1)
    rc = copy_xattr(sfd, dfd, name, err);
  free(names);
  return rc;
}

/* ---- clone: clonefile(2) ---- */

static uint32_t clone_flags(uint32_t flags) {
  uint32_t cflags = 0;
  if (flags & CF_NOFOLLOW) cflags |= CLONE_NOFOLLOW;
  if (!(flags & CF_OWNER)) cflags |= CLONE_NOOWNERCOPY;
  if (flags & CF_ACL) cflags |= CLONE_ACL;
  return cflags;
}

/* An open source (always, except for a symlink) is cloned by fd: no race with a rename of src. */
static int clone_call(int sfd, const char *src_path, const char *name, uint32_t cflags) {
  if (sfd >= 0) return fclonefileat(sfd, AT_FDCWD, name, cflags & ~(uint32_t)CLONE_NOFOLLOW);
  return clonefile(src_path, name, cflags);
}

/* clonefile(2) both opens the source and creates dst. With the source already open, only the
 * destination can be missing, present or unwritable; ENOTSUP, EXDEV, EINVAL concern the pair. */
static int clone_fail(cf_error *err, int e, int by_fd) {
  int on_dest = e == EEXIST || (by_fd && e != ENOTSUP && e != EXDEV && e != EINVAL && e != EBADF);
  return fail(err, by_fd ? "fclonefileat" : "clonefile", e, on_dest);
}

/* What clonefile(2) leaves undone that the flags ask for. Root gets the owner from clonefile
 * itself; anyone else gets a new file's owner and, like cp -p, tries chown. By name, with
 * AT_SYMLINK_NOFOLLOW: it serves cloned symlinks too, and a clone whose owner bits deny
 * reading could not be opened. */
static int clone_fixup(int sfd, const struct stat *st, const char *name, uint32_t flags, int acl_by_hand,
                       cf_error *err) {
  struct stat cst;
  if ((flags & CF_OWNER) && geteuid() != 0) {
    if (fstatat(AT_FDCWD, name, &cst, AT_SYMLINK_NOFOLLOW) != 0) return fail(err, "lstat", errno, 1);
    /* Owner first: chown(2) clears setuid/setgid, which the chmod below puts back. */
    if ((cst.st_uid != st->st_uid || cst.st_gid != st->st_gid) &&
        fchownat(AT_FDCWD, name, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW) != 0 && errno != EPERM)
      return fail(err, "lchown", errno, 1);
  }
  if (acl_by_hand && copy_acl(sfd, -1, name, err) < 0) return -err->errnum;
  /* clonefile(2): "setuid and setgid bits are turned off in the mode bits for regular files". */
  if ((flags & CF_SETID) && S_ISREG(st->st_mode) && (st->st_mode & (S_ISUID | S_ISGID)) &&
      fchmodat(AT_FDCWD, name, st->st_mode & 07777, AT_SYMLINK_NOFOLLOW) != 0)
    return fail(err, "chmod", errno, 1);
  return 0;
}

/* Clones an open regular file (sfd) or, with sfd < 0, the symlink src_path. Without
 * CF_OVERWRITE the clone is made at dst itself: clonefile(2) is atomic and says EEXIST rather
 * than clobber. With it, the clone is made beside dst and renamed over it. */
static int clone_entry(int sfd, const char *src_path, const struct stat *st, const char *dst,
                       uint32_t flags, cf_error *err) {
  int via_tmp = (flags & CF_OVERWRITE) && !(flags & CF_DIRECT);
  char *tmp = via_tmp ? temp_sibling(dst) : NULL;
  if (via_tmp && tmp == NULL) return fail(err, "malloc", ENOMEM, 1);
  const char *name = via_tmp ? tmp : dst;
  uint32_t cflags = clone_flags(flags);
  int acl_by_hand = 0;
  int rc = clone_call(sfd, src_path, name, cflags);
  if (rc != 0 && errno == EINVAL && (cflags & CLONE_ACL)) {
    /* CLONE_ACL is macOS 13+; older kernels reject the whole call with EINVAL (clonefile(2)). */
    acl_by_hand = sfd >= 0;
    rc = clone_call(sfd, src_path, name, cflags & ~(uint32_t)CLONE_ACL);
  }
  if (rc != 0) {
    int e = errno;
    free(tmp);
    return clone_fail(err, e, sfd >= 0);
  }
  rc = clone_fixup(sfd, st, name, flags, acl_by_hand, err);
  if (rc == 0 && via_tmp && rename(tmp, dst) != 0) rc = fail(err, "rename", errno, 1);
  /* The clone at `name` is ours: clonefile(2) never replaces an existing file. */
  if (rc < 0) unlink(name);
  free(tmp);
  return rc;
}

/* ---- copy: a new file that shares nothing ---- */

typedef struct {
  int fd;
  char *tmp; /* the temporary sibling, NULL with CF_DIRECT */
} dest_t;

static int dest_open(const char *dst, mode_t mode, uint32_t flags, dest_t *d, cf_error *err) {
  d->fd = -1;
  d->tmp = NULL;
  if (!(flags & CF_DIRECT) && (d->tmp = temp_sibling(dst)) == NULL) return fail(err, "malloc", ENOMEM, 1);
  d->fd = open(d->tmp ? d->tmp : dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  return d->fd < 0 ? fail(err, "open", errno, 1) : 0;
}

/* Gives the finished file its name. Without CF_OVERWRITE an existing dst is EEXIST. */
static int dest_publish(const char *dst, uint32_t flags, dest_t *d, cf_error *err) {
  if (flags & CF_DIRECT) return 0;
  if (flags & CF_OVERWRITE) return rename(d->tmp, dst) == 0 ? 0 : fail(err, "rename", errno, 1);
  if (renamex_np(d->tmp, dst, RENAME_EXCL) == 0) return 0;
  /* rename(2): ENOTSUP when the filesystem has no RENAME_EXCL; link(2) refuses to clobber too. */
  if (errno != ENOTSUP) return fail(err, "renamex_np", errno, 1);
  if (link(d->tmp, dst) != 0) return fail(err, "link", errno, 1);
  unlink(d->tmp);
  return 0;
}

/* Only a file this call created is removed: a failed O_EXCL open made nothing. */
static void dest_discard(const char *dst, uint32_t flags, dest_t *d) {
  if (d->fd >= 0) {
    close(d->fd);
    unlink((flags & CF_DIRECT) ? dst : d->tmp);
  }
  free(d->tmp);
}

/* pread/pwrite `n` bytes; stops early at the source's EOF. Returns bytes copied. */
static int64_t copy_bytes(int sfd, int dfd, uint64_t soff, uint64_t doff, uint64_t n, cf_error *err) {
  enum { BUF = 1 << 20 };
  char *buf = malloc(BUF);
  if (buf == NULL) return fail(err, "malloc", ENOMEM, 0);
  uint64_t done = 0;
  int64_t rc = 0;
  while (rc == 0 && done < n) {
    size_t want = n - done < BUF ? (size_t)(n - done) : BUF;
    ssize_t r = pread(sfd, buf, want, (off_t)(soff + done));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) rc = fail(err, "read", errno, 0);
    if (r <= 0) break; /* 0: the source ended (or shrank) before the range did */
    for (ssize_t w = 0; rc == 0 && w < r;) {
      ssize_t k = pwrite(dfd, buf + w, (size_t)(r - w), (off_t)(doff + done + (uint64_t)w));
      if (k < 0 && errno != EINTR) rc = fail(err, "write", errno, 1);
      if (k > 0) w += k;
    }
    done += (uint64_t)r;
  }
  free(buf);
  return rc < 0 ? rc : (int64_t)done;
}

/* A physical copy that keeps holes, as cp does (lseek(2) SEEK_DATA/SEEK_HOLE, APFS has them). */
static int copy_data(int sfd, int dfd, off_t size, cf_error *err) {
  off_t pos = 0;
  while (pos < size) {
    off_t data = lseek(sfd, pos, SEEK_DATA);
    if (data < 0) {
      /* ENXIO: only a hole remains. Otherwise (EINVAL: HFS+ and others) copy everything. */
      if (errno != ENXIO && copy_bytes(sfd, dfd, (uint64_t)pos, (uint64_t)pos, (uint64_t)(size - pos), err) < 0)
        return -err->errnum;
      break;
    }
    off_t hole = lseek(sfd, data, SEEK_HOLE);
    if (hole < 0 || hole > size) hole = size;
    if (copy_bytes(sfd, dfd, (uint64_t)data, (uint64_t)data, (uint64_t)(hole - data), err) < 0)
      return -err->errnum;
    pos = hole;
  }
  if (ftruncate(dfd, size) != 0) return fail(err, "ftruncate", errno, 1);
  return 0;
}

static int copy_meta(int sfd, int dfd, const struct stat *st, uint32_t flags, cf_error *err) {
  /* Owner first: fchown(2) clears setuid/setgid. EPERM (not root) is ignored, as cp -p does. */
  if ((flags & CF_OWNER) && fchown(dfd, st->st_uid, st->st_gid) != 0 && errno != EPERM)
    return fail(err, "fchown", errno, 1);
  if ((flags & CF_XATTR) && copy_xattrs(sfd, dfd, err) < 0) return -err->errnum;
  if ((flags & CF_ACL) && copy_acl(sfd, dfd, NULL, err) < 0) return -err->errnum;
  if (flags & CF_MODE) {
    mode_t mode = st->st_mode & ((flags & CF_SETID) ? 07777 : 01777);
    if (fchmod(dfd, mode) != 0) return fail(err, "fchmod", errno, 1);
  }
  if (flags & CF_TIMES) {
    struct timespec ts[2] = {st->st_atimespec, st->st_mtimespec};
    if (futimens(dfd, ts) != 0) return fail(err, "futimens", errno, 1);
  }
  return 0;
}

static int copy_regular(int sfd, const struct stat *st, const char *dst, uint32_t flags, cf_error *err) {
  dest_t d;
  int rc = dest_open(dst, st->st_mode & 0777, flags, &d, err);
  if (rc == 0) rc = copy_data(sfd, d.fd, st->st_size, err);
  if (rc == 0) rc = copy_meta(sfd, d.fd, st, flags, err);
  if (rc == 0) rc = dest_publish(dst, flags, &d, err);
  if (rc < 0) {
    dest_discard(dst, flags, &d);
    return rc;
  }
  close(d.fd);
  free(d.tmp);
  return 0;
}

/* Recreates a symlink, as linux.c does: what CF_NOFOLLOW means for the copy method. */
int cf_copy_symlink(const char *src, const char *dst, uint32_t flags, cf_error *err) {
  struct stat st;
  if (lstat(src, &st) != 0) return fail(err, "lstat", errno, 0);
  /* st_size of a symlink is its target's length; allow for a filesystem that says 0. */
  size_t cap = st.st_size > 0 ? (size_t)st.st_size + 1 : PATH_MAX;
  char *target = malloc(cap);
  if (target == NULL) return fail(err, "malloc", ENOMEM, 0);
  ssize_t n = readlink(src, target, cap);
  if (n < 0 || (size_t)n >= cap) {
    free(target);
    return fail(err, "readlink", n < 0 ? errno : ENAMETOOLONG, 0);
  }
  target[n] = '\0';
  int via_tmp = (flags & CF_OVERWRITE) && !(flags & CF_DIRECT);
  char *tmp = via_tmp ? temp_sibling(dst) : NULL;
  const char *name = via_tmp ? tmp : dst;
  int rc = 0;
  if (via_tmp && tmp == NULL) {
    rc = fail(err, "malloc", ENOMEM, 1);
  } else if (symlink(target, name) != 0) {
    rc = fail(err, "symlink", errno, 1);
  } else {
    struct timespec ts[2] = {st.st_atimespec, st.st_mtimespec};
    if ((flags & CF_OWNER) && fchownat(AT_FDCWD, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) != 0 &&
        errno != EPERM)
      rc = fail(err, "lchown", errno, 1);
    else if ((flags & CF_TIMES) && utimensat(AT_FDCWD, name, ts, AT_SYMLINK_NOFOLLOW) != 0)
      rc = fail(err, "utimensat", errno, 1);
    else if (tmp && rename(tmp, dst) != 0)
      rc = fail(err, "rename", errno, 1);
    if (rc < 0) unlink(name);
  }
  free(tmp);
  free(target);
  return rc;
}

/* ---- whole file ---- */

/* CF_NOFOLLOW on a symlink: clonefile(2) with CLONE_NOFOLLOW clones the link itself. */
static int symlink_entry(const char *src, const char *dst, int method, uint32_t flags, cf_clone_out *out,
                         cf_error *err) {
  out->symlink = 1;
  if (method == CF_METHOD_COPY) return cf_copy_symlink(src, dst, flags, err);
  struct stat st;
  if (lstat(src, &st) != 0) return fail(err, "lstat", errno, 0);
  return clone_entry(-1, src, &st, dst, flags, err);
}

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
      /* open(2): O_NOFOLLOW on a symlink is ELOOP. */
      if (e == ELOOP && (flags & CF_NOFOLLOW) && lstat(src->path, &lst) == 0 && S_ISLNK(lst.st_mode))
        return symlink_entry(src->path, dst, method, flags, out, err);
      return fail(err, "open", e, 0);
    }
  }
  struct stat st;
  int rc;
  if (fstat(sfd, &st) != 0)
    rc = fail(err, "fstat", errno, 0);
  else if (S_ISDIR(st.st_mode) && (flags & CF_TREE) && method == CF_METHOD_CLONE)
    /* clonefile(2): "If src names a directory, the directory hierarchy is cloned", atomically. */
    rc = clone_call(src->fd >= 0 ? sfd : -1, src->path, dst, clone_flags(flags)) != 0
             ? clone_fail(err, errno, src->fd >= 0) : 0;
  else if (!S_ISREG(st.st_mode)) /* directories belong to the tree code */
    rc = fail(err, method == CF_METHOD_CLONE ? "clonefile" : "copyfile", S_ISDIR(st.st_mode) ? EISDIR : EINVAL, 0);
  else if (method == CF_METHOD_CLONE)
    rc = clone_entry(sfd, NULL, &st, dst, flags, err);
  else
    rc = copy_regular(sfd, &st, dst, flags, err);
  if (rc == 0) out->size = (uint64_t)st.st_size;
  if (src->fd < 0) close(sfd);
  return rc;
}

/* ---- ranges ---- */

int64_t cf_clone_range(int src_fd, int dst_fd, uint64_t src_offset, uint64_t dst_offset,
                       uint64_t length, int method, cf_error *err) {
  /* APFS clones whole files only: there is no FICLONERANGE counterpart. */
  if (method == CF_METHOD_CLONE) return fail(err, "clonefile", ENOTSUP, 0);
  uint64_t n = length;
  if (n == 0) {
    struct stat st;
    if (fstat(src_fd, &st) != 0) return fail(err, "fstat", errno, 0);
    n = (uint64_t)st.st_size > src_offset ? (uint64_t)st.st_size - src_offset : 0;
  }
  return copy_bytes(src_fd, dst_fd, src_offset, dst_offset, n, err);
}

/* No compare-and-share call exists on macOS; the name is linux.c's so errors read alike. */
int64_t cf_dedupe_range(int src_fd, int dst_fd, uint64_t src_offset, uint64_t dst_offset,
                        uint64_t length, cf_error *err) {
  (void)src_fd;
  (void)dst_fd;
  (void)src_offset;
  (void)dst_offset;
  (void)length;
  return fail(err, "ioctl_fideduperange", ENOTSUP, 0);
}

/* ---- filesystem facts ---- */

/* FNV-1a, 32 bits so that the number survives the trip through a JS double. */
static uint64_t name_hash(const char *name) {
  uint32_t h = 2166136261u;
  for (const unsigned char *p = (const unsigned char *)name; *p; p++) h = (h ^ *p) * 16777619u;
  return h;
}

/* getattrlist(2) answers volume attributes only for the volume's root, hence the mount point.
 * 1 / 0 from VOL_CAP_INT_CLONE, -1 when the volume does not say. */
static int volume_can_clone(const char *mountpoint) {
  struct attrlist al = {.bitmapcount = ATTR_BIT_MAP_COUNT, .volattr = ATTR_VOL_INFO | ATTR_VOL_CAPABILITIES};
  struct {
    uint32_t length;
    vol_capabilities_attr_t caps;
  } __attribute__((aligned(4), packed)) buf;
  if (getattrlist(mountpoint, &al, &buf, sizeof buf, 0) != 0) return -1;
  uint32_t valid = buf.caps.valid[VOL_CAPABILITIES_INTERFACES];
  uint32_t caps = buf.caps.capabilities[VOL_CAPABILITIES_INTERFACES];
  if (!(valid & VOL_CAP_INT_CLONE)) return -1;
  return (caps & VOL_CAP_INT_CLONE) ? 1 : 0;
}

int cf_fs_info_get(const char *path, cf_fs_info *info, cf_error *err) {
  struct statfs sf;
  struct stat st;
  if (statfs(path, &sf) != 0) return fail(err, "statfs", errno, 0);
  if (stat(path, &st) != 0) return fail(err, "stat", errno, 0);
  memset(info, 0, sizeof *info);
  snprintf(info->name, sizeof info->name, "%s", sf.f_fstypename);
  info->type = name_hash(info->name);
  info->block_size = (uint64_t)sf.f_bsize;
  info->dev = (uint64_t)(uint32_t)st.st_dev; /* dev_t is a signed 32-bit int here */
  info->mount_id = info->dev;
  info->can_clone = volume_can_clone(sf.f_mntonname);
  return 0;
}

/* APFS has no FIEMAP; the name is linux.c's so errors read alike. */
int cf_extents(const char *path, cf_extent **out, uint32_t *count, cf_error *err) {
  (void)path;
  *out = NULL;
  *count = 0;
  return fail(err, "ioctl_fiemap", ENOTSUP, 0);
}

/* ---- space: getattrlist(2) ----
 *
 * UNTESTED like the rest of this file: compiled against zig's macOS 11-13 SDK headers only,
 * never run. The layout below is what <sys/attr.h>, getattrlist(2) and xnu's
 * bsd/vfs/vfs_attrlist.c (attr_pack_common_extended) describe. */

/* Newer than some SDKs: the values of the macOS 14 SDK's <sys/attr.h>. */
#ifndef ATTR_CMNEXT_CLONEID
#define ATTR_CMNEXT_CLONEID 0x00000100
#endif
#ifndef ATTR_CMNEXT_EXT_FLAGS
#define ATTR_CMNEXT_EXT_FLAGS 0x00000200
#endif
#ifndef ATTR_CMNEXT_CLONE_REFCNT
#define ATTR_CMNEXT_CLONE_REFCNT 0x00001000
#endif

/* getattrlist(2) fails with EINVAL on any attribute bit the kernel does not know
 * (getattrlist_parsetab), whatever SDK the addon was built with: CLONE_REFCNT came with macOS 14,
 * CLONEID and EXT_FLAGS after PRIVATESIZE (the macOS 11 SDK has them). So the request shrinks
 * down this list on EINVAL, and remembers where the kernel stopped. */
static const uint32_t space_requests[] = {
    ATTR_CMNEXT_PRIVATESIZE | ATTR_CMNEXT_CLONEID | ATTR_CMNEXT_EXT_FLAGS | ATTR_CMNEXT_CLONE_REFCNT,
    ATTR_CMNEXT_PRIVATESIZE | ATTR_CMNEXT_CLONEID | ATTR_CMNEXT_EXT_FLAGS,
    ATTR_CMNEXT_PRIVATESIZE,
};
static int space_level; /* index into space_requests; only ever grows (relaxed atomics) */

/* Copies the next value of the answer when `present`; 0 when the answer is too short for it. */
static int space_field(const uint8_t **p, const uint8_t *end, int present, void *value, size_t n) {
  if (!present) return 1;
  if ((size_t)(end - *p) < n) return 0;
  memcpy(value, *p, n);
  *p += n;
  return 1;
}

/* The answer: u32 length (itself included), the attribute_set_t of the attributes returned
 * (ATTR_CMN_RETURNED_ATTRS comes first), then only those attributes, group by group (common,
 * file, then the CMNEXT bits of forkattr) and by ascending bit within a group, each at 4-byte
 * alignment with no padding: ATTR_FILE_ALLOCSIZE off_t; ATTR_CMNEXT_PRIVATESIZE off_t (0x8),
 * CLONEID u_int64_t (0x100), EXT_FLAGS u_int64_t (0x200), CLONE_REFCNT u_int32_t (0x1000).
 * An attribute the filesystem does not keep (HFS+, SMB, ...) is left out, not zeroed, since
 * FSOPT_PACK_INVAL_ATTRS is not asked for. Hence memcpy: an 8-byte value may sit at 4 mod 8. */
static int space_parse(const uint8_t *buf, size_t size, cf_file_space *out) {
  uint32_t length;
  attribute_set_t got;
  memcpy(&length, buf, sizeof length);
  /* The kernel reports the size of what was asked for; no more than the buffer was copied. */
  if (length > size) length = (uint32_t)size;
  if (length < sizeof length + sizeof got) return -1;
  memcpy(&got, buf + sizeof length, sizeof got);
  const uint8_t *p = buf + sizeof length + sizeof got, *end = buf + length;
  int64_t allocated = -1, private_size = -1;
  int ok = space_field(&p, end, got.fileattr & ATTR_FILE_ALLOCSIZE, &allocated, 8) &&
           space_field(&p, end, got.forkattr & ATTR_CMNEXT_PRIVATESIZE, &private_size, 8) &&
           space_field(&p, end, got.forkattr & ATTR_CMNEXT_CLONEID, &out->clone_id, 8) &&
           space_field(&p, end, got.forkattr & ATTR_CMNEXT_EXT_FLAGS, &out->ext_flags, 8) &&
           space_field(&p, end, got.forkattr & ATTR_CMNEXT_CLONE_REFCNT, &out->clone_refcount, 4);
  if (!ok) return -1;
  /* off_t: a negative size would be nonsense, so it counts as not reported. */
  if (allocated >= 0) out->allocated = (uint64_t)allocated;
  if (private_size >= 0) out->private_size = (uint64_t)private_size;
  out->known = (allocated >= 0 ? CF_SPACE_ALLOCATED : 0) | (private_size >= 0 ? CF_SPACE_PRIVATE_SIZE : 0) |
               ((got.forkattr & ATTR_CMNEXT_CLONEID) ? CF_SPACE_CLONE_ID : 0) |
               ((got.forkattr & ATTR_CMNEXT_EXT_FLAGS) ? CF_SPACE_EXT_FLAGS : 0) |
               ((got.forkattr & ATTR_CMNEXT_CLONE_REFCNT) ? CF_SPACE_CLONE_REFCOUNT : 0);
  return 0;
}

int cf_file_space_get(const char *path, cf_file_space *out, cf_error *err) {
  memset(out, 0, sizeof *out);
  /* 4 + 20 (attribute_set_t) + 4 * 8 + 4 = 60 bytes at most. */
  uint8_t buf[64];
  int level = __atomic_load_n(&space_level, __ATOMIC_RELAXED);
  int last = (int)(sizeof space_requests / sizeof space_requests[0]) - 1;
  for (;;) {
    struct attrlist al = {.bitmapcount = ATTR_BIT_MAP_COUNT, .commonattr = ATTR_CMN_RETURNED_ATTRS,
                          .fileattr = ATTR_FILE_ALLOCSIZE, .forkattr = space_requests[level]};
    if (getattrlist(path, &al, buf, sizeof buf, FSOPT_ATTR_CMN_EXTENDED | FSOPT_NOFOLLOW) == 0) break;
    if (errno != EINVAL || level == last) return fail(err, "getattrlist", errno, 0);
    level++;
  }
  /* Only a smaller request that worked shows which bits this kernel lacks. */
  if (level > __atomic_load_n(&space_level, __ATOMIC_RELAXED)) __atomic_store_n(&space_level, level, __ATOMIC_RELAXED);
  /* A short or inconsistent answer: what getattrlist(2) says of a buffer too small. */
  return space_parse(buf, sizeof buf, out) == 0 ? 0 : fail(err, "getattrlist", ERANGE, 0);
}

/* ---- trees ---- */

typedef struct {
  cf_dirent *ents;
  char *names;
  uint32_t count, cap, names_len, names_cap;
} scan_t;

static int scan_add(scan_t *sc, const char *name, const struct stat *st, cf_error *err) {
  size_t len = strlen(name) + 1;
  if (sc->count == sc->cap) {
    cf_dirent *grown = realloc(sc->ents, (size_t)(sc->cap *= 2) * sizeof *grown);
    if (grown == NULL) return fail(err, "malloc", ENOMEM, 0);
    sc->ents = grown;
  }
  if (sc->names_len + len > sc->names_cap) {
    while (sc->names_len + len > sc->names_cap) sc->names_cap *= 2;
    char *grown = realloc(sc->names, sc->names_cap);
    if (grown == NULL) return fail(err, "malloc", ENOMEM, 0);
    sc->names = grown;
  }
  memcpy(sc->names + sc->names_len, name, len);
  /* dev_t is a signed 32-bit int here: widened unsigned, as cf_fs_info_get reports it. */
  sc->ents[sc->count++] = (cf_dirent){.name = sc->names_len, .mode = st->st_mode, .dev = (uint32_t)st->st_dev,
                                      .ino = st->st_ino, .size = (uint64_t)st->st_size, .nlink = st->st_nlink};
  sc->names_len += (uint32_t)len;
  return 0;
}

/* 0: stat'ed; 1: vanished since the listing (not an entry any more). Following, a dangling
 * symlink is kept as the link itself, as linux.c does (cp -L reports it). */
static int scan_stat(DIR *d, const char *name, int follow, struct stat *st, cf_error *err) {
  if (fstatat(dirfd(d), name, st, follow ? 0 : AT_SYMLINK_NOFOLLOW) == 0) return 0;
  int e = errno;
  if (e == ENOENT && follow && fstatat(dirfd(d), name, st, AT_SYMLINK_NOFOLLOW) == 0) return 0;
  return e == ENOENT ? 1 : fail(err, "fstatat", e, 0);
}

int cf_scan_dir(const char *path, int how, cf_dirent **entries, uint32_t *count, char **names,
                cf_error *err) {
  *entries = NULL;
  *names = NULL;
  *count = 0;
  /* APFS has no FIEMAP: nothing to map extents with. */
  if (how & CF_SCAN_EXTENTS) return fail(err, "fiemap", ENOTSUP, 0);
  int follow = how & CF_SCAN_FOLLOW;
  DIR *d = opendir(path);
  if (d == NULL) return fail(err, "opendir", errno, 0);
  scan_t sc = {.ents = malloc(64 * sizeof(cf_dirent)), .names = malloc(4096), .cap = 64, .names_cap = 4096};
  int rc = (sc.ents == NULL || sc.names == NULL) ? fail(err, "malloc", ENOMEM, 0) : 0;
  struct dirent *de;
  while (rc == 0 && (errno = 0, de = readdir(d)) != NULL) {
    const char *n = de->d_name;
    if (n[0] == '.' && (n[1] == '\0' || (n[1] == '.' && n[2] == '\0'))) continue;
    struct stat st;
    int found = scan_stat(d, n, follow, &st, err);
    if (found == 0) rc = scan_add(&sc, n, &st, err);
    else if (found < 0) rc = found;
  }
  if (rc == 0 && errno != 0) rc = fail(err, "readdir", errno, 0);
  closedir(d);
  if (rc < 0) {
    free(sc.ents);
    free(sc.names);
    return rc;
  }
  *entries = sc.ents;
  *names = sc.names;
  *count = sc.count;
  return 0;
}

/* Metadata by path, for entries that cannot be opened (FIFOs without a reader, devices). */
static int copy_meta_path(const char *dst, const struct stat *st, uint32_t flags, cf_error *err) {
  if ((flags & CF_OWNER) && lchown(dst, st->st_uid, st->st_gid) != 0 && errno != EPERM)
    return fail(err, "lchown", errno, 1);
  if ((flags & CF_MODE) && chmod(dst, st->st_mode & ((flags & CF_SETID) ? 07777 : 01777)) != 0)
    return fail(err, "chmod", errno, 1);
  struct timespec ts[2] = {st->st_atimespec, st->st_mtimespec};
  if ((flags & CF_TIMES) && utimensat(AT_FDCWD, dst, ts, AT_SYMLINK_NOFOLLOW) != 0)
    return fail(err, "utimensat", errno, 1);
  return 0;
}

/* mkfifo(2) for FIFOs: on macOS mknod(2) is for the super-user only, FIFOs included. */
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
  if (S_ISFIFO(st.st_mode)) {
    if (mkfifo(dst, st.st_mode & 0777) != 0) return fail(err, "mkfifo", errno, 1);
  } else if (mknod(dst, st.st_mode & (S_IFMT | 0777), st.st_rdev) != 0) {
    return fail(err, "mknod", errno, 1);
  }
  int rc = copy_meta_path(dst, &st, flags, err);
  if (rc < 0) unlink(dst);
  return rc;
}

int cf_copy_dir_meta(const char *src, const char *dst, uint32_t flags, cf_error *err) {
  int sfd = open(src, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (sfd < 0) return fail(err, "open", errno, 0);
  int dfd = open(dst, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) {
    close(sfd);
    return fail(err, "open", errno, 1);
  }
  struct stat st;
  int rc = fstat(sfd, &st) != 0 ? fail(err, "fstat", errno, 0) : copy_meta(sfd, dfd, &st, flags, err);
  close(sfd);
  close(dfd);
  return rc;
}

int cf_hard_link(const char *existing, const char *dst, uint32_t flags, cf_error *err) {
  if (!(flags & CF_OVERWRITE)) return link(existing, dst) != 0 ? fail(err, "link", errno, 1) : 0;
  /* Replacing: link under a temporary name, then rename over dst (atomic). */
  char *tmp = temp_sibling(dst);
  if (tmp == NULL) return fail(err, "malloc", ENOMEM, 1);
  int rc = link(existing, tmp) != 0 ? fail(err, "link", errno, 1) : 0;
  if (rc == 0 && rename(tmp, dst) != 0) {
    rc = fail(err, "rename", errno, 1);
    unlink(tmp);
  }
  free(tmp);
  return rc;
}

/* RENAME_EXCL refuses any existing `to`, an empty directory included (rename(2)). */
int cf_rename(const char *from, const char *to, int noreplace, cf_error *err) {
  if (!noreplace) return rename(from, to) != 0 ? fail(err, "rename", errno, 1) : 0;
  return renamex_np(from, to, RENAME_EXCL) != 0 ? fail(err, "renamex_np", errno, 1) : 0;
}
