/*
 * Windows: block cloning with FSCTL_DUPLICATE_EXTENTS_TO_FILE (ReFS, Dev Drive), and a
 * ReadFile/WriteFile copy that shares nothing (not CopyFileW: on Windows 11 24H2 ReFS it
 * block-clones by itself). Names arrive as UTF-8 and are converted to UTF-16 here; Win32
 * errors leave as the CRT's errno numbers (<errno.h> of MSVC and mingw agree), which is what
 * Node's os.constants.errno holds on Windows.
 *
 * Windows has no openat(2): the directory "descriptors" of platform.h are indexes into a table
 * of open directory handles and their full paths (see "directory descriptors" below), and an
 * entry is reached by appending its name to its directory's path. That is path-based and not
 * race-free like the POSIX side: see at_path().
 *
 * NOT RUN ON WINDOWS: this file is compiled and linked by scripts/check-cross.sh (zig cc
 * -target x86_64/aarch64-windows-gnu, mingw-w64 headers made to look like MSVC's CRT), and run
 * on Linux against a fake of the Win32 calls (test/seam/win, ARCHITECTURE.md "The syscall
 * seam"), which checks its logic, not Windows' answers. It has never run on Windows, nor on
 * ReFS. The steps follow Microsoft's "Block cloning" documentation and the project's
 * reference sheet (os-apis.md), not observation.
 *
 * Metadata: CF_TIMES copies last-access and last-write times; CF_MODE copies the attributes
 * that stand for permissions and visibility (read-only, hidden, system, archive, not indexed);
 * CF_ACL copies the DACL. Not done: CF_OWNER (setting another owner needs SeRestorePrivilege,
 * so for an ordinary process it is the EPERM that linux.c ignores), CF_XATTR (extended
 * attributes and alternate data streams are not copied) and CF_SETID (no such bits).
 *
 * Links: symlinks and junctions (what Node's lstat calls links) are recreated, like linux.c
 * recreates symlinks. cf_scan_dir reports POSIX-style st_mode values made from attributes, as
 * libuv does, so that the tree code can treat every platform alike.
 *
 * Descriptors from Node (a FileHandle's fd, cloneRange's fds) are numbers of the C runtime
 * that node.exe links, not of the one this addon links (MSVC links a CRT per module): their
 * handles come from libuv's uv_get_osfhandle, which asks Node's CRT (issue 12 #2).
 */
#define WIN32_LEAN_AND_MEAN
#include <uv.h> /* first: it brings winsock2.h, which must come before windows.h's winsock.h */
#include <windows.h>
#include <aclapi.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>
#include <winioctl.h>

#include "platform.h"

/* mingw-w64's <winioctl.h> lacks these (the Windows SDK has them). The buffers get names of
 * our own so that they never collide with an SDK that does define them. */
#ifndef FSCTL_DUPLICATE_EXTENTS_TO_FILE
#define FSCTL_DUPLICATE_EXTENTS_TO_FILE 0x00098344 /* CTL_CODE(9, 209, METHOD_BUFFERED, FILE_WRITE_DATA) */
#endif
#ifndef FSCTL_GET_INTEGRITY_INFORMATION
#define FSCTL_GET_INTEGRITY_INFORMATION 0x0009027C
#endif
#ifndef FSCTL_SET_INTEGRITY_INFORMATION
#define FSCTL_SET_INTEGRITY_INFORMATION 0x0009C280
#endif
#ifndef FILE_SUPPORTS_BLOCK_REFCOUNTING
#define FILE_SUPPORTS_BLOCK_REFCOUNTING 0x08000000
#endif
#ifndef ERROR_ELEVATION_REQUIRED
#define ERROR_ELEVATION_REQUIRED 740L
#endif
#ifndef ERROR_BLOCK_TOO_MANY_REFERENCES
#define ERROR_BLOCK_TOO_MANY_REFERENCES 347L
#endif

typedef struct { /* DUPLICATE_EXTENTS_DATA */
  HANDLE FileHandle; /* the source */
  LARGE_INTEGER SourceFileOffset, TargetFileOffset, ByteCount;
} dup_extents_t;

typedef struct { /* FSCTL_GET_INTEGRITY_INFORMATION_BUFFER */
  WORD ChecksumAlgorithm, Reserved;
  DWORD Flags, ChecksumChunkSizeInBytes, ClusterSizeInBytes;
} get_integrity_t;

typedef struct { /* FSCTL_SET_INTEGRITY_INFORMATION_BUFFER */
  WORD ChecksumAlgorithm, Reserved;
  DWORD Flags;
} set_integrity_t;

typedef struct { /* REPARSE_DATA_BUFFER's symlink form (<ntifs.h>, a driver header) */
  DWORD ReparseTag;
  WORD ReparseDataLength, Reserved;
  WORD SubstituteNameOffset, SubstituteNameLength, PrintNameOffset, PrintNameLength;
  DWORD Flags;
  WCHAR PathBuffer[1];
} symlink_reparse_t;

static int fail(cf_error *err, const char *syscall, int errnum, int on_dest) {
  err->errnum = errnum;
  err->syscall = syscall;
  err->on_dest = on_dest;
  return -errnum;
}

/* Win32 errors as errno numbers: libuv's uv_translate_sys_error (src/win/error.c), the table
 * behind every error Node's fs module reports on Windows, so that the same failure reads the
 * same through fs and through the addon. Its socket-only entries (WSAE*) are left out: no call
 * here touches a socket. Deliberate differences, each for a reason given beside it:
 * ERROR_INVALID_FUNCTION (libuv: EISDIR), ERROR_LOCK_VIOLATION (libuv: EBUSY),
 * ERROR_BLOCK_TOO_MANY_REFERENCES (not in libuv), and the two libuv-only codes (UV_ECHARSET,
 * UV_EOF) that have no errno: EILSEQ and EPIPE stand for them. Anything else is EIO, where
 * libuv says UV_UNKNOWN. */
static const struct {
  DWORD win;
  int err;
} errno_table[] = {
    {ERROR_NOACCESS, EACCES},
    {ERROR_ELEVATION_REQUIRED, EACCES},
    {ERROR_CANT_ACCESS_FILE, EACCES},
    {ERROR_ACCESS_DENIED, EACCES},
    {ERROR_INVALID_FLAGS, EBADF},
    {ERROR_INVALID_HANDLE, EBADF},
    {ERROR_LOCK_VIOLATION, EAGAIN}, /* LockFileEx + LOCKFILE_FAIL_IMMEDIATELY: held by another,
                                       which cf_lock promises as EAGAIN (platform.h) */
    {ERROR_PIPE_BUSY, EBUSY},
    {ERROR_SHARING_VIOLATION, EBUSY},
    {ERROR_OPERATION_ABORTED, ECANCELED},
    {ERROR_NO_UNICODE_TRANSLATION, EILSEQ},
    {ERROR_CONNECTION_ABORTED, ECONNABORTED},
    {ERROR_CONNECTION_REFUSED, ECONNREFUSED},
    {ERROR_NETNAME_DELETED, ECONNRESET}, /* an SMB share that went away mid-call */
    {ERROR_ALREADY_EXISTS, EEXIST},
    {ERROR_FILE_EXISTS, EEXIST},
    {ERROR_BUFFER_OVERFLOW, EFAULT},
    {ERROR_HOST_UNREACHABLE, EHOSTUNREACH},
    {ERROR_INSUFFICIENT_BUFFER, EINVAL},
    {ERROR_INVALID_DATA, EINVAL},
    {ERROR_INVALID_PARAMETER, EINVAL}, /* also FSCTL_DUPLICATE_EXTENTS_TO_FILE's misaligned range */
    {ERROR_SYMLINK_NOT_SUPPORTED, EINVAL},
    {ERROR_BEGINNING_OF_MEDIA, EIO},
    {ERROR_BUS_RESET, EIO},
    {ERROR_CRC, EIO},
    {ERROR_DEVICE_DOOR_OPEN, EIO},
    {ERROR_DEVICE_REQUIRES_CLEANING, EIO},
    {ERROR_DISK_CORRUPT, EIO},
    {ERROR_EOM_OVERFLOW, EIO},
    {ERROR_FILEMARK_DETECTED, EIO},
    {ERROR_GEN_FAILURE, EIO},
    {ERROR_INVALID_BLOCK_LENGTH, EIO},
    {ERROR_IO_DEVICE, EIO},
    {ERROR_NO_DATA_DETECTED, EIO},
    {ERROR_NO_SIGNAL_SENT, EIO},
    {ERROR_OPEN_FAILED, EIO},
    {ERROR_SETMARK_DETECTED, EIO},
    {ERROR_SIGNAL_REFUSED, EIO},
    {ERROR_CANT_RESOLVE_FILENAME, ELOOP}, /* too many reparse points on the way */
    {ERROR_TOO_MANY_OPEN_FILES, EMFILE},
    {ERROR_FILENAME_EXCED_RANGE, ENAMETOOLONG},
    {ERROR_NETWORK_UNREACHABLE, ENETUNREACH},
    {ERROR_BAD_PATHNAME, ENOENT},
    {ERROR_DIRECTORY, ENOENT},
    {ERROR_ENVVAR_NOT_FOUND, ENOENT},
    {ERROR_FILE_NOT_FOUND, ENOENT},
    {ERROR_INVALID_NAME, ENOENT},
    {ERROR_INVALID_DRIVE, ENOENT},
    {ERROR_INVALID_REPARSE_DATA, ENOENT},
    {ERROR_MOD_NOT_FOUND, ENOENT},
    {ERROR_PATH_NOT_FOUND, ENOENT},
    {ERROR_NOT_ENOUGH_MEMORY, ENOMEM},
    {ERROR_OUTOFMEMORY, ENOMEM},
    {ERROR_CANNOT_MAKE, ENOSPC},
    {ERROR_DISK_FULL, ENOSPC},
    {ERROR_EA_TABLE_FULL, ENOSPC},
    {ERROR_END_OF_MEDIA, ENOSPC},
    {ERROR_HANDLE_DISK_FULL, ENOSPC},
    {ERROR_NOT_CONNECTED, ENOTCONN},
    {ERROR_DIR_NOT_EMPTY, ENOTEMPTY},
    {ERROR_NOT_SUPPORTED, ENOTSUP},
    {ERROR_INVALID_FUNCTION, ENOTSUP}, /* libuv: EISDIR (ReadFile on a directory). Here it is an
                                          FSCTL the filesystem does not know (block cloning on
                                          NTFS, FSCTL_SET_SPARSE on FAT): ENOTSUP, which
                                          fallback.ts turns into a copy */
    {ERROR_BROKEN_PIPE, EPIPE},
    {ERROR_PRIVILEGE_NOT_HELD, EPERM}, /* CreateSymbolicLinkW outside Developer Mode */
    {ERROR_BAD_PIPE, EPIPE},
    {ERROR_NO_DATA, EPIPE},
    {ERROR_PIPE_NOT_CONNECTED, EPIPE},
    {ERROR_WRITE_PROTECT, EROFS},
    {ERROR_SEM_TIMEOUT, ETIMEDOUT},
    {ERROR_NOT_SAME_DEVICE, EXDEV},
    {ERROR_META_EXPANSION_TOO_LONG, E2BIG},
    {ERROR_BLOCK_TOO_MANY_REFERENCES, EMLINK}, /* ReFS: 8175 references to one cluster at most */
};

