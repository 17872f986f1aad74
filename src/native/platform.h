/*
 * The syscall layer of clonefile: one implementation per platform (linux.c,
 * mac.c, win.c) behind this header. Every function does one job and returns 0
 * (or a non-negative count) on success and a negative errno on failure, with
 * the name of the failing syscall in `err->syscall`. No policy lives here: the
 * TypeScript side decides when to fall back, which flags to pass, and how to
 * word errors.
 *
 * Names are bytes (Windows converts UTF-8 to UTF-16 inside win.c) and always arrive from the
 * caller: no function here invents a file name (temporary names come from src/temp.ts).
 */
#ifndef CLONEFILE_PLATFORM_H
#define CLONEFILE_PLATFORM_H

#include <stdint.h>

/* What cf_clone_file() does with the data. */
#define CF_METHOD_CLONE 0 /* share blocks (FICLONE, clonefile, duplicate extents) or fail */
#define CF_METHOD_COPY 1  /* physical copy that shares nothing (never copy_file_range) */

/* Flags for the file operations. What to do is the caller's (TypeScript's) decision: no
 * function below chooses a flag for itself. */
#define CF_NOFOLLOW 0x001  /* the final component is not followed: a symlink source is recreated
                              as a symlink by cf_clone_file, and opening a file never follows one */
#define CF_OWNER 0x002     /* copy uid/gid; EPERM (unprivileged) is ignored */
#define CF_ACL 0x004       /* copy ACLs (POSIX ACL xattrs, CLONE_ACL, Windows DACL) */
#define CF_XATTR 0x008     /* copy extended attributes */
#define CF_MODE 0x010      /* copy permission bits (setuid/setgid cleared unless CF_SETID) */
#define CF_TIMES 0x020     /* copy atime and mtime, to the nanosecond */
#define CF_SETID 0x040     /* keep setuid/setgid bits (cp -a does; clonefile(2) does not) */
#define CF_OVERWRITE 0x080 /* replace an existing destination atomically: build under `temp`,
                              then rename over it */
#define CF_DIRECT 0x100    /* create the destination in place (O_EXCL) instead of building it
                              nameless (O_TMPFILE) or under `temp` and linking it into place */
#define CF_TREE 0x200      /* a directory source is cloned whole, atomically (macOS clonefile(2));
                              elsewhere a directory is EISDIR whatever this says */
#define CF_FOLLOW_DIRS 0x400 /* the directories of a multi-component name may be symlinks and are
                                followed (cloneTree -L); without it they never are */

/* ---- addressing ----
 * Every operation names its entries as a cf_at: `name` relative to the open directory `dir`.
 * With dir == CF_CWD, name is a path as the user gave it, resolved as the OS resolves any path
 * (the user chose it, symlinks and all). With an open directory (a descriptor from
 * cf_open_dir), name is one component, or several separated by '/': every component but the
 * last is opened in turn relative to the one before (O_DIRECTORY | O_NOFOLLOW, unless
 * CF_FOLLOW_DIRS), so a symlink planted anywhere on the way is ELOOP/ENOTDIR and never
 * followed, nothing outside `dir` is reached, and no PATH_MAX applies however deep the name.
 * An empty name (with an open directory) is the directory itself.
 * On Windows a directory "descriptor" is an index the platform file hands out. */
#define CF_CWD (-100)
typedef struct {
  int dir;
  const char *name;
} cf_at;

typedef struct {
  cf_at at; /* used when fd < 0 */
  int fd;   /* an open file (a source given as a FileHandle or fd) */
} cf_file;

typedef struct {
  int errnum;          /* positive errno of the failure */
  const char *syscall; /* "open", "ioctl_ficlone", "clonefile", ... */
  int on_dest;         /* 1 when the failure concerns the destination */
  uint64_t bytes;      /* bytes written before a copy failed half way (cloneRange's copy), or 0 */
  int dropped;         /* set even on success: the errno (ENOSPC, E2BIG, EOPNOTSUPP, ...) of an
                          extended attribute the destination could not hold and that was left
                          out, as cp -a does with a warning; 0 when none was. Callers zero it. */
} cf_error;

typedef struct {
  uint64_t size; /* bytes of file data cloned or copied */
} cf_clone_out;

