/*
 * What linux.c and mac.c share (posix.c): resolving a cf_at, the tree functions of platform.h
 * (directories, symlinks, specials, hard links, renames, locks, ancestors) and the metadata
 * sequence (owner, xattrs, mode, times). Internal to the addon: not part of the contract.
 *
 * posix.c needs four things only a platform file knows; each platform file defines them:
 * px_extents_fd, px_rename_noreplace, px_copy_xattrs_fd and px_copy_xattrs_at (below).
 */
#ifndef CLONEFILE_POSIX_H
#define CLONEFILE_POSIX_H

#include "platform.h"

#include <fcntl.h>
#include <sys/stat.h>

#ifndef O_NOATIME
#define O_NOATIME 0 /* Linux only: elsewhere reading a directory is simply opened */
#endif

/* The nanosecond times of a struct stat: POSIX names them st_atim/st_mtim, macOS
 * st_atimespec/st_mtimespec. */
#ifdef __APPLE__
#define PX_ATIM(st) ((st)->st_atimespec)
#define PX_MTIM(st) ((st)->st_mtimespec)
#define PX_CTIM(st) ((st)->st_ctimespec)
#else
#define PX_ATIM(st) ((st)->st_atim)
#define PX_MTIM(st) ((st)->st_mtim)
#define PX_CTIM(st) ((st)->st_ctim)
#endif

/* Records a failure and returns it as a negative errno. */
static inline int fail(cf_error *err, const char *syscall, int errnum, int on_dest) {
  err->errnum = errnum;
  err->syscall = syscall;
  err->on_dest = on_dest;
  return -errnum;
}

/* A cf_at resolved to the directory that holds its final component. */
typedef struct {
  int dir;          /* an open directory, or AT_FDCWD for a plain path (CF_CWD) */
  const char *name; /* the final component (points into the cf_at's name); the whole path
                       with AT_FDCWD; "" for the directory itself */
  int owned;        /* 1: dir was opened by px_resolve, and px_release closes it */
} px_at;

/* Resolves `at`: a plain path (CF_CWD) or a one-component name as it is, with no syscall;
 * every component but the last of a longer name opened in turn (O_DIRECTORY, and O_NOFOLLOW
 * unless follow_dirs). A ".." component is EINVAL: nothing outside at.dir is reached. */
int px_resolve(cf_at at, int follow_dirs, int on_dest, px_at *out, cf_error *err);
void px_release(px_at *r);

/* A finished entry made under `tmp` takes dst's name: rename(2) over it with overwrite; else
 * renameat2/renameatx_np that refuses an existing dst, or, where the filesystem has no such
 * rename (EINVAL: FUSE, NFS, 9p), link(2) + unlink(2), which refuse one too. */
int px_publish(const px_at *tmp, const px_at *dst, int overwrite, cf_error *err);

/* Metadata of src (st) onto the open file or directory dfd, as the flags ask: owner, xattrs
 * and ACLs, mode, times; looks before it changes (see posix.c). */
int px_copy_meta_fd(int sfd, int dfd, const struct stat *st, uint32_t flags, cf_error *err);

/* Opens a regular file to read it, as cf_read_samples says; its stat in *st. */
int px_open_read(cf_at at, struct stat *st, cf_error *err);
/* 1 where the open files a and b hold the same bytes (as many), 0 where not, or -errno:
 * read from offset 0 in 1 MiB steps, stopping at the first difference. */
int px_same_bytes(int a, int b, cf_error *err);
/* cf_stat from a struct stat. */
void px_stat_into(cf_stat *out, const struct stat *st);

/* FNV-1a, 64 bits: the hashes of CF_SCAN_META (xattrs, symlink targets). Start with PX_HASH0. */
#define PX_HASH0 0xcbf29ce484222325ull
static inline uint64_t px_hash(uint64_t h, const void *data, size_t n) {
  const unsigned char *p = (const unsigned char *)data;
  for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

/* ---- defined by each platform file ---- */

/* The extent map of an open file (FIEMAP); ENOTSUP where the OS has none. On failure *out is
 * freed and NULL. */
int px_extents_fd(int fd, cf_extent **out, uint32_t *count, cf_error *err);

/* A rename that fails with EEXIST rather than replace `to`: 0, or -1 with errno set (EINVAL or
 * ENOSYS where the filesystem or kernel has none). */
int px_rename_noreplace(int from_dir, const char *from, int to_dir, const char *to);

/* renameat2(RENAME_EXCHANGE) / renameatx_np(RENAME_SWAP): 0, or -1 with errno. */
int px_rename_exchange(int from_dir, const char *from, int to_dir, const char *to);

/* A hash of the extended attributes (names and values, in name order) of an open file, or of
 * an entry not opened (never following a final symlink): 0 where it has none; 0 or a negative
 * errno. */
int px_xattr_hash_fd(int fd, uint64_t *hash, cf_error *err);
int px_xattr_hash_at(const px_at *at, uint64_t *hash, cf_error *err);

/* Copies the extended attributes (and, with CF_ACL, the ACLs) of an open file to another, or
 * of a non-opened entry (symlink, FIFO, device: never following a final symlink) to another,
 * as CF_XATTR/CF_ACL ask. An attribute the destination cannot hold is left out and its errno
 * put in err->dropped. Returns how many ACLs it set (the mode must then be set again), or a
 * negative errno. */
int px_copy_xattrs_fd(int sfd, int dfd, uint32_t flags, cf_error *err);
int px_copy_xattrs_at(const px_at *src, const px_at *dst, uint32_t flags, cf_error *err);

#ifdef __APPLE__
/* mknodat(2) came with macOS 13 (the SDK declares it only for that target); the addon runs on
 * 11 and 12 too, so mac.c supplies it: mknodat where the system has it, else by path. */
int px_mknodat(int dir, const char *name, mode_t mode, dev_t dev);
#define mknodat px_mknodat
#endif

#endif
