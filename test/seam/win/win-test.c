/*
 * Fault tests of win.c run on Linux against the Windows fake (win-fake.c): each case names its
 * defect of issue 12. Prints TAP; exits 1 if any case fails. Built and run by
 * test/seam.test.ts.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <windows.h>

#include "../seam.h"
#include "platform.h"

extern const char *seam_win_root;
int seam_node_fd(HANDLE h);

static int failures, cases;
static char root[64];

static void check(int ok, const char *what) {
  cases++;
  if (!ok) failures++;
  printf("%s %d - %s\n", ok ? "ok" : "not ok", cases, what);
}

static char *lp(const char *name) { /* Linux path of C:\name */
  static char buf[2][4096];
  static int k;
  k ^= 1;
  snprintf(buf[k], sizeof buf[k], "%s/%s", root, name);
  for (char *p = buf[k]; *p; p++)
    if (*p == '\\') *p = '/';
  return buf[k];
}

static char *wp(const char *name) { /* C:\name, as the user gives it */
  static char buf[4][4096];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "C:\\%s", name);
  return buf[k];
}

static void put(const char *name, const char *data, size_t n) {
  FILE *f = fopen(lp(name), "wb");
  if (f == NULL || fwrite(data, 1, n, f) != n) abort();
  fclose(f);
}

static int holds(const char *name, const char *data, size_t n) {
  char buf[65536];
  FILE *f = fopen(lp(name), "rb");
  if (f == NULL) return 0;
  size_t got = fread(buf, 1, sizeof buf, f);
  fclose(f);
  return got == n && memcmp(buf, data, n) == 0;
}

static int exists(const char *name) {
  struct stat st;
  return lstat(lp(name), &st) == 0;
}

static long long size_of(const char *name) {
  struct stat st;
  return stat(lp(name), &st) == 0 ? (long long)st.st_size : -1;
}

static HANDLE open_w(const char *name, DWORD access, DWORD disp) {
  wchar_t w[4096];
  char *p = wp(name);
  MultiByteToWideChar(CP_UTF8, 0, p, -1, w, 4096);
  return CreateFileW(w, access, 7, NULL, disp, 0, NULL);
}

static int clone_path(const char *src, const char *dst, const char *temp, int method, uint32_t flags, cf_error *err) {
  cf_file s = {{CF_CWD, wp(src)}, -1};
  cf_clone_out out;
  memset(err, 0, sizeof *err);
  return cf_clone_file(&s, (cf_at){CF_CWD, wp(dst)}, temp ? wp(temp) : NULL, method, flags, &out, err);
}

