/*
 * The Windows fake: the Win32 calls win.c makes, run on the Linux filesystem under the rules
 * Microsoft's documentation gives, with every call recorded and any made to fail with a chosen
 * ERROR_* (seam.h). Paths: "\\?\C:\x\y" (or "C:\x\y" when shorter than MAX_PATH: a plain path
 * of MAX_PATH or more fails, as for a process that is not long-path aware) is seam_win_root +
 * "/x/y". Modelled beyond plain file I/O: cluster alignment of FSCTL_DUPLICATE_EXTENTS_TO_FILE
 * (ERROR_INVALID_PARAMETER), the ReFS dirty-cache hazard (a source written and not flushed is
 * cloned as zeros), FlushFileBuffers' need of GENERIC_WRITE, Node's fds known only to
 * uv_get_osfhandle. ARCHITECTURE.md says what is not modelled.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <windows.h>
#include <winioctl.h>
#define FSCTL_SET_SPARSE_CODE FSCTL_SET_SPARSE

#include "../seam.h"

const char *seam_win_root = "/nonexistent";
uint64_t seam_win_cluster = 4096;

/* ---- injections and the call log: seam.c ---- */

enum { MAX = 64 };
static DWORD last_error;

DWORD GetLastError(void) { return last_error; }
void SetLastError(DWORD e) { last_error = e; }

/* Records the call; 0 when it may go on, or 1 with the injected ERROR_* set as last error. */
static int enter(const char *call, unsigned long arg) {
  long err = seam_enter(call, arg);
  if (err == 0) return 0;
  last_error = (DWORD)err;
  return 1;
}

static DWORD win_error(int e) {
  switch (e) {
  case ENOENT: return ERROR_FILE_NOT_FOUND;
  case ENOTDIR: return ERROR_PATH_NOT_FOUND;
  case EEXIST: return ERROR_FILE_EXISTS;
  case EACCES: case EPERM: case EISDIR: return ERROR_ACCESS_DENIED;
  case ENAMETOOLONG: return ERROR_FILENAME_EXCED_RANGE;
  case ENOSPC: return ERROR_DISK_FULL;
  case ENOTEMPTY: return ERROR_DIR_NOT_EMPTY;
  case EXDEV: return ERROR_NOT_SAME_DEVICE;
  default: return ERROR_GEN_FAILURE;
  }
}
static int fail_errno(void) {
  last_error = win_error(errno);
  return 0;
}
#define FAIL_ERRNO() fail_errno()

/* ---- names ---- */

static int utf8_decode(const unsigned char *s, int n, uint32_t *cp) {
  if (s[0] < 0x80) return *cp = s[0], 1;
  int len = (s[0] & 0xe0) == 0xc0 ? 2 : (s[0] & 0xf0) == 0xe0 ? 3 : (s[0] & 0xf8) == 0xf0 ? 4 : 0;
  if (len == 0 || len > n) return 0;
  uint32_t c = s[0] & (0x7f >> len);
  for (int i = 1; i < len; i++) {
    if ((s[i] & 0xc0) != 0x80) return 0;
    c = (c << 6) | (s[i] & 0x3f);
  }
  return *cp = c, len;
}

int MultiByteToWideChar(unsigned cp, DWORD flags, const char *s, int n, wchar_t *w, int wn) {
  (void)cp, (void)flags;
  int len = n < 0 ? (int)strlen(s) + 1 : n, out = 0;
  for (int i = 0; i < len;) {
    uint32_t c;
    int k = utf8_decode((const unsigned char *)s + i, len - i, &c);
    if (k == 0) return last_error = ERROR_NO_UNICODE_TRANSLATION, 0;
    if (w != NULL) {
      if (out >= wn) return last_error = ERROR_INSUFFICIENT_BUFFER, 0;
      w[out] = (wchar_t)c;
    }
    out++;
    i += k;
  }
  return out;
}

static int utf8_encode(uint32_t c, char *o) {
  if (c < 0x80) return o[0] = (char)c, 1;
  if (c < 0x800) return o[0] = (char)(0xc0 | c >> 6), o[1] = (char)(0x80 | (c & 0x3f)), 2;
  if (c < 0x10000)
    return o[0] = (char)(0xe0 | c >> 12), o[1] = (char)(0x80 | ((c >> 6) & 0x3f)), o[2] = (char)(0x80 | (c & 0x3f)), 3;
  o[0] = (char)(0xf0 | c >> 18), o[1] = (char)(0x80 | ((c >> 12) & 0x3f)), o[2] = (char)(0x80 | ((c >> 6) & 0x3f));
  o[3] = (char)(0x80 | (c & 0x3f));
  return 4;
}

