/*
 * What Linux and macOS share: every entry is reached relative to an open directory with the
 * *at() calls, so no path is re-resolved, no symlink is followed unless asked, and no PATH_MAX
 * applies (see cf_at in platform.h).
 */
#define _GNU_SOURCE
#include "posix.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#ifdef __linux__
#include <sys/syscall.h>
#endif
#include <unistd.h>

/* How each directory of a longer name is opened: O_PATH where there is one (only search
 * permission is needed, as for any path); never readable data, only a place to go on from. */
#ifdef O_PATH
#define WALK_FLAGS (O_PATH | O_DIRECTORY | O_CLOEXEC)
#else
#define WALK_FLAGS (O_RDONLY | O_DIRECTORY | O_CLOEXEC)
#endif

static int is_dotdot(const char *s, size_t n) {
  return n == 2 && s[0] == '.' && s[1] == '.';
}

void px_release(px_at *r) {
  if (r->owned) close(r->dir);
  r->owned = 0;
}

/* O_NOFOLLOW on each component: a symlink planted on the way is ENOTDIR (with O_DIRECTORY) or
 * ELOOP, never followed. */
int px_resolve(cf_at at, int follow_dirs, int on_dest, px_at *out, cf_error *err) {
  out->owned = 0;
  out->name = at.name;
  if (at.dir == CF_CWD) {
    out->dir = AT_FDCWD; /* -100 on Linux, -2 on macOS */
    return 0;
  }
  out->dir = at.dir;
  const char *p = at.name, *slash;
  for (; (slash = strchr(p, '/')) != NULL; p = slash + 1) {
    size_t n = (size_t)(slash - p);
    char comp[NAME_MAX + 1];
    int e = n > NAME_MAX ? ENAMETOOLONG : is_dotdot(p, n) ? EINVAL : 0;
    int fd = -1;
    if (e == 0) {
      memcpy(comp, p, n);
      comp[n] = '\0';
      fd = openat(out->dir, comp, WALK_FLAGS | (follow_dirs ? 0 : O_NOFOLLOW));
      if (fd < 0) e = errno;
    }
    px_release(out);
    if (e != 0) return fail(err, "open", e, on_dest);
    out->dir = fd;
    out->owned = 1;
  }
  out->name = p;
  if (is_dotdot(p, strlen(p))) {
    px_release(out);
    return fail(err, "open", EINVAL, on_dest);
  }
  return 0;
}

/* link(2)'s answers where the filesystem has no hard links: msdosfs, exFAT and SMB on macOS
 * (ENOTSUP, vn_default_error), vfat and others on Linux (EPERM: "The filesystem containing
 * oldpath and newpath does not support the creation of hard links"). */
static int no_hard_links(int e) { return e == ENOTSUP || e == EOPNOTSUPP || e == EPERM || e == ENOSYS; }

/* The last way to publish without clobbering, on filesystems with neither a no-replace rename
 * nor hard links (a USB stick, issue 12 #7): dst's name is taken first by an empty placeholder
 * of our own, made exclusively (O_CREAT | O_EXCL, or mkdir for a directory: an existing dst of
 * any kind is EEXIST, never touched), then rename(2) replaces that placeholder, which is ours.
 * For a moment dst is an empty file (or directory): the same trade the TypeScript publish
 * makes for whole trees on FUSE and NFS. */
