/*
 * The syscall layer of clonefile: one implementation per platform (linux.c,
 * mac.c, win.c) behind this header. Every function does one job and returns 0
 * (or a non-negative count) on success and a negative errno on failure, with
 * the name of the failing syscall in `err->syscall`. No policy lives here: the
 * TypeScript side decides when to fall back, which flags to pass, and how to
 * word errors.
 *
 * Paths are UTF-8 (Windows converts to UTF-16 inside win.c). A source may be a
 * path or an open file descriptor (fd >= 0 wins; on Windows the fd is a CRT fd).
 */
#ifndef CLONEFILE_PLATFORM_H
#define CLONEFILE_PLATFORM_H

#include <stdint.h>

/* What cf_clone_file() does with the data. */
#define CF_METHOD_CLONE 0 /* share blocks (FICLONE, clonefile, duplicate extents) or fail */
#define CF_METHOD_COPY 1  /* physical copy that shares nothing (never copy_file_range) */

/* Flags for cf_clone_file(). */
#define CF_NOFOLLOW 0x001  /* a symlink source is recreated as a symlink */
#define CF_OWNER 0x002     /* copy uid/gid; EPERM (unprivileged) is ignored */
#define CF_ACL 0x004       /* copy ACLs (POSIX ACL xattrs, CLONE_ACL, Windows DACL) */
#define CF_XATTR 0x008     /* copy extended attributes */
#define CF_MODE 0x010      /* copy permission bits (setuid/setgid cleared unless CF_SETID) */
#define CF_TIMES 0x020     /* copy atime and mtime, to the nanosecond */
#define CF_SETID 0x040     /* keep setuid/setgid bits (cp -a does; clonefile(2) does not) */
#define CF_OVERWRITE 0x080 /* replace an existing destination atomically (rename over it) */
#define CF_DIRECT 0x100    /* create the destination in place (O_EXCL) instead of via a
                              temporary; used when the caller makes the whole tree atomic */
#define CF_TREE 0x200      /* a directory source is cloned whole, atomically (macOS clonefile(2));
                              elsewhere a directory is EISDIR whatever this says */

typedef struct {
  const char *path; /* used when fd < 0 */
  int fd;
} cf_file;

typedef struct {
  int errnum;          /* positive errno of the failure */
  const char *syscall; /* "open", "ioctl_ficlone", "clonefile", ... */
  int on_dest;         /* 1 when the failure concerns the destination */
} cf_error;

typedef struct {
  uint64_t size; /* bytes of file data cloned or copied */
  int symlink;   /* 1 when a symlink was recreated (CF_NOFOLLOW) */
} cf_clone_out;

typedef struct {
  uint64_t type;       /* statfs f_type (Linux), a hash of f_fstypename (macOS), 0 (Windows) */
  char name[32];       /* "btrfs", "apfs", "ReFS", ... where the OS names it; else "" */
  uint64_t block_size; /* the block size that clone ranges must be aligned to */
  uint64_t dev;        /* device (st_dev / volume serial) */
  uint64_t mount_id;   /* Linux statx mnt_id (bind mounts differ); else = dev */
  int can_clone;       /* 1 yes, 0 no, -1 unknown (decided from capability flags) */
} cf_fs_info;

/* A FIEMAP-style extent. */
typedef struct {
  uint64_t logical, physical, length;
  uint32_t flags; /* FIEMAP_EXTENT_* on Linux (SHARED 0x2000); 0 elsewhere */
} cf_extent;

/* Whole file: clone (or copy) src to the new file dst, with the metadata the flags ask for.
 * On failure nothing is left at dst and an existing dst is untouched. */
int cf_clone_file(const cf_file *src, const char *dst, int method, uint32_t flags, cf_clone_out *out,
                  cf_error *err);

/* Range: share (or copy) `length` bytes (0 = to the source's EOF) between open files.
 * Returns the number of bytes, or a negative errno. */
int64_t cf_clone_range(int src_fd, int dst_fd, uint64_t src_offset, uint64_t dst_offset,
                       uint64_t length, int method, cf_error *err);

/* Compare-and-share `length` bytes of dst with src (FIDEDUPERANGE). Returns bytes deduped;
 * a range whose bytes differ gives -EBADE. ENOTSUP where the OS has no such call. */
int64_t cf_dedupe_range(int src_fd, int dst_fd, uint64_t src_offset, uint64_t dst_offset,
                        uint64_t length, cf_error *err);