int WideCharToMultiByte(unsigned cp, DWORD flags, const wchar_t *w, int wn, char *s, int n, const char *def, BOOL *used) {
  (void)cp, (void)flags, (void)def, (void)used;
  int len = wn < 0 ? (int)wcslen(w) + 1 : wn, out = 0;
  for (int i = 0; i < len; i++) {
    char b[4];
    int k = utf8_encode((uint32_t)w[i], b);
    if (s != NULL) {
      if (out + k > n) return last_error = ERROR_INSUFFICIENT_BUFFER, 0;
      memcpy(s + out, b, (size_t)k);
    }
    out += k;
  }
  return out;
}

/* "\\?\C:\a\b" -> root/a/b. 0, or an ERROR_* (a plain path of MAX_PATH or more: the limit). */
static DWORD linux_path(const wchar_t *p, char *out, size_t size) {
  int lng = wcsncmp(p, L"\\\\?\\", 4) == 0;
  if (!lng && wcslen(p) >= MAX_PATH) return ERROR_PATH_NOT_FOUND;
  if (lng) p += 4;
  if (!(p[0] == L'C' && p[1] == L':')) return ERROR_INVALID_NAME;
  p += 2;
  size_t o = (size_t)snprintf(out, size, "%s", seam_win_root);
  for (; *p && o + 5 < size; p++) {
    if (*p == L'/' && lng) return ERROR_INVALID_NAME; /* \\?\ paths are not normalised */
    if (*p == L'\\' || *p == L'/') out[o++] = '/';
    else o += (size_t)utf8_encode((uint32_t)*p, out + o);
  }
  if (*p) return ERROR_FILENAME_EXCED_RANGE;
  out[o] = '\0';
  return 0;
}
#define MAP(p, buf)                                  \
  do {                                               \
    DWORD e_ = linux_path(p, buf, sizeof buf);       \
    if (e_ != 0) return last_error = e_, 0;          \
  } while (0)

/* ---- handles ---- */

typedef struct {
  int magic, fd;
  DWORD access;
  int link; /* a symlink opened itself */
} handle_t;
#define MAGIC 0x5eae

static handle_t *H(HANDLE h) {
  handle_t *x = h;
  return (h != NULL && h != INVALID_HANDLE_VALUE && x->magic == MAGIC) ? x : NULL;
}

static HANDLE new_handle(int fd, DWORD access, int link) {
  handle_t *x = calloc(1, sizeof *x);
  x->magic = MAGIC, x->fd = fd, x->access = access, x->link = link;
  return x;
}

/* The ReFS hazard: which files have data written and not flushed (by inode). */
static struct {
  dev_t dev;
  ino_t ino;
} dirty[MAX];
static int n_dirty;

static int is_dirty(const struct stat *st) {
  for (int i = 0; i < n_dirty; i++)
    if (dirty[i].dev == st->st_dev && dirty[i].ino == st->st_ino) return 1;
  return 0;
}

static void set_dirty(int fd, int on) {
  struct stat st;
  if (fstat(fd, &st) != 0) return;
  for (int i = 0; i < n_dirty; i++)
    if (dirty[i].dev == st.st_dev && dirty[i].ino == st.st_ino) {
      if (!on) dirty[i] = dirty[--n_dirty];
      return;
    }
  if (on && n_dirty < MAX) dirty[n_dirty].dev = st.st_dev, dirty[n_dirty++].ino = st.st_ino;
}

BOOL CloseHandle(HANDLE h) {
  handle_t *x = H(h);
  if (x == NULL) return last_error = ERROR_INVALID_HANDLE, 0;
  close(x->fd);
  x->magic = 0;
  free(x);
  return 1;
}