static int publish_by_placeholder(const px_at *tmp, const px_at *dst, cf_error *err) {
  struct stat st;
  if (fstatat(tmp->dir, tmp->name, &st, AT_SYMLINK_NOFOLLOW) != 0) return fail(err, "lstat", errno, 1);
  int dir = S_ISDIR(st.st_mode);
  if (dir) {
    if (mkdirat(dst->dir, dst->name, 0700) != 0) return fail(err, "mkdir", errno, 1);
  } else {
    int fd = openat(dst->dir, dst->name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return fail(err, "open", errno, 1);
    close(fd);
  }
  if (renameat(tmp->dir, tmp->name, dst->dir, dst->name) == 0) return 0;
  int e = errno;
  unlinkat(dst->dir, dst->name, dir ? AT_REMOVEDIR : 0);
  return fail(err, "rename", e, 1);
}

int px_publish(const px_at *tmp, const px_at *dst, int overwrite, cf_error *err) {
  if (overwrite)
    return renameat(tmp->dir, tmp->name, dst->dir, dst->name) == 0 ? 0 : fail(err, "rename", errno, 1);
  if (px_rename_noreplace(tmp->dir, tmp->name, dst->dir, dst->name) == 0) return 0;
  int e = errno;
  if (e != EINVAL && e != ENOSYS) return fail(err, "rename", e, 1);
  /* No RENAME_NOREPLACE on this filesystem: link(2) refuses to clobber too. */
  if (linkat(tmp->dir, tmp->name, dst->dir, dst->name, 0) == 0) {
    unlinkat(tmp->dir, tmp->name, 0);
    return 0;
  }
  e = errno;
  if (!no_hard_links(e)) return fail(err, "link", e, 1);
  return publish_by_placeholder(tmp, dst, err);
}

int px_open_read(cf_at at, struct stat *st, cf_error *err) {
  px_at r;
  if (px_resolve(at, 0, 0, &r, err) < 0) return -err->errnum;
  int base = O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK;
  int fd = O_NOATIME != 0 ? openat(r.dir, r.name, base | O_NOATIME) : -1;
  /* O_NOATIME is EPERM for a file of another owner without CAP_FOWNER: atime moves then. */
  if (fd < 0 && (O_NOATIME == 0 || errno == EPERM)) fd = openat(r.dir, r.name, base);
  if (fd < 0) {
    int e = errno;
    px_release(&r);
    return fail(err, "open", e, 0);
  }
  px_release(&r);
  if (fstat(fd, st) != 0) {
    int e = errno;
    close(fd);
    return fail(err, "fstat", e, 0);
  }
  if (!S_ISREG(st->st_mode)) {
    close(fd);
    return fail(err, "open", EINVAL, 0);
  }
  return fd;
}

static int64_t read_full(int fd, uint8_t *buf, uint64_t n, uint64_t off, cf_error *err) {
  uint64_t got = 0;
  while (got < n) {
    ssize_t r = pread(fd, buf + got, (size_t)(n - got), (off_t)(off + got));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return fail(err, "read", errno, 0);
    if (r == 0) break;
    got += (uint64_t)r;
  }
  return (int64_t)got;
}

/* A file's sample: start, middle and end (a small file whole), as offsets and lengths. */
static int sample_parts(uint64_t size, uint64_t block, uint64_t offs[3], uint64_t lens[3]) {
  offs[0] = 0;
  offs[1] = size / 2 > block / 2 ? size / 2 - block / 2 : 0;
  offs[2] = size > block ? size - block : 0;
  lens[0] = size <= 3 * block ? size : block;
  lens[1] = lens[2] = block;
  return size <= 3 * block ? 1 : 3;
}

static int64_t read_parts(int fd, uint64_t size, uint64_t block, uint8_t *buf, cf_error *err) {
  uint64_t offs[3], lens[3], total = 0;
  int parts = sample_parts(size, block, offs, lens);
  for (int k = 0; k < parts; k++) {
    int64_t r = read_full(fd, buf + total, lens[k], offs[k], err);
    if (r < 0) return r;
    total += (uint64_t)r;
  }
  return (int64_t)total;
}

/* How many files cf_read_samples keeps asked for ahead of the one it reads. */
#define SAMPLE_AHEAD_FILES 64

/* Opens file i of a sample batch and asks for what will be read of it: the samples as
 * sample_parts() places them, each widened to `ahead` bytes; a file of up to 8 such widths
 * whole, in one request (three requests, and the gaps the compare fills later, cost more than
 * reading it all: 8.9k requests -> 3.2k for the same bytes on the bench corpus). */
static int sample_open(cf_at at, uint64_t block, uint64_t ahead, cf_stat *out, int32_t *errnum) {
  struct stat st;
  cf_error e = {0};
  int fd = px_open_read(at, &st, &e);
  *errnum = fd < 0 ? e.errnum : 0;
  if (fd < 0) return fd;
  px_stat_into(out, &st);
#ifdef POSIX_FADV_WILLNEED
  uint64_t offs[3], lens[3], wide = ahead > block ? ahead : block;
  int parts = sample_parts((uint64_t)st.st_size, wide, offs, lens);
  if ((uint64_t)st.st_size <= 8 * wide) parts = 1, offs[0] = 0, lens[0] = (uint64_t)st.st_size;
  for (int k = 0; k < parts; k++) posix_fadvise(fd, (off_t)offs[k], (off_t)lens[k], POSIX_FADV_WILLNEED);
#else
  (void)block, (void)ahead;
#endif
  return fd;
}

void cf_read_samples(const cf_at *at, uint32_t n, uint64_t block, uint64_t ahead, uint8_t *buf, int64_t *got,
                     cf_stat *out, int32_t *errnos) {
  /* A sliding window: file i is read while files i+1 .. i+63 are already asked for, so the
   * disk always has work queued (asked for in blocks of 64 and read, it ran dry between). */
  int fds[SAMPLE_AHEAD_FILES];
  for (uint32_t i = 0; i < n && i < SAMPLE_AHEAD_FILES; i++) fds[i] = sample_open(at[i], block, ahead, &out[i], &errnos[i]);
  for (uint32_t i = 0; i < n; i++) {
    int fd = fds[i % SAMPLE_AHEAD_FILES];
    got[i] = 0;
    if (fd >= 0) {
      cf_error e = {0};
      got[i] = read_parts(fd, out[i].size, block, buf + (size_t)i * 3 * block, &e);
      if (got[i] < 0) errnos[i] = e.errnum, got[i] = 0;
      close(fd);
    }
    uint32_t next = i + SAMPLE_AHEAD_FILES;
    if (next < n) fds[next % SAMPLE_AHEAD_FILES] = sample_open(at[next], block, ahead, &out[next], &errnos[next]);
  }
}

void px_stat_into(cf_stat *out, const struct stat *st) {
  *out = (cf_stat){.mode = st->st_mode,
                   .dev = (uint64_t)st->st_dev,
                   .ino = (uint64_t)st->st_ino,
                   .size = (uint64_t)st->st_size,
                   .nlink = (uint64_t)st->st_nlink,
                   .mtime_sec = PX_MTIM(st).tv_sec,
                   .mtime_nsec = (uint32_t)PX_MTIM(st).tv_nsec,
                   .ctime_sec = PX_CTIM(st).tv_sec,
                   .ctime_nsec = (uint32_t)PX_CTIM(st).tv_nsec,
                   .blocks = (uint64_t)st->st_blocks,
                   .uid = (uint32_t)st->st_uid,
                   .gid = (uint32_t)st->st_gid};
}

/* ---- metadata ---- */

static mode_t mode_to_set(const struct stat *st, uint32_t flags) {
  return st->st_mode & ((flags & CF_SETID) ? 07777 : 01777);
}

/* chmod of the entry itself, never of what a symlink points to: 0 or -1 with errno. */
static int chmod_nofollow(int dir, const char *name, mode_t mode) {
  if (fchmodat(dir, name, mode, AT_SYMLINK_NOFOLLOW) == 0) return 0;
#ifdef O_PATH
  /* glibc before 2.32, without the fchmodat2 syscall (Linux < 6.6), refuses the flag
   * (EOPNOTSUPP): chmod the inode through the /proc/self/fd link of an O_PATH descriptor,
   * which names the entry itself, as later glibc does. A symlink's own mode cannot be set. */
  if (errno != EOPNOTSUPP) return -1;
  int fd = openat(dir, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return -1;
  struct stat st;
  char proc[32];
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
  int rc = fstat(fd, &st) != 0 ? -1 : S_ISLNK(st.st_mode) ? (errno = EOPNOTSUPP, -1) : chmod(proc, mode);
  int e = errno;
  close(fd);
  errno = e;
  return rc;
#else
  return -1;
#endif
}

int px_copy_meta_fd(int sfd, int dfd, const struct stat *st, uint32_t flags, cf_error *err) {
  /* fchown and fchmod are each a logged transaction on XFS even when nothing changes: look
   * first (fstat is not), and change only what differs from what creating the file gave it. */
  struct stat now;
  if ((flags & (CF_OWNER | CF_MODE)) && fstat(dfd, &now) != 0) return fail(err, "fstat", errno, 1);
  /* Owner first: fchown(2) clears setuid/setgid and security.capability. */
  if ((flags & CF_OWNER) && (now.st_uid != st->st_uid || now.st_gid != st->st_gid)) {
    if (fchown(dfd, st->st_uid, st->st_gid) != 0 && errno != EPERM) return fail(err, "fchown", errno, 1);
    now.st_mode = (mode_t)-1; /* possibly changed (setid cleared): set the mode whatever it is */
  }
  int acls = (flags & (CF_XATTR | CF_ACL)) ? px_copy_xattrs_fd(sfd, dfd, flags, err) : 0;
  if (acls < 0) return acls;
  if (flags & CF_MODE) {
    mode_t mode = mode_to_set(st, flags);
    /* A POSIX ACL set above rewrote the group bits: set the mode again then too. */
    if ((acls > 0 || (now.st_mode & 07777) != mode) && fchmod(dfd, mode) != 0) return fail(err, "fchmod", errno, 1);
  }
  if (flags & CF_TIMES) {
    struct timespec ts[2] = {PX_ATIM(st), PX_MTIM(st)};
    if (futimens(dfd, ts) != 0) return fail(err, "futimens", errno, 1);
  }
  return 0;
}

/* Metadata of an entry that is not opened (a symlink, FIFO or device node this process just
 * made at dst): every call names it relative to its directory and never follows it. */
static int copy_meta_at(const px_at *src, const px_at *dst, const struct stat *st, uint32_t flags,
                        cf_error *err) {
  if ((flags & CF_OWNER) && fchownat(dst->dir, dst->name, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW) != 0 &&
      errno != EPERM)
    return fail(err, "lchown", errno, 1);
  int acls = (flags & (CF_XATTR | CF_ACL)) ? px_copy_xattrs_at(src, dst, flags, err) : 0;
  if (acls < 0) return acls;
  /* A symlink's own mode means nothing on Linux (and fchmodat(2) refuses to set it). */
  if ((flags & CF_MODE) && !S_ISLNK(st->st_mode) && chmod_nofollow(dst->dir, dst->name, mode_to_set(st, flags)) != 0)
    return fail(err, "chmod", errno, 1);
  struct timespec ts[2] = {PX_ATIM(st), PX_MTIM(st)};
  if ((flags & CF_TIMES) && utimensat(dst->dir, dst->name, ts, AT_SYMLINK_NOFOLLOW) != 0)
    return fail(err, "utimensat", errno, 1);
  return 0;
}

/* ---- directories ---- */

/* O_NOATIME: reading the directory must not move the atime its copy is to be given (open(2):
 * only for the owner or CAP_FOWNER, EPERM otherwise, hence the retry without it). */
static int open_dir(const px_at *r, int follow, int noatime) {
  const char *name = r->name[0] != '\0' ? r->name : ".";
  int oflags = O_RDONLY | O_DIRECTORY | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW);
  int fd = noatime ? openat(r->dir, name, oflags | O_NOATIME) : -1;
  if (fd < 0 && (!noatime || errno == EPERM)) fd = openat(r->dir, name, oflags);
  return fd;
}

/* CF_SCAN_WRITABLE, when the directory cannot even be opened: u+rwx on one the process owns.
 * 0, or -1 (errno set; the caller reports the open's EACCES). */
static int make_openable(const px_at *r) {
  struct stat st;
  const char *name = r->name[0] != '\0' ? r->name : ".";
  if (fstatat(r->dir, name, &st, AT_SYMLINK_NOFOLLOW) != 0) return -1;
  if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid()) return -1;
  return chmod_nofollow(r->dir, name, (st.st_mode & 07777) | 0700);
}