static int errno_of(DWORD e) {
  for (size_t i = 0; i < sizeof errno_table / sizeof errno_table[0]; i++)
    if (errno_table[i].win == e) return errno_table[i].err;
  return EIO;
}

static int fail_win(cf_error *err, const char *syscall, int on_dest) {
  return fail(err, syscall, errno_of(GetLastError()), on_dest);
}


/* ---- names ---- */

static int to_utf16(const char *s, wchar_t **out, int on_dest, cf_error *err) {
  *out = NULL;
  /* MB_ERR_INVALID_CHARS: a name that is not UTF-8 fails instead of becoming U+FFFD. */
  int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, NULL, 0);
  if (n <= 0) return fail_win(err, "MultiByteToWideChar", on_dest);
  *out = malloc((size_t)n * sizeof(wchar_t));
  if (*out == NULL) return fail(err, "malloc", ENOMEM, on_dest);
  if (MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, *out, n) != n) {
    free(*out);
    *out = NULL;
    return fail_win(err, "MultiByteToWideChar", on_dest);
  }
  return 0;
}

/* ---- directory descriptors ----
 *
 * Windows has no openat(2). A descriptor here is an index into this table: the directory's
 * handle, opened with FILE_FLAG_BACKUP_SEMANTICS | FILE_FLAG_OPEN_REPARSE_POINT and sharing
 * read, write and delete (it stands in nobody's way, and so pins nothing: the directory can
 * still be renamed or deleted), and its full UTF-16 path in the \\?\ form. cf_lock's locked
 * files live here too, with no path. The SRW lock guards the table, not what it names. */

typedef struct {
  HANDLE h;      /* NULL: a free slot */
  wchar_t *path; /* NULL for a lock */
} slot_t;

static slot_t *slots;
static int slot_count;
static SRWLOCK slots_lock = SRWLOCK_INIT;

/* Grows the table so that it has a free slot; returns its index, or -1. Under the lock. */
static int slot_free_index(void) {
  for (int i = 0; i < slot_count; i++)
    if (slots[i].h == NULL) return i;
  int grown = slot_count ? slot_count * 2 : 16;
  slot_t *s = realloc(slots, (size_t)grown * sizeof *s);
  if (s == NULL) return -1;
  memset(s + slot_count, 0, (size_t)(grown - slot_count) * sizeof *s);
  slots = s;
  int i = slot_count;
  slot_count = grown;
  return i;
}

/* Keeps h (and path, which the table now owns): returns the descriptor. */
static int slot_put(HANDLE h, wchar_t *path, cf_error *err) {
  AcquireSRWLockExclusive(&slots_lock);
  int i = slot_free_index();
  if (i >= 0) slots[i] = (slot_t){h, path};
  ReleaseSRWLockExclusive(&slots_lock);
  if (i < 0) return fail(err, "malloc", ENOMEM, 0);
  return i;
}

/* A copy of descriptor fd's path (the table may move while the caller uses it). */
static int slot_path(int fd, wchar_t **out, int on_dest, cf_error *err) {
  *out = NULL;
  AcquireSRWLockShared(&slots_lock);
  const wchar_t *p = fd >= 0 && fd < slot_count && slots[fd].h != NULL ? slots[fd].path : NULL;
  if (p != NULL) *out = _wcsdup(p);
  ReleaseSRWLockShared(&slots_lock);
  if (p == NULL) return fail(err, "openat", EBADF, on_dest);
  return *out == NULL ? fail(err, "malloc", ENOMEM, on_dest) : 0;
}

/* Empties slot fd and closes its handle. */
static void slot_close(int fd) {
  HANDLE h = NULL;
  wchar_t *path = NULL;
  AcquireSRWLockExclusive(&slots_lock);
  if (fd >= 0 && fd < slot_count) {
    h = slots[fd].h;
    path = slots[fd].path;
    slots[fd] = (slot_t){NULL, NULL};
  }
  ReleaseSRWLockExclusive(&slots_lock);
  if (h != NULL) CloseHandle(h);
  free(path);
}

/* ---- paths ---- */

static int has_prefix(const wchar_t *s, const wchar_t *prefix) { return wcsncmp(s, prefix, wcslen(prefix)) == 0; }

/* A full path with the \\?\ prefix ("Naming Files, Paths, and Namespaces", "Maximum Path Length
 * Limitation"): it lifts MAX_PATH, and every directory table path is one, so that deep trees
 * work. UNC paths take \\?\UNC\server\share. */
static int add_long_prefix(const wchar_t *full, wchar_t **out, int on_dest, cf_error *err) {
  int unc = !has_prefix(full, L"\\\\?\\") && !has_prefix(full, L"\\\\.\\") && has_prefix(full, L"\\\\");
  const wchar_t *prefix = has_prefix(full, L"\\\\?\\") || has_prefix(full, L"\\\\.\\") ? L"" : unc ? L"\\\\?\\UNC" : L"\\\\?\\";
  const wchar_t *rest = unc ? full + 1 : full; /* \\server\share -> \\?\UNC\server\share */
  size_t a = wcslen(prefix), b = wcslen(rest);
  *out = malloc((a + b + 1) * sizeof(wchar_t));
  if (*out == NULL) return fail(err, "malloc", ENOMEM, on_dest);
  memcpy(*out, prefix, a * sizeof(wchar_t));
  memcpy(*out + a, rest, (b + 1) * sizeof(wchar_t));
  return 0;
}

/* A user's path (CF_CWD, cf_fs_info_get, cf_ancestors), resolved as any Windows path is:
 * GetFullPathNameW makes it absolute against the current directory and turns '/' into '\'. */
static int user_path(const char *utf8, wchar_t **out, int on_dest, cf_error *err) {
  wchar_t *w, *full = NULL;
  *out = NULL;
  if (to_utf16(utf8, &w, on_dest, err) < 0) return -err->errnum;
  DWORD n = GetFullPathNameW(w, 0, NULL, NULL);
  int rc = n == 0 ? fail_win(err, "GetFullPathNameW", on_dest) : 0;
  if (rc == 0 && (full = malloc((size_t)n * sizeof(wchar_t))) == NULL) rc = fail(err, "malloc", ENOMEM, on_dest);
  if (rc == 0 && GetFullPathNameW(w, n, full, NULL) == 0) rc = fail_win(err, "GetFullPathNameW", on_dest);
  if (rc == 0) rc = add_long_prefix(full, out, on_dest, err);
  free(full);
  free(w);
  return rc;
}

/* Appends '\' and one UTF-8 component of `len` bytes to *path (reallocated). */
static int append_component(wchar_t **path, const char *comp, size_t len, int on_dest, cf_error *err) {
  int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, comp, (int)len, NULL, 0);
  if (n <= 0) return fail_win(err, "MultiByteToWideChar", on_dest);
  size_t have = wcslen(*path);
  wchar_t *p = realloc(*path, (have + (size_t)n + 2) * sizeof(wchar_t));
  if (p == NULL) return fail(err, "malloc", ENOMEM, on_dest);
  *path = p;
  if (have > 0 && p[have - 1] != L'\\') p[have++] = L'\\';
  MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, comp, (int)len, p + have, n);
  p[have + (size_t)n] = L'\0';
  return 0;
}

/* Links are what Node's lstat calls links on Windows: symlinks and junctions (mount points).
 * Other reparse points (dedup, cloud placeholders) stand for file data. */
static int is_link_tag(DWORD attrs, DWORD tag) {
  return (attrs & FILE_ATTRIBUTE_REPARSE_POINT) && (tag == IO_REPARSE_TAG_SYMLINK || tag == IO_REPARSE_TAG_MOUNT_POINT);
}

/* An intermediate component must be a directory, and (unless following) not a link: the
 * ELOOP / ENOTDIR that openat(O_DIRECTORY | O_NOFOLLOW) gives on POSIX. The entry itself is
 * opened (FILE_FLAG_OPEN_REPARSE_POINT) for its reparse tag (FileAttributeTagInfo). */
static int check_dir(const wchar_t *path, int follow, int on_dest, cf_error *err) {
  const DWORD share = FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE;
  HANDLE h = CreateFileW(path, FILE_READ_ATTRIBUTES, share, NULL, OPEN_EXISTING,
                         FILE_FLAG_BACKUP_SEMANTICS | FILE_FLAG_OPEN_REPARSE_POINT, NULL);
  if (h == INVALID_HANDLE_VALUE) return fail_win(err, "CreateFileW", on_dest);
  FILE_ATTRIBUTE_TAG_INFO tag;
  int rc = GetFileInformationByHandleEx(h, FileAttributeTagInfo, &tag, sizeof tag)
               ? 0 : fail_win(err, "GetFileInformationByHandleEx", on_dest);
  CloseHandle(h);
  if (rc == 0 && !follow && is_link_tag(tag.FileAttributes, tag.ReparseTag)) rc = fail(err, "openat", ELOOP, on_dest);
  if (rc == 0 && !(tag.FileAttributes & FILE_ATTRIBUTE_DIRECTORY)) rc = fail(err, "openat", ENOTDIR, on_dest);
  return rc;
}