/* The filesystem that holds path. */
int cf_fs_info_get(const char *path, cf_fs_info *info, cf_error *err);

/* Extent map of a file (FIEMAP with FIEMAP_FLAG_SYNC), all of it. On success *out is a
 * malloc'd array of *count extents that the caller frees. ENOTSUP off Linux. */
int cf_extents(const char *path, cf_extent **out, uint32_t *count, cf_error *err);

/* What the filesystem says of one file's space, as far as it says it (see `known`). */
typedef struct {
  uint64_t allocated;      /* bytes allocated to the file, all forks (what st_blocks counts) */
  uint64_t private_size;   /* bytes freed at once if the file were deleted: blocks that no clone
                              and no snapshot also holds (APFS ATTR_CMNEXT_PRIVATESIZE) */
  uint64_t clone_id;       /* the same for a file and its pure clones, that share all their blocks;
                              a clone written to gets a new one (ATTR_CMNEXT_CLONEID) */
  uint64_t ext_flags;      /* EF_* of <sys/stat.h>: EF_MAY_SHARE_BLOCKS 0x1, EF_SHARES_ALL_BLOCKS 0x40 */
  uint32_t clone_refcount; /* how many files share clone_id, this one included (macOS 14+) */
  uint32_t known;          /* CF_SPACE_* bits: the fields the filesystem reported; the others are 0 */
} cf_file_space;

#define CF_SPACE_ALLOCATED 0x01
#define CF_SPACE_PRIVATE_SIZE 0x02
#define CF_SPACE_CLONE_ID 0x04
#define CF_SPACE_EXT_FLAGS 0x08
#define CF_SPACE_CLONE_REFCOUNT 0x10

/* The space facts of the file at path (not following a final symlink), from one getattrlist(2)
 * on macOS. ENOTSUP elsewhere: Linux measures sharing with FIEMAP (cf_extents), and Windows has
 * no per-file figure of what is shared. */
int cf_file_space_get(const char *path, cf_file_space *out, cf_error *err);

/* ---- trees: the same syscall sequences for many entries (batching is mechanism) ---- */

/* One directory entry with what lstat (or stat, when following) says of it. */
typedef struct {
  uint32_t name; /* offset of the NUL-terminated name in the names buffer */
  uint32_t mode; /* st_mode: type and permission bits */
  uint64_t dev, ino, size, nlink;
  cf_extent *ext;     /* CF_SCAN_EXTENTS, regular files: the extent map (malloc'd) */
  uint32_t ext_count;
  int32_t ext_err;    /* the errno that kept this file's extents from being read, or 0 */
} cf_dirent;

#define CF_SCAN_FOLLOW 0x1  /* stat, not lstat: follow symlinks */
#define CF_SCAN_EXTENTS 0x2 /* also map the extents of every regular file (ENOTSUP off Linux);
                               then only regular files carry dev/ino/size/nlink, other entries
                               just their type (from the listing where it gives one) */

/* Lists a directory and stats every entry (no . or ..), as `how` says. *entries and *names are
 * malloc'd, and so is each entry's ext. */
int cf_scan_dir(const char *path, int how, cf_dirent **entries, uint32_t *count, char **names,
                cf_error *err);

/* mkdir(path, mode): 0 when made. With merge, an existing directory there (not a symlink to
 * one) is no error: 1. */
int cf_make_dir(const char *path, uint32_t mode, int merge, cf_error *err);

/* Recreates a symlink (its target, owner, xattrs and times as flags say); with CF_OVERWRITE
 * it replaces what is at dst. */
int cf_copy_symlink(const char *src, const char *dst, uint32_t flags, cf_error *err);

/* Recreates a FIFO or device node (mknod), with owner, xattrs, mode and times as flags say;
 * with CF_OVERWRITE it replaces what is at dst. */
int cf_make_special(const char *src, const char *dst, uint32_t flags, cf_error *err);

/* Gives the existing directory dst the metadata of directory src (owner, xattrs, mode, times). */
int cf_copy_dir_meta(const char *src, const char *dst, uint32_t flags, cf_error *err);

/* A hard link dst to existing; with CF_OVERWRITE it replaces what is at dst. */
int cf_hard_link(const char *existing, const char *dst, uint32_t flags, cf_error *err);

/* Renames from to to; with noreplace an existing `to` is EEXIST (never clobbered), even a
 * directory that rename(2) would replace when empty. */
int cf_rename(const char *from, const char *to, int noreplace, cf_error *err);

#endif