/* fstat of a directory just opened; with CF_SCAN_WRITABLE, u+rwx given where missing. */
static int stat_dir(int fd, int how, cf_stat *out, cf_error *err) {
  struct stat st;
  if (fstat(fd, &st) != 0) return fail(err, "fstat", errno, 0);
  if ((how & CF_SCAN_WRITABLE) && (st.st_mode & 0700) != 0700 && st.st_uid == geteuid()) {
    if (fchmod(fd, (st.st_mode & 07777) | 0700) != 0) return fail(err, "fchmod", errno, 0);
    st.st_mode |= 0700;
  }
  px_stat_into(out, &st);
  return 0;
}

int cf_open_dir(cf_at at, int how, cf_stat *st, cf_error *err) {
  int follow = how & CF_SCAN_FOLLOW;
  px_at r = {.dir = at.dir, .name = at.name, .owned = 0};
  /* ".." alone, of an open directory: its parent, opened again by a walk that had closed it
   * (walk.ts checks its dev and ino). Anywhere else ".." is refused (px_resolve). */
  int parent = at.dir != CF_CWD && strcmp(at.name, "..") == 0;
  if (!parent && px_resolve(at, follow, 0, &r, err) < 0) return -err->errnum;
  int fd = open_dir(&r, follow, 1);
  int e = errno;
  if (fd < 0 && e == EACCES && (how & CF_SCAN_WRITABLE) && make_openable(&r) == 0) {
    fd = open_dir(&r, follow, 1);
    e = errno;
  }
  int rc = fd < 0 ? fail(err, "opendir", e, 0) : stat_dir(fd, how, st, err);
  px_release(&r);
  if (rc < 0 && fd >= 0) close(fd);
  return rc < 0 ? rc : fd;
}