/* The full path of the entry `at` names (platform.h's cf_at): a user's path as it is with
 * CF_CWD; else the directory's path with each '/'-separated component appended, "" and "."
 * skipped, ".." refused (EINVAL: nothing outside at.dir is reached), and each directory on the
 * way checked by check_dir(). An empty name is the directory itself.
 * NOT race-free, unlike posix.c's component-by-component openat(2): between the check of a
 * component and the use of the path, another process can swap that directory for a junction
 * or symlink, and the path then goes through it. Windows offers no handle-relative open in
 * its documented API (NtCreateFile's RootDirectory would be one). */
static int at_path(cf_at at, int follow_dirs, int on_dest, wchar_t **out, cf_error *err) {
  if (at.dir == CF_CWD) return user_path(at.name, out, on_dest, err);
  if (slot_path(at.dir, out, on_dest, err) < 0) return -err->errnum;
  int rc = 0, depth = 0;
  for (const char *p = at.name; rc == 0 && *p;) {
    size_t len = strcspn(p, "/");
    if (len == 2 && p[0] == '.' && p[1] == '.') rc = fail(err, "openat", EINVAL, on_dest);
    else if (len > 0 && !(len == 1 && p[0] == '.')) {
      if (depth++ > 0) rc = check_dir(*out, follow_dirs, on_dest, err);
      if (rc == 0) rc = append_component(out, p, len, on_dest, err);
    }
    p += len + (p[len] == '/');
  }
  if (rc < 0) {
    free(*out);
    *out = NULL;
  }
  return rc;
}

/* ---- the source ---- */

/* A Node fd's handle belongs to the fd: it is never closed here. uv_get_osfhandle, not the
 * CRT's _get_osfhandle: Node's fds are numbers of node.exe's CRT, which this module's CRT
 * does not share (its _get_osfhandle would answer EBADF, or another file's handle). */
static int crt_handle(int fd, HANDLE *h, int on_dest, cf_error *err) {
  HANDLE os = uv_get_osfhandle(fd);
  if (os == INVALID_HANDLE_VALUE || os == NULL) return fail(err, "uv_get_osfhandle", EBADF, on_dest);
  *h = os;
  return 0;
}

static HANDLE open_read(const wchar_t *w, DWORD how) {
  const DWORD share = FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE;
  return CreateFileW(w, GENERIC_READ, share, NULL, OPEN_EXISTING, how, NULL);
}

/* With CF_NOFOLLOW a link itself is opened (FILE_FLAG_OPEN_REPARSE_POINT); any other reparse
 * point is reopened normally.
 * FILE_FLAG_BACKUP_SEMANTICS opens a directory too, so that it is refused as EISDIR rather
 * than failing with ACCESS_DENIED. */
static int src_open(const wchar_t *w, uint32_t flags, HANDLE *h, int *is_link, cf_error *err) {
  *is_link = 0;
  *h = open_read(w, FILE_FLAG_BACKUP_SEMANTICS | ((flags & CF_NOFOLLOW) ? FILE_FLAG_OPEN_REPARSE_POINT : 0));
  int rc = *h == INVALID_HANDLE_VALUE ? fail_win(err, "CreateFileW", 0) : 0;
  FILE_ATTRIBUTE_TAG_INFO tag;
  if (rc == 0 && (flags & CF_NOFOLLOW)) {
    if (!GetFileInformationByHandleEx(*h, FileAttributeTagInfo, &tag, sizeof tag)) {
      rc = fail_win(err, "GetFileInformationByHandleEx", 0);
      CloseHandle(*h);
    } else if (is_link_tag(tag.FileAttributes, tag.ReparseTag)) {
      *is_link = 1;
    } else if (tag.FileAttributes & FILE_ATTRIBUTE_REPARSE_POINT) {
      CloseHandle(*h);
      *h = open_read(w, FILE_FLAG_BACKUP_SEMANTICS);
      if (*h == INVALID_HANDLE_VALUE) rc = fail_win(err, "CreateFileW", 0);
    }
  }
  return rc;
}

typedef struct {
  FILE_BASIC_INFO basic; /* times and attributes */
  uint64_t size;
  int dir;
} src_info_t;

static int src_stat(HANDLE h, src_info_t *si, cf_error *err) {
  FILE_STANDARD_INFO std;
  if (!GetFileInformationByHandleEx(h, FileBasicInfo, &si->basic, sizeof si->basic) ||
      !GetFileInformationByHandleEx(h, FileStandardInfo, &std, sizeof std))
    return fail_win(err, "GetFileInformationByHandleEx", 0);
  si->size = (uint64_t)std.EndOfFile.QuadPart;
  si->dir = std.Directory != 0;
  return 0;
}

/* ---- the destination: under `temp` (or dst itself with CF_DIRECT), never shared ---- */

typedef struct {
  HANDLE h;
  const wchar_t *name; /* where the file is made: temp's path, or dst's with CF_DIRECT */
  int created;
} dest_t;

/* CREATE_NEW: never open someone else's file (nor follow a planted link: an existing name of
 * any kind is ERROR_FILE_EXISTS). Share mode 0: nobody sees it half-made. */
static int dest_open(const wchar_t *name, DWORD access, dest_t *d, cf_error *err) {
  d->name = name;
  d->created = 0;
  d->h = CreateFileW(name, access, 0, NULL, CREATE_NEW, FILE_ATTRIBUTE_NORMAL, NULL);
  if (d->h == INVALID_HANDLE_VALUE) return fail_win(err, "CreateFileW", 1);
  d->created = 1;
  return 0;
}

/* Gives the finished file its name (MoveFileExW); without CF_OVERWRITE an existing dst is
 * ERROR_ALREADY_EXISTS (EEXIST). The handle is closed first: MoveFileExW needs delete access,
 * which share mode 0 denies to everyone. */
static int dest_publish(const wchar_t *dst_w, uint32_t flags, dest_t *d, cf_error *err) {
  CloseHandle(d->h);
  d->h = INVALID_HANDLE_VALUE;
  if (d->name == dst_w) return 0;
  if (!MoveFileExW(d->name, dst_w, (flags & CF_OVERWRITE) ? MOVEFILE_REPLACE_EXISTING : 0))
    return fail_win(err, "MoveFileExW", 1);
  return 0;
}

/* Closes the handle and, after a failure, deletes what this call created. A read-only
 * attribute copied from the source would make DeleteFileW fail, so it is cleared first. */
static void dest_close(dest_t *d, int failed) {
  if (d->h != INVALID_HANDLE_VALUE) CloseHandle(d->h);
  if (failed && d->created) {
    SetFileAttributesW(d->name, FILE_ATTRIBUTE_NORMAL);
    DeleteFileW(d->name);
  }
}

/* dst's path, and temp's where the entry is built under it: C never makes a name up, so a
 * missing temp is the caller's error (EINVAL). */
static int dest_paths(cf_at dst, const char *temp, int via_temp, wchar_t **dst_w, wchar_t **tmp_w, cf_error *err) {
  *tmp_w = NULL;
  if (via_temp && temp == NULL) return fail(err, "CreateFileW", EINVAL, 1);
  if (at_path(dst, 0, 1, dst_w, err) < 0) return -err->errnum;
  if (via_temp && at_path((cf_at){dst.dir, temp}, 0, 1, tmp_w, err) < 0) {
    free(*dst_w);
    *dst_w = NULL;
    return -err->errnum;
  }
  return 0;
}

/* ---- block cloning ---- */

/* Duplicate-extent ranges are counted in clusters of the volume that holds `path`. */
static int volume_root(const wchar_t *path, wchar_t **root, cf_error *err) {
  DWORD cap = (DWORD)wcslen(path) + MAX_PATH + 1; /* a relative path's root may be longer */
  *root = malloc(cap * sizeof(wchar_t));
  if (*root == NULL) return fail(err, "malloc", ENOMEM, 0);
  if (GetVolumePathNameW(path, *root, cap)) return 0;
  int rc = fail_win(err, "GetVolumePathNameW", 0);
  free(*root);
  *root = NULL;
  return rc;
}

static int volume_cluster(const wchar_t *root, uint64_t *cluster, cf_error *err) {
  DWORD per_cluster, sector, free_clusters, clusters;
  if (!GetDiskFreeSpaceW(root, &per_cluster, &sector, &free_clusters, &clusters))
    return fail_win(err, "GetDiskFreeSpaceW", 0);
  *cluster = (uint64_t)per_cluster * sector;
  return 0;
}

static int cluster_of_path(const wchar_t *path, uint64_t *cluster, cf_error *err) {
  wchar_t *root;
  if (volume_root(path, &root, err) < 0) return -err->errnum;
  int rc = volume_cluster(root, cluster, err);
  free(root);
  return rc;
}

static uint64_t round_up(uint64_t n, uint64_t to) { return (n + to - 1) / to * to; }

/* `n` bytes in calls of 2 GiB at most (ByteCount is limited to 32 bits in practice); 2 GiB is
 * a multiple of every cluster size, so the pieces stay as aligned as the whole. */
static int duplicate_extents(HANDLE sh, HANDLE dh, uint64_t soff, uint64_t doff, uint64_t n, cf_error *err) {
  const uint64_t most = 0x80000000ull;
  dup_extents_t dx;
  memset(&dx, 0, sizeof dx);
  dx.FileHandle = sh;
  for (uint64_t done = 0; done < n;) {
    uint64_t k = n - done < most ? n - done : most;
    dx.SourceFileOffset.QuadPart = (LONGLONG)(soff + done);
    dx.TargetFileOffset.QuadPart = (LONGLONG)(doff + done);
    dx.ByteCount.QuadPart = (LONGLONG)k;
    DWORD bytes;
    if (!DeviceIoControl(dh, FSCTL_DUPLICATE_EXTENTS_TO_FILE, &dx, sizeof dx, NULL, 0, &bytes, NULL))
      return fail_win(err, "FSCTL_DUPLICATE_EXTENTS_TO_FILE", 0);
    done += k;
  }
  return 0;
}

