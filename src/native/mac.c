/*
 * macOS: clonefile(2) / fclonefileat(2) / clonefileat(2) for clones, a pread/pwrite loop for
 * copies that share nothing. APFS has no range clone, no compare-and-share and no extent map,
 * so those calls say ENOTSUP and the TypeScript side decides what to do instead.
 *
 * Every entry is reached relative to an open directory (cf_at, platform.h): the *at(2) calls,
 * fclonefileat(2), renameatx_np(2) and getattrlistat(2) take a directory descriptor and one
 * component, which posix.c's px_resolve() finds component by component. The tree functions
 * (directories, symlinks, special files, links, renames, locks) are posix.c's, shared with
 * Linux; this file adds what only macOS does, and the hooks posix.h asks for.
 *
 * NOT RUN ON A MAC: this file is compiled and linked by scripts/check-cross.sh (zig cc -target
 * aarch64-macos / x86_64-macos against zig's copy of the macOS SDK headers and libSystem
 * stubs), and run on Linux against a fake of the macOS calls (test/seam/mac, ARCHITECTURE.md
 * "The syscall seam"), which checks its logic, not the kernel's answers. Every behaviour
 * described below is what the man pages and xnu's sources say, not what was observed.
 *
 * Metadata on the clone path: clonefile(2) itself copies mode, BSD flags, xattrs and
 * timestamps, whatever CF_MODE / CF_TIMES / CF_XATTR say; we keep that (a clone that looks
 * less like its source would surprise nobody favourably) and only add what it leaves out:
 * the owner (CF_OWNER), setuid/setgid (CF_SETID) and, on kernels without CLONE_ACL, the ACL.
 * The copy method does what the flags ask (owner, xattrs, ACL, mode, times) but copies
 * neither BSD file flags (chflags(2)) nor the birth time.
 */
#include "platform.h"
#include "posix.h"

#include <dlfcn.h>
#include <errno.h>
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
int fremovexattr(int fd, const char *name, int options);
#endif

#ifndef CLONE_ACL
/* macOS 13 SDK; older SDKs lack the name and older kernels the flag (they answer EINVAL). */
#define CLONE_ACL 0x0004
#endif

/* ---- where a new entry is built: at dst itself, or under `temp` and renamed into place ---- */

typedef struct {
  px_at dst;  /* dst's directory and final component */
  px_at temp; /* temp's, when via_temp */
  int via_temp;
} dest_t;

static void dest_release(dest_t *d) {
  px_release(&d->dst);
  if (d->via_temp) px_release(&d->temp);
}

/* `temp` is a name relative to dst.dir, like dst.name (platform.h), resolved the same way;
 * a destination's directories are never followed. C never makes a name up: building under a
 * temporary without one is the caller's error (EINVAL). */
static int dest_resolve(cf_at dst, const char *temp, int via_temp, dest_t *d, cf_error *err) {
  d->via_temp = via_temp;
  if (via_temp && temp == NULL) return fail(err, "openat", EINVAL, 1);
  if (px_resolve(dst, 0, 1, &d->dst, err) < 0) return -err->errnum;
  if (via_temp && px_resolve((cf_at){dst.dir, temp}, 0, 1, &d->temp, err) < 0) {
    px_release(&d->dst);
    return -err->errnum;
  }
  return 0;
}

/* Where the entry is made before it has its name. */
static const px_at *dest_where(const dest_t *d) { return d->via_temp ? &d->temp : &d->dst; }

/* Gives a finished entry built under temp its name (posix.c: rename over dst with
 * CF_OVERWRITE, else a rename that refuses an existing dst). */
static int dest_publish(const dest_t *d, uint32_t flags, cf_error *err) {
  return d->via_temp ? px_publish(&d->temp, &d->dst, (flags & CF_OVERWRITE) != 0, err) : 0;
}

/* Removes what this call made where it was made (never anything it did not create). */
static void dest_discard(const dest_t *d) {
  const px_at *w = dest_where(d);
  unlinkat(w->dir, w->name, 0);
}

/* ---- the hooks posix.c asks of a platform file (posix.h) ---- */

/* APFS has no FIEMAP; the name is linux.c's so errors read alike. */
int px_extents_fd(int fd, cf_extent **out, uint32_t *count, cf_error *err) {
  (void)fd;
  *out = NULL;
  *count = 0;
  return fail(err, "ioctl_fiemap", ENOTSUP, 0);
}

/* renameatx_np(2) RENAME_EXCL refuses any existing `to`, an empty directory included. Where the
 * filesystem has no RENAME_EXCL (msdosfs, SMB: ENOTSUP, rename(2)), errno becomes the EINVAL
 * that posix.h asks for, so that posix.c falls back as it does on Linux. */
int px_rename_noreplace(int from_dir, const char *from, int to_dir, const char *to) {
  if (renameatx_np(from_dir, from, to_dir, to, RENAME_EXCL) == 0) return 0;
  if (errno == ENOTSUP) errno = EINVAL;
  return -1;
}

int px_rename_exchange(int from_dir, const char *from, int to_dir, const char *to) {
  if (renameatx_np(from_dir, from, to_dir, to, RENAME_SWAP) == 0) return 0;
  if (errno == ENOTSUP) errno = EINVAL;
  return -1;
}