void cf_close_dir(int fd) {
  close(fd);
}

int cf_make_dir(cf_at at, uint32_t mode, int merge, cf_error *err) {
  px_at r;
  if (px_resolve(at, 0, 1, &r, err) < 0) return -err->errnum;
  int rc = 0;
  if (mkdirat(r.dir, r.name, (mode_t)mode) != 0) {
    int e = errno;
    struct stat st;
    if (e == EEXIST && merge && fstatat(r.dir, r.name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode))
      rc = 1;
    else
      rc = fail(err, "mkdir", e, 1);
  }
  px_release(&r);
  return rc;
}

/* One side of cf_copy_dir_meta as a descriptor: an empty name is the given directory itself
 * (nothing opened, 0); else opened (1: the caller closes *fd). The source is followed unless
 * CF_NOFOLLOW (cloneTree -L reaches directories through symlinks) and opened O_NOATIME; the
 * destination, which this run made, never is. */
static int meta_dir_open(cf_at at, uint32_t flags, int is_src, int *fd, cf_error *err) {
  *fd = at.dir;
  if (at.dir != CF_CWD && at.name[0] == '\0') return 0;
  px_at r;
  if (px_resolve(at, flags & CF_FOLLOW_DIRS, !is_src, &r, err) < 0) return -err->errnum;
  *fd = open_dir(&r, is_src && !(flags & CF_NOFOLLOW), is_src);
  int rc = *fd < 0 ? fail(err, "opendir", errno, !is_src) : 1;
  px_release(&r);
  return rc;
}

int cf_copy_dir_meta(cf_at src, cf_at dst, uint32_t flags, cf_error *err) {
  int sfd, dfd;
  int src_owned = meta_dir_open(src, flags, 1, &sfd, err);
  if (src_owned < 0) return src_owned;
  int dst_owned = meta_dir_open(dst, flags, 0, &dfd, err);
  int rc = dst_owned < 0 ? dst_owned : 0;
  struct stat st;
  if (rc == 0 && fstat(sfd, &st) != 0) rc = fail(err, "fstat", errno, 0);
  if (rc == 0) rc = px_copy_meta_fd(sfd, dfd, &st, flags, err);
  if (dst_owned == 1) close(dfd);
  if (src_owned == 1) close(sfd);
  return rc;
}

/* ---- listing ---- */

typedef struct {
  cf_dirent *ents;
  uint32_t count, cap;
  char *names;
  uint32_t names_len, names_cap;
} scan_t;