static int set_sparse(HANDLE h, BOOLEAN on, cf_error *err) {
  FILE_SET_SPARSE_BUFFER sparse = {on};
  DWORD bytes;
  if (!DeviceIoControl(h, FSCTL_SET_SPARSE, &sparse, sizeof sparse, NULL, 0, &bytes, NULL))
    return fail_win(err, "FSCTL_SET_SPARSE", 1);
  return 0;
}

/* Cloning needs matching integrity-stream settings; the answer also gives the volume's cluster
 * size, as Microsoft's block cloning sample takes it. Failure is ignored (and 0 returned): Dev
 * Drive and volumes without integrity streams refuse the call, and then there is nothing to
 * match. */
static uint64_t copy_integrity(HANDLE sh, HANDLE dh) {
  get_integrity_t get;
  DWORD bytes;
  if (!DeviceIoControl(sh, FSCTL_GET_INTEGRITY_INFORMATION, NULL, 0, &get, sizeof get, &bytes, NULL)) return 0;
  set_integrity_t set = {get.ChecksumAlgorithm, get.Reserved, get.Flags};
  DeviceIoControl(dh, FSCTL_SET_INTEGRITY_INFORMATION, &set, sizeof set, NULL, 0, &bytes, NULL);
  /* FSCTL_GET_INTEGRITY_INFORMATION_BUFFER: "Size in bytes of a cluster for this volume". */
  return get.ClusterSizeInBytes;
}

static int set_end_of_file(HANDLE h, uint64_t size, cf_error *err) {
  FILE_END_OF_FILE_INFO eof;
  eof.EndOfFile.QuadPart = (LONGLONG)size;
  if (!SetFileInformationByHandle(h, FileEndOfFileInfo, &eof, sizeof eof))
    return fail_win(err, "SetFileInformationByHandle", 1);
  return 0;
}

/* Writes the source's cached data to disk before its clusters are shared. ReFS block cloning
 * shares what is on disk: a source with dirty pages in the cache (written a moment ago, by
 * this handle or any other) can give a clone of zeros (microsoft/CopyOnWrite issue 12). The
 * flush is FlushFileBuffers, which needs GENERIC_WRITE ("Remarks"): a read-only handle is
 * reopened for writing (ReOpenFile, the same file whatever its name now) just to flush. A
 * source that cannot be flushed (read-only attribute, no write access) fails here with
 * syscall "FlushFileBuffers", which fallback.ts turns into a copy in auto mode: a copy reads
 * through the cache and is right. */
static int flush_source(HANDLE sh, uint64_t size, cf_error *err) {
  if (size == 0 || FlushFileBuffers(sh)) return 0;
  if (GetLastError() != ERROR_ACCESS_DENIED) return fail_win(err, "FlushFileBuffers", 0);
  const DWORD share = FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE;
  HANDLE w = ReOpenFile(sh, GENERIC_WRITE, share, 0);
  if (w == INVALID_HANDLE_VALUE) return fail_win(err, "FlushFileBuffers", 0);
  int rc = FlushFileBuffers(w) ? 0 : fail_win(err, "FlushFileBuffers", 0);
  CloseHandle(w);
  return rc;
}

/* The whole-file recipe of Microsoft's "Block cloning" page. The target is made sparse first
 * (a sparse source needs a sparse target, and extending a non-sparse file would allocate
 * clusters the clone replaces at once), sized, cloned, then made dense again if the source
 * was. The last partial cluster is cloned whole: the range may run past EOF to its cluster's
 * end, and the bytes beyond EOF stay invisible. */
static int clone_data(HANDLE sh, const src_info_t *si, const dest_t *d, cf_error *err) {
  if (flush_source(sh, si->size, err) < 0) return -err->errnum;
  if (set_sparse(d->h, TRUE, err) < 0) return -err->errnum;
  uint64_t cluster = copy_integrity(sh, d->h);
  if (set_end_of_file(d->h, si->size, err) < 0) return -err->errnum;
  /* Else by the volume's root (GetVolumePathNameW, GetDiskFreeSpaceW). */
  if (cluster == 0 && cluster_of_path(d->name, &cluster, err) < 0) return -err->errnum;
  if (duplicate_extents(sh, d->h, 0, 0, round_up(si->size, cluster), err) < 0) return -err->errnum;
  if (!(si->basic.FileAttributes & FILE_ATTRIBUTE_SPARSE_FILE)) return set_sparse(d->h, FALSE, err);
  return 0;
}

/* ---- physical copy ---- */

static void at_offset(OVERLAPPED *ov, uint64_t off) {
  memset(ov, 0, sizeof *ov);
  ov->Offset = (DWORD)off;
  ov->OffsetHigh = (DWORD)(off >> 32);
}

/* Positional reads and writes (an OVERLAPPED offset on a synchronous handle), so that a CRT
 * fd's own position does not decide where bytes go. Stops early at the source's EOF. On
 * failure err->bytes holds how many bytes were written. */
static int64_t copy_bytes(HANDLE sh, HANDLE dh, uint64_t soff, uint64_t doff, uint64_t n, cf_error *err) {
  enum { BUF = 1 << 20 };
  OVERLAPPED ov;
  uint64_t done = 0;
  int64_t rc = 0;
  char *buf = malloc(BUF);
  if (buf == NULL) return fail(err, "malloc", ENOMEM, 0);
  while (rc == 0 && done < n) {
    DWORD want = n - done < BUF ? (DWORD)(n - done) : BUF, got = 0;
    at_offset(&ov, soff + done);
    if (!ReadFile(sh, buf, want, &got, &ov)) {
      /* ReadFile at or past EOF with an offset says ERROR_HANDLE_EOF. */
      if (GetLastError() != ERROR_HANDLE_EOF) rc = fail_win(err, "ReadFile", 0);
      break;
    }
    if (got == 0) break;
    DWORD w = 0;
    while (rc == 0 && w < got) {
      DWORD put = 0;
      at_offset(&ov, doff + done + w);
      if (!WriteFile(dh, buf + w, got - w, &put, &ov)) rc = fail_win(err, "WriteFile", 1);
      w += put;
    }
    done += w;
  }
  free(buf);
  if (rc < 0) err->bytes = done; /* cf_error.bytes: written before the failure */
  return rc < 0 ? rc : (int64_t)done;
}

static int copy_data(HANDLE sh, const src_info_t *si, const dest_t *d, cf_error *err) {
  if (copy_bytes(sh, d->h, 0, 0, si->size, err) < 0) return -err->errnum;
  /* A source that shrank meanwhile still yields a file of the size reported. */
  return set_end_of_file(d->h, si->size, err);
}

/* ---- metadata ---- */

static int copy_dacl(HANDLE sh, HANDLE dh, cf_error *err) {
  PACL dacl = NULL;
  PSECURITY_DESCRIPTOR sd = NULL;
  DWORD e = GetSecurityInfo(sh, SE_FILE_OBJECT, DACL_SECURITY_INFORMATION, NULL, NULL, &dacl, NULL, &sd);
  if (e != ERROR_SUCCESS) return fail(err, "GetSecurityInfo", errno_of(e), 0);
  /* Keep the source's choice about inheriting from the parent directory. */
  SECURITY_DESCRIPTOR_CONTROL control = 0;
  DWORD revision;
  GetSecurityDescriptorControl(sd, &control, &revision);
  SECURITY_INFORMATION what = DACL_SECURITY_INFORMATION | ((control & SE_DACL_PROTECTED)
                                                               ? PROTECTED_DACL_SECURITY_INFORMATION
                                                               : UNPROTECTED_DACL_SECURITY_INFORMATION);
  e = SetSecurityInfo(dh, SE_FILE_OBJECT, what, NULL, NULL, dacl, NULL);
  LocalFree(sd);
  return e == ERROR_SUCCESS ? 0 : fail(err, "SetSecurityInfo", errno_of(e), 1);
}

/* Attributes that say who may write and who sees the file; SPARSE, COMPRESSED and the like
 * describe storage and cannot be set this way. */
#define COPIED_ATTRIBUTES                                                                                \
  (FILE_ATTRIBUTE_READONLY | FILE_ATTRIBUTE_HIDDEN | FILE_ATTRIBUTE_SYSTEM | FILE_ATTRIBUTE_ARCHIVE | \
   FILE_ATTRIBUTE_NOT_CONTENT_INDEXED)

static int copy_meta(HANDLE sh, const FILE_BASIC_INFO *sb, HANDLE dh, uint32_t flags, cf_error *err) {
  if ((flags & CF_ACL) && copy_dacl(sh, dh, err) < 0) return -err->errnum;
  if (!(flags & (CF_TIMES | CF_MODE))) return 0;
  FILE_BASIC_INFO b; /* a zero field means "leave as it is" */
  memset(&b, 0, sizeof b);
  if (flags & CF_TIMES) {
    b.LastAccessTime = sb->LastAccessTime;
    b.LastWriteTime = sb->LastWriteTime;
  }
  if (flags & CF_MODE) {
    b.FileAttributes = sb->FileAttributes & COPIED_ATTRIBUTES;
    if (b.FileAttributes == 0) b.FileAttributes = FILE_ATTRIBUTE_NORMAL; /* 0 would change nothing */
  }
  if (!SetFileInformationByHandle(dh, FileBasicInfo, &b, sizeof b)) return fail_win(err, "SetFileInformationByHandle", 1);
  return 0;
}

/* ---- whole file ---- */

static int file_entry(HANDLE sh, const src_info_t *si, const wchar_t *dst_w, const wchar_t *tmp_w, int method,
                      uint32_t flags, cf_error *err) {
  dest_t d;
  /* WRITE_DAC only when asked: the creator owns the file, and the owner may always change its DACL. */
  DWORD access = GENERIC_READ | GENERIC_WRITE | ((flags & CF_ACL) ? WRITE_DAC : 0);
  int rc = dest_open(tmp_w ? tmp_w : dst_w, access, &d, err);
  if (rc == 0) rc = method == CF_METHOD_CLONE ? clone_data(sh, si, &d, err) : copy_data(sh, si, &d, err);
  if (rc == 0) rc = copy_meta(sh, &si->basic, d.h, flags, err);
  if (rc == 0) rc = dest_publish(dst_w, flags, &d, err);
  dest_close(&d, rc < 0);
  return rc;
}