typedef struct {
  uint64_t type;       /* statfs f_type (Linux), a hash of f_fstypename (macOS), 0 (Windows) */
  char name[32];       /* the type's name where the OS gives one (f_fstypename, the volume's
                          file system name); "" on Linux, where TypeScript names f_type */
  uint64_t block_size; /* the block size that clone ranges must be aligned to */
  uint64_t dev;        /* device (st_dev / volume serial) */
  uint64_t mount_id;   /* Linux statx mnt_id (bind mounts differ); else = dev */
  int can_clone;       /* what the OS itself says: 1 yes, 0 no (VOL_CAP_INT_CLONE,
                          FILE_SUPPORTS_BLOCK_REFCOUNTING); -1 where it says nothing (Linux) */
} cf_fs_info;

/* A FIEMAP-style extent. */
typedef struct {
  uint64_t logical, physical, length;
  uint32_t flags; /* FIEMAP_EXTENT_* on Linux (SHARED 0x2000); 0 elsewhere */
} cf_extent;

/* Whole file: clone (or copy) src to the new file dst, with the metadata the flags ask for.
 * Without CF_DIRECT the file is built where no one sees it (O_TMPFILE), or under `temp` (a
 * name in dst's directory, relative to dst.dir like dst.name, made O_EXCL: never reused) where
 * that is impossible or CF_OVERWRITE asks to replace dst; it gets its name only when complete.
 * `temp` may be NULL with CF_DIRECT. On failure nothing is left at dst or temp, and an
 * existing dst is untouched. */
int cf_clone_file(const cf_file *src, cf_at dst, const char *temp, int method, uint32_t flags,
                  cf_clone_out *out, cf_error *err);

/* Range: share (or copy) `length` bytes (0 = to the source's EOF) between open files, exactly
 * the range asked for (alignment is the caller's business: a misaligned clone fails with the
 * OS's error). Returns the number of bytes, or a negative errno. */
int64_t cf_clone_range(int src_fd, int dst_fd, uint64_t src_offset, uint64_t dst_offset,
                       uint64_t length, int method, cf_error *err);

/* Compare-and-share `length` bytes of dst with src (FIDEDUPERANGE). Returns bytes deduped;
 * a range whose bytes differ gives -EBADE. ENOTSUP where the OS has no such call. */
int64_t cf_dedupe_range(int src_fd, int dst_fd, uint64_t src_offset, uint64_t dst_offset,
                        uint64_t length, cf_error *err);

/* The filesystem that holds path. */
int cf_fs_info_get(const char *path, cf_fs_info *info, cf_error *err);

/* Extent map of a file (FIEMAP with FIEMAP_FLAG_SYNC), all of it; the final component is not
 * followed. On success *out is a malloc'd array of *count extents that the caller frees.
 * ENOTSUP off Linux. */
int cf_extents(cf_at at, cf_extent **out, uint32_t *count, cf_error *err);

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

/* The space facts of the file at `at` (not following a final symlink), from one getattrlist(2)
 * on macOS. ENOTSUP elsewhere: Linux measures sharing with FIEMAP (cf_extents), and Windows has
 * no per-file figure of what is shared. */
int cf_file_space_get(cf_at at, cf_file_space *out, cf_error *err);

/* ---- trees: directories held open, entries named relative to them ---- */

/* What a walk needs of one entry (lstat, or stat when following). */
typedef struct {
  uint32_t mode; /* st_mode: type and permission bits */
  uint64_t dev, ino, size, nlink;
  int64_t mtime_sec, ctime_sec;
  uint32_t mtime_nsec, ctime_nsec;
  uint64_t blocks; /* st_blocks, in 512-byte units */
  uint32_t uid, gid; /* owner (0 on Windows) */
} cf_stat;

/* One directory entry. */
typedef struct {
  uint32_t name; /* offset of the NUL-terminated name in the names buffer */
  cf_stat st;
  cf_extent *ext;     /* CF_SCAN_EXTENTS, regular files: the extent map (malloc'd) */
  uint32_t ext_count;
  int32_t ext_err;    /* the errno that kept this file's extents from being read, or 0 */
  uint64_t xattrs;    /* CF_SCAN_META: a hash of the entry's extended attributes (names and
                         values, in name order; ACLs included), 0 where it has none */
  uint64_t target;    /* CF_SCAN_META, symlinks: a hash of the link's target */
  int32_t meta_err;   /* CF_SCAN_META: the errno that kept these from being read, or 0 */
} cf_dirent;