HANDLE CreateFileW(const wchar_t *p, DWORD access, DWORD share, void *sa, DWORD disp, DWORD flags, HANDLE tmpl) {
  (void)share, (void)sa, (void)tmpl;
  char path[PATH_MAX * 2];
  if (enter("CreateFileW", disp)) return INVALID_HANDLE_VALUE;
  DWORD e = linux_path(p, path, sizeof path);
  if (e != 0) return last_error = e, INVALID_HANDLE_VALUE;
  struct stat st;
  int exists = lstat(path, &st) == 0;
  int write = (access & (GENERIC_WRITE | FILE_WRITE_ATTRIBUTES | WRITE_DAC)) != 0;
  if (disp == CREATE_NEW) {
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    return fd < 0 ? (FAIL_ERRNO(), INVALID_HANDLE_VALUE) : new_handle(fd, access, 0);
  }
  if (!exists) return last_error = errno == ENOENT ? ERROR_FILE_NOT_FOUND : win_error(errno), INVALID_HANDLE_VALUE;
  if (S_ISLNK(st.st_mode) && (flags & FILE_FLAG_OPEN_REPARSE_POINT)) {
    int fd = open(path, O_PATH | O_NOFOLLOW | O_CLOEXEC);
    return fd < 0 ? (FAIL_ERRNO(), INVALID_HANDLE_VALUE) : new_handle(fd, access, 1);
  }
  if (stat(path, &st) != 0) return FAIL_ERRNO(), INVALID_HANDLE_VALUE;
  if (S_ISDIR(st.st_mode)) {
    if (!(flags & FILE_FLAG_BACKUP_SEMANTICS)) return last_error = ERROR_ACCESS_DENIED, INVALID_HANDLE_VALUE;
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return fd < 0 ? (FAIL_ERRNO(), INVALID_HANDLE_VALUE) : new_handle(fd, access, 0);
  }
  int fd = open(path, ((access & GENERIC_WRITE) ? O_RDWR : O_RDONLY) | O_CLOEXEC);
  (void)write;
  return fd < 0 ? (FAIL_ERRNO(), INVALID_HANDLE_VALUE) : new_handle(fd, access, 0);
}

HANDLE ReOpenFile(HANDLE h, DWORD access, DWORD share, DWORD flags) {
  (void)share, (void)flags;
  handle_t *x = H(h);
  if (enter("ReOpenFile", access)) return INVALID_HANDLE_VALUE;
  if (x == NULL) return last_error = ERROR_INVALID_HANDLE, INVALID_HANDLE_VALUE;
  char proc[64];
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", x->fd);
  int fd = open(proc, ((access & GENERIC_WRITE) ? O_RDWR : O_RDONLY) | O_CLOEXEC);
  return fd < 0 ? (FAIL_ERRNO(), INVALID_HANDLE_VALUE) : new_handle(fd, access, 0);
}

static void to_filetime(const struct timespec *t, LARGE_INTEGER *out) {
  out->QuadPart = (LONGLONG)t->tv_sec * 10000000 + t->tv_nsec / 100 + 116444736000000000LL;
}

static DWORD attrs_of(const struct stat *st, int link) {
  DWORD a = S_ISDIR(st->st_mode) ? FILE_ATTRIBUTE_DIRECTORY : FILE_ATTRIBUTE_ARCHIVE;
  if (link) a |= FILE_ATTRIBUTE_REPARSE_POINT;
  return a;
}

BOOL GetFileInformationByHandleEx(HANDLE h, FILE_INFO_BY_HANDLE_CLASS c, void *buf, DWORD size) {
  handle_t *x = H(h);
  struct stat st;
  (void)size;
  if (enter("GetFileInformationByHandleEx", c)) return 0;
  if (x == NULL) return last_error = ERROR_INVALID_HANDLE, 0;
  if (fstat(x->fd, &st) != 0) return FAIL_ERRNO();
  if (c == FileBasicInfo) {
    FILE_BASIC_INFO *b = buf;
    memset(b, 0, sizeof *b);
    to_filetime(&st.st_atim, &b->LastAccessTime);
    to_filetime(&st.st_mtim, &b->LastWriteTime);
    to_filetime(&st.st_ctim, &b->ChangeTime);
    b->FileAttributes = attrs_of(&st, x->link);
  } else if (c == FileStandardInfo) {
    FILE_STANDARD_INFO *s = buf;
    memset(s, 0, sizeof *s);
    s->EndOfFile.QuadPart = st.st_size;
    s->AllocationSize.QuadPart = st.st_blocks * 512;
    s->NumberOfLinks = (DWORD)st.st_nlink;
    s->Directory = S_ISDIR(st.st_mode);
  } else if (c == FileAttributeTagInfo) {
    FILE_ATTRIBUTE_TAG_INFO *t = buf;
    t->FileAttributes = attrs_of(&st, x->link);
    t->ReparseTag = x->link ? IO_REPARSE_TAG_SYMLINK : 0;
  } else {
    return last_error = ERROR_INVALID_PARAMETER, 0;
  }
  return 1;
}

