/*
 * Fault tests of mac.c (with posix.c) run on Linux against the macOS fake (mac-fake.c): each
 * case is a defect of issue 12 and says which. Prints TAP; exits 1 if any case fails.
 * Built and run by test/seam.test.ts.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../seam.h"
#include "platform.h"

#define UF_IMMUTABLE 0x00000002
#define CLONE_NOFOLLOW 0x0001
int fchflags(int fd, unsigned int flags);
int seam_fstatat(int dir, const char *name, struct stat *st, int flags);

static int failures, cases;
static int dir;

static void check(int ok, const char *what) {
  cases++;
  if (!ok) failures++;
  printf("%s %d - %s\n", ok ? "ok" : "not ok", cases, what);
}

static void put(const char *name, const char *data) {
  int fd = openat(dir, name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0 || write(fd, data, strlen(data)) != (ssize_t)strlen(data)) abort();
  close(fd);
}

static int holds(const char *name, const char *data) {
  char buf[256] = {0};
  int fd = openat(dir, name, O_RDONLY);
  if (fd < 0) return 0;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  return n >= 0 && strcmp(buf, data) == 0;
}

static int exists(const char *name) {
  struct stat st;
  return fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

static unsigned flags_of(const char *name) {
  struct stat st;
  return seam_fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0 ? (unsigned)st.__glibc_reserved[0] : 0;
}

static int set_flags(const char *name, unsigned flags) {
  int fd = openat(dir, name, O_RDONLY | O_NOFOLLOW);
  int rc = fd >= 0 ? fchflags(fd, flags) : -1;
  if (fd >= 0) close(fd);
  return rc;
}

static int clone_file(const char *src, const char *dst, const char *temp, uint32_t flags, cf_error *err) {
  cf_file s = {{dir, src}, -1};
  cf_clone_out out;
  memset(err, 0, sizeof *err);
  return cf_clone_file(&s, (cf_at){dir, dst}, temp, CF_METHOD_CLONE, flags, &out, err);
}

/* Verify-then-swap dedupe of `dup` onto `keeper` (cf_swap_files) with the temp name `temp`. */
static int32_t swap(const char *keeper, const char *dup, const char *temp, uint64_t *deduped) {
  cf_at at[2] = {{dir, keeper}, {dir, dup}};
  const char *temps[2] = {"", temp};
  int32_t status[2] = {0, 0};
  uint64_t shared[2] = {0, 0};
  cf_stat before[2], after[2];
  cf_error err = {0};
  int rc = cf_swap_files(at, temps, 2, status, shared, before, after, &err);
  *deduped = shared[1];
  return rc < 0 ? rc : status[1];
}

static ino_t ino_of(const char *name) {
  struct stat st;
  return fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0 ? st.st_ino : 0;
}

/* A writer between the compare and the swap. */
static void append_d2(void) {
  int fd = openat(dir, "d2", O_WRONLY | O_APPEND);
  if (fd < 0 || write(fd, "!", 1) != 1) abort();
  close(fd);
}