int main(void) {
  snprintf(root, sizeof root, "/tmp/clonefile-seam-win-XXXXXX");
  if (mkdtemp(root) == NULL) return 2;
  seam_win_root = root;
  cf_error err;
  static char data[8192];
  for (size_t i = 0; i < sizeof data; i++) data[i] = (char)('a' + i % 26);
  put("src", data, sizeof data);

  /* #2: Node's fds reach win.c as handles through uv_get_osfhandle. */
  seam_reset();
  put("rdst", "", 0);
  HANDLE hs = open_w("src", GENERIC_READ, OPEN_EXISTING), hd = open_w("rdst", GENERIC_READ | GENERIC_WRITE, OPEN_EXISTING);
  int fs = seam_node_fd(hs), fd = seam_node_fd(hd);
  int64_t n = cf_clone_range(fs, fd, 0, 0, sizeof data, CF_METHOD_CLONE, &err);
  check(n == (int64_t)sizeof data && holds("rdst", data, sizeof data), "#2 cloneRange on Node's fds clones");
  check(seam_count("uv_get_osfhandle") == 2 && seam_count("_get_osfhandle") == 0,
        "#2 the handles come from uv_get_osfhandle, never the addon's _get_osfhandle");

  /* #3: a cluster-misaligned range is refused whole, nothing past it written. */
  seam_reset();
  memset(&err, 0, sizeof err);
  n = cf_clone_range(fs, fd, 100, 0, 4096, CF_METHOD_CLONE, &err);
  check(n == -EINVAL && holds("rdst", data, sizeof data), "#3 misaligned source offset: EINVAL, dst untouched");
  n = cf_clone_range(fs, fd, 0, 8192 + 512, 4096, CF_METHOD_CLONE, &err);
  check(n == -EINVAL && size_of("rdst") == 8192, "#3 misaligned range past EOF: EINVAL, dst's size restored");
  n = cf_clone_range(fs, fd, 4096, 8192, 4096, CF_METHOD_CLONE, &err);
  check(n == 4096 && size_of("rdst") == 12288, "#3 an aligned range past EOF extends dst by exactly the range");
  CloseHandle(hs);
  CloseHandle(hd);

  /* #4: a source with unflushed data (written through a handle, still in the cache). */
  seam_reset();
  HANDLE w = open_w("dirty", GENERIC_READ | GENERIC_WRITE, CREATE_NEW);
  DWORD put_n;
  OVERLAPPED ov = {0};
  WriteFile(w, data, sizeof data, &put_n, &ov);
  CloseHandle(w);
  int rc = clone_path("dirty", "dirty.clone", "dirty.tmp", CF_METHOD_CLONE, 0, &err);
  check(rc == 0 && holds("dirty.clone", data, sizeof data), "#4 dirty source: the clone holds its data, not zeros");
  check(seam_count("FlushFileBuffers") >= 1 && seam_count("ReOpenFile") == 1,
        "#4 flushed first, through a handle reopened for writing");
  seam_reset();
  w = open_w("dirty2", GENERIC_READ | GENERIC_WRITE, CREATE_NEW);
  WriteFile(w, data, 100, &put_n, &ov);
  CloseHandle(w);
  seam_inject("ReOpenFile", ERROR_ACCESS_DENIED, 0);
  rc = clone_path("dirty2", "dirty2.clone", "dirty2.tmp", CF_METHOD_CLONE, 0, &err);
  check(rc == -EACCES && strcmp(err.syscall, "FlushFileBuffers") == 0 && !exists("dirty2.clone") && !exists("dirty2.tmp"),
        "#4 a source that cannot be flushed: FlushFileBuffers EACCES (fallback.ts copies), nothing left");

  /* #5: FSCTL_SET_SPARSE refused (FAT, exFAT). */
  seam_reset();
  seam_inject("FSCTL_SET_SPARSE", ERROR_INVALID_FUNCTION, 0);
  rc = clone_path("src", "sparse.clone", "sparse.tmp", CF_METHOD_CLONE, 0, &err);
  check(rc == -ENOTSUP && strcmp(err.syscall, "FSCTL_SET_SPARSE") == 0 && !exists("sparse.tmp") && !exists("sparse.clone"),
        "#5 SET_SPARSE refused: ENOTSUP from FSCTL_SET_SPARSE, nothing left");
  rc = clone_path("src", "sparse.clone", "sparse.tmp", CF_METHOD_COPY, 0, &err);
  check(rc == 0 && holds("sparse.clone", data, sizeof data), "#5 ... and the copy that auto falls back to works");

  /* A dangling symlink at dst is never followed (CREATE_NEW). */
  seam_reset();
  if (symlink(lp("victim"), lp("dangling")) != 0) return 2;
  rc = clone_path("src", "dangling", NULL, CF_METHOD_CLONE, CF_DIRECT, &err);
  check(rc == -EEXIST && !exists("victim"), "dangling symlink at dst: EEXIST, nothing made where it points");

  /* #12: paths over MAX_PATH. */
  seam_reset();
  char deep[1024] = "", cmd[2048];
  for (int i = 0; i < 30; i++) strcat(deep, i ? "\\directory" : "directory");
  snprintf(cmd, sizeof cmd, "mkdir -p '%s'", lp(deep));
  if (system(cmd) != 0) return 2;
  char deep_file[1100], deep_tmp[1100];
  snprintf(deep_file, sizeof deep_file, "%s\\file", deep);
  snprintf(deep_tmp, sizeof deep_tmp, "%s\\file.tmp", deep);
  check(strlen(wp(deep_file)) > MAX_PATH, "#12 (the path really is longer than MAX_PATH)");
  {
    wchar_t wlong[2048];
    MultiByteToWideChar(CP_UTF8, 0, wp(deep_file), -1, wlong, 2048);
    check(CreateFileW(wlong, GENERIC_READ, 7, NULL, CREATE_NEW, 0, NULL) == INVALID_HANDLE_VALUE,
          "#12 (the fake is honest) a plain path over MAX_PATH fails");
  }
  rc = clone_path("src", deep_file, deep_tmp, CF_METHOD_CLONE, 0, &err);
  check(rc == 0 && holds(deep_file, data, sizeof data), "#12 a clone to a path over MAX_PATH (\\\\?\\ prefix)");
  cf_fs_info info;
  rc = cf_fs_info_get(wp(deep), &info, &err);
  check(rc == 0 && info.block_size == 4096 && info.can_clone == 1 && strcmp(info.name, "ReFS") == 0,
        "#12 fs info of a path over MAX_PATH");

  /* #12: distinct Windows errors stay distinct (libuv's uv_translate_sys_error). */
  static const struct {
    const char *call;
    long win;
    int err;
  } errs[] = {
      {"CreateFileW", ERROR_SHARING_VIOLATION, EBUSY}, {"CreateFileW", ERROR_ACCESS_DENIED, EACCES},
      {"CreateFileW", ERROR_ALREADY_EXISTS, EEXIST},   {"CreateFileW", ERROR_PRIVILEGE_NOT_HELD, EPERM},
      {"FSCTL_DUPLICATE_EXTENTS_TO_FILE", ERROR_NOT_SAME_DEVICE, EXDEV},
      {"FSCTL_DUPLICATE_EXTENTS_TO_FILE", ERROR_NOT_SUPPORTED, ENOTSUP},
      {"FSCTL_DUPLICATE_EXTENTS_TO_FILE", ERROR_INVALID_FUNCTION, ENOTSUP},
      {"FSCTL_DUPLICATE_EXTENTS_TO_FILE", ERROR_DISK_FULL, ENOSPC},
      {"FSCTL_DUPLICATE_EXTENTS_TO_FILE", 347 /* ERROR_BLOCK_TOO_MANY_REFERENCES */, EMLINK},
      {"FSCTL_DUPLICATE_EXTENTS_TO_FILE", ERROR_CANT_RESOLVE_FILENAME, ELOOP},
      {"FSCTL_DUPLICATE_EXTENTS_TO_FILE", ERROR_HANDLE_DISK_FULL, ENOSPC},
      {"FSCTL_DUPLICATE_EXTENTS_TO_FILE", 9999 /* unknown */, EIO},
  };
  for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++) {
    char what[160];
    seam_reset();
    seam_inject(errs[i].call, errs[i].win, 0);
    rc = clone_path("src", "errs.clone", "errs.tmp", CF_METHOD_CLONE, 0, &err);
    snprintf(what, sizeof what, "#12 %s failing with %ld is -%d (got %d), nothing left", errs[i].call, errs[i].win,
             errs[i].err, -rc);
    check(rc == -errs[i].err && !exists("errs.clone") && !exists("errs.tmp"), what);
  }

  snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
  if (system(cmd) != 0) return 2;
  printf("1..%d\n", cases);
  return failures ? 1 : 0;
}