BOOL SetFileInformationByHandle(HANDLE h, FILE_INFO_BY_HANDLE_CLASS c, void *buf, DWORD size) {
  handle_t *x = H(h);
  (void)size;
  if (enter(c == FileEndOfFileInfo ? "SetFileInformationByHandle(EndOfFile)" : "SetFileInformationByHandle", c)) return 0;
  if (x == NULL) return last_error = ERROR_INVALID_HANDLE, 0;
  if (c == FileEndOfFileInfo) {
    if (!(x->access & GENERIC_WRITE)) return last_error = ERROR_ACCESS_DENIED, 0;
    return ftruncate(x->fd, ((FILE_END_OF_FILE_INFO *)buf)->EndOfFile.QuadPart) == 0 ? 1 : FAIL_ERRNO();
  }
  return 1; /* FileBasicInfo: times and attributes are recorded, not applied */
}

BOOL GetFileInformationByHandle(HANDLE h, BY_HANDLE_FILE_INFORMATION *bi) {
  handle_t *x = H(h);
  struct stat st;
  if (x == NULL) return last_error = ERROR_INVALID_HANDLE, 0;
  if (fstat(x->fd, &st) != 0) return FAIL_ERRNO();
  memset(bi, 0, sizeof *bi);
  bi->dwFileAttributes = attrs_of(&st, x->link);
  bi->dwVolumeSerialNumber = (DWORD)st.st_dev;
  bi->nFileIndexHigh = (DWORD)(st.st_ino >> 32), bi->nFileIndexLow = (DWORD)st.st_ino;
  bi->nFileSizeHigh = (DWORD)((uint64_t)st.st_size >> 32), bi->nFileSizeLow = (DWORD)st.st_size;
  bi->nNumberOfLinks = (DWORD)st.st_nlink;
  return 1;
}

BOOL GetFileSizeEx(HANDLE h, LARGE_INTEGER *n) {
  handle_t *x = H(h);
  struct stat st;
  if (x == NULL) return last_error = ERROR_INVALID_HANDLE, 0;
  if (fstat(x->fd, &st) != 0) return FAIL_ERRNO();
  n->QuadPart = st.st_size;
  return 1;
}

DWORD GetFileType(HANDLE h) { return H(h) ? FILE_TYPE_DISK : 0; }

/* "The file handle must have the GENERIC_WRITE access right." */
BOOL FlushFileBuffers(HANDLE h) {
  handle_t *x = H(h);
  if (enter("FlushFileBuffers", x ? x->access : 0)) return 0;
  if (x == NULL) return last_error = ERROR_INVALID_HANDLE, 0;
  if (!(x->access & GENERIC_WRITE)) return last_error = ERROR_ACCESS_DENIED, 0;
  set_dirty(x->fd, 0);
  return 1;
}

/* Positional with an OVERLAPPED on a synchronous handle; at or past EOF: ERROR_HANDLE_EOF. */
BOOL ReadFile(HANDLE h, void *buf, DWORD n, DWORD *got, OVERLAPPED *ov) {
  handle_t *x = H(h);
  *got = 0;
  if (enter("ReadFile", n)) return 0;
  if (x == NULL) return last_error = ERROR_INVALID_HANDLE, 0;
  off_t off = (off_t)(((uint64_t)ov->OffsetHigh << 32) | ov->Offset);
  ssize_t r = pread(x->fd, buf, n, off);
  if (r < 0) return FAIL_ERRNO();
  if (r == 0 && n > 0) return last_error = ERROR_HANDLE_EOF, 0;
  *got = (DWORD)r;
  return 1;
}

BOOL WriteFile(HANDLE h, const void *buf, DWORD n, DWORD *put, OVERLAPPED *ov) {
  handle_t *x = H(h);
  *put = 0;
  if (enter("WriteFile", n)) return 0;
  if (x == NULL) return last_error = ERROR_INVALID_HANDLE, 0;
  if (!(x->access & GENERIC_WRITE)) return last_error = ERROR_ACCESS_DENIED, 0;
  off_t off = ov ? (off_t)(((uint64_t)ov->OffsetHigh << 32) | ov->Offset) : lseek(x->fd, 0, SEEK_END);
  ssize_t r = pwrite(x->fd, buf, n, off);
  if (r < 0) return FAIL_ERRNO();
  *put = (DWORD)r;
  set_dirty(x->fd, 1); /* in the cache until flushed */
  return 1;
}