/* ---- symlinks and junctions: recreated, as linux.c recreates symlinks ---- */

/* The raw reparse data of an open link (FSCTL_GET_REPARSE_POINT): *len bytes, malloc'd. */
static int reparse_read(HANDLE h, void **buf, DWORD *len, cf_error *err) {
  *buf = malloc(MAXIMUM_REPARSE_DATA_BUFFER_SIZE);
  if (*buf == NULL) return fail(err, "malloc", ENOMEM, 0);
  if (DeviceIoControl(h, FSCTL_GET_REPARSE_POINT, NULL, 0, *buf, MAXIMUM_REPARSE_DATA_BUFFER_SIZE, len, NULL))
    return 0;
  int rc = fail_win(err, "FSCTL_GET_REPARSE_POINT", 0);
  free(*buf);
  *buf = NULL;
  return rc;
}

/* A symlink's target, NUL-terminated. The print name is the target as written; the
 * substitute name is the NT form (\??\C:\...), used only when there is no print name. */
static int symlink_target(const void *buf, wchar_t **target, cf_error *err) {
  const symlink_reparse_t *rp = buf;
  WORD off = rp->PrintNameLength ? rp->PrintNameOffset : rp->SubstituteNameOffset;
  WORD len = rp->PrintNameLength ? rp->PrintNameLength : rp->SubstituteNameLength;
  *target = malloc(len + sizeof(wchar_t));
  if (*target == NULL) return fail(err, "malloc", ENOMEM, 0);
  memcpy(*target, (const char *)rp->PathBuffer + off, len);
  (*target)[len / sizeof(wchar_t)] = L'\0';
  return 0;
}

/* ALLOW_UNPRIVILEGED_CREATE works in Developer Mode; otherwise the privilege is needed (EPERM). */
static int make_symlink(const wchar_t *at, const void *buf, int dir, cf_error *err) {
  wchar_t *target;
  if (symlink_target(buf, &target, err) < 0) return -err->errnum;
  DWORD how = SYMBOLIC_LINK_FLAG_ALLOW_UNPRIVILEGED_CREATE | (dir ? SYMBOLIC_LINK_FLAG_DIRECTORY : 0);
  int rc = CreateSymbolicLinkW(at, target, how) ? 0 : fail_win(err, "CreateSymbolicLinkW", 1);
  free(target);
  return rc;
}

/* A junction is an empty directory carrying mount-point reparse data. Setting that needs no
 * privilege (a symlink's would), so the source's bytes are written as they are. */
static int make_junction(const wchar_t *at, void *buf, DWORD len, cf_error *err) {
  if (!CreateDirectoryW(at, NULL)) return fail_win(err, "CreateDirectoryW", 1);
  HANDLE h = CreateFileW(at, GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                         FILE_FLAG_OPEN_REPARSE_POINT | FILE_FLAG_BACKUP_SEMANTICS, NULL);
  int rc = h == INVALID_HANDLE_VALUE ? fail_win(err, "CreateFileW", 1) : 0;
  DWORD bytes;
  if (rc == 0 && !DeviceIoControl(h, FSCTL_SET_REPARSE_POINT, buf, len, NULL, 0, &bytes, NULL))
    rc = fail_win(err, "FSCTL_SET_REPARSE_POINT", 1);
  if (h != INVALID_HANDLE_VALUE) CloseHandle(h);
  if (rc < 0) RemoveDirectoryW(at);
  return rc;
}

/* Sets the times of a link itself (FILE_FLAG_OPEN_REPARSE_POINT). */
static int link_times(const wchar_t *name, const FILE_BASIC_INFO *sb, cf_error *err) {
  HANDLE h = CreateFileW(name, FILE_WRITE_ATTRIBUTES, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                         NULL, OPEN_EXISTING, FILE_FLAG_OPEN_REPARSE_POINT | FILE_FLAG_BACKUP_SEMANTICS, NULL);
  if (h == INVALID_HANDLE_VALUE) return fail_win(err, "CreateFileW", 1);
  FILE_BASIC_INFO b;
  memset(&b, 0, sizeof b);
  b.LastAccessTime = sb->LastAccessTime;
  b.LastWriteTime = sb->LastWriteTime;
  int rc = SetFileInformationByHandle(h, FileBasicInfo, &b, sizeof b) ? 0 : fail_win(err, "SetFileInformationByHandle", 1);
  CloseHandle(h);
  return rc;
}

/* Makes at `at` a link like the source's (reparse data `buf`), gives it the source's times
 * and, when `at` is a temporary, moves it over dst. Removes it again on failure. */
static int link_make(const wchar_t *at, const wchar_t *dst_w, void *buf, DWORD len, const FILE_BASIC_INFO *sb,
                     uint32_t flags, cf_error *err) {
  int dir = (sb->FileAttributes & FILE_ATTRIBUTE_DIRECTORY) != 0;
  int rc = *(const DWORD *)buf == IO_REPARSE_TAG_MOUNT_POINT ? make_junction(at, buf, len, err)
                                                              : make_symlink(at, buf, dir, err);
  if (rc < 0) return rc;
  if (flags & CF_TIMES) rc = link_times(at, sb, err);
  if (rc == 0 && at != dst_w && !MoveFileExW(at, dst_w, MOVEFILE_REPLACE_EXISTING)) rc = fail_win(err, "MoveFileExW", 1);
  if (rc < 0) {
    if (dir)
      RemoveDirectoryW(at);
    else
      DeleteFileW(at);
  }
  return rc;
}

/* Makes a link like the open link sh at tmp_w (with CF_OVERWRITE, then moved over dst) or at
 * dst itself (CreateSymbolicLinkW and CreateDirectoryW never replace anything). */
static int link_entry(HANDLE sh, const src_info_t *si, const wchar_t *dst_w, const wchar_t *tmp_w, uint32_t flags,
                      cf_error *err) {
  void *buf = NULL;
  DWORD len = 0;
  int rc = reparse_read(sh, &buf, &len, err);
  if (rc == 0) rc = link_make(tmp_w ? tmp_w : dst_w, dst_w, buf, len, &si->basic, flags, err);
  free(buf);
  return rc;
}

/* Opens the source named by `at` (see src_open). */
static int src_open_at(cf_at at, uint32_t flags, HANDLE *h, int *is_link, cf_error *err) {
  wchar_t *w;
  if (at_path(at, (flags & CF_FOLLOW_DIRS) != 0, 0, &w, err) < 0) return -err->errnum;
  int rc = src_open(w, flags, h, is_link, err);
  free(w);
  return rc;
}

int cf_copy_symlink(cf_at src, cf_at dst, const char *temp, uint32_t flags, cf_error *err) {
  HANDLE sh;
  int is_link;
  src_info_t si;
  wchar_t *dst_w = NULL, *tmp_w = NULL;
  if (src_open_at(src, flags | CF_NOFOLLOW, &sh, &is_link, err) < 0) return -err->errnum;
  int rc = src_stat(sh, &si, err);
  if (rc == 0 && !is_link) rc = fail(err, "readlink", EINVAL, 0);
  if (rc == 0) rc = dest_paths(dst, temp, (flags & CF_OVERWRITE) != 0, &dst_w, &tmp_w, err);
  if (rc == 0) rc = link_entry(sh, &si, dst_w, tmp_w, flags, err);
  CloseHandle(sh);
  free(dst_w);
  free(tmp_w);
  return rc;
}

/* What the open source is decides what is made: a link recreated (under temp only with
 * CF_OVERWRITE, as cf_copy_symlink), a regular file cloned or copied under temp (or at dst
 * with CF_DIRECT); a directory belongs to the tree code (EISDIR), a pipe or device has no
 * blocks to share (EINVAL). */
static int clone_open(HANDLE sh, int is_link, cf_at dst, const char *temp, int method, uint32_t flags,
                      cf_clone_out *out, cf_error *err) {
  src_info_t si;
  wchar_t *dst_w = NULL, *tmp_w = NULL;
  int rc = src_stat(sh, &si, err);
  if (rc == 0 && !is_link && (si.dir || GetFileType(sh) != FILE_TYPE_DISK))
    return fail(err, method == CF_METHOD_CLONE ? "FSCTL_DUPLICATE_EXTENTS_TO_FILE" : "copyfile",
                si.dir ? EISDIR : EINVAL, 0);
  int via_temp = is_link ? (flags & CF_OVERWRITE) != 0 : !(flags & CF_DIRECT);
  if (rc == 0) rc = dest_paths(dst, temp, via_temp, &dst_w, &tmp_w, err);
  if (rc == 0) rc = is_link ? link_entry(sh, &si, dst_w, tmp_w, flags, err)
                            : file_entry(sh, &si, dst_w, tmp_w, method, flags, err);
  if (rc == 0 && !is_link) out->size = si.size;
  free(dst_w);
  free(tmp_w);
  return rc;
}

int cf_clone_file(const cf_file *src, cf_at dst, const char *temp, int method, uint32_t flags, cf_clone_out *out,
                  cf_error *err) {
  out->size = 0;
  HANDLE sh;
  int is_link = 0;
  int rc = src->fd >= 0 ? crt_handle(src->fd, &sh, 0, err) : src_open_at(src->at, flags, &sh, &is_link, err);
  if (rc < 0) return rc;
  rc = clone_open(sh, is_link, dst, temp, method, flags, out, err);
  if (src->fd < 0) CloseHandle(sh);
  return rc;
}

/* ---- ranges ---- */

/* ---- ranges ---- */

static int file_size(HANDLE h, uint64_t *size, int on_dest, cf_error *err) {
  LARGE_INTEGER n;
  if (!GetFileSizeEx(h, &n)) return fail_win(err, "GetFileSizeEx", on_dest);
  *size = (uint64_t)n.QuadPart;
  return 0;
}

/* FSCTL_DUPLICATE_EXTENTS_TO_FILE needs the target range inside the target's EOF, which
 * FICLONERANGE extends by itself: extend first, and shrink back if the clone fails. Exactly
 * the range asked for: a range that is not cluster-aligned fails with the OS's error
 * (ERROR_INVALID_PARAMETER: EINVAL), and TypeScript splits ranges. */