/* Appends a zeroed entry named n (NULL: out of memory). */
static cf_dirent *scan_add(scan_t *sc, const char *n) {
  size_t len = strlen(n) + 1;
  if (sc->count == sc->cap) {
    uint32_t cap = sc->cap ? sc->cap * 2 : 64;
    cf_dirent *grown = realloc(sc->ents, cap * sizeof *grown);
    if (grown == NULL) return NULL;
    sc->ents = grown;
    sc->cap = cap;
  }
  if (sc->names_len + len > sc->names_cap) {
    uint32_t want = sc->names_cap ? sc->names_cap : 4096;
    while (sc->names_len + len > want) want *= 2;
    char *grown = realloc(sc->names, want);
    if (grown == NULL) return NULL;
    sc->names = grown;
    sc->names_cap = want;
  }
  memcpy(sc->names + sc->names_len, n, len);
  cf_dirent *ent = &sc->ents[sc->count++];
  *ent = (cf_dirent){.name = sc->names_len};
  sc->names_len += (uint32_t)len;
  return ent;
}

/* The extents of the regular file `name`, or their errno in ext_err (vanished, unreadable):
 * one file's failure is not the listing's. */
static void extents_into(int dir, const char *name, int follow, cf_dirent *ent) {
  int fd = openat(dir, name, O_RDONLY | O_CLOEXEC | O_NONBLOCK | (follow ? 0 : O_NOFOLLOW));
  cf_error e;
  if (fd < 0) {
    ent->ext_err = errno;
  } else if (px_extents_fd(fd, &ent->ext, &ent->ext_count, &e) < 0) {
    ent->ext_err = e.errnum;
    ent->ext_count = 0;
  }
  if (fd >= 0) close(fd);
}

/* CF_SCAN_EXTENTS, with the type from the listing: only a regular file needs more, and it is
 * opened for FIEMAP anyway, so fstat on it spares a second path lookup per file. */
static void measure_entry(int dir, const char *name, unsigned char type, int how, cf_dirent *ent) {
  static const mode_t modes[] = {[DT_FIFO] = S_IFIFO, [DT_CHR] = S_IFCHR, [DT_DIR] = S_IFDIR,
                                 [DT_BLK] = S_IFBLK,  [DT_REG] = S_IFREG, [DT_LNK] = S_IFLNK,
                                 [DT_SOCK] = S_IFSOCK};
  ent->st.mode = type < sizeof modes / sizeof modes[0] ? modes[type] : 0;
  if (type != DT_REG) return;
  struct stat st;
  int fd = openat(dir, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) {
    ent->ext_err = errno;
    if (fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0) px_stat_into(&ent->st, &st);
    return;
  }
  cf_error e;
  if (fstat(fd, &st) != 0) {
    ent->ext_err = errno;
  } else {
    px_stat_into(&ent->st, &st);
    if (px_extents_fd(fd, &ent->ext, &ent->ext_count, &e) < 0) {
      ent->ext_err = e.errnum;
      ent->ext_count = 0;
    }
    if ((how & CF_SCAN_META) && px_xattr_hash_fd(fd, &ent->xattrs, &e) < 0) ent->meta_err = e.errnum;
  }
  close(fd);
}

int cf_entry_meta(cf_at at, uint64_t *xattrs, uint64_t *target, cf_error *err) {
  px_at r;
  *xattrs = *target = 0;
  int rc = px_resolve(at, 0, 0, &r, err);
  if (rc < 0) return rc;
  struct stat st;
  if (fstatat(r.dir, r.name, &st, AT_SYMLINK_NOFOLLOW) != 0) rc = fail(err, "fstatat", errno, 0);
  else if ((rc = px_xattr_hash_at(&r, xattrs, err)) == 0 && S_ISLNK(st.st_mode)) {
    char buf[4096];
    ssize_t n = readlinkat(r.dir, r.name, buf, sizeof buf);
    if (n < 0) rc = fail(err, "readlink", errno, 0);
    else *target = px_hash(PX_HASH0, buf, (size_t)n);
  }
  px_release(&r);
  return rc;
}

/* CF_SCAN_META of an entry not opened: its xattrs' hash and, for a symlink, its target's. */
static void meta_into(int dir, const char *name, mode_t mode, cf_dirent *ent) {
  cf_error e;
  px_at at = {dir, name, 0};
  if (px_xattr_hash_at(&at, &ent->xattrs, &e) < 0) ent->meta_err = e.errnum;
  if (!S_ISLNK(mode)) return;
  char buf[4096];
  ssize_t n = readlinkat(dir, name, buf, sizeof buf);
  if (n < 0) ent->meta_err = errno;
  else ent->target = px_hash(PX_HASH0, buf, (size_t)n);
}

/* lstat (stat when following) of a listed entry: 0, 1 where it vanished since the listing, or
 * a negative errno. */