/* ACLs are not xattrs on macOS (listxattr(2) hides them): acl(3) is the only way to copy one.
 * Returns 1 when one was set, 0 when the source has none. */
static int copy_acl(int sfd, int dfd, cf_error *err) {
  acl_t acl = acl_get_fd_np(sfd, ACL_TYPE_EXTENDED);
  if (acl == NULL) {
    /* ENOENT: the source has no extended ACL; ENOTSUP: its filesystem keeps none. */
    return (errno == ENOENT || errno == ENOTSUP) ? 0 : fail(err, "acl_get_fd_np", errno, 0);
  }
  int rc = acl_set_fd_np(dfd, acl, ACL_TYPE_EXTENDED) == 0 ? 1 : fail(err, "acl_set_fd_np", errno, 1);
  acl_free(acl);
  return rc;
}

/* setxattr(2) errors that mean "the destination cannot hold this one": it is left out and
 * reported in err->dropped, as cp -a warns and goes on. */
static int xattr_unholdable(int e) { return e == ENOTSUP || e == ENOSPC || e == E2BIG || e == ERANGE; }

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
     * EPERM; cp -p skips them too. Everything else is the caller's data. */
    if (xattr_unholdable(errno)) err->dropped = errno;
    else if (!(errno == EPERM && strncmp(name, "com.apple.", 10) == 0)) rc = fail(err, "fsetxattr", errno, 1);
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

/* Returns 0: an extended ACL on macOS leaves the mode bits as they are (acl(3)), so nothing
 * needs setting again after it. */
int px_copy_xattrs_fd(int sfd, int dfd, uint32_t flags, cf_error *err) {
  if ((flags & CF_XATTR) && copy_xattrs(sfd, dfd, err) < 0) return -err->errnum;
  if ((flags & CF_ACL) && copy_acl(sfd, dfd, err) < 0) return -err->errnum;
  return 0;
}

/* An entry that is not opened as a file: O_SYMLINK opens a symlink itself rather than its
 * target (open(2)), so that f*xattr reach the link; a FIFO is opened O_NONBLOCK, which neither
 * waits for a writer nor disturbs one. Devices are never opened (that would run their driver),
 * so their attributes and ACLs stay behind: macOS has no l*xattr relative to a directory. */
int px_copy_xattrs_at(const px_at *src, const px_at *dst, uint32_t flags, cf_error *err) {
  struct stat st;
  if (!(flags & (CF_XATTR | CF_ACL))) return 0;
  if (fstatat(src->dir, src->name, &st, AT_SYMLINK_NOFOLLOW) != 0) return fail(err, "fstatat", errno, 0);
  if (!S_ISLNK(st.st_mode) && !S_ISFIFO(st.st_mode)) return 0;
  const int how = O_RDONLY | O_NONBLOCK | O_CLOEXEC | (S_ISLNK(st.st_mode) ? O_SYMLINK : O_NOFOLLOW);
  int sfd = openat(src->dir, src->name, how);
  if (sfd < 0) return fail(err, "openat", errno, 0);
  int dfd = openat(dst->dir, dst->name, how);
  int rc = dfd < 0 ? fail(err, "openat", errno, 1) : px_copy_xattrs_fd(sfd, dfd, flags, err);
  if (dfd >= 0) close(dfd);
  close(sfd);
  return rc;
}

static int by_name(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* One attribute's name and value into the hash (sized first, as copy_xattr does). */
static int hash_xattr(int fd, const char *name, uint64_t *h, cf_error *err) {
  ssize_t size = fgetxattr(fd, name, NULL, 0, 0, 0);
  if (size < 0) return errno == ENOATTR ? 0 : fail(err, "fgetxattr", errno, 0);
  char *value = malloc(size > 0 ? (size_t)size : 1);
  if (value == NULL) return fail(err, "malloc", ENOMEM, 0);
  int rc = 0;
  ssize_t got = fgetxattr(fd, name, value, (size_t)size, 0, 0);
  if (got < 0) rc = errno == ENOATTR ? 0 : fail(err, "fgetxattr", errno, 0);
  else *h = px_hash(px_hash(px_hash(*h, name, strlen(name) + 1), &got, sizeof got), value, (size_t)got);
  free(value);
  return rc;
}

int px_xattr_hash_fd(int fd, uint64_t *hash, cf_error *err) {
  *hash = 0;
  ssize_t len = flistxattr(fd, NULL, 0, 0);
  if (len < 0) return errno == ENOTSUP ? 0 : fail(err, "flistxattr", errno, 0);
  if (len == 0) return 0;
  char *names = malloc((size_t)len);
  const char **sorted = malloc((size_t)len * sizeof *sorted);
  int rc = names == NULL || sorted == NULL ? fail(err, "malloc", ENOMEM, 0) : 0;
  if (rc == 0 && (len = flistxattr(fd, names, (size_t)len, 0)) < 0) rc = fail(err, "flistxattr", errno, 0);
  size_t n = 0;
  for (char *name = names; rc == 0 && name < names + len; name += strlen(name) + 1) sorted[n++] = name;
  if (n > 1) qsort(sorted, n, sizeof *sorted, by_name);
  uint64_t h = PX_HASH0;
  for (size_t i = 0; rc == 0 && i < n; i++) rc = hash_xattr(fd, sorted[i], &h, err);
  if (rc == 0 && h != PX_HASH0) *hash = h;
  free(sorted);
  free(names);
  return rc;
}

/* As px_copy_xattrs_at reaches an entry not opened: a symlink through O_SYMLINK, a FIFO
 * O_NONBLOCK; a device is never opened (its driver would run), so it hashes as having none. */
int px_xattr_hash_at(const px_at *at, uint64_t *hash, cf_error *err) {
  struct stat st;
  *hash = 0;
  if (fstatat(at->dir, at->name, &st, AT_SYMLINK_NOFOLLOW) != 0) return fail(err, "fstatat", errno, 0);
  if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) || S_ISSOCK(st.st_mode)) return 0;
  int fd = openat(at->dir, at->name, O_RDONLY | O_NONBLOCK | O_CLOEXEC | (S_ISLNK(st.st_mode) ? O_SYMLINK : O_NOFOLLOW));
  if (fd < 0) return fail(err, "openat", errno, 0);
  int rc = px_xattr_hash_fd(fd, hash, err);
  close(fd);
  return rc;
}