static int64_t clone_range(HANDLE sh, HANDLE dh, uint64_t soff, uint64_t doff, uint64_t n, cf_error *err) {
  uint64_t dst_size = 0;
  if (flush_source(sh, n, err) < 0 || file_size(dh, &dst_size, 1, err) < 0) return -err->errnum;
  if (dst_size < doff + n && set_end_of_file(dh, doff + n, err) < 0) return -err->errnum;
  if (duplicate_extents(sh, dh, soff, doff, n, err) < 0) {
    if (dst_size < doff + n) {
      cf_error ignored;
      set_end_of_file(dh, dst_size, &ignored);
    }
    return -err->errnum;
  }
  return (int64_t)n;
}

int64_t cf_clone_range(int src_fd, int dst_fd, uint64_t src_offset, uint64_t dst_offset,
                       uint64_t length, int method, cf_error *err) {
  HANDLE sh, dh;
  uint64_t src_size = 0;
  if (crt_handle(src_fd, &sh, 0, err) < 0 || crt_handle(dst_fd, &dh, 1, err) < 0 ||
      file_size(sh, &src_size, 0, err) < 0)
    return -err->errnum;
  uint64_t n = length != 0 ? length : (src_size > src_offset ? src_size - src_offset : 0);
  if (method == CF_METHOD_CLONE) return n == 0 ? 0 : clone_range(sh, dh, src_offset, dst_offset, n, err);
  return copy_bytes(sh, dh, src_offset, dst_offset, n, err);
}


/* ReFS has no compare-and-share call; the name is linux.c's so errors read alike. */
int64_t cf_dedupe_range(int src_fd, int dst_fd, uint64_t src_offset, uint64_t dst_offset,
                        uint64_t length, cf_error *err) {
  (void)src_fd, (void)dst_fd, (void)src_offset, (void)dst_offset, (void)length;
  return fail(err, "ioctl_fideduperange", ENOTSUP, 0);
}


/* No compare-and-share call here (see README: dedupe on Windows). */
int cf_dedupe_files(const cf_at *at, uint32_t n, uint64_t length, int32_t *status, uint64_t *deduped,
                    cf_stat *before, cf_stat *after, cf_extent **maps, uint32_t *map_counts, cf_error *err) {
  (void)at, (void)n, (void)length, (void)status, (void)deduped, (void)before, (void)after, (void)maps, (void)map_counts;
  return fail(err, "ioctl_fideduperange", ENOTSUP, 0);
}

/* No compare-and-share call here (see README: dedupe on Windows); the name is mac.c's. */
int cf_swap_files(const cf_at *at, const char *const *temps, uint32_t n, int32_t *status, uint64_t *deduped,
                  cf_stat *before, cf_stat *after, cf_error *err) {
  (void)at, (void)temps, (void)n, (void)status, (void)deduped, (void)before, (void)after;
  return fail(err, "renameatx_np", ENOTSUP, 0);
}

/* ---- filesystem facts ---- */

int cf_fs_info_get(const char *path, cf_fs_info *info, cf_error *err) {
  wchar_t *w, *root = NULL;
  wchar_t fsname[MAX_PATH + 1];
  DWORD serial = 0, fsflags = 0;
  uint64_t cluster = 0;
  /* In the \\?\ form like every other path here: a plain path over MAX_PATH fails
   * (issue 12 #12), and GetVolumePathNameW answers a \\?\ path with a \\?\ root. */
  if (user_path(path, &w, 0, err) < 0) return -err->errnum;
  int rc = volume_root(w, &root, err);
  if (rc == 0 && !GetVolumeInformationW(root, NULL, 0, &serial, NULL, &fsflags, fsname, MAX_PATH + 1))
    rc = fail_win(err, "GetVolumeInformationW", 0);
  if (rc == 0) rc = volume_cluster(root, &cluster, err);
  free(root);
  free(w);
  if (rc < 0) return rc;
  memset(info, 0, sizeof *info);
  /* A name too long for the field is left empty rather than cut inside a character. */
  if (WideCharToMultiByte(CP_UTF8, 0, fsname, -1, info->name, (int)sizeof info->name, NULL, NULL) == 0)
    info->name[0] = '\0';
  info->type = 0;
  info->block_size = cluster;
  info->dev = serial;
  info->mount_id = serial;
  info->can_clone = (fsflags & FILE_SUPPORTS_BLOCK_REFCOUNTING) ? 1 : 0;
  return 0;
}

/* No FIEMAP here (FSCTL_GET_RETRIEVAL_POINTERS has no "shared" flag); the name is linux.c's. */
int cf_extents(cf_at at, cf_extent **out, uint32_t *count, cf_error *err) {
  (void)at;
  *out = NULL;
  *count = 0;
  return fail(err, "ioctl_fiemap", ENOTSUP, 0);
}

/* ReFS block cloning leaves no per-file trace of what is shared: no private size, no clone id
 * (the allocated size is st_blocks, which cf_stat already gives). The name is mac.c's. */
int cf_file_space_get(cf_at at, cf_file_space *out, cf_error *err) {
  (void)at;
  memset(out, 0, sizeof *out);
  return fail(err, "getattrlist", ENOTSUP, 0);
}

/* ---- trees ---- */

typedef struct {
  cf_dirent *ents;
  char *names;
  uint32_t count, cap, names_len, names_cap;
} scan_t;

static int scan_add(scan_t *sc, const char *name, const cf_dirent *e, cf_error *err) {
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
  sc->ents[sc->count] = *e;
  sc->ents[sc->count++].name = sc->names_len;
  sc->names_len += (uint32_t)len;
  return 0;
}

/* st_mode as libuv's stat makes it on Windows: the type, and rw-rw-rw- (rwx for directories)
 * minus the write bits when FILE_ATTRIBUTE_READONLY is set. */
static uint32_t mode_of(DWORD attrs, int link) {
  int dir = !link && (attrs & FILE_ATTRIBUTE_DIRECTORY);
  uint32_t mode = link ? 0120000 : dir ? 0040000 : 0100000;
  mode |= dir ? 0555 : 0444;
  if (!(attrs & FILE_ATTRIBUTE_READONLY)) mode |= 0222;
  return mode;
}

static wchar_t *path_join(const wchar_t *dir, const wchar_t *name) {
  size_t a = wcslen(dir), b = wcslen(name);
  wchar_t *p = malloc((a + b + 2) * sizeof *p);
  if (p == NULL) return NULL;
  memcpy(p, dir, a * sizeof *p);
  if (a > 0 && p[a - 1] != L'\\' && p[a - 1] != L'/') p[a++] = L'\\';
  memcpy(p + a, name, (b + 1) * sizeof *p);
  return p;
}

/* FILETIME (100 ns since 1601) to Unix seconds and nanoseconds. */
static int64_t unix_time(LARGE_INTEGER t, uint32_t *nsec) {
  int64_t since_1970 = t.QuadPart - 116444736000000000LL;
  int64_t sec = since_1970 / 10000000, rest = since_1970 % 10000000;
  if (rest < 0) {
    sec--;
    rest += 10000000;
  }
  *nsec = (uint32_t)(rest * 100);
  return sec;
}

/* cf_stat of an open entry, as libuv's fstat fills uv_stat_t: ctime from ChangeTime, blocks
 * from AllocationSize / 512, the volume serial and 64-bit file index for dev and ino. `link`:
 * the handle is a link itself (opened with FILE_FLAG_OPEN_REPARSE_POINT). */
static int stat_handle(HANDLE h, int link, cf_stat *st, cf_error *err) {
  BY_HANDLE_FILE_INFORMATION bi;
  FILE_BASIC_INFO b;
  FILE_STANDARD_INFO s;
  if (!GetFileInformationByHandle(h, &bi)) return fail_win(err, "GetFileInformationByHandle", 0);
  if (!GetFileInformationByHandleEx(h, FileBasicInfo, &b, sizeof b) ||
      !GetFileInformationByHandleEx(h, FileStandardInfo, &s, sizeof s))
    return fail_win(err, "GetFileInformationByHandleEx", 0);
  memset(st, 0, sizeof *st);
  st->mode = mode_of(bi.dwFileAttributes, link);
  st->dev = bi.dwVolumeSerialNumber;
  st->ino = ((uint64_t)bi.nFileIndexHigh << 32) | bi.nFileIndexLow;
  st->size = (uint64_t)s.EndOfFile.QuadPart;
  st->nlink = bi.nNumberOfLinks;
  st->mtime_sec = unix_time(b.LastWriteTime, &st->mtime_nsec);
  st->ctime_sec = unix_time(b.ChangeTime, &st->ctime_nsec);
  st->blocks = (uint64_t)s.AllocationSize.QuadPart / 512;
  return 0;
}

/* What the listing alone says of an entry that cannot be opened: no file id, one link, device 0. */
static void stat_from_find(const WIN32_FIND_DATAW *fd, int link, cf_stat *st) {
  LARGE_INTEGER t;
  memset(st, 0, sizeof *st);
  st->mode = mode_of(fd->dwFileAttributes, link);
  st->size = ((uint64_t)fd->nFileSizeHigh << 32) | fd->nFileSizeLow;
  st->nlink = 1;
  t.LowPart = fd->ftLastWriteTime.dwLowDateTime;
  t.HighPart = (LONG)fd->ftLastWriteTime.dwHighDateTime;
  st->mtime_sec = st->ctime_sec = unix_time(t, &st->mtime_nsec);
  st->ctime_nsec = st->mtime_nsec;
  st->blocks = (st->size + 511) / 512;
}

/* What lstat (stat when following) says of one entry: 0, or 1 when it vanished since the
 * listing. A file locked even against attribute reads (pagefile.sys) and, when following,
 * a dangling link are described from the listing itself. */