static int stat_entry(int dir, const char *name, int follow, struct stat *st) {
  if (fstatat(dir, name, st, follow ? 0 : AT_SYMLINK_NOFOLLOW) == 0) return 0;
  int e = errno;
  /* Following, a dangling symlink, or one in a loop, is kept as the link itself: one entry's
   * trouble, reported when it is acted on (cp -L reports it), not the listing's. */
  if ((e == ENOENT || e == ELOOP) && follow && fstatat(dir, name, st, AT_SYMLINK_NOFOLLOW) == 0) return 0;
  return e == ENOENT ? 1 : -e;
}

static int scan_one(int dir, const char *n, unsigned char type, int how, scan_t *sc, cf_error *err) {
  if (n[0] == '.' && (n[1] == '\0' || (n[1] == '.' && n[2] == '\0'))) return 0;
  int follow = how & CF_SCAN_FOLLOW;
  cf_dirent *ent;
  /* The fast path trusts d_type; a symlink to be followed, or a filesystem that leaves d_type
   * unknown (readdir(3): DT_UNKNOWN), is stat'ed. */
  if ((how & CF_SCAN_EXTENTS) && type != DT_UNKNOWN && !(follow && type == DT_LNK) &&
      (!(how & CF_SCAN_META) || type == DT_REG)) {
    if ((ent = scan_add(sc, n)) == NULL) return fail(err, "malloc", ENOMEM, 0);
    measure_entry(dir, n, type, how, ent);
    return 0;
  }
  struct stat st;
  int rc = stat_entry(dir, n, follow, &st);
  if (rc != 0) return rc > 0 ? 0 : fail(err, "fstatat", -rc, 0);
  if ((ent = scan_add(sc, n)) == NULL) return fail(err, "malloc", ENOMEM, 0);
  px_stat_into(&ent->st, &st);
  if ((how & CF_SCAN_EXTENTS) && S_ISREG(st.st_mode)) extents_into(dir, n, follow, ent);
  if (how & CF_SCAN_META) meta_into(dir, n, st.st_mode, ent);
  return 0;
}

#ifdef __linux__
/* getdents64(2) on fd itself, from offset 0: fdopendir(3) would cost a second descriptor, an
 * fstat and two fcntl a directory. Through syscall(2): glibc wraps it only from 2.30. */
struct dirent64_rec {
  uint64_t d_ino;
  int64_t d_off;
  unsigned short d_reclen;
  unsigned char d_type;
  char d_name[];
};

static int list_dir(int fd, int how, scan_t *sc, cf_error *err) {
  enum { SIZE = 32768 };
  if (lseek(fd, 0, SEEK_SET) < 0) return fail(err, "lseek", errno, 0);
  char *buf = malloc(SIZE);
  if (buf == NULL) return fail(err, "malloc", ENOMEM, 0);
  int rc = 0;
  for (long n; rc == 0 && (n = syscall(SYS_getdents64, fd, buf, SIZE)) != 0;) {
    if (n < 0) rc = fail(err, "readdir", errno, 0);
    for (long off = 0; rc == 0 && off < n;) {
      const struct dirent64_rec *de = (const struct dirent64_rec *)(buf + off);
      off += de->d_reclen;
      rc = scan_one(fd, de->d_name, de->d_type, how, sc, err);
    }
  }
  free(buf);
  return rc;
}
#else
static int list_dir(int fd, int how, scan_t *sc, cf_error *err) {
  /* A descriptor of its own: closedir() closes the one fdopendir() takes, and fd stays open. */
  int dfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  DIR *d = dfd < 0 ? NULL : fdopendir(dfd);
  if (d == NULL) {
    int e = errno;
    if (dfd >= 0) close(dfd);
    return fail(err, "opendir", e, 0);
  }
  /* The copy shares fd's offset: list from the start whatever was read before. */
  rewinddir(d);
  int rc = 0;
  struct dirent *de;
  while (rc == 0 && (errno = 0, de = readdir(d)) != NULL) rc = scan_one(fd, de->d_name, de->d_type, how, sc, err);
  if (rc == 0 && errno != 0) rc = fail(err, "readdir", errno, 0);
  closedir(d);
  return rc;
}
#endif

int cf_scan_dir(int fd, int how, cf_dirent **entries, uint32_t *count, char **names, cf_error *err) {
  scan_t sc = {0};
  int rc = list_dir(fd, how, &sc, err);
  if (rc < 0) {
    for (uint32_t i = 0; i < sc.count; i++) free(sc.ents[i].ext);
    free(sc.ents);
    free(sc.names);
    sc = (scan_t){0};
  }
  *entries = sc.ents;
  *names = sc.names;
  *count = sc.count;
  return rc;
}

/* ---- entries made whole: symlinks, specials, hard links ---- */

/* Where a new entry is made: at dst itself, or with CF_OVERWRITE under the caller's temp, to
 * be renamed over dst once complete. */
typedef struct {
  px_at dst, tmp;
  int use_tmp;
} place_t;