/* btrfs subvolumes are Linux's. */
int cf_subvol_snapshot(cf_at src, cf_at dst, int readonly, cf_error *err) {
  (void)src, (void)dst, (void)readonly;
  return fail(err, "ioctl_snap_create", ENOTSUP, 0);
}

int cf_subvol_delete(cf_at at, cf_error *err) {
  (void)at;
  return fail(err, "ioctl_snap_destroy", ENOTSUP, 0);
}

/* mknodat(2) and mkfifoat(2) came with macOS 13; the addon also runs on 11 and 12, so mknodat
 * is looked up at run time (dlsym(3)) and, where missing, the node is made by the path of its
 * directory (fcntl(2) F_GETPATH): path-based, and so open to a rename of that directory while
 * it happens, unlike the rest of this file. xnu's mknod(2) makes a FIFO as mkfifo(2) does
 * (mknod is otherwise for the super-user only); the fallback calls mkfifo(2) itself. */
typedef int (*mknodat_fn)(int, const char *, mode_t, dev_t);

static int mknod_by_path(int dir, const char *name, mode_t mode, dev_t dev) {
  char dirpath[MAXPATHLEN], path[MAXPATHLEN * 2];
  int n;
  if (dir == AT_FDCWD) {
    n = snprintf(path, sizeof path, "%s", name);
  } else {
    if (fcntl(dir, F_GETPATH, dirpath) != 0) return -1;
    n = snprintf(path, sizeof path, "%s/%s", dirpath, name);
  }
  if (n < 0 || (size_t)n >= sizeof path) return errno = ENAMETOOLONG, -1;
  return S_ISFIFO(mode) ? mkfifo(path, mode & 07777) : mknod(path, mode, dev);
}

int px_mknodat(int dir, const char *name, mode_t mode, dev_t dev) {
  void *fn = dlsym(RTLD_DEFAULT, "mknodat");
  if (fn == NULL) return mknod_by_path(dir, name, mode, dev);
  return ((mknodat_fn)fn)(dir, name, mode, dev);
}

/* ---- clone: clonefile(2) ---- */

/* The source of a clone: an open file, or (a symlink, cloned as itself) a name. */
typedef struct {
  int fd;
  const px_at *at;
} clone_src;

/* CLONE_NOFOLLOW always, for the destination as much as the source (issue 12 #6). The man
 * page speaks of the source only ("Don't follow the src file if it is a symbolic link"), but
 * xnu's clonefile_internal() (bsd/vfs/vfs_syscalls.c), which clonefileat and fclonefileat
 * share, looks the destination up with the same flag:
 *   follow = (flags & CLONE_NOFOLLOW) ? NOFOLLOW : FOLLOW;
 *   NDINIT(&tond, CREATE, OP_LINK, follow | WANTPARENT | AUDITVNPATH2, ...);
 *   if (tvp != NULL) error = EEXIST;
 * so without it a dangling symlink at dst is followed and the clone is created where the link
 * points (tvp is NULL there), the O_CREAT-without-O_EXCL hole. With it the link itself is
 * tvp: EEXIST. */
static uint32_t clone_flags(uint32_t flags) {
  uint32_t cflags = CLONE_NOFOLLOW;
  if (!(flags & CF_OWNER)) cflags |= CLONE_NOOWNERCOPY;
  if (flags & CF_ACL) cflags |= CLONE_ACL;
  return cflags;
}

/* An open source is cloned by descriptor: no race with a rename of src. */
static int clone_call(const clone_src *s, const px_at *w, uint32_t cflags) {
  if (s->fd >= 0) return fclonefileat(s->fd, w->dir, w->name, cflags);
  return clonefileat(s->at->dir, s->at->name, w->dir, w->name, cflags);
}