static int entry_stat(const wchar_t *path, int follow, const WIN32_FIND_DATAW *fd, cf_dirent *e, cf_error *err) {
  int link = is_link_tag(fd->dwFileAttributes, fd->dwReserved0); /* dwReserved0: the reparse tag */
  DWORD how = FILE_FLAG_BACKUP_SEMANTICS | ((follow && link) ? 0 : FILE_FLAG_OPEN_REPARSE_POINT);
  HANDLE h = CreateFileW(path, FILE_READ_ATTRIBUTES, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                         NULL, OPEN_EXISTING, how, NULL);
  memset(e, 0, sizeof *e);
  if (h != INVALID_HANDLE_VALUE) {
    int rc = stat_handle(h, link && !follow, &e->st, err);
    CloseHandle(h);
    return rc;
  }
  DWORD le = GetLastError();
  int gone = le == ERROR_FILE_NOT_FOUND || le == ERROR_PATH_NOT_FOUND;
  if (gone && !(follow && link)) return 1;
  if (!gone && le != ERROR_SHARING_VIOLATION) return fail(err, "CreateFileW", errno_of(le), 0);
  stat_from_find(fd, link, &e->st);
  return 0;
}


/* CF_SCAN_EXTENTS: Windows has no FIEMAP, so each regular file says ENOTSUP in ext_err, as
 * posix.c's scan does on macOS: one file's extents are not the listing's failure. (The type
 * is tested by number: MSVC's CRT has no S_ISREG.) */
static int scan_entry(scan_t *sc, const wchar_t *dir, int how, const WIN32_FIND_DATAW *fd, cf_error *err) {
  int follow = how & CF_SCAN_FOLLOW;
  int n = WideCharToMultiByte(CP_UTF8, 0, fd->cFileName, -1, NULL, 0, NULL, NULL);
  char *name = n > 0 ? malloc((size_t)n) : NULL;
  wchar_t *path = path_join(dir, fd->cFileName);
  cf_dirent e;
  int rc = (name == NULL || path == NULL) ? fail(err, "malloc", ENOMEM, 0) : 0;
  if (rc == 0 && WideCharToMultiByte(CP_UTF8, 0, fd->cFileName, -1, name, n, NULL, NULL) != n)
    rc = fail_win(err, "WideCharToMultiByte", 0);
  if (rc == 0) rc = entry_stat(path, follow, fd, &e, err);
  if (rc == 0 && (how & CF_SCAN_EXTENTS) && (e.st.mode & 0170000) == 0100000) e.ext_err = ENOTSUP;
  if (rc == 0) rc = scan_add(sc, name, &e, err);
  free(name);
  free(path);
  return rc < 0 ? rc : 0;
}