/* Opens each regular file at[i] to read it (O_RDONLY|O_NOFOLLOW, and O_NOATIME where the
 * kernel allows it: owner or CAP_FOWNER), fstats it into st[i] and reads up to `block` bytes at
 * its start, middle and end into buf + i * 3 * block; got[i] the bytes read, or errnos[i] the
 * failure (a file that is not regular is EINVAL). All the reads are asked for first
 * (posix_fadvise WILLNEED where the OS has it), `ahead` bytes around each sample (at least the
 * block), so that the disk serves them together rather than one cold read after another, and
 * a reader of the whole file later meets a few large gaps rather than many small ones. */
void cf_read_samples(const cf_at *at, uint32_t n, uint64_t block, uint64_t ahead, uint8_t *buf, int64_t *got,
                     cf_stat *st, int32_t *errnos);

/* FIDEDUPERANGE of bytes [0, length) of at[0] (the keeper) onto each of at[1..n-1], many
 * destinations a call (up to 127), looping while the kernel caps a call's length. Every file is
 * opened as cf_read_samples opens it (a destination needs no write access for dedupe), fstat'd
 * before (before[i]) and after (after[i]) and, where maps is not NULL, its extent map read
 * through the same descriptor before (maps[i], map_counts[i]) and after (maps[n + i]): malloc'd,
 * the caller frees them; NULL and 0 where not read. status[i]: 0 shared, or -errno: -EBADE
 * where the bytes differ (FILE_DEDUPE_RANGE_DIFFERS); deduped[i] the bytes shared. Returns 0,
 * or -errno where the keeper could not be opened or the call failed for all. ENOTSUP where the
 * OS has no compare-and-share call. */
int cf_dedupe_files(const cf_at *at, uint32_t n, uint64_t length, int32_t *status, uint64_t *deduped,
                    cf_stat *before, cf_stat *after, cf_extent **maps, uint32_t *map_counts, cf_error *err);

/* macOS dedupe by verify-then-swap (APFS has no compare-and-share call). For each of
 * at[1..n-1]: at[0] (the keeper) is cloned to temps[i] (a bare name in at[i]'s directory, made
 * exclusively), the clone compared byte for byte with at[i] and given at[i]'s metadata (mode,
 * owner, ACL, xattrs, BSD flags, times), then the two swapped (renameatx_np RENAME_SWAP); the
 * original, now at temps[i], must be the inode opened, unchanged in size and mtime (and ctime
 * up to the swap, which moves it), else it is swapped back. status, deduped, before and after
 * as cf_dedupe_files; status -EBADE where the bytes differ or at[i] changed (swapped back),
 * -EMLINK where at[i] has more than one link (the swap would split them), -EPERM where BSD
 * flags lock it or its owner cannot be given to the clone. Returns 0, or -errno where the keeper
 * could not be opened. ENOTSUP off macOS. */
int cf_swap_files(const cf_at *at, const char *const *temps, uint32_t n, int32_t *status, uint64_t *deduped,
                  cf_stat *before, cf_stat *after, cf_error *err);

#define CF_SCAN_FOLLOW 0x1  /* stat, not lstat: follow symlinks (a dangling one is kept as the
                               link itself); cf_open_dir follows too */
#define CF_SCAN_EXTENTS 0x2 /* also map the extents of every regular file (ENOTSUP off Linux);
                               then only regular files need carry more than their type */
#define CF_SCAN_META 0x8 /* also stat every entry (owner), and hash every entry's extended
                            attributes and every symlink's target (xattrs, target, meta_err) */
#define CF_SCAN_WRITABLE 0x4 /* cf_open_dir: give the directory u+rwx first if it lacks them and
                                the process owns it (emptying a read-only tree to remove it) */

/* Opens the directory at `at` for reading. A name of ".." alone (relative to an open directory,
 * never as a component of a longer name) is that directory's parent: the caller checks it is
 * the directory it expects (dev, ino).
 * Opens the directory at `at` for reading (O_DIRECTORY, O_NOFOLLOW unless CF_SCAN_FOLLOW,
 * O_NOATIME where permitted so the listing does not move its atime) and fstats it: returns the
 * new descriptor (>= 0) and fills *st. A symlink where a directory was is ELOOP/ENOTDIR. */
int cf_open_dir(cf_at at, int how, cf_stat *st, cf_error *err);

/* Closes a descriptor cf_open_dir gave. */
void cf_close_dir(int fd);

/* Lists the open directory `fd` from its start (no . or ..) and stats every entry relative to
 * it, as `how` says; an entry that vanished since the listing is left out. *entries and *names
 * are malloc'd, and so is each entry's ext. `fd` stays open. */