static int place_open(cf_at dst, const char *temp, uint32_t flags, const char *syscall, place_t *p,
                      cf_error *err) {
  p->use_tmp = (flags & CF_OVERWRITE) != 0;
  p->tmp.owned = 0;
  if (p->use_tmp && temp == NULL) return fail(err, syscall, EINVAL, 1);
  int follow = flags & CF_FOLLOW_DIRS;
  if (px_resolve(dst, follow, 1, &p->dst, err) < 0) return -err->errnum;
  if (p->use_tmp && px_resolve((cf_at){dst.dir, temp}, follow, 1, &p->tmp, err) < 0) {
    px_release(&p->dst);
    return -err->errnum;
  }
  return 0;
}

static const px_at *place_where(const place_t *p) {
  return p->use_tmp ? &p->tmp : &p->dst;
}

/* The entry made (made) takes dst's name if all went well (rc 0), or is removed; nothing is
 * removed that this call did not make. */
static int place_finish(place_t *p, int made, int rc, cf_error *err) {
  if (rc == 0 && p->use_tmp) rc = px_publish(&p->tmp, &p->dst, 1, err);
  if (rc < 0 && made) unlinkat(place_where(p)->dir, place_where(p)->name, 0);
  return rc;
}

static void place_release(place_t *p) {
  px_release(&p->tmp);
  px_release(&p->dst);
}

static int place_close(place_t *p, int made, int rc, cf_error *err) {
  rc = place_finish(p, made, rc, err);
  place_release(p);
  return rc;
}

/* lstat and readlink of a symlink; *target is malloc'd. */
static int read_symlink(const px_at *src, struct stat *st, char **target, cf_error *err) {
  if (fstatat(src->dir, src->name, st, AT_SYMLINK_NOFOLLOW) != 0) return fail(err, "lstat", errno, 0);
  /* st_size of a symlink is its target's length; some filesystems report 0 (procfs). */
  size_t cap = st->st_size > 0 ? (size_t)st->st_size + 1 : 4096;
  if ((*target = malloc(cap)) == NULL) return fail(err, "malloc", ENOMEM, 0);
  ssize_t n = readlinkat(src->dir, src->name, *target, cap);
  if (n < 0 || (size_t)n >= cap) return fail(err, "readlink", n < 0 ? errno : ENAMETOOLONG, 0);
  (*target)[n] = '\0';
  return 0;
}

int cf_copy_symlink(cf_at src, cf_at dst, const char *temp, uint32_t flags, cf_error *err) {
  px_at s;
  if (px_resolve(src, flags & CF_FOLLOW_DIRS, 0, &s, err) < 0) return -err->errnum;
  struct stat st;
  char *target = NULL;
  place_t p;
  int rc = read_symlink(&s, &st, &target, err);
  if (rc == 0) rc = place_open(dst, temp, flags, "symlink", &p, err);
  if (rc == 0) {
    const px_at *w = place_where(&p);
    int made = symlinkat(target, w->dir, w->name) == 0;
    rc = made ? copy_meta_at(&s, w, &st, flags, err) : fail(err, "symlink", errno, 1);
    rc = place_close(&p, made, rc, err);
  }
  free(target);
  px_release(&s);
  return rc;
}

int cf_make_special(cf_at src, cf_at dst, const char *temp, uint32_t flags, cf_error *err) {
  px_at s;
  if (px_resolve(src, flags & CF_FOLLOW_DIRS, 0, &s, err) < 0) return -err->errnum;
  struct stat st;
  place_t p;
  int rc = fstatat(s.dir, s.name, &st, AT_SYMLINK_NOFOLLOW) != 0 ? fail(err, "lstat", errno, 0) : 0;
  if (rc == 0) rc = place_open(dst, temp, flags, "mknod", &p, err);
  if (rc == 0) {
    const px_at *w = place_where(&p);
    int made = mknodat(w->dir, w->name, st.st_mode & (S_IFMT | 0777), st.st_rdev) == 0;
    rc = made ? copy_meta_at(&s, w, &st, flags, err) : fail(err, "mknod", errno, 1);
    rc = place_close(&p, made, rc, err);
  }
  px_release(&s);
  return rc;
}

int cf_hard_link(cf_at existing, cf_at dst, const char *temp, uint32_t flags, cf_error *err) {
  px_at e;
  if (px_resolve(existing, flags & CF_FOLLOW_DIRS, 0, &e, err) < 0) return -err->errnum;
  place_t p;
  int rc = place_open(dst, temp, flags, "link", &p, err);
  if (rc == 0) {
    const px_at *w = place_where(&p);
    /* linkat(2) without AT_SYMLINK_FOLLOW links a symlink itself, never its target. */
    int made = linkat(e.dir, e.name, w->dir, w->name, 0) == 0;
    rc = place_finish(&p, made, made ? 0 : fail(err, "link", errno, 1), err);
    /* rename(2) does nothing when dst already is a link to the same file: the temp is left. */
    if (rc == 0 && p.use_tmp) unlinkat(p.tmp.dir, p.tmp.name, 0);
    place_release(&p);
  }
  px_release(&e);
  return rc;
}

/* ---- names ---- */

int cf_exchange(cf_at a, cf_at b, cf_error *err) {
  px_at x, y;
  int rc = px_resolve(a, 0, 1, &x, err);
  if (rc < 0) return rc;
  if ((rc = px_resolve(b, 0, 1, &y, err)) == 0) {
    rc = px_rename_exchange(x.dir, x.name, y.dir, y.name) == 0 ? 0 : fail(err, "rename", errno, 1);
    px_release(&y);
  }
  px_release(&x);
  return rc;
}