typedef struct {
  HANDLE FileHandle;
  LARGE_INTEGER SourceFileOffset, TargetFileOffset, ByteCount;
} dup_t;

/* FSCTL_DUPLICATE_EXTENTS_TO_FILE ("Block cloning", DUPLICATE_EXTENTS_DATA): offsets and count
 * multiples of the cluster, the target range inside the target's (cluster-rounded) EOF, both on
 * one volume; a source with unflushed data gives zeros (the ReFS hazard). */
static BOOL duplicate(handle_t *dst, const dup_t *d) {
  handle_t *src = H(d->FileHandle);
  if (src == NULL) return last_error = ERROR_INVALID_HANDLE, 0;
  if (!(dst->access & GENERIC_WRITE)) return last_error = ERROR_ACCESS_DENIED, 0;
  uint64_t c = seam_win_cluster, so = (uint64_t)d->SourceFileOffset.QuadPart, to = (uint64_t)d->TargetFileOffset.QuadPart,
           n = (uint64_t)d->ByteCount.QuadPart;
  if (so % c || to % c || n % c) return last_error = ERROR_INVALID_PARAMETER, 0;
  struct stat ss, ds;
  if (fstat(src->fd, &ss) != 0 || fstat(dst->fd, &ds) != 0) return FAIL_ERRNO();
  if (ss.st_dev != ds.st_dev) return last_error = ERROR_NOT_SAME_DEVICE, 0;
  if (to + n > ((uint64_t)ds.st_size + c - 1) / c * c) return last_error = ERROR_INVALID_PARAMETER, 0;
  int zeros = is_dirty(&ss);
  char buf[65536];
  for (uint64_t done = 0; done < n && to + done < (uint64_t)ds.st_size;) {
    size_t want = n - done < sizeof buf ? (size_t)(n - done) : sizeof buf;
    if (to + done + want > (uint64_t)ds.st_size) want = (size_t)((uint64_t)ds.st_size - to - done);
    ssize_t r = pread(src->fd, buf, want, (off_t)(so + done));
    if (r < 0) return FAIL_ERRNO();
    if ((size_t)r < want) memset(buf + r, 0, want - (size_t)r);
    if (zeros) memset(buf, 0, want);
    if (pwrite(dst->fd, buf, want, (off_t)(to + done)) != (ssize_t)want) return FAIL_ERRNO();
    done += want;
  }
  return 1;
}

BOOL DeviceIoControl(HANDLE h, DWORD code, void *in, DWORD in_size, void *out, DWORD out_size, DWORD *bytes, OVERLAPPED *ov) {
  handle_t *x = H(h);
  (void)in_size, (void)ov;
  *bytes = 0;
  switch (code) {
  case 0x00098344: /* FSCTL_DUPLICATE_EXTENTS_TO_FILE */
    if (enter("FSCTL_DUPLICATE_EXTENTS_TO_FILE", (unsigned long)((dup_t *)in)->ByteCount.QuadPart)) return 0;
    return x ? duplicate(x, in) : (last_error = ERROR_INVALID_HANDLE, 0);
  case 0x0009027C: /* FSCTL_GET_INTEGRITY_INFORMATION: the cluster size */
    if (enter("FSCTL_GET_INTEGRITY_INFORMATION", 0)) return 0;
    if (out_size < 16) return last_error = ERROR_INSUFFICIENT_BUFFER, 0;
    memset(out, 0, 16);
    ((DWORD *)out)[3] = (DWORD)seam_win_cluster;
    return 1;
  case 0x0009C280: /* FSCTL_SET_INTEGRITY_INFORMATION */
    return !enter("FSCTL_SET_INTEGRITY_INFORMATION", 0);
  case FSCTL_SET_SPARSE_CODE:
    return !enter("FSCTL_SET_SPARSE", ((FILE_SET_SPARSE_BUFFER *)in)->SetSparse);
  default: /* reparse points: not modelled */
    enter("DeviceIoControl(other)", code);
    return last_error = ERROR_NOT_SUPPORTED, 0;
  }
}