static void swap_cases(void) {
  const char *same = "duplicate bytes";
  uint64_t deduped = 0;
  put("k", same);

  seam_reset();
  put("d1", same);
  fchmodat(dir, "d1", 0600, 0);
  struct timespec times[2] = {{1000000, 0}, {1000000, 500}};
  utimensat(dir, "d1", times, AT_SYMLINK_NOFOLLOW);
  ino_t ino = ino_of("d1");
  int32_t rc = swap("k", "d1", ".d1.tmp", &deduped);
  struct stat st;
  fstatat(dir, "d1", &st, AT_SYMLINK_NOFOLLOW);
  check(rc == 0 && deduped == strlen(same), "swap: a duplicate is replaced by a clone of the keeper");
  check(holds("d1", same) && !exists(".d1.tmp") && st.st_ino != ino, "swap: same bytes, a new inode, temp gone");
  check((st.st_mode & 07777) == 0600 && st.st_mtim.tv_sec == 1000000 && st.st_mtim.tv_nsec == 500,
        "swap: the duplicate's mode and mtime on the clone");
  check(seam_last_arg("renameatx_np") == 0x2 && (seam_last_arg("fclonefileat") & (CLONE_NOFOLLOW | 0x2)) == (CLONE_NOFOLLOW | 0x2) &&
            seam_count("fsetattrlist") == 1,
        "swap: RENAME_SWAP, clone with CLONE_NOFOLLOW | CLONE_NOOWNERCOPY, birth time set");

  seam_reset();
  put("d2", same);
  ino = ino_of("d2");
  seam_on("renameatx_np", append_d2);
  rc = swap("k", "d2", ".d2.tmp", &deduped);
  check(rc == -52 && deduped == 0, "swap: written between compare and swap: EBADE");
  check(holds("d2", "duplicate bytes!") && ino_of("d2") == ino && !exists(".d2.tmp") && seam_count("renameatx_np") == 2,
        "swap: the written original swapped back, with what was written; temp gone");

  seam_reset();
  put("d3", same);
  ino = ino_of("d3");
  linkat(dir, "d3", dir, "d3-link", 0);
  rc = swap("k", "d3", ".d3.tmp", &deduped);
  check(rc == -EMLINK && ino_of("d3") == ino && seam_count("fclonefileat") == 0 && !exists(".d3.tmp"),
        "swap: a file with two links is left alone (EMLINK), nothing cloned");

  seam_reset();
  put("d4", "duplicate bytez");
  ino = ino_of("d4");
  rc = swap("k", "d4", ".d4.tmp", &deduped);
  check(rc == -52 && holds("d4", "duplicate bytez") && ino_of("d4") == ino && !exists(".d4.tmp") &&
            seam_count("renameatx_np") == 0,
        "swap: different bytes of the same size: EBADE, nothing swapped, temp gone");

  seam_reset();
  put(".d5.tmp", "someone's");
  put("d5", same);
  rc = swap("k", "d5", ".d5.tmp", &deduped);
  check(rc == -EEXIST && holds(".d5.tmp", "someone's") && holds("d5", same),
        "swap: an existing entry at the temp name is EEXIST and left as it is");

  rc = swap("missing", "d5", ".d5b.tmp", &deduped);
  check(rc == -ENOENT, "swap: a keeper that cannot be opened fails the call");
}