int cf_scan_dir(int fd, int how, cf_dirent **entries, uint32_t *count, char **names, cf_error *err);

/* mkdirat: 0 when made. With merge, an existing directory there (not a symlink to one) is no
 * error: 1. */
int cf_make_dir(cf_at at, uint32_t mode, int merge, cf_error *err);

/* Recreates a symlink (its target, owner, xattrs and times as flags say); with CF_OVERWRITE it
 * is made under `temp` and renamed over what is at dst. */
int cf_copy_symlink(cf_at src, cf_at dst, const char *temp, uint32_t flags, cf_error *err);

/* Recreates a FIFO or device node (mknod), with owner, xattrs, mode and times as flags say;
 * with CF_OVERWRITE as cf_copy_symlink. */
int cf_make_special(cf_at src, cf_at dst, const char *temp, uint32_t flags, cf_error *err);

/* Gives the existing directory dst the metadata of directory src (owner, xattrs, mode, times),
 * through descriptors of the two (never by a path a symlink could redirect). */
int cf_copy_dir_meta(cf_at src, cf_at dst, uint32_t flags, cf_error *err);

/* A hard link dst to existing (never following a symlink); with CF_OVERWRITE as
 * cf_copy_symlink. */
int cf_hard_link(cf_at existing, cf_at dst, const char *temp, uint32_t flags, cf_error *err);

/* Renames from to to; with noreplace an existing `to` is EEXIST (never clobbered), even a
 * directory that rename(2) would replace when empty. Where the filesystem has no such rename
 * (EINVAL/ENOSYS), the error is returned as it is: the caller chooses what to do instead. */
int cf_rename(cf_at from, cf_at to, int noreplace, cf_error *err);

/* Exchanges the entries at a and b, which must both exist (renameat2 RENAME_EXCHANGE on Linux,
 * renameatx_np RENAME_SWAP on macOS): each name holds at every instant either what it held or
 * what the other held, never nothing. EINVAL where the filesystem has no such rename, ENOTSUP
 * where the OS has none (Windows). */
int cf_exchange(cf_at a, cf_at b, cf_error *err);

/* btrfs: the subvolume at `src` snapshotted as the new subvolume `dst` (BTRFS_IOC_SNAP_CREATE_V2
 * on dst's directory), read-only with `readonly`; ENOTSUP off Linux. */
int cf_subvol_snapshot(cf_at src, cf_at dst, int readonly, cf_error *err);

/* btrfs: deletes the subvolume at `at` (BTRFS_IOC_SNAP_DESTROY_V2 on its directory), a read-only
 * one included; ENOTSUP off Linux. */
int cf_subvol_delete(cf_at at, cf_error *err);

/* Compares the contents of the regular files a and b (each opened as cf_read_sample opens one,
 * read sequentially, stopping at the first difference): 0 the same bytes, 1 they differ, or a
 * negative errno. ENOTSUP on Windows. */
int cf_compare_files(cf_at a, cf_at b, cf_error *err);

/* The hashes Scan.Meta gives a listed entry (cf_dirent's xattrs and target), for one entry at
 * `at` (never following a final symlink): for the few entries a diff must look at closer. */
int cf_entry_meta(cf_at at, uint64_t *xattrs, uint64_t *target, cf_error *err);

/* Removes the entry at `at`: unlinkat, with AT_REMOVEDIR when dir is set. */
int cf_remove(cf_at at, int dir, cf_error *err);

/* Opens (with create: creates, O_EXCL) the file at `at` and takes an exclusive lock on it
 * without waiting: an OFD lock (fcntl F_OFD_SETLK) on Linux, which other PID namespaces and,
 * over NFS, other hosts see; flock(2) on macOS; LockFileEx on Windows. Returns the descriptor,
 * which holds the lock until it is closed (or the process dies), or -EAGAIN (-EWOULDBLOCK)
 * where another open file holds it. */
int cf_lock(cf_at at, int create, cf_error *err);

/* Closes a descriptor cf_lock gave, dropping the lock. */
void cf_unlock(int fd);

/* (dev, ino) of the directory at path, then of its parent, and so on up to the root (whose ".."
 * is itself), through ".." of each opened directory: no PATH_MAX limit, bind mounts seen as
 * what they are. Fills up to `max` pairs into ids (dev, ino, dev, ino, ...) and returns how many
 * pairs there are in all (which may be more than max: call again with room for them). */
int cf_ancestors(const char *path, uint64_t *ids, uint32_t max, cf_error *err);

#endif