BOOL MoveFileExW(const wchar_t *from, const wchar_t *to, DWORD flags) {
  char a[PATH_MAX * 2], b[PATH_MAX * 2];
  if (enter("MoveFileExW", flags)) return 0;
  MAP(from, a);
  MAP(to, b);
  if (renameat2(AT_FDCWD, a, AT_FDCWD, b, (flags & MOVEFILE_REPLACE_EXISTING) ? 0 : RENAME_NOREPLACE) == 0) return 1;
  return last_error = errno == EEXIST ? ERROR_ALREADY_EXISTS : win_error(errno), 0;
}

BOOL DeleteFileW(const wchar_t *p) {
  char a[PATH_MAX * 2];
  if (enter("DeleteFileW", 0)) return 0;
  MAP(p, a);
  return unlink(a) == 0 ? 1 : FAIL_ERRNO();
}

BOOL SetFileAttributesW(const wchar_t *p, DWORD attrs) {
  (void)p;
  return !enter("SetFileAttributesW", attrs);
}

DWORD GetFileAttributesW(const wchar_t *p) {
  char a[PATH_MAX * 2];
  struct stat st;
  DWORD e = linux_path(p, a, sizeof a);
  if (e != 0) return last_error = e, INVALID_FILE_ATTRIBUTES;
  if (lstat(a, &st) != 0) return FAIL_ERRNO(), INVALID_FILE_ATTRIBUTES;
  return attrs_of(&st, S_ISLNK(st.st_mode));
}

BOOL CreateDirectoryW(const wchar_t *p, void *sa) {
  char a[PATH_MAX * 2];
  (void)sa;
  if (enter("CreateDirectoryW", 0)) return 0;
  MAP(p, a);
  return mkdir(a, 0755) == 0 ? 1 : (last_error = errno == EEXIST ? ERROR_ALREADY_EXISTS : win_error(errno), 0);
}

BOOL RemoveDirectoryW(const wchar_t *p) {
  char a[PATH_MAX * 2];
  MAP(p, a);
  return rmdir(a) == 0 ? 1 : FAIL_ERRNO();
}

BOOL CreateSymbolicLinkW(const wchar_t *link, const wchar_t *target, DWORD flags) {
  char a[PATH_MAX * 2], t[PATH_MAX];
  (void)flags;
  MAP(link, a);
  if (WideCharToMultiByte(CP_UTF8, 0, target, -1, t, sizeof t, NULL, NULL) == 0) return 0;
  return symlink(t, a) == 0 ? 1 : FAIL_ERRNO();
}

BOOL CreateHardLinkW(const wchar_t *link, const wchar_t *existing, void *sa) {
  char a[PATH_MAX * 2], b[PATH_MAX * 2];
  (void)sa;
  MAP(link, a);
  MAP(existing, b);
  return linkat(AT_FDCWD, b, AT_FDCWD, a, 0) == 0 ? 1 : (last_error = errno == EEXIST ? ERROR_ALREADY_EXISTS : win_error(errno), 0);
}

DWORD GetFullPathNameW(const wchar_t *p, DWORD n, wchar_t *buf, wchar_t **file) {
  (void)file;
  size_t len = wcslen(p);
  if (buf == NULL || n <= len) return (DWORD)len + 1;
  wcscpy(buf, p);
  return (DWORD)len;
}

/* GetVolumePathNameW: the root, in the form of the path asked about. */
BOOL GetVolumePathNameW(const wchar_t *p, wchar_t *root, DWORD n) {
  char a[PATH_MAX * 2];
  if (enter("GetVolumePathNameW", wcslen(p))) return 0;
  DWORD e = linux_path(p, a, sizeof a);
  if (e != 0) return last_error = e == ERROR_PATH_NOT_FOUND ? ERROR_FILENAME_EXCED_RANGE : e, 0;
  const wchar_t *r = wcsncmp(p, L"\\\\?\\", 4) == 0 ? L"\\\\?\\C:\\" : L"C:\\";
  if (n <= wcslen(r)) return last_error = ERROR_INSUFFICIENT_BUFFER, 0;
  wcscpy(root, r);
  return 1;
}

BOOL GetDiskFreeSpaceW(const wchar_t *root, DWORD *per_cluster, DWORD *sector, DWORD *free_clusters, DWORD *clusters) {
  (void)root;
  if (enter("GetDiskFreeSpaceW", 0)) return 0;
  *per_cluster = (DWORD)(seam_win_cluster / 512), *sector = 512, *free_clusters = 1000, *clusters = 2000;
  return 1;
}