int px_same_bytes(int a, int b, cf_error *err) {
  enum { CHUNK = 1 << 20 };
  uint8_t *x = malloc(CHUNK), *y = malloc(CHUNK);
  int rc = x == NULL || y == NULL ? fail(err, "malloc", ENOMEM, 0) : 1;
  for (uint64_t off = 0; rc == 1; off += CHUNK) {
    int64_t p = read_full(a, x, CHUNK, off, err), q = p < 0 ? 0 : read_full(b, y, CHUNK, off, err);
    if (p < 0 || q < 0) rc = (int)(p < 0 ? p : q);
    else if (p != q || memcmp(x, y, (size_t)p) != 0) rc = 0;
    else if (p < CHUNK) break;
  }
  free(x);
  free(y);
  return rc;
}

int cf_compare_files(cf_at a, cf_at b, cf_error *err) {
  struct stat sa, sb;
  int fa = px_open_read(a, &sa, err);
  if (fa < 0) return fa;
  int fb = px_open_read(b, &sb, err), rc = fb;
  if (fb >= 0) {
#ifdef POSIX_FADV_SEQUENTIAL
    posix_fadvise(fa, 0, 0, POSIX_FADV_SEQUENTIAL);
    posix_fadvise(fb, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
    int same = sa.st_size != sb.st_size ? 0 : px_same_bytes(fa, fb, err);
    rc = same < 0 ? same : !same; /* 0 the same, 1 different */
    close(fb);
  }
  close(fa);
  return rc;
}

int cf_rename(cf_at from, cf_at to, int noreplace, cf_error *err) {
  px_at f, t;
  if (px_resolve(from, 0, 0, &f, err) < 0) return -err->errnum;
  int rc = px_resolve(to, 0, 1, &t, err);
  if (rc == 0) {
    int ok = noreplace ? px_rename_noreplace(f.dir, f.name, t.dir, t.name) == 0
                       : renameat(f.dir, f.name, t.dir, t.name) == 0;
    rc = ok ? 0 : fail(err, "rename", errno, 1);
    px_release(&t);
  }
  px_release(&f);
  return rc;
}

int cf_remove(cf_at at, int dir, cf_error *err) {
  px_at r;
  if (px_resolve(at, 0, 0, &r, err) < 0) return -err->errnum;
  int rc = unlinkat(r.dir, r.name, dir ? AT_REMOVEDIR : 0) == 0 ? 0 : fail(err, dir ? "rmdir" : "unlink", errno, 0);
  px_release(&r);
  return rc;
}

/* ---- locks ---- */

static int lock_fd(int fd, cf_error *err) {
#ifdef F_OFD_SETLK
  /* An OFD lock belongs to the open file, not the process: other PID namespaces and, over
   * NFS, other hosts see it. fcntl(2): a conflicting lock is EAGAIN or EACCES. */
  struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
  if (fcntl(fd, F_OFD_SETLK, &fl) != 0) return fail(err, "fcntl", errno == EACCES ? EAGAIN : errno, 0);
#else
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) return fail(err, "flock", errno, 0);
#endif
  return 0;
}

int cf_lock(cf_at at, int create, cf_error *err) {
  px_at r;
  if (px_resolve(at, 0, 0, &r, err) < 0) return -err->errnum;
  int fd = openat(r.dir, r.name, O_RDWR | O_NOFOLLOW | O_CLOEXEC | (create ? O_CREAT | O_EXCL : 0), 0600);
  int rc = fd < 0 ? fail(err, "open", errno, 0) : lock_fd(fd, err);
  if (rc < 0 && fd >= 0) {
    close(fd);
    if (create) unlinkat(r.dir, r.name, 0);
  }
  px_release(&r);
  return rc < 0 ? rc : fd;
}

void cf_unlock(int fd) {
  close(fd);
}

/* ---- ancestors ---- */

int cf_ancestors(const char *path, uint64_t *ids, uint32_t max, cf_error *err) {
  int fd = open(path, WALK_FLAGS);
  if (fd < 0) return fail(err, "open", errno, 0);
  uint32_t n = 0;
  struct stat st, prev = {0};
  int rc = 0;
  for (;;) {
    if (fstat(fd, &st) != 0) {
      rc = fail(err, "fstat", errno, 0);
      break;
    }
    /* The root (of the file system, or of a chroot) is its own "..". */
    if (n > 0 && st.st_dev == prev.st_dev && st.st_ino == prev.st_ino) break;
    if (n < max) {
      ids[2 * n] = (uint64_t)st.st_dev;
      ids[2 * n + 1] = (uint64_t)st.st_ino;
    }
    n++;
    prev = st;
    int up = openat(fd, "..", WALK_FLAGS);
    if (up < 0) {
      rc = fail(err, "open", errno, 0);
      break;
    }
    close(fd);
    fd = up;
  }
  close(fd);
  return rc < 0 ? rc : (int)n;
}
