// The floor for cloning a tree on Linux: walk the source once (mkdir for directories, symlink
// for links), then clone the files on N threads with open/fstat/open/FICLONE/futimens/close.
// No owners, xattrs or directory times: what any tree clone must at least do.
// Build: gcc -O2 -pthread -o floor bench/floor.c    Run: floor SRC DST [THREADS]
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

static char **srcs, **dsts;
static size_t count, cap;
static atomic_size_t next;
static atomic_int failed;

static char *join(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  char *p = malloc(la + lb + 2);
  memcpy(p, a, la);
  p[la] = '/';
  memcpy(p + la + 1, b, lb + 1);
  return p;
}

static void die(const char *what, const char *path) {
  fprintf(stderr, "floor: %s %s: %s\n", what, path, strerror(errno));
  exit(1);
}

static void walk(const char *src, const char *dst) {
  if (mkdir(dst, 0755) != 0) die("mkdir", dst);
  DIR *d = opendir(src);
  if (d == NULL) die("opendir", src);
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
    char *s = join(src, e->d_name), *t = join(dst, e->d_name);
    unsigned char type = e->d_type;
    if (type == DT_UNKNOWN) {
      struct stat st;
      if (lstat(s, &st) != 0) die("lstat", s);
      type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISLNK(st.st_mode) ? DT_LNK : DT_REG;
    }
    if (type == DT_DIR) {
      walk(s, t);
      free(s);
      free(t);
    } else if (type == DT_LNK) {
      char buf[4096];
      ssize_t n = readlink(s, buf, sizeof buf - 1);
      if (n < 0) die("readlink", s);
      buf[n] = 0;
      if (symlink(buf, t) != 0) die("symlink", t);
      free(s);
      free(t);
    } else {
      if (count == cap) {
        cap = cap ? cap * 2 : 4096;
        srcs = realloc(srcs, cap * sizeof *srcs);
        dsts = realloc(dsts, cap * sizeof *dsts);
      }
      srcs[count] = s;
      dsts[count] = t;
      count++;
    }
  }
  closedir(d);
}

static void *worker(void *arg) {
  (void)arg;
  for (;;) {
    size_t i = atomic_fetch_add(&next, 1);
    if (i >= count) return NULL;
    int in = open(srcs[i], O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (in < 0 || fstat(in, &st) != 0) {
      perror(srcs[i]);
      atomic_store(&failed, 1);
      if (in >= 0) close(in);
      continue;
    }
    int out = open(dsts[i], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, st.st_mode & 07777);
    if (out < 0 || ioctl(out, FICLONE, in) != 0) {
      perror(dsts[i]);
      atomic_store(&failed, 1);
    } else {
      struct timespec times[2] = {st.st_atim, st.st_mtim};
      futimens(out, times);
    }
    if (out >= 0) close(out);
    close(in);
  }
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: floor SRC DST [THREADS]\n");
    return 2;
  }
  int threads = argc > 3 ? atoi(argv[3]) : 2;
  if (threads < 1) threads = 1;
  walk(argv[1], argv[2]);
  pthread_t tid[64];
  if (threads > 64) threads = 64;
  for (int i = 0; i < threads; i++) pthread_create(&tid[i], NULL, worker, NULL);
  for (int i = 0; i < threads; i++) pthread_join(tid[i], NULL);
  return atomic_load(&failed) ? 1 : 0;
}