/* clonefile(2) both opens the source and creates dst. With the source already open, only the
 * destination can be missing, present or unwritable; ENOTSUP, EXDEV, EINVAL concern the pair. */
static int clone_fail(cf_error *err, int e, int by_fd) {
  int on_dest = e == EEXIST || (by_fd && e != ENOTSUP && e != EXDEV && e != EINVAL && e != EBADF);
  return fail(err, by_fd ? "fclonefileat" : "clonefileat", e, on_dest);
}

/* CLONE_ACL is macOS 13+; older kernels reject the whole call with EINVAL (clonefile(2)), and
 * the ACL is then copied by hand (*acl_by_hand). */
static int clone_make(const clone_src *s, const px_at *w, uint32_t flags, int *acl_by_hand, cf_error *err) {
  uint32_t cflags = clone_flags(flags);
  *acl_by_hand = 0;
  if (clone_call(s, w, cflags) == 0) return 0;
  if (errno == EINVAL && (cflags & CLONE_ACL)) {
    *acl_by_hand = s->fd >= 0;
    if (clone_call(s, w, cflags & ~(uint32_t)CLONE_ACL) == 0) return 0;
  }
  return clone_fail(err, errno, s->fd >= 0);
}

/* The ACL by hand (kernels before CLONE_ACL): through a descriptor of the clone, opened after
 * giving the owner read access (the clone has the source's mode, which may deny it); the mode
 * is set again by the caller. */