BOOL GetVolumeInformationW(const wchar_t *root, wchar_t *name, DWORD n, DWORD *serial, DWORD *maxlen, DWORD *flags, wchar_t *fs, DWORD fsn) {
  (void)root, (void)name, (void)n, (void)maxlen;
  if (enter("GetVolumeInformationW", 0)) return 0;
  *serial = 0x5eae;
  *flags = 0x08000000; /* FILE_SUPPORTS_BLOCK_REFCOUNTING */
  if (fsn > 4) wcscpy(fs, L"ReFS");
  return 1;
}

/* Not modelled (listing, locks, final paths): they fail, and a test that needs them says so. */
HANDLE FindFirstFileExW(const wchar_t *p, FINDEX_INFO_LEVELS l, void *data, FINDEX_SEARCH_OPS o, void *f, DWORD flags) {
  (void)p, (void)l, (void)data, (void)o, (void)f, (void)flags;
  return last_error = ERROR_NOT_SUPPORTED, INVALID_HANDLE_VALUE;
}
BOOL FindNextFileW(HANDLE h, WIN32_FIND_DATAW *data) {
  (void)h, (void)data;
  return last_error = ERROR_NO_MORE_FILES, 0;
}
BOOL FindClose(HANDLE h) {
  (void)h;
  return 1;
}
BOOL LockFileEx(HANDLE h, DWORD flags, DWORD reserved, DWORD lo, DWORD hi, OVERLAPPED *ov) {
  (void)h, (void)flags, (void)reserved, (void)lo, (void)hi, (void)ov;
  return last_error = ERROR_NOT_SUPPORTED, 0;
}
DWORD GetFinalPathNameByHandleW(HANDLE h, wchar_t *buf, DWORD n, DWORD flags) {
  (void)h, (void)buf, (void)n, (void)flags;
  return last_error = ERROR_NOT_SUPPORTED, 0;
}
DWORD GetSecurityInfo(HANDLE h, SE_OBJECT_TYPE t, SECURITY_INFORMATION i, PSID *o, PSID *g, PACL *d, PACL *s, PSECURITY_DESCRIPTOR *sd) {
  (void)h, (void)t, (void)i, (void)o, (void)g, (void)s;
  *d = NULL, *sd = NULL;
  return ERROR_SUCCESS;
}
DWORD SetSecurityInfo(HANDLE h, SE_OBJECT_TYPE t, SECURITY_INFORMATION i, PSID o, PSID g, PACL d, PACL s) {
  (void)h, (void)t, (void)i, (void)o, (void)g, (void)d, (void)s;
  return ERROR_SUCCESS;
}
BOOL GetSecurityDescriptorControl(PSECURITY_DESCRIPTOR sd, SECURITY_DESCRIPTOR_CONTROL *c, DWORD *rev) {
  (void)sd;
  *c = 0, *rev = 1;
  return 1;
}
HLOCAL LocalFree(HLOCAL p) {
  (void)p;
  return NULL;
}
void AcquireSRWLockExclusive(SRWLOCK *l) { (void)l; }
void ReleaseSRWLockExclusive(SRWLOCK *l) { (void)l; }
void AcquireSRWLockShared(SRWLOCK *l) { (void)l; }
void ReleaseSRWLockShared(SRWLOCK *l) { (void)l; }

/* ---- descriptors: Node's (node.exe's CRT) and the addon's own CRT ---- */

static HANDLE node_fds[16];

/* Gives h a descriptor number of Node's CRT, as fs.open would. */
int seam_node_fd(HANDLE h) {
  for (int i = 0; i < 16; i++)
    if (node_fds[i] == NULL) return node_fds[i] = h, 100 + i;
  return -1;
}

HANDLE uv_get_osfhandle(int fd) {
  enter("uv_get_osfhandle", (unsigned long)fd);
  return fd >= 100 && fd < 116 && node_fds[fd - 100] ? node_fds[fd - 100] : INVALID_HANDLE_VALUE;
}

/* The addon's CRT: Node's numbers mean nothing to it. */
intptr_t _get_osfhandle(int fd) {
  enter("_get_osfhandle", (unsigned long)fd);
  return -1;
}