/* Lists the directory by its table path (FindFirstFileExW), from its start. */
int cf_scan_dir(int fd, int how, cf_dirent **entries, uint32_t *count, char **names, cf_error *err) {
  *entries = NULL;
  *names = NULL;
  *count = 0;
  wchar_t *dir;
  if (slot_path(fd, &dir, 0, err) < 0) return -err->errnum;
  scan_t sc = {.ents = malloc(64 * sizeof(cf_dirent)), .names = malloc(4096), .cap = 64, .names_cap = 4096};
  wchar_t *pattern = path_join(dir, L"*");
  WIN32_FIND_DATAW fd_;
  HANDLE fh = INVALID_HANDLE_VALUE;
  int rc = (sc.ents == NULL || sc.names == NULL || pattern == NULL) ? fail(err, "malloc", ENOMEM, 0) : 0;
  if (rc == 0) {
    fh = FindFirstFileExW(pattern, FindExInfoBasic, &fd_, FindExSearchNameMatch, NULL, FIND_FIRST_EX_LARGE_FETCH);
    /* ERROR_FILE_NOT_FOUND: nothing matched, not even "." (a volume root has none): empty. */
    if (fh == INVALID_HANDLE_VALUE && GetLastError() != ERROR_FILE_NOT_FOUND) rc = fail_win(err, "FindFirstFileExW", 0);
  }
  free(pattern);
  for (BOOL more = fh != INVALID_HANDLE_VALUE; rc == 0 && more; more = FindNextFileW(fh, &fd_)) {
    const wchar_t *n = fd_.cFileName;
    if (n[0] == L'.' && (n[1] == L'\0' || (n[1] == L'.' && n[2] == L'\0'))) continue;
    rc = scan_entry(&sc, dir, how, &fd_, err);
  }
  if (rc == 0 && fh != INVALID_HANDLE_VALUE && GetLastError() != ERROR_NO_MORE_FILES)
    rc = fail_win(err, "FindNextFileW", 0);
  if (fh != INVALID_HANDLE_VALUE) FindClose(fh);
  free(dir);
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

/* Opens the directory's handle for the table: FILE_FLAG_BACKUP_SEMANTICS is what opens a
 * directory at all (CreateFileW), FILE_FLAG_OPEN_REPARSE_POINT (unless following) opens a
 * link itself, which is then refused as O_NOFOLLOW refuses one (ELOOP). */
static int dir_handle(const wchar_t *path, int follow, HANDLE *h, cf_stat *st, cf_error *err) {
  const DWORD share = FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE;
  DWORD how = FILE_FLAG_BACKUP_SEMANTICS | (follow ? 0 : FILE_FLAG_OPEN_REPARSE_POINT);
  *h = CreateFileW(path, FILE_LIST_DIRECTORY | FILE_READ_ATTRIBUTES, share, NULL, OPEN_EXISTING, how, NULL);
  if (*h == INVALID_HANDLE_VALUE) return fail_win(err, "CreateFileW", 0);
  FILE_ATTRIBUTE_TAG_INFO tag;
  int rc = GetFileInformationByHandleEx(*h, FileAttributeTagInfo, &tag, sizeof tag)
               ? 0 : fail_win(err, "GetFileInformationByHandleEx", 0);
  if (rc == 0 && !follow && is_link_tag(tag.FileAttributes, tag.ReparseTag)) rc = fail(err, "openat", ELOOP, 0);
  if (rc == 0 && !(tag.FileAttributes & FILE_ATTRIBUTE_DIRECTORY)) rc = fail(err, "openat", ENOTDIR, 0);
  if (rc == 0) rc = stat_handle(*h, 0, st, err);
  if (rc < 0) CloseHandle(*h);
  return rc;
}

/* CF_SCAN_WRITABLE needs nothing here: FILE_ATTRIBUTE_READONLY "is not honored on
 * directories" (File Attribute Constants), and cf_remove clears it on files. */
int cf_open_dir(cf_at at, int how, cf_stat *st, cf_error *err) {
  int follow = (how & CF_SCAN_FOLLOW) != 0;
  wchar_t *path;
  HANDLE h;
  if (at_path(at, follow, 0, &path, err) < 0) return -err->errnum;
  int rc = dir_handle(path, follow, &h, st, err);
  if (rc == 0 && (rc = slot_put(h, path, err)) < 0) CloseHandle(h);
  if (rc < 0) free(path);
  return rc;
}

void cf_close_dir(int fd) { slot_close(fd); }

/* Windows directories have no mode bits to give: `mode` is unused. With merge, an existing
 * directory that is not a link is no error (1). */
int cf_make_dir(cf_at at, uint32_t mode, int merge, cf_error *err) {
  (void)mode;
  wchar_t *w;
  if (at_path(at, 0, 1, &w, err) < 0) return -err->errnum;
  int rc = 0;
  if (!CreateDirectoryW(w, NULL)) {
    DWORD code = GetLastError();
    DWORD attrs = code == ERROR_ALREADY_EXISTS && merge ? GetFileAttributesW(w) : INVALID_FILE_ATTRIBUTES;
    if (attrs != INVALID_FILE_ATTRIBUTES && (attrs & FILE_ATTRIBUTE_DIRECTORY) && !(attrs & FILE_ATTRIBUTE_REPARSE_POINT))
      rc = 1;
    else
      rc = fail(err, "CreateDirectoryW", errno_of(code), 1);
  }
  free(w);
  return rc;
}

/* DeleteFileW refuses a read-only file and a directory link (symlink or junction: those are
 * removed with RemoveDirectoryW); both get ERROR_ACCESS_DENIED, and libuv's unlink handles
 * both the same way: clear the attribute, or remove the link as a directory. */
static int remove_file(const wchar_t *w, cf_error *err) {
  if (DeleteFileW(w)) return 0;
  DWORD code = GetLastError(), attrs = GetFileAttributesW(w);
  if (code != ERROR_ACCESS_DENIED || attrs == INVALID_FILE_ATTRIBUTES) return fail(err, "DeleteFileW", errno_of(code), 1);
  if ((attrs & FILE_ATTRIBUTE_DIRECTORY) && (attrs & FILE_ATTRIBUTE_REPARSE_POINT))
    return RemoveDirectoryW(w) ? 0 : fail_win(err, "RemoveDirectoryW", 1);
  if (!(attrs & FILE_ATTRIBUTE_READONLY) || !SetFileAttributesW(w, attrs & ~(DWORD)FILE_ATTRIBUTE_READONLY))
    return fail(err, "DeleteFileW", errno_of(code), 1);
  return DeleteFileW(w) ? 0 : fail_win(err, "DeleteFileW", 1);
}

/* A directory still open in the table (or anywhere, with delete sharing) is only marked for
 * deletion and goes when its last handle closes (RemoveDirectoryW). */
int cf_remove(cf_at at, int dir, cf_error *err) {
  wchar_t *w;
  if (at_path(at, 0, 1, &w, err) < 0) return -err->errnum;
  int rc = dir ? (RemoveDirectoryW(w) ? 0 : fail_win(err, "RemoveDirectoryW", 1)) : remove_file(w, err);
  free(w);
  return rc;
}

/* Windows has no FIFOs or device nodes to recreate (cf_scan_dir never reports one). */
int cf_make_special(cf_at src, cf_at dst, const char *temp, uint32_t flags, cf_error *err) {
  (void)src;
  (void)dst;
  (void)temp;
  (void)flags;
  return fail(err, "mknod", ENOTSUP, 1);
}

/* Both directories by handle, the destination's never through a link. */
int cf_copy_dir_meta(cf_at src, cf_at dst, uint32_t flags, cf_error *err) {
  const DWORD share = FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE;
  wchar_t *src_w = NULL, *dst_w = NULL;
  HANDLE sh = INVALID_HANDLE_VALUE, dh = INVALID_HANDLE_VALUE;
  FILE_BASIC_INFO sb;
  int rc = at_path(src, (flags & CF_FOLLOW_DIRS) != 0, 0, &src_w, err);
  if (rc == 0) rc = at_path(dst, 0, 1, &dst_w, err);
  if (rc == 0) {
    sh = CreateFileW(src_w, FILE_READ_ATTRIBUTES | READ_CONTROL, share, NULL, OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS, NULL);
    if (sh == INVALID_HANDLE_VALUE) rc = fail_win(err, "CreateFileW", 0);
  }
  if (rc == 0) {
    DWORD access = FILE_WRITE_ATTRIBUTES | ((flags & CF_ACL) ? WRITE_DAC : 0);
    dh = CreateFileW(dst_w, access, share, NULL, OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS | FILE_FLAG_OPEN_REPARSE_POINT, NULL);
    if (dh == INVALID_HANDLE_VALUE) rc = fail_win(err, "CreateFileW", 1);
  }
  if (rc == 0 && !GetFileInformationByHandleEx(sh, FileBasicInfo, &sb, sizeof sb))
    rc = fail_win(err, "GetFileInformationByHandleEx", 0);
  if (rc == 0) rc = copy_meta(sh, &sb, dh, flags, err);
  if (sh != INVALID_HANDLE_VALUE) CloseHandle(sh);
  if (dh != INVALID_HANDLE_VALUE) CloseHandle(dh);
  free(src_w);
  free(dst_w);
  return rc;
}

/* CreateHardLinkW links the entry itself (a link is not followed) and never replaces: with
 * CF_OVERWRITE the link is made under temp, then moved over dst. */
int cf_hard_link(cf_at existing, cf_at dst, const char *temp, uint32_t flags, cf_error *err) {
  wchar_t *existing_w, *dst_w = NULL, *tmp_w = NULL;
  if (at_path(existing, (flags & CF_FOLLOW_DIRS) != 0, 0, &existing_w, err) < 0) return -err->errnum;
  int rc = dest_paths(dst, temp, (flags & CF_OVERWRITE) != 0, &dst_w, &tmp_w, err);
  if (rc == 0 && !CreateHardLinkW(tmp_w ? tmp_w : dst_w, existing_w, NULL)) {
    rc = fail_win(err, "CreateHardLinkW", 1);
  } else if (rc == 0 && tmp_w && !MoveFileExW(tmp_w, dst_w, MOVEFILE_REPLACE_EXISTING)) {
    rc = fail_win(err, "MoveFileExW", 1);
    DeleteFileW(tmp_w);
  }
  free(tmp_w);
  free(dst_w);
  free(existing_w);
  return rc;
}

/* Without MOVEFILE_REPLACE_EXISTING any existing `to` is ERROR_ALREADY_EXISTS (EEXIST). With it,
 * unlike rename(2), MoveFileExW still never replaces a directory, even an empty one. */
/* Windows has no atomic exchange of two names (ReplaceFileW is for files, and not atomic as a
 * whole), no btrfs, and the diff's byte compare is not written for it: snapshots there are
 * made, listed and removed, not diffed or restored. */
int cf_exchange(cf_at a, cf_at b, cf_error *err) {
  (void)a, (void)b;
  return fail(err, "rename", ENOTSUP, 1);
}

int cf_subvol_snapshot(cf_at src, cf_at dst, int readonly, cf_error *err) {
  (void)src, (void)dst, (void)readonly;
  return fail(err, "ioctl_snap_create", ENOTSUP, 0);
}

int cf_subvol_delete(cf_at at, cf_error *err) {
  (void)at;
  return fail(err, "ioctl_snap_destroy", ENOTSUP, 0);
}

int cf_entry_meta(cf_at at, uint64_t *xattrs, uint64_t *target, cf_error *err) {
  (void)at, (void)xattrs, (void)target;
  return fail(err, "listxattr", ENOTSUP, 0);
}

int cf_compare_files(cf_at a, cf_at b, cf_error *err) {
  (void)a, (void)b;
  return fail(err, "read", ENOTSUP, 0);
}

int cf_rename(cf_at from, cf_at to, int noreplace, cf_error *err) {
  wchar_t *from_w, *to_w;
  if (at_path(from, 0, 0, &from_w, err) < 0) return -err->errnum;
  int rc = at_path(to, 0, 1, &to_w, err);
  if (rc == 0) {
    if (!MoveFileExW(from_w, to_w, noreplace ? 0 : MOVEFILE_REPLACE_EXISTING)) rc = fail_win(err, "MoveFileExW", 1);
    free(to_w);
  }
  free(from_w);
  return rc;
}

/* LockFileEx over the whole file, exclusive, without waiting: ERROR_LOCK_VIOLATION (EAGAIN)
 * where another handle holds it. The lock belongs to this handle and goes with it (or with
 * the process). The handle lives in the descriptor table. */
int cf_lock(cf_at at, int create, cf_error *err) {
  const DWORD share = FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE;
  wchar_t *w;
  if (at_path(at, 0, 0, &w, err) < 0) return -err->errnum;
  HANDLE h = CreateFileW(w, GENERIC_READ, share, NULL, create ? CREATE_NEW : OPEN_EXISTING,
                         FILE_ATTRIBUTE_NORMAL | FILE_FLAG_OPEN_REPARSE_POINT, NULL);
  free(w);
  if (h == INVALID_HANDLE_VALUE) return fail_win(err, "CreateFileW", 0);
  OVERLAPPED ov;
  memset(&ov, 0, sizeof ov);
  int rc = LockFileEx(h, LOCKFILE_EXCLUSIVE_LOCK | LOCKFILE_FAIL_IMMEDIATELY, 0, MAXDWORD, MAXDWORD, &ov)
               ? 0 : fail_win(err, "LockFileEx", 0);
  if (rc == 0) rc = slot_put(h, NULL, err);
  if (rc < 0) CloseHandle(h);
  return rc;
}

void cf_unlock(int fd) { slot_close(fd); }

/* ---- ancestors ---- */

/* Characters of the root of a \\?\ path: \\?\C:\ or \\?\UNC\server\share\ (0 if neither). */
static size_t root_len(const wchar_t *p) {
  if (!has_prefix(p, L"\\\\?\\")) return 0;
  const wchar_t *s = p + 4;
  if (!has_prefix(s, L"UNC\\")) return s[0] && s[1] == L':' ? (size_t)(s - p) + (s[2] == L'\\' ? 3 : 2) : 0;
  const wchar_t *server_end = wcschr(s + 4, L'\\');
  const wchar_t *share_end = server_end ? wcschr(server_end + 1, L'\\') : NULL;
  return share_end ? (size_t)(share_end - p) + 1 : wcslen(p);
}

/* (volume serial, file index) of the directory at path. */
static int dir_id(const wchar_t *path, uint64_t *dev, uint64_t *ino, cf_error *err) {
  const DWORD share = FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE;
  HANDLE h = CreateFileW(path, FILE_READ_ATTRIBUTES, share, NULL, OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS, NULL);
  if (h == INVALID_HANDLE_VALUE) return fail_win(err, "CreateFileW", 0);
  BY_HANDLE_FILE_INFORMATION bi;
  int rc = GetFileInformationByHandle(h, &bi) ? 0 : fail_win(err, "GetFileInformationByHandle", 0);
  CloseHandle(h);
  if (rc < 0) return rc;
  *dev = bi.dwVolumeSerialNumber;
  *ino = ((uint64_t)bi.nFileIndexHigh << 32) | bi.nFileIndexLow;
  return 0;
}

/* The path as the system resolved it (GetFinalPathNameByHandleW, links followed), \\?\ form. */
static int final_path(const wchar_t *path, wchar_t **out, cf_error *err) {
  const DWORD share = FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE;
  HANDLE h = CreateFileW(path, FILE_READ_ATTRIBUTES, share, NULL, OPEN_EXISTING, FILE_FLAG_BACKUP_SEMANTICS, NULL);
  if (h == INVALID_HANDLE_VALUE) return fail_win(err, "CreateFileW", 0);
  DWORD n = GetFinalPathNameByHandleW(h, NULL, 0, FILE_NAME_NORMALIZED | VOLUME_NAME_DOS);
  *out = n ? malloc(((size_t)n + 1) * sizeof(wchar_t)) : NULL;
  int rc = n == 0 ? fail_win(err, "GetFinalPathNameByHandleW", 0) : *out == NULL ? fail(err, "malloc", ENOMEM, 0) : 0;
  if (rc == 0 && GetFinalPathNameByHandleW(h, *out, n + 1, FILE_NAME_NORMALIZED | VOLUME_NAME_DOS) == 0)
    rc = fail_win(err, "GetFinalPathNameByHandleW", 0);
  CloseHandle(h);
  if (rc < 0) {
    free(*out);
    *out = NULL;
  }
  return rc;
}

/* Windows has no ".." to open from a handle: the resolved path is cut one component at a time
 * up to its root (a volume mounted in a folder is crossed, as ".." would). */
int cf_ancestors(const char *path, uint64_t *ids, uint32_t max, cf_error *err) {
  wchar_t *w, *p = NULL; /* initialised for gcc -O1 (test/seam), which cannot see through the calls */
  if (user_path(path, &w, 0, err) < 0) return -err->errnum;
  int rc = final_path(w, &p, err);
  free(w);
  if (rc < 0) return rc;
  size_t root = root_len(p);
  uint32_t n = 0;
  for (;;) {
    uint64_t dev = 0, ino = 0;
    if ((rc = dir_id(p, &dev, &ino, err)) < 0) break;
    if (n < max) ids[2 * n] = dev, ids[2 * n + 1] = ino;
    n++;
    size_t len = wcslen(p);
    while (len > root && p[len - 1] == L'\\') len--;
    if (len <= root) break;
    while (len > root && p[len - 1] != L'\\') len--;
    p[len > root ? len - 1 : root] = L'\0';
  }
  free(p);
  return rc < 0 ? rc : (int)n;
}

void cf_read_samples(const cf_at *at, uint32_t n, uint64_t block, uint64_t ahead, uint8_t *buf, int64_t *got,
                     cf_stat *st, int32_t *errnos) {
  (void)at, (void)block, (void)ahead, (void)buf, (void)st;
  for (uint32_t i = 0; i < n; i++) got[i] = 0, errnos[i] = ENOTSUP;
}