static int clone_acl(int sfd, const px_at *w, cf_error *err) {
  if (fchmodat(w->dir, w->name, S_IRUSR, AT_SYMLINK_NOFOLLOW) != 0) return fail(err, "fchmodat", errno, 1);
  int dfd = openat(w->dir, w->name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (dfd < 0) return fail(err, "openat", errno, 1);
  int rc = copy_acl(sfd, dfd, err);
  close(dfd);
  return rc;
}

/* What clonefile(2) leaves undone that the flags ask for. Root gets the owner from clonefile
 * itself; anyone else gets a new file's owner and, like cp -p, tries chown. The mode is set
 * again when chown (which clears setuid/setgid), the ACL by hand or CF_SETID (clonefile(2):
 * "setuid and setgid bits are turned off in the mode bits for regular files") changed it. */
static int clone_fixup(int sfd, const struct stat *st, const px_at *w, uint32_t flags, int acl_by_hand,
                       cf_error *err) {
  int chown_it = (flags & CF_OWNER) && geteuid() != 0;
  if (chown_it && fchownat(w->dir, w->name, st->st_uid, st->st_gid, AT_SYMLINK_NOFOLLOW) != 0 && errno != EPERM)
    return fail(err, "fchownat", errno, 1);
  if (acl_by_hand && clone_acl(sfd, w, err) < 0) return -err->errnum;
  int setid = (flags & CF_SETID) && S_ISREG(st->st_mode) && (st->st_mode & (S_ISUID | S_ISGID));
  if (S_ISLNK(st->st_mode) || !(chown_it || acl_by_hand || setid)) return 0;
  mode_t mode = st->st_mode & ((flags & CF_SETID) ? 07777 : 01777);
  return fchmodat(w->dir, w->name, mode, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : fail(err, "fchmodat", errno, 1);
}

/* BSD flags (chflags(2)) that forbid what follows a clone: an immutable or append-only file
 * cannot be renamed, unlinked, chmod'ed or chown'ed (EPERM). clonefile(2) copies the source's
 * flags onto the clone (clonefile_internal asks for va_flags), so a clone of such a source
 * would be stuck at its temporary name, undeletable (issue 12 #9). */
#define LOCKING_FLAGS (UF_IMMUTABLE | SF_IMMUTABLE | UF_APPEND | SF_APPEND)

/* Lifts the locking flags off the clone at w, through a descriptor of it kept in *fd (the
 * file itself, whatever its name becomes) with its flags in *held, so that flags_restore()
 * puts them back once it has its name. Nothing to do (*fd -1) when the source has none. */
static int flags_lift(const px_at *w, const struct stat *src, int *fd, uint32_t *held, cf_error *err) {
  *fd = -1;
  *held = 0;
  if (!(src->st_flags & LOCKING_FLAGS)) return 0;
  const int how = O_RDONLY | O_NONBLOCK | O_CLOEXEC | (S_ISLNK(src->st_mode) ? O_SYMLINK : O_NOFOLLOW);
  struct stat st;
  int f = openat(w->dir, w->name, how);
  if (f < 0) return fail(err, "openat", errno, 1);
  if (fstat(f, &st) != 0 || !(st.st_flags & LOCKING_FLAGS)) {
    int e = errno;
    close(f);
    return (st.st_flags & LOCKING_FLAGS) ? fail(err, "fstat", e, 1) : 0;
  }
  if (fchflags(f, st.st_flags & ~(uint32_t)LOCKING_FLAGS) != 0) {
    int e = errno;
    close(f);
    return fail(err, "fchflags", e, 1);
  }
  *fd = f;
  *held = st.st_flags;
  return 0;
}

/* The flags again, on the named file. Its name is given already: a failure here is reported
 * (on dst) but the file stays, without them. */
static int flags_restore(int fd, uint32_t held, cf_error *err) {
  if (fd < 0) return 0;
  int rc = fchflags(fd, held) == 0 ? 0 : fail(err, "fchflags", errno, 1);
  close(fd);
  return rc;
}

/* Clones a regular file or a symlink at temp (or dst with CF_DIRECT), completes its metadata
 * and gives it its name. clonefile(2) never replaces an existing file, so whatever is at
 * `where` after a failure is ours to remove. */
static int clone_entry(const clone_src *s, const struct stat *st, const dest_t *d, uint32_t flags, cf_error *err) {
  const px_at *w = dest_where(d);
  int acl_by_hand, held_fd;
  uint32_t held;
  if (clone_make(s, w, flags, &acl_by_hand, err) < 0) return -err->errnum;
  int rc = flags_lift(w, st, &held_fd, &held, err);
  if (rc == 0) rc = clone_fixup(s->fd, st, w, flags, acl_by_hand, err);
  if (rc == 0) rc = dest_publish(d, flags, err);
  if (rc < 0) {
    if (held_fd >= 0) close(held_fd);
    dest_discard(d); /* the flags are off: unlink(2) can remove it */
    return rc;
  }
  return flags_restore(held_fd, held, err);
}

/* CF_TREE: clonefile(2): "If src names a directory, the directory hierarchy is cloned", all at
 * once, so the tree is made at dst itself whatever CF_DIRECT says: it is never seen half-made,
 * and a failed rename from `temp` would leave a whole tree there for C to remove. */
static int clone_tree(int sfd, cf_at dst, uint32_t flags, cf_error *err) {
  px_at w;
  if (px_resolve(dst, 0, 1, &w, err) < 0) return -err->errnum;
  clone_src s = {sfd, NULL};
  int acl_by_hand;
  int rc = clone_make(&s, &w, flags, &acl_by_hand, err);
  px_release(&w);
  return rc;
}

/* ---- copy: a new file that shares nothing ---- */

/* pread/pwrite `n` bytes; stops early at the source's EOF. Returns bytes copied; on failure
 * err->bytes holds what was written before it. */
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
    if (r < 0) rc = fail(err, "pread", errno, 0);
    if (r <= 0) break; /* 0: the source ended (or shrank) before the range did */
    ssize_t w = 0;
    while (rc == 0 && w < r) {
      ssize_t k = pwrite(dfd, buf + w, (size_t)(r - w), (off_t)(doff + done + (uint64_t)w));
      if (k < 0 && errno != EINTR) rc = fail(err, "pwrite", errno, 1);
      if (k > 0) w += k;
    }
    done += (uint64_t)w;
  }
  free(buf);
  if (rc < 0) err->bytes = done;
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

/* O_EXCL | O_NOFOLLOW: never open someone else's file, nor follow a planted symlink. */
static int copy_regular(int sfd, const struct stat *st, const dest_t *d, uint32_t flags, cf_error *err) {
  const px_at *w = dest_where(d);
  int dfd = openat(w->dir, w->name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, st->st_mode & 0777);
  if (dfd < 0) return fail(err, "openat", errno, 1);
  int rc = copy_data(sfd, dfd, st->st_size, err);
  if (rc == 0 && (rc = px_copy_meta_fd(sfd, dfd, st, flags, err)) > 0) rc = 0;
  close(dfd);
  if (rc == 0) rc = dest_publish(d, flags, err);
  if (rc < 0) dest_discard(d);
  return rc;
}

/* ---- whole file ---- */

/* A symlink source under CF_NOFOLLOW: cloned as itself (clonefileat(2) with CLONE_NOFOLLOW),
 * or recreated by posix.c's cf_copy_symlink for the copy method. */
static int symlink_entry(const cf_file *src, const px_at *s, cf_at dst, const char *temp, int method,
                         uint32_t flags, cf_error *err) {
  if (method != CF_METHOD_CLONE) return cf_copy_symlink(src->at, dst, temp, flags, err);
  struct stat st;
  dest_t d;
  if (fstatat(s->dir, s->name, &st, AT_SYMLINK_NOFOLLOW) != 0) return fail(err, "fstatat", errno, 0);
  if (dest_resolve(dst, temp, !(flags & CF_DIRECT), &d, err) < 0) return -err->errnum;
  clone_src cs = {-1, s};
  int rc = clone_entry(&cs, &st, &d, flags, err);
  dest_release(&d);
  return rc;
}

/* The data of an open source, by type: a regular file cloned or copied; a directory cloned
 * whole with CF_TREE (and the clone method), else EISDIR for the tree code; anything else
 * (FIFO, device) EINVAL. */
static int open_entry(int sfd, const struct stat *st, cf_at dst, const char *temp, int method, uint32_t flags,
                      cf_error *err) {
  if (S_ISDIR(st->st_mode) && (flags & CF_TREE) && method == CF_METHOD_CLONE) return clone_tree(sfd, dst, flags, err);
  if (!S_ISREG(st->st_mode))
    return fail(err, method == CF_METHOD_CLONE ? "fclonefileat" : "copyfile", S_ISDIR(st->st_mode) ? EISDIR : EINVAL, 0);
  dest_t d;
  if (dest_resolve(dst, temp, !(flags & CF_DIRECT), &d, err) < 0) return -err->errnum;
  clone_src cs = {sfd, NULL};
  int rc = method == CF_METHOD_CLONE ? clone_entry(&cs, st, &d, flags, err) : copy_regular(sfd, st, &d, flags, err);
  dest_release(&d);
  return rc;
}

/* Opens the source by name into *fd. O_NONBLOCK: opening a FIFO must not hang (it is refused
 * later). Returns 0, 1 where CF_NOFOLLOW met a symlink (open(2): O_NOFOLLOW on a symlink is
 * ELOOP), or a negative errno. */
static int src_open(const px_at *s, uint32_t flags, int *fd, cf_error *err) {
  int how = O_RDONLY | O_CLOEXEC | O_NONBLOCK | ((flags & CF_NOFOLLOW) ? O_NOFOLLOW : 0);
  *fd = openat(s->dir, s->name, how);
  if (*fd >= 0) return 0;
  int e = errno;
  struct stat lst;
  if (e == ELOOP && (flags & CF_NOFOLLOW) && fstatat(s->dir, s->name, &lst, AT_SYMLINK_NOFOLLOW) == 0 &&
      S_ISLNK(lst.st_mode))
    return 1;
  return fail(err, "openat", e, 0);
}

static int clone_by_fd(int sfd, cf_at dst, const char *temp, int method, uint32_t flags, cf_clone_out *out,
                       cf_error *err) {
  struct stat st;
  if (fstat(sfd, &st) != 0) return fail(err, "fstat", errno, 0);
  int rc = open_entry(sfd, &st, dst, temp, method, flags, err);
  if (rc == 0 && S_ISREG(st.st_mode)) out->size = (uint64_t)st.st_size;
  return rc;
}

int cf_clone_file(const cf_file *src, cf_at dst, const char *temp, int method, uint32_t flags, cf_clone_out *out,
                  cf_error *err) {
  out->size = 0;
  if (src->fd >= 0) return clone_by_fd(src->fd, dst, temp, method, flags, out, err);
  px_at s;
  if (px_resolve(src->at, (flags & CF_FOLLOW_DIRS) != 0, 0, &s, err) < 0) return -err->errnum;
  int sfd;
  int rc = src_open(&s, flags, &sfd, err);
  if (rc == 1) {
    rc = symlink_entry(src, &s, dst, temp, method, flags, err);
  } else if (rc == 0) {
    rc = clone_by_fd(sfd, dst, temp, method, flags, out, err);
    close(sfd);
  }
  px_release(&s);
  return rc;
}

/* ---- ranges ---- */

int64_t cf_clone_range(int src_fd, int dst_fd, uint64_t src_offset, uint64_t dst_offset, uint64_t length,
                       int method, cf_error *err) {
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
int64_t cf_dedupe_range(int src_fd, int dst_fd, uint64_t src_offset, uint64_t dst_offset, uint64_t length,
                        cf_error *err) {
  (void)src_fd;
  (void)dst_fd;
  (void)src_offset;
  (void)dst_offset;
  (void)length;
  return fail(err, "ioctl_fideduperange", ENOTSUP, 0);
}


/* No compare-and-share call here (see README: dedupe on macOS). */
int cf_dedupe_files(const cf_at *at, uint32_t n, uint64_t length, int32_t *status, uint64_t *deduped,
                    cf_stat *before, cf_stat *after, cf_extent **maps, uint32_t *map_counts, cf_error *err) {
  (void)at, (void)n, (void)length, (void)status, (void)deduped, (void)before, (void)after, (void)maps, (void)map_counts;
  return fail(err, "ioctl_fideduperange", ENOTSUP, 0);
}

/* ---- dedupe: verify-then-swap ----
 *
 * APFS has no compare-and-share call, so a duplicate is replaced rather than shared in place:
 * a clone of the keeper is made beside it, checked to hold the same bytes, dressed in the
 * duplicate's metadata and swapped with it in one renameatx_np(RENAME_SWAP). Unlike Linux's
 * FIDEDUPERANGE nothing locks the duplicate: a write that lands between the compare and the
 * swap is caught by the check after it (the original is swapped back), but a program holding
 * the old file open keeps writing to the old inode, which is then removed. For files at rest
 * (README). The path gets a new inode, so a file with other hard links is left alone. */

/* platform.h's "the bytes differ": Linux's EBADE (52) on every OS, whatever this one calls 52
 * (macOS: ENETRESET, which no file call returns). */
#ifndef EBADE
#define EBADE 52
#endif

/* The keeper's xattrs came with the clone (clonefile(2) copies them): off, before the
 * duplicate's go on. */
static int clear_xattrs(int fd, cf_error *err) {
  ssize_t len = flistxattr(fd, NULL, 0, 0);
  if (len <= 0) return (len < 0 && errno != ENOTSUP) ? fail(err, "flistxattr", errno, 1) : 0;
  char *names = malloc((size_t)len);
  if (names == NULL) return fail(err, "malloc", ENOMEM, 0);
  int rc = 0;
  len = flistxattr(fd, names, (size_t)len, 0);
  if (len < 0) rc = fail(err, "flistxattr", errno, 1);
  for (char *name = names; rc == 0 && name < names + len; name += strlen(name) + 1)
    if (fremovexattr(fd, name, 0) != 0 && errno != ENOATTR) rc = fail(err, "fremovexattr", errno, 1);
  free(names);
  return rc;
}

/* The duplicate's extended ACL, or none where it has none (the clone may carry the keeper's). */
static int set_acl_of(int sfd, int dfd, cf_error *err) {
  int rc = copy_acl(sfd, dfd, err);
  if (rc != 0) return rc < 0 ? rc : 0;
  acl_t none = acl_init(0);
  if (none == NULL) return fail(err, "acl_init", errno, 0);
  rc = (acl_set_fd_np(dfd, none, ACL_TYPE_EXTENDED) == 0 || errno == ENOTSUP) ? 0 : fail(err, "acl_set_fd_np", errno, 1);
  acl_free(none);
  return rc;
}

/* The birth time (ATTR_CMN_CRTIME), which futimens cannot set. */
static int copy_crtime(int sfd, int dfd, cf_error *err) {
  struct attrlist al = {.bitmapcount = ATTR_BIT_MAP_COUNT, .commonattr = ATTR_CMN_CRTIME};
  struct {
    uint32_t length;
    struct timespec crtime;
  } __attribute__((aligned(4), packed)) buf;
  if (fgetattrlist(sfd, &al, &buf, sizeof buf, 0) != 0) return errno == ENOTSUP ? 0 : fail(err, "fgetattrlist", errno, 0);
  struct timespec crtime = buf.crtime;
  if (fsetattrlist(dfd, &al, &crtime, sizeof crtime, 0) != 0) return errno == ENOTSUP ? 0 : fail(err, "fsetattrlist", errno, 1);
  return 0;
}

/* Everything of the duplicate (st, open as sfd) a program could see, onto the clone (dfd); the
 * clone is then checked to carry it (a non-root fchown is EPERM, which px_copy_meta_fd lets by). */
static int dress(int sfd, int dfd, const struct stat *st, cf_error *err) {
  if (clear_xattrs(dfd, err) < 0) return -err->errnum;
  const uint32_t flags = CF_OWNER | CF_XATTR | CF_MODE | CF_SETID | CF_TIMES;
  if (px_copy_meta_fd(sfd, dfd, st, flags, err) < 0 || set_acl_of(sfd, dfd, err) < 0) return -err->errnum;
  if (fchflags(dfd, st->st_flags) != 0) return fail(err, "fchflags", errno, 1);
  if (copy_crtime(sfd, dfd, err) < 0) return -err->errnum;
  struct stat now;
  if (fstat(dfd, &now) != 0) return fail(err, "fstat", errno, 1);
  if (now.st_uid != st->st_uid || now.st_gid != st->st_gid || now.st_mode != st->st_mode || now.st_flags != st->st_flags)
    return fail(err, "fchown", EPERM, 1);
  return 0;
}

static int same_time(struct timespec a, struct timespec b) { return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec; }

/* The clone at d->dir/temp takes the duplicate's place; the duplicate (open as fd, stat st) must
 * be untouched on both sides of the swap, else it gets its place back: -EBADE. */
static int swap_in(const px_at *d, const char *temp, int fd, const struct stat *st, int *kept, cf_error *err) {
  struct stat now;
  if (fstat(fd, &now) != 0) return fail(err, "fstat", errno, 0);
  if (now.st_size != st->st_size || !same_time(PX_MTIM(&now), PX_MTIM(st)) || !same_time(PX_CTIM(&now), PX_CTIM(st)))
    return fail(err, "renameatx_np", EBADE, 0);
  if (renameatx_np(d->dir, temp, d->dir, d->name, RENAME_SWAP) != 0) return fail(err, "renameatx_np", errno, 1);
  struct stat moved;
  int same = fstatat(d->dir, temp, &moved, AT_SYMLINK_NOFOLLOW) == 0 && moved.st_ino == st->st_ino &&
             moved.st_dev == st->st_dev && fstat(fd, &now) == 0 && now.st_size == st->st_size &&
             same_time(PX_MTIM(&now), PX_MTIM(st));
  if (same) return 0;
  /* Written to (or replaced) meanwhile: the original goes back; should that fail, it stays at
   * `temp` (*kept), never removed. */
  if (renameatx_np(d->dir, temp, d->dir, d->name, RENAME_SWAP) != 0) {
    *kept = 1;
    return fail(err, "renameatx_np", errno, 1);
  }
  return fail(err, "renameatx_np", EBADE, 0);
}

/* One duplicate, open as fd (stat st), in d: cloned, compared, dressed, swapped. */
static int swap_open(int kfd, const px_at *d, const char *temp, int fd, const struct stat *st, cf_error *err) {
  if (!S_ISREG(st->st_mode)) return fail(err, "open", EINVAL, 0);
  if (st->st_nlink > 1) return fail(err, "fstat", EMLINK, 0);
  if (st->st_flags & LOCKING_FLAGS) return fail(err, "renameatx_np", EPERM, 0);
  if (fclonefileat(kfd, d->dir, temp, CLONE_NOFOLLOW | CLONE_NOOWNERCOPY) != 0) return fail(err, "fclonefileat", errno, 1);
  int cfd = openat(d->dir, temp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  int rc = cfd < 0 ? fail(err, "openat", errno, 1) : px_same_bytes(cfd, fd, err);
  if (rc == 0) rc = fail(err, "read", EBADE, 0);
  if (rc == 1) rc = dress(fd, cfd, st, err);
  if (cfd >= 0) close(cfd);
  int kept = 0;
  if (rc == 0) rc = swap_in(d, temp, fd, st, &kept, err);
  /* `temp` holds the clone (not swapped, or swapped back) or the replaced original: not wanted,
   * unless a swap back failed and it is the original. */
  if (!kept) unlinkat(d->dir, temp, 0);
  return rc;
}

static int swap_one(int kfd, cf_at at, const char *temp, cf_stat *before, cf_stat *after, cf_error *err) {
  px_at d;
  if (px_resolve(at, 0, 0, &d, err) < 0) return -err->errnum;
  struct stat st;
  int fd = openat(d.dir, d.name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  int rc = fd < 0 ? fail(err, "open", errno, 0) : fstat(fd, &st) != 0 ? fail(err, "fstat", errno, 0) : 0;
  if (rc == 0) {
    px_stat_into(before, &st);
    rc = swap_open(kfd, &d, temp, fd, &st, err);
    if (fstatat(d.dir, d.name, &st, AT_SYMLINK_NOFOLLOW) == 0) px_stat_into(after, &st);
  }
  if (fd >= 0) close(fd);
  px_release(&d);
  return rc;
}

int cf_swap_files(const cf_at *at, const char *const *temps, uint32_t n, int32_t *status, uint64_t *deduped,
                  cf_stat *before, cf_stat *after, cf_error *err) {
  struct stat st;
  int kfd = n > 0 ? px_open_read(at[0], &st, err) : fail(err, "open", EINVAL, 0);
  if (kfd < 0) return kfd;
  px_stat_into(&before[0], &st);
  for (uint32_t i = 1; i < n; i++) {
    cf_error e = {0};
    deduped[i] = 0;
    memset(&after[i], 0, sizeof after[i]);
    status[i] = swap_one(kfd, at[i], temps[i], &before[i], &after[i], &e);
    if (status[i] == 0) deduped[i] = before[i].size;
  }
  if (fstat(kfd, &st) == 0) px_stat_into(&after[0], &st);
  close(kfd);
  return 0;
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
int cf_extents(cf_at at, cf_extent **out, uint32_t *count, cf_error *err) {
  (void)at;
  *out = NULL;
  *count = 0;
  return fail(err, "ioctl_fiemap", ENOTSUP, 0);
}

/* ---- space: getattrlistat(2) ----
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

/* getattrlistat(2) (macOS 10.10) on the entry relative to its directory; FSOPT_NOFOLLOW: a
 * final symlink is described, not followed. An empty name is the directory itself (".": the
 * *at calls of macOS have no AT_EMPTY_PATH). Returns 0, or -1 with errno. */
static int space_ask(const px_at *w, uint8_t *buf, size_t size, int *level) {
  int last = (int)(sizeof space_requests / sizeof space_requests[0]) - 1;
  const char *name = w->name[0] != '\0' ? w->name : ".";
  for (;;) {
    struct attrlist al = {.bitmapcount = ATTR_BIT_MAP_COUNT, .commonattr = ATTR_CMN_RETURNED_ATTRS,
                          .fileattr = ATTR_FILE_ALLOCSIZE, .forkattr = space_requests[*level]};
    if (getattrlistat(w->dir, name, &al, buf, size, FSOPT_ATTR_CMN_EXTENDED | FSOPT_NOFOLLOW) == 0) return 0;
    if (errno != EINVAL || *level == last) return -1;
    ++*level;
  }
}

int cf_file_space_get(cf_at at, cf_file_space *out, cf_error *err) {
  memset(out, 0, sizeof *out);
  /* 4 + 20 (attribute_set_t) + 4 * 8 + 4 = 60 bytes at most. */
  uint8_t buf[64];
  px_at w;
  if (px_resolve(at, 0, 0, &w, err) < 0) return -err->errnum;
  int level = __atomic_load_n(&space_level, __ATOMIC_RELAXED);
  int rc = space_ask(&w, buf, sizeof buf, &level) == 0 ? 0 : fail(err, "getattrlistat", errno, 0);
  px_release(&w);
  if (rc < 0) return rc;
  /* Only a smaller request that worked shows which bits this kernel lacks. */
  if (level > __atomic_load_n(&space_level, __ATOMIC_RELAXED)) __atomic_store_n(&space_level, level, __ATOMIC_RELAXED);
  /* A short or inconsistent answer: what getattrlist(2) says of a buffer too small. */
  return space_parse(buf, sizeof buf, out) == 0 ? 0 : fail(err, "getattrlistat", ERANGE, 0);
}