int main(void) {
  char root[] = "/tmp/clonefile-seam-mac-XXXXXX";
  if (mkdtemp(root) == NULL || (dir = open(root, O_RDONLY | O_DIRECTORY)) < 0) return 2;
  cf_error err;
  put("src", "source bytes");

  /* #6: a dangling symlink at dst. */
  seam_reset();
  if (symlinkat("victim", dir, "dst6") != 0) return 2;
  int rc = clone_file("src", "dst6", NULL, CF_DIRECT, &err);
  check(rc == -EEXIST, "#6 dangling symlink at dst: EEXIST");
  check(!exists("victim"), "#6 nothing created where the link points");
  check((seam_last_arg("fclonefileat") & CLONE_NOFOLLOW) != 0, "#6 fclonefileat called with CLONE_NOFOLLOW");
  {
    /* The fake models xnu's hole: without the flag the clone lands at the link's target. */
    int sfd = openat(dir, "src", O_RDONLY);
    extern int fclonefileat(int, int, const char *, uint32_t);
    int hole = fclonefileat(sfd, dir, "dst6", 0) == 0 && exists("victim");
    close(sfd);
    check(hole, "#6 (the fake is honest) without CLONE_NOFOLLOW xnu follows the dangling link");
  }

  /* #7: neither RENAME_EXCL nor hard links (msdosfs, exFAT, SMB). */
  seam_reset();
  seam_inject("renameatx_np", ENOTSUP, 0);
  seam_inject("linkat", ENOTSUP, 0);
  rc = clone_file("src", "dst7", ".dst7.tmp", 0, &err);
  check(rc == 0, "#7 published without RENAME_EXCL and link()");
  check(holds("dst7", "source bytes") && !exists(".dst7.tmp"), "#7 dst complete, temp gone");
  put("dst7b", "theirs");
  rc = clone_file("src", "dst7b", ".dst7b.tmp", 0, &err);
  check(rc == -EEXIST && holds("dst7b", "theirs") && !exists(".dst7b.tmp"),
        "#7 an existing dst is EEXIST and untouched, temp removed");

  /* #9: an immutable source: clonefile copies UF_IMMUTABLE onto the temp. */
  seam_reset();
  put("isrc", "immutable bytes");
  if (set_flags("isrc", UF_IMMUTABLE) != 0) return 2;
  rc = clone_file("isrc", "dst9", ".dst9.tmp", CF_MODE | CF_OWNER, &err);
  check(rc == 0, "#9 an immutable source clones and is renamed into place");
  check(holds("dst9", "immutable bytes") && (flags_of("dst9") & UF_IMMUTABLE) && !exists(".dst9.tmp"),
        "#9 the clone has UF_IMMUTABLE again, under its name");
  put("dst9b", "old");
  seam_inject("renameat", EIO, 0);
  rc = clone_file("isrc", "dst9b", ".dst9b.tmp", CF_OVERWRITE, &err);
  check(rc == -EIO && !exists(".dst9b.tmp") && holds("dst9b", "old"),
        "#9 overwriting fails: no undeletable temp is left, dst untouched");
  set_flags("dst9", 0);
  set_flags("isrc", 0);

  /* #11: cf_make_special honours CF_OVERWRITE. */
  seam_reset();
  if (mkfifoat(dir, "fifo", 0600) != 0) return 2;
  put("dst11", "a file");
  cf_error e11 = {0};
  rc = cf_make_special((cf_at){dir, "fifo"}, (cf_at){dir, "dst11"}, ".dst11.tmp", CF_OVERWRITE, &e11);
  struct stat st;
  check(rc == 0 && fstatat(dir, "dst11", &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISFIFO(st.st_mode) && !exists(".dst11.tmp"),
        "#11 CF_OVERWRITE replaces dst with the FIFO");
  put("dst11b", "a file");
  rc = cf_make_special((cf_at){dir, "fifo"}, (cf_at){dir, "dst11b"}, NULL, 0, &e11);
  check(rc == -EEXIST && holds("dst11b", "a file"), "#11 without CF_OVERWRITE an existing dst is EEXIST");

  /* #8: a hard link to a symlink links the symlink itself. */
  seam_reset();
  if (symlinkat("src", dir, "ln") != 0) return 2;
  rc = cf_hard_link((cf_at){dir, "ln"}, (cf_at){dir, "hl"}, NULL, 0, &err);
  struct stat a, b;
  check(rc == 0 && fstatat(dir, "hl", &b, AT_SYMLINK_NOFOLLOW) == 0 && fstatat(dir, "ln", &a, AT_SYMLINK_NOFOLLOW) == 0 &&
            S_ISLNK(b.st_mode) && a.st_ino == b.st_ino,
        "#8 linkat(..., 0): the symlink is linked, not its target");

  /* Snapshot restore: cf_exchange is renameatx_np(RENAME_SWAP), and a filesystem without it
   * (ENOTSUP) is EINVAL, as Linux's renameat2 says it, so the caller refuses with nothing
   * changed. */
  seam_reset();
  put("swap-a", "state A");
  if (mkdirat(dir, "swap-b", 0755) != 0) return 2;
  rc = cf_exchange((cf_at){dir, "swap-a"}, (cf_at){dir, "swap-b"}, &err);
  check(rc == 0 && holds("swap-b", "state A") && fstatat(dir, "swap-a", &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode) &&
            seam_count("renameatx_np") == 1,
        "snapshots: cf_exchange swaps the two names with one renameatx_np(RENAME_SWAP)");
  seam_reset();
  seam_inject("renameatx_np", ENOTSUP, 0);
  rc = cf_exchange((cf_at){dir, "swap-a"}, (cf_at){dir, "swap-b"}, &err);
  check(rc == -EINVAL && holds("swap-b", "state A"), "snapshots: no RENAME_SWAP on this filesystem is EINVAL, nothing moved");
  swap_cases();

  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
  if (system(cmd) != 0) return 2;
  printf("1..%d\n", cases);
  return failures ? 1 : 0;
}
