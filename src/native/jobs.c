/*
 * The addon's calls, one job kind each: its args struct (beginning with the job_t every job
 * has), parse (arguments in, on the JavaScript thread), run (the platform.h calls, on a worker
 * thread for an async call), result (the JavaScript value) and free. binding.c runs them all
 * alike; job_kinds[] at the end is the list of exports. Adding a native call = a row there and
 * its functions here, nothing else touched.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "jobs.h"

/* scanDirs' `how`: a directory to make that exists already is no error (src/binding.ts:
 * Scan.Merge). */
#define SCAN_MERGE 0x100u
/* scanDirs' make.dirs[i] where that directory has nothing to make (src/binding.ts: NONE). */
#define SCAN_NONE (-1)

/* A regular file's st_mode. By hand: MSVC's <sys/stat.h> has no S_ISREG. */
/* scanDirs' `how`: every entry's name, a mapped regular file's too (usage() reporting files by
 * name through onEntry); without it those are left out, tens of thousands of strings fewer. */
#define SCAN_NAMES 0x200u

#define MODE_IS_REG(mode) (((mode) & 0170000) == 0100000)

/* How an entry's stat travels to JavaScript: STAT_STRIDE doubles, in the order of `Stat` in
 * src/binding.ts. Only put_stat writes them. */
#define STAT_STRIDE 12
static void put_stat(double *d, const cf_stat *st) {
  d[10] = st->uid;
  d[11] = st->gid;
  d[0] = st->mode;
  d[1] = (double)st->dev;
  d[2] = (double)st->ino;
  d[3] = (double)st->size;
  d[4] = (double)st->nlink;
  d[5] = (double)st->mtime_sec;
  d[6] = st->mtime_nsec;
  d[7] = (double)st->ctime_sec;
  d[8] = st->ctime_nsec;
  d[9] = (double)st->blocks;
}

/* Extents as 4 doubles each (logical, physical, length, flags); returns the end. */
static double *put_extents(double *d, const cf_extent *ext, uint32_t count) {
  for (uint32_t i = 0; i < count; i++, d += 4) {
    d[0] = (double)ext[i].logical;
    d[1] = (double)ext[i].physical;
    d[2] = (double)ext[i].length;
    d[3] = (double)ext[i].flags;
  }
  return d;
}

static bool cancelled(const job_t *job) {
  return job->cancel != NULL && job->cancel[0] != 0;
}

static void set_cancelled(cf_error *err) {
  *err = (cf_error){.errnum = ECANCELED, .syscall = "cancel"};
}

/* A whole-job call not started because the job was cancelled first: its result is ECANCELED. */
static bool cancelled_before(job_t *job) {
  if (!cancelled(job)) return false;
  set_cancelled(&job->err);
  job->result = -ECANCELED;
  return true;
}

/* ---- cloneFile(src: path | Buffer | fd, dst, temp?, method, flags, async) ---- */

typedef struct {
  job_t job;
  cf_file src;
  char *src_path, *dst, *temp;
  int method;
  uint32_t flags;
} clone_file_job;

static bool clone_file_parse(napi_env env, napi_value *argv, job_t *job) {
  clone_file_job *j = (clone_file_job *)job;
  napi_valuetype type = napi_undefined;
  napi_typeof(env, argv[0], &type);
  j->method = (int)arg_number(env, argv[3]);
  j->flags = job_flags(job, (uint32_t)arg_number(env, argv[4]));
  j->src.fd = type == napi_number ? (int)arg_number(env, argv[0]) : -1;
  if (j->src.fd < 0 && (j->src_path = arg_path(env, argv[0], job)) == NULL) return false;
  j->src.at = (cf_at){CF_CWD, j->src_path};
  return (j->dst = arg_path(env, argv[1], job)) != NULL &&
         (!arg_given(env, argv[2]) || (j->temp = arg_path(env, argv[2], job)) != NULL);
}

static void clone_file_run(job_t *job) {
  clone_file_job *j = (clone_file_job *)job;
  cf_clone_out out = {0};
  int rc = cf_clone_file(&j->src, (cf_at){CF_CWD, j->dst}, j->temp, j->method, j->flags, &out, &job->err);
  job->result = rc < 0 ? rc : (int64_t)out.size;
}

static void clone_file_free(job_t *job) {
  clone_file_job *j = (clone_file_job *)job;
  free(j->src_path);
  free(j->dst);
  free(j->temp);
}

/* ---- cloneRange(srcFd, dstFd, srcOffset, dstOffset, length, method, async),
 *      dedupeRange(srcFd, dstFd, srcOffset, dstOffset, length) ---- */

typedef struct {
  job_t job;
  int src_fd, dst_fd;
  uint64_t src_offset, dst_offset, length;
  int method;
} range_job;

static bool range_parse(napi_env env, napi_value *argv, job_t *job) {
  range_job *j = (range_job *)job;
  j->src_fd = (int)arg_number(env, argv[0]);
  j->dst_fd = (int)arg_number(env, argv[1]);
  j->src_offset = (uint64_t)arg_number(env, argv[2]);
  j->dst_offset = (uint64_t)arg_number(env, argv[3]);
  j->length = (uint64_t)arg_number(env, argv[4]);
  j->method = (int)arg_number(env, argv[5]);
  return true;
}

static void clone_range_run(job_t *job) {
  range_job *j = (range_job *)job;
  job->result = cf_clone_range(j->src_fd, j->dst_fd, j->src_offset, j->dst_offset, j->length, j->method, &job->err);
}

static void dedupe_range_run(job_t *job) {
  range_job *j = (range_job *)job;
  job->result = cf_dedupe_range(j->src_fd, j->dst_fd, j->src_offset, j->dst_offset, j->length, &job->err);
}

/* ---- fsInfo(path) -> { type, name, blockSize, dev, mountId, canClone } ---- */

typedef struct {
  job_t job;
  char *path;
  cf_fs_info info;
} fs_info_job;

static bool fs_info_parse(napi_env env, napi_value *argv, job_t *job) {
  return (((fs_info_job *)job)->path = arg_path(env, argv[0], job)) != NULL;
}

static void fs_info_run(job_t *job) {
  fs_info_job *j = (fs_info_job *)job;
  job->result = cf_fs_info_get(j->path, &j->info, &job->err);
}

static napi_value fs_info_result(napi_env env, job_t *job) {
  const cf_fs_info *fi = &((fs_info_job *)job)->info;
  napi_value obj;
  napi_create_object(env, &obj);
  set_number(env, obj, "type", (double)fi->type);
  set_value(env, obj, "name", new_string(env, fi->name, false));
  set_number(env, obj, "blockSize", (double)fi->block_size);
  set_number(env, obj, "dev", (double)fi->dev);
  set_number(env, obj, "mountId", (double)fi->mount_id);
  set_number(env, obj, "canClone", fi->can_clone);
  return obj;
}

static void path_free(job_t *job) {
  free(((fs_info_job *)job)->path);
}

/* ---- extentsMany(dirs, names, flags, async), fileSpace(dirs, names, flags, async): one
 * question about each of many files; a file that fails (vanished, unreadable) has its errno in
 * errnos[i], and the others go on ---- */

static bool files_parse(napi_env env, napi_value *argv, job_t *job, job_ats *files, int32_t **errnos) {
  job_flags(job, (uint32_t)arg_number(env, argv[2]));
  return arg_ats(env, argv[0], argv[1], job, files) &&
         (*errnos = job_calloc(env, files->n, sizeof(int32_t))) != NULL;
}

typedef struct {
  job_t job;
  job_ats files;
  int32_t *errnos;
  cf_extent **ext;
  uint32_t *counts;
} extents_job;

static bool extents_parse(napi_env env, napi_value *argv, job_t *job) {
  extents_job *j = (extents_job *)job;
  return files_parse(env, argv, job, &j->files, &j->errnos) &&
         (j->ext = job_calloc(env, j->files.n, sizeof(cf_extent *))) != NULL &&
         (j->counts = job_calloc(env, j->files.n, sizeof(uint32_t))) != NULL;
}

static void extents_run(job_t *job) {
  extents_job *j = (extents_job *)job;
  for (uint32_t i = 0; i < j->files.n; i++) {
    cf_error e = {0};
    if (cf_extents(j->files.at[i], &j->ext[i], &j->counts[i], &e) >= 0) continue;
    j->errnos[i] = e.errnum;
    j->ext[i] = NULL;
    j->counts[i] = 0;
  }
}

/* { counts: Uint32Array, errnos: Int32Array, extents: Float64Array } */
static napi_value extents_result(napi_env env, job_t *job) {
  extents_job *j = (extents_job *)job;
  uint32_t n = j->files.n, *counts;
  int32_t *errnos;
  size_t total = 0;
  for (uint32_t i = 0; i < n; i++) total += j->counts[i];
  double *d;
  napi_value obj;
  napi_create_object(env, &obj);
  set_value(env, obj, "counts", new_typed(env, napi_uint32_array, n, sizeof(uint32_t), (void **)&counts));
  set_value(env, obj, "errnos", new_typed(env, napi_int32_array, n, sizeof(int32_t), (void **)&errnos));
  set_value(env, obj, "extents", new_typed(env, napi_float64_array, total * 4, sizeof(double), (void **)&d));
  if (n > 0) {
    memcpy(counts, j->counts, n * sizeof(uint32_t));
    memcpy(errnos, j->errnos, n * sizeof(int32_t));
  }
  for (uint32_t i = 0; i < n; i++) d = put_extents(d, j->ext[i], j->counts[i]);
  return obj;
}

static void extents_free(job_t *job) {
  extents_job *j = (extents_job *)job;
  for (uint32_t i = 0; j->ext != NULL && i < j->files.n; i++) free(j->ext[i]);
  free(j->ext);
  free(j->counts);
  free(j->errnos);
  job_ats_free(&j->files);
}

typedef struct {
  job_t job;
  job_ats files;
  int32_t *errnos;
  cf_file_space *spaces;
} space_job;

static bool space_parse(napi_env env, napi_value *argv, job_t *job) {
  space_job *j = (space_job *)job;
  return files_parse(env, argv, job, &j->files, &j->errnos) &&
         (j->spaces = job_calloc(env, j->files.n, sizeof(cf_file_space))) != NULL;
}

static void space_run(job_t *job) {
  space_job *j = (space_job *)job;
  for (uint32_t i = 0; i < j->files.n; i++) {
    cf_error e = {0};
    if (cf_file_space_get(j->files.at[i], &j->spaces[i], &e) < 0) {
      j->errnos[i] = e.errnum;
      memset(&j->spaces[i], 0, sizeof j->spaces[i]);
    }
  }
}

/* { allocated, privateSize: Float64Array, cloneId, extFlags: BigUint64Array, cloneRefcount,
 * known: Uint32Array, errnos: Int32Array }, one element per file. The ids and flags are
 * 64-bit: a double would round them. */
static napi_value space_result(napi_env env, job_t *job) {
  space_job *j = (space_job *)job;
  size_t n = j->files.n;
  double *allocated, *private_size;
  uint64_t *clone_id, *ext_flags;
  uint32_t *refcount, *known;
  int32_t *errnos;
  napi_value obj;
  napi_create_object(env, &obj);
  set_value(env, obj, "allocated", new_typed(env, napi_float64_array, n, sizeof(double), (void **)&allocated));
  set_value(env, obj, "privateSize", new_typed(env, napi_float64_array, n, sizeof(double), (void **)&private_size));
  set_value(env, obj, "cloneId", new_typed(env, napi_biguint64_array, n, sizeof(uint64_t), (void **)&clone_id));
  set_value(env, obj, "extFlags", new_typed(env, napi_biguint64_array, n, sizeof(uint64_t), (void **)&ext_flags));
  set_value(env, obj, "cloneRefcount", new_typed(env, napi_uint32_array, n, sizeof(uint32_t), (void **)&refcount));
  set_value(env, obj, "known", new_typed(env, napi_uint32_array, n, sizeof(uint32_t), (void **)&known));
  set_value(env, obj, "errnos", new_typed(env, napi_int32_array, n, sizeof(int32_t), (void **)&errnos));
  for (size_t i = 0; i < n; i++) {
    const cf_file_space *sp = &j->spaces[i];
    allocated[i] = (double)sp->allocated;
    private_size[i] = (double)sp->private_size;
    clone_id[i] = sp->clone_id;
    ext_flags[i] = sp->ext_flags;
    refcount[i] = sp->clone_refcount;
    known[i] = sp->known;
    errnos[i] = j->errnos[i];
  }
  return obj;
}

static void space_free(job_t *job) {
  space_job *j = (space_job *)job;
  free(j->spaces);
  free(j->errnos);
  job_ats_free(&j->files);
}

/* ---- runOps(kinds, srcDirs, srcNames, dstDirs, dstNames, temps, flags, async, cancel?) ----
 * Every operation runs, whatever the others did: the caller decides what a failure means. */

/* Kinds of operation; src/binding.ts (Op) mirrors them. */
enum { OP_CLONE, OP_COPY, OP_SYMLINK, OP_SPECIAL, OP_DIR_META, OP_LINK, OP_REMOVE, OP_REMOVE_DIR };

typedef struct {
  job_t job;
  uint32_t n;
  uint8_t *kinds;
  job_ats src, dst;
  const char **temps; /* NULL, or one per operation (NULL: none) pointing into temps_arena */
  char *temps_arena;
  uint32_t flags;
  double *results;
  const char **syscalls;
  int32_t *dropped;
} ops_job;

static bool ops_parse_temps(napi_env env, napi_value value, ops_job *j) {
  if (!arg_given(env, value)) return true;
  if (!arg_names(env, value, j->n, &j->job, &j->temps, &j->temps_arena)) return false;
  for (uint32_t i = 0; i < j->n; i++)
    if (j->temps[i][0] == '\0') j->temps[i] = NULL;
  return true;
}

static bool ops_parse(napi_env env, napi_value *argv, job_t *job) {
  ops_job *j = (ops_job *)job;
  void *kinds;
  size_t n = 0;
  j->flags = job_flags(job, (uint32_t)arg_number(env, argv[6]));
  if (!arg_typed(env, argv[0], napi_uint8_array, &kinds, &n, job) ||
      !arg_ats(env, argv[1], argv[2], job, &j->src) ||
      !arg_ats(env, argv[3], argv[4], job, &j->dst))
    return false;
  j->n = (uint32_t)n;
  if (j->src.n != j->n || j->dst.n != j->n) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", "runOps: one source and one destination per operation");
    return false;
  }
  if (!ops_parse_temps(env, argv[5], j) || !arg_cancel(env, argv[8], job) ||
      (j->kinds = job_calloc(env, n, 1)) == NULL || (j->results = job_calloc(env, n, sizeof(double))) == NULL ||
      (j->syscalls = job_calloc(env, n, sizeof(char *))) == NULL ||
      (j->dropped = job_calloc(env, n, sizeof(int32_t))) == NULL)
    return false;
  if (n > 0) memcpy(j->kinds, kinds, n);
  return true;
}

/* One operation: bytes of data (cloned or copied files), 0, or -errno. */
static int64_t run_op(int kind, cf_at src, cf_at dst, const char *temp, uint32_t flags, cf_error *err) {
  cf_clone_out out = {0};
  cf_file file = {.at = src, .fd = -1};
  int rc;
  switch (kind) {
    case OP_CLONE:
    case OP_COPY:
      rc = cf_clone_file(&file, dst, temp, kind == OP_CLONE ? CF_METHOD_CLONE : CF_METHOD_COPY, flags, &out, err);
      return rc < 0 ? rc : (int64_t)out.size;
    case OP_SYMLINK: return cf_copy_symlink(src, dst, temp, flags, err);
    case OP_SPECIAL: return cf_make_special(src, dst, temp, flags, err);
    case OP_DIR_META: return cf_copy_dir_meta(src, dst, flags, err);
    case OP_LINK: return cf_hard_link(src, dst, temp, flags, err);
    case OP_REMOVE: return cf_remove(dst, 0, err);
    case OP_REMOVE_DIR: return cf_remove(dst, 1, err);
    default: *err = (cf_error){.errnum = EINVAL, .syscall = "runOps"}; return -EINVAL;
  }
}

static void ops_run(job_t *job) {
  ops_job *j = (ops_job *)job;
  for (uint32_t i = 0; i < j->n; i++) {
    cf_error e = {0};
    int64_t r;
    if (cancelled(job)) {
      set_cancelled(&e);
      r = -ECANCELED;
    } else {
      r = run_op(j->kinds[i], j->src.at[i], j->dst.at[i], j->temps ? j->temps[i] : NULL, j->flags, &e);
    }
    j->results[i] = (double)r;
    j->syscalls[i] = r < 0 ? (e.syscall != NULL ? e.syscall : "unknown") : NULL;
    j->dropped[i] = e.dropped;
  }
}

/* { results: Float64Array, syscalls: Array<string | undefined>, dropped: Int32Array } */
static napi_value ops_result(napi_env env, job_t *job) {
  ops_job *j = (ops_job *)job;
  napi_value obj, syscalls;
  double *results;
  int32_t *dropped;
  napi_create_object(env, &obj);
  set_value(env, obj, "results", new_typed(env, napi_float64_array, j->n, sizeof(double), (void **)&results));
  set_value(env, obj, "dropped", new_typed(env, napi_int32_array, j->n, sizeof(int32_t), (void **)&dropped));
  napi_create_array_with_length(env, j->n, &syscalls);
  for (uint32_t i = 0; i < j->n; i++) {
    results[i] = j->results[i];
    dropped[i] = j->dropped[i];
    if (j->syscalls[i] != NULL) napi_set_element(env, syscalls, i, new_string(env, j->syscalls[i], false));
  }
  set_value(env, obj, "syscalls", syscalls);
  return obj;
}

static void ops_free(job_t *job) {
  ops_job *j = (ops_job *)job;
  free(j->kinds);
  job_ats_free(&j->src);
  job_ats_free(&j->dst);
  free((void *)j->temps);
  free(j->temps_arena);
  free(j->results);
  free((void *)j->syscalls);
  free(j->dropped);
}

/* ---- scanDirs(dirs, names, how, async, make?, cancel?): open each directory, make and open
 * its destination where `make` says, and list it; a directory that fails does not stop the
 * others, and every descriptor opened is handed back (the caller closes them) ---- */

typedef struct {
  int fd, dst_fd; /* -1 where not opened */
  cf_stat st;     /* of fd */
  cf_dirent *ents;
  uint32_t count;
  char *names;
  cf_error err; /* errnum 0: no failure */
} scanned_dir;

typedef struct {
  job_t job;
  uint32_t how;
  job_ats dirs;
  job_ats make; /* n == 0: nothing to make */
  uint32_t *modes;
  scanned_dir *out;
} scan_job;

static bool scan_parse_make(napi_env env, napi_value make, scan_job *j) {
  napi_value dirs, names, modes;
  uint32_t *data;
  size_t n = 0;
  if (!arg_given(env, make)) return true;
  if (napi_get_named_property(env, make, "dirs", &dirs) != napi_ok ||
      napi_get_named_property(env, make, "names", &names) != napi_ok ||
      napi_get_named_property(env, make, "modes", &modes) != napi_ok ||
      !arg_ats(env, dirs, names, &j->job, &j->make) ||
      !arg_typed(env, modes, napi_uint32_array, (void **)&data, &n, &j->job))
    return false;
  if (j->make.n != j->dirs.n || n != j->dirs.n) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", "scanDirs: make needs one slot per directory");
    return false;
  }
  if ((j->modes = job_calloc(env, n, sizeof(uint32_t))) == NULL) return false;
  if (n > 0) memcpy(j->modes, data, n * sizeof(uint32_t));
  return true;
}

static bool scan_parse(napi_env env, napi_value *argv, job_t *job) {
  scan_job *j = (scan_job *)job;
  j->how = job_flags(job, (uint32_t)arg_number(env, argv[2]));
  if (!arg_ats(env, argv[0], argv[1], job, &j->dirs) || !scan_parse_make(env, argv[4], j) ||
      !arg_cancel(env, argv[5], job) ||
      (j->out = job_calloc(env, j->dirs.n, sizeof(scanned_dir))) == NULL)
    return false;
  for (uint32_t i = 0; i < j->dirs.n; i++) j->out[i].fd = j->out[i].dst_fd = -1;
  return true;
}

/* Makes directory i's destination and opens it, never following a symlink there. */
static bool scan_make(scan_job *j, uint32_t i) {
  scanned_dir *d = &j->out[i];
  cf_stat st;
  int fd = -1;
  if (cf_make_dir(j->make.at[i], j->modes[i], (j->how & SCAN_MERGE) != 0, &d->err) < 0 ||
      (fd = cf_open_dir(j->make.at[i], (int)(j->how & CF_SCAN_WRITABLE), &st, &d->err)) < 0) {
    d->err.on_dest = 1;
    return false;
  }
  d->dst_fd = fd;
  return true;
}

static void scan_one(scan_job *j, uint32_t i) {
  scanned_dir *d = &j->out[i];
  int fd = cf_open_dir(j->dirs.at[i], (int)(j->how & (CF_SCAN_FOLLOW | CF_SCAN_WRITABLE)), &d->st, &d->err);
  if (fd < 0) return;
  d->fd = fd;
  if (j->make.n != 0 && j->make.at[i].dir != SCAN_NONE && !scan_make(j, i)) return;
  if (cf_scan_dir(fd, (int)(j->how & (CF_SCAN_FOLLOW | CF_SCAN_EXTENTS | CF_SCAN_META)), &d->ents, &d->count, &d->names, &d->err) < 0) {
    d->ents = NULL;
    d->names = NULL;
    d->count = 0;
  }
}

static void scan_run(job_t *job) {
  scan_job *j = (scan_job *)job;
  for (uint32_t i = 0; i < j->dirs.n; i++) {
    if (cancelled(job)) set_cancelled(&j->out[i].err);
    else scan_one(j, i);
  }
}

/* Each directory's own: fds, dstFds, dirStats, dirs (entry counts), dirErrnos, dirSyscalls,
 * dirOnDest. */
static void scan_dirs_result(napi_env env, scan_job *j, napi_value obj) {
  uint32_t n = j->dirs.n, *counts;
  int32_t *fds, *dst_fds, *errnos;
  uint8_t *on_dest;
  double *stats;
  napi_value syscalls;
  set_value(env, obj, "fds", new_typed(env, napi_int32_array, n, sizeof(int32_t), (void **)&fds));
  set_value(env, obj, "dstFds", new_typed(env, napi_int32_array, n, sizeof(int32_t), (void **)&dst_fds));
  set_value(env, obj, "dirStats", new_typed(env, napi_float64_array, (size_t)n * STAT_STRIDE, sizeof(double), (void **)&stats));
  set_value(env, obj, "dirs", new_typed(env, napi_uint32_array, n, sizeof(uint32_t), (void **)&counts));
  set_value(env, obj, "dirErrnos", new_typed(env, napi_int32_array, n, sizeof(int32_t), (void **)&errnos));
  set_value(env, obj, "dirOnDest", new_typed(env, napi_uint8_array, n, 1, (void **)&on_dest));
  napi_create_array_with_length(env, n, &syscalls);
  for (uint32_t i = 0; i < n; i++) {
    const scanned_dir *d = &j->out[i];
    fds[i] = d->fd;
    dst_fds[i] = d->dst_fd;
    put_stat(stats + (size_t)i * STAT_STRIDE, &d->st);
    counts[i] = d->count;
    errnos[i] = d->err.errnum;
    on_dest[i] = d->err.errnum != 0 && d->err.on_dest != 0;
    if (d->err.errnum != 0 && d->err.syscall != NULL) napi_set_element(env, syscalls, i, new_string(env, d->err.syscall, false));
  }
  set_value(env, obj, "dirSyscalls", syscalls);
}

/* Every directory's entries one after the other: names, stats and, with CF_SCAN_EXTENTS,
 * counts, errnos and extents as extentsMany() gives them. Measuring, a regular file's name is
 * wanted only to report an error: tens of thousands of strings fewer for a large tree (`names`
 * has holes there). */
static void scan_entries_result(napi_env env, scan_job *j, napi_value obj) {
  size_t total = 0, extents = 0, at = 0;
  for (uint32_t i = 0; i < j->dirs.n; i++)
    for (uint32_t k = 0; k < j->out[i].count; k++, total++) extents += j->out[i].ents[k].ext_count;
  napi_value names;
  double *stats, *x = NULL;
  uint32_t *counts = NULL, *meta = NULL;
  int32_t *errnos = NULL;
  napi_create_array_with_length(env, total, &names);
  set_value(env, obj, "names", names);
  set_value(env, obj, "stats", new_typed(env, napi_float64_array, total * STAT_STRIDE, sizeof(double), (void **)&stats));
  if (j->how & CF_SCAN_EXTENTS) {
    set_value(env, obj, "counts", new_typed(env, napi_uint32_array, total, sizeof(uint32_t), (void **)&counts));
    set_value(env, obj, "errnos", new_typed(env, napi_int32_array, total, sizeof(int32_t), (void **)&errnos));
    set_value(env, obj, "extents", new_typed(env, napi_float64_array, extents * 4, sizeof(double), (void **)&x));
  }
  if (j->how & CF_SCAN_META)
    set_value(env, obj, "meta", new_typed(env, napi_uint32_array, total * 5, sizeof(uint32_t), (void **)&meta));
  for (uint32_t i = 0; i < j->dirs.n; i++) {
    for (uint32_t k = 0; k < j->out[i].count; k++, at++) {
      const cf_dirent *e = &j->out[i].ents[k];
      if (counts == NULL || (j->how & SCAN_NAMES) || !MODE_IS_REG(e->st.mode) || e->ext_err != 0)
        napi_set_element(env, names, (uint32_t)at, new_string(env, j->out[i].names + e->name, j->job.raw));
      put_stat(stats + at * STAT_STRIDE, &e->st);
      if (meta != NULL) {
        uint32_t *m = meta + at * 5;
        m[0] = (uint32_t)e->xattrs;
        m[1] = (uint32_t)(e->xattrs >> 32);
        m[2] = (uint32_t)e->target;
        m[3] = (uint32_t)(e->target >> 32);
        m[4] = (uint32_t)e->meta_err;
      }
      if (counts == NULL) continue;
      counts[at] = e->ext_count;
      errnos[at] = e->ext_err;
      x = put_extents(x, e->ext, e->ext_count);
    }
  }
}

static napi_value scan_result(napi_env env, job_t *job) {
  napi_value obj;
  napi_create_object(env, &obj);
  scan_dirs_result(env, (scan_job *)job, obj);
  scan_entries_result(env, (scan_job *)job, obj);
  return obj;
}

static void scan_free(job_t *job) {
  scan_job *j = (scan_job *)job;
  for (uint32_t i = 0; j->out != NULL && i < j->dirs.n; i++) {
    for (uint32_t k = 0; k < j->out[i].count; k++) free(j->out[i].ents[k].ext);
    free(j->out[i].ents);
    free(j->out[i].names);
  }
  free(j->out);
  free(j->modes);
  job_ats_free(&j->dirs);
  job_ats_free(&j->make);
}

/* ---- calls on one entry (dir, name): openDir, makeDir, remove, lock ---- */

typedef struct {
  job_t job;
  cf_at at;
  char *name;
  uint32_t how;  /* openDir: CF_SCAN_* */
  uint32_t mode; /* makeDir */
  bool flag;     /* makeDir: merge; remove: a directory; lock: create */
  cf_stat st;    /* openDir */
} entry_job;

/* (dir, name, ...): the rest is each kind's. */
static bool entry_parse(napi_env env, napi_value *argv, job_t *job) {
  entry_job *j = (entry_job *)job;
  j->at = (cf_at){(int)arg_number(env, argv[0]), NULL};
  return (j->at.name = j->name = arg_path(env, argv[1], job)) != NULL;
}

/* remove(dir, name, isDir), lock(dir, name, create) */
static bool entry_flag_parse(napi_env env, napi_value *argv, job_t *job) {
  ((entry_job *)job)->flag = arg_bool(env, argv[2]);
  return entry_parse(env, argv, job);
}

/* openDir(dir, name, how) */
static bool open_dir_parse(napi_env env, napi_value *argv, job_t *job) {
  ((entry_job *)job)->how = job_flags(job, (uint32_t)arg_number(env, argv[2]));
  return entry_parse(env, argv, job);
}

static void open_dir_run(job_t *job) {
  entry_job *j = (entry_job *)job;
  job->result = cf_open_dir(j->at, (int)(j->how & (CF_SCAN_FOLLOW | CF_SCAN_WRITABLE)), &j->st, &job->err);
}

/* { fd, stat: Float64Array(STAT_STRIDE) } */
static napi_value open_dir_result(napi_env env, job_t *job) {
  napi_value obj;
  double *stat;
  napi_create_object(env, &obj);
  set_number(env, obj, "fd", (double)job->result);
  set_value(env, obj, "stat", new_typed(env, napi_float64_array, STAT_STRIDE, sizeof(double), (void **)&stat));
  put_stat(stat, &((entry_job *)job)->st);
  return obj;
}

/* makeDir(dir, name, mode, merge) */
static bool make_dir_parse(napi_env env, napi_value *argv, job_t *job) {
  ((entry_job *)job)->mode = (uint32_t)arg_number(env, argv[2]);
  ((entry_job *)job)->flag = arg_bool(env, argv[3]);
  return entry_parse(env, argv, job);
}

static void make_dir_run(job_t *job) {
  entry_job *j = (entry_job *)job;
  job->result = cf_make_dir(j->at, j->mode, j->flag, &job->err);
}

static void remove_run(job_t *job) {
  entry_job *j = (entry_job *)job;
  job->result = cf_remove(j->at, j->flag, &job->err);
}

static void subvol_delete_run(job_t *job) {
  entry_job *j = (entry_job *)job;
  job->result = cf_subvol_delete(j->at, &job->err);
}

static void lock_run(job_t *job) {
  entry_job *j = (entry_job *)job;
  job->result = cf_lock(j->at, j->flag, &job->err);
}

static void entry_free(job_t *job) {
  free(((entry_job *)job)->name);
}

/* ---- rename(fromDir, fromName, toDir, toName, noreplace) ---- */

typedef struct {
  job_t job;
  cf_at from, to;
  char *from_name, *to_name;
  bool noreplace;
} rename_job;

/* (fromDir, fromName, toDir, toName): exchange; rename and subvolSnapshot add a flag. */
static bool two_at_parse(napi_env env, napi_value *argv, job_t *job) {
  rename_job *j = (rename_job *)job;
  if ((j->from_name = arg_path(env, argv[1], job)) == NULL ||
      (j->to_name = arg_path(env, argv[3], job)) == NULL)
    return false;
  j->from = (cf_at){(int)arg_number(env, argv[0]), j->from_name};
  j->to = (cf_at){(int)arg_number(env, argv[2]), j->to_name};
  return true;
}

static bool rename_parse(napi_env env, napi_value *argv, job_t *job) {
  ((rename_job *)job)->noreplace = arg_bool(env, argv[4]);
  return two_at_parse(env, argv, job);
}

static void rename_run(job_t *job) {
  rename_job *j = (rename_job *)job;
  job->result = cf_rename(j->from, j->to, j->noreplace, &job->err);
}

static void exchange_run(job_t *job) {
  rename_job *j = (rename_job *)job;
  job->result = cf_exchange(j->from, j->to, &job->err);
}

/* subvolSnapshot(srcDir, srcName, dstDir, dstName, readOnly) */
static bool subvol_snapshot_parse(napi_env env, napi_value *argv, job_t *job) {
  ((rename_job *)job)->noreplace = arg_bool(env, argv[4]);
  return two_at_parse(env, argv, job);
}

static void subvol_snapshot_run(job_t *job) {
  rename_job *j = (rename_job *)job;
  job->result = cf_subvol_snapshot(j->from, j->to, j->noreplace, &job->err);
}

static void rename_free(job_t *job) {
  rename_job *j = (rename_job *)job;
  free(j->from_name);
  free(j->to_name);
}

/* ---- closeDirs(fds: Int32Array), unlock(fd) ---- */

typedef struct {
  job_t job;
  int32_t *fds;
  size_t n;
} fds_job;

static bool close_dirs_parse(napi_env env, napi_value *argv, job_t *job) {
  fds_job *j = (fds_job *)job;
  void *data;
  if (!arg_typed(env, argv[0], napi_int32_array, &data, &j->n, job) ||
      (j->fds = job_calloc(env, j->n, sizeof(int32_t))) == NULL)
    return false;
  if (j->n > 0) memcpy(j->fds, data, j->n * sizeof(int32_t));
  return true;
}

static void close_dirs_run(job_t *job) {
  fds_job *j = (fds_job *)job;
  for (size_t i = 0; i < j->n; i++)
    if (j->fds[i] >= 0) cf_close_dir(j->fds[i]);
}

static bool unlock_parse(napi_env env, napi_value *argv, job_t *job) {
  fds_job *j = (fds_job *)job;
  if ((j->fds = job_calloc(env, 1, sizeof(int32_t))) == NULL) return false;
  j->fds[0] = (int32_t)arg_number(env, argv[0]);
  j->n = 1;
  return true;
}

static void unlock_run(job_t *job) {
  fds_job *j = (fds_job *)job;
  if (j->fds[0] >= 0) cf_unlock(j->fds[0]);
}

static void fds_free(job_t *job) {
  free(((fds_job *)job)->fds);
}

/* ---- ancestors(path) -> Float64Array of (dev, ino) pairs, the directory's first ---- */

typedef struct {
  job_t job;
  char *path;
  uint64_t *ids;
} ancestors_job;

static bool ancestors_parse(napi_env env, napi_value *argv, job_t *job) {
  return (((ancestors_job *)job)->path = arg_path(env, argv[0], job)) != NULL;
}

/* Room for 64 levels first; where there are more, again with room for all of them. */
static void ancestors_run(job_t *job) {
  ancestors_job *j = (ancestors_job *)job;
  uint32_t room = 64;
  for (;;) {
    uint64_t *ids = realloc(j->ids, (size_t)room * 2 * sizeof(uint64_t));
    if (ids == NULL) {
      job->err = (cf_error){.errnum = ENOMEM, .syscall = "malloc"};
      job->result = -ENOMEM;
      return;
    }
    j->ids = ids;
    int rc = cf_ancestors(j->path, j->ids, room, &job->err);
    job->result = rc;
    if (rc < 0 || (uint32_t)rc <= room) return;
    room = (uint32_t)rc;
  }
}

static napi_value ancestors_result(napi_env env, job_t *job) {
  ancestors_job *j = (ancestors_job *)job;
  size_t n = (size_t)job->result * 2;
  double *d;
  napi_value arr = new_typed(env, napi_float64_array, n, sizeof(double), (void **)&d);
  for (size_t i = 0; i < n; i++) d[i] = (double)j->ids[i];
  return arr;
}

static void ancestors_free(job_t *job) {
  ancestors_job *j = (ancestors_job *)job;
  free(j->path);
  free(j->ids);
}

/* ---- sampleFiles(dirs, names, flags, block, ahead, async): each file's start, middle and end
 * (`block` bytes each, a small file whole) hashed, read once, `ahead` bytes around each asked
 * into the cache first; dedupeFiles(dirs, names, flags,
 * length, async): FIDEDUPERANGE of the first file onto all the others ---- */

typedef struct {
  job_t job;
  job_ats files;
  int32_t *errnos;
  uint32_t *hashes; /* two a file: low, high */
  cf_stat *stats;
  uint64_t block, ahead;
} sample_job;

static bool sample_parse(napi_env env, napi_value *argv, job_t *job) {
  sample_job *j = (sample_job *)job;
  j->block = (uint64_t)arg_number(env, argv[3]);
  if (j->block == 0 || j->block > (1u << 20)) j->block = 4096;
  j->ahead = (uint64_t)arg_number(env, argv[4]);
  return files_parse(env, argv, job, &j->files, &j->errnos) &&
         (j->hashes = job_calloc(env, (size_t)j->files.n * 2, sizeof(uint32_t))) != NULL &&
         (j->stats = job_calloc(env, j->files.n, sizeof(cf_stat))) != NULL;
}

/* FNV-1a, 64 bits, eight bytes a step: a sample is a few KiB, and only files of one size are
 * compared (the kernel compares every byte before it shares any). */
static uint64_t sample_hash(const uint8_t *p, uint64_t n, uint64_t seed) {
  uint64_t h = 0xcbf29ce484222325ull ^ seed;
  uint64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, p + i, 8);
    h = (h ^ w) * 0x100000001b3ull;
    h ^= h >> 29;
  }
  for (; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
  h ^= h >> 32;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h;
}

/* In batches of 256 files, cancelled between them: 256 * 3 blocks of memory at most. */
static void sample_run(job_t *job) {
  sample_job *j = (sample_job *)job;
  enum { BATCH = 256 };
  uint8_t *buf = malloc(BATCH * 3 * j->block);
  int64_t got[BATCH];
  for (uint32_t first = 0; first < j->files.n; first += BATCH) {
    uint32_t n = j->files.n - first < BATCH ? j->files.n - first : BATCH;
    if (buf == NULL || cancelled(job)) {
      for (uint32_t i = first; i < first + n; i++) j->errnos[i] = buf == NULL ? ENOMEM : ECANCELED;
      continue;
    }
    cf_read_samples(j->files.at + first, n, j->block, j->ahead, buf, got, j->stats + first, j->errnos + first);
    for (uint32_t i = 0; i < n; i++) {
      if (j->errnos[first + i] != 0) continue;
      uint64_t h = sample_hash(buf + (size_t)i * 3 * j->block, (uint64_t)got[i], j->stats[first + i].size);
      j->hashes[2 * (first + i)] = (uint32_t)h;
      j->hashes[2 * (first + i) + 1] = (uint32_t)(h >> 32);
    }
  }
  free(buf);
}

static napi_value stats_array(napi_env env, const cf_stat *st, uint32_t n) {
  double *d;
  napi_value arr = new_typed(env, napi_float64_array, (size_t)n * STAT_STRIDE, sizeof(double), (void **)&d);
  for (uint32_t i = 0; i < n; i++) put_stat(d + (size_t)i * STAT_STRIDE, &st[i]);
  return arr;
}

/* { errnos: Int32Array, hashes: Uint32Array (2 a file), stats: Float64Array } */
static napi_value sample_result(napi_env env, job_t *job) {
  sample_job *j = (sample_job *)job;
  uint32_t n = j->files.n, *hashes;
  int32_t *errnos;
  napi_value obj;
  napi_create_object(env, &obj);
  set_value(env, obj, "errnos", new_typed(env, napi_int32_array, n, sizeof(int32_t), (void **)&errnos));
  set_value(env, obj, "hashes", new_typed(env, napi_uint32_array, (size_t)n * 2, sizeof(uint32_t), (void **)&hashes));
  set_value(env, obj, "stats", stats_array(env, j->stats, n));
  if (n > 0) {
    memcpy(errnos, j->errnos, n * sizeof(int32_t));
    memcpy(hashes, j->hashes, (size_t)n * 2 * sizeof(uint32_t));
  }
  return obj;
}

static void sample_free(job_t *job) {
  sample_job *j = (sample_job *)job;
  free(j->errnos);
  free(j->hashes);
  free(j->stats);
  job_ats_free(&j->files);
}

typedef struct {
  job_t job;
  job_ats files;
  uint64_t length;
  int32_t *status;
  uint64_t *deduped;
  cf_stat *before, *after;
  cf_extent **maps; /* 2n: before, then after; NULL for swapFiles */
  uint32_t *map_counts;
} dedupe_job;

static bool dedupe_parse(napi_env env, napi_value *argv, job_t *job) {
  dedupe_job *j = (dedupe_job *)job;
  job_flags(job, (uint32_t)arg_number(env, argv[2]));
  j->length = (uint64_t)arg_number(env, argv[3]);
  return arg_ats(env, argv[0], argv[1], job, &j->files) &&
         (j->status = job_calloc(env, j->files.n, sizeof(int32_t))) != NULL &&
         (j->deduped = job_calloc(env, j->files.n, sizeof(uint64_t))) != NULL &&
         (j->before = job_calloc(env, j->files.n, sizeof(cf_stat))) != NULL &&
         (j->after = job_calloc(env, j->files.n, sizeof(cf_stat))) != NULL &&
         (j->maps = job_calloc(env, (size_t)j->files.n * 2, sizeof(cf_extent *))) != NULL &&
         (j->map_counts = job_calloc(env, (size_t)j->files.n * 2, sizeof(uint32_t))) != NULL;
}

static void dedupe_run(job_t *job) {
  dedupe_job *j = (dedupe_job *)job;
  if (cancelled_before(job)) return;
  job->result = cf_dedupe_files(j->files.at, j->files.n, j->length, j->status, j->deduped, j->before, j->after,
                                j->maps, j->map_counts, &job->err);
}

/* { status: Int32Array (0 or -errno), deduped: Float64Array, before, after: Float64Array (stats),
 * and where mapped counts: Uint32Array (2n: before, then after), extents: Float64Array } */
static napi_value dedupe_result(napi_env env, job_t *job) {
  dedupe_job *j = (dedupe_job *)job;
  uint32_t n = j->files.n;
  int32_t *status;
  double *deduped;
  napi_value obj;
  napi_create_object(env, &obj);
  set_value(env, obj, "status", new_typed(env, napi_int32_array, n, sizeof(int32_t), (void **)&status));
  set_value(env, obj, "deduped", new_typed(env, napi_float64_array, n, sizeof(double), (void **)&deduped));
  set_value(env, obj, "before", stats_array(env, j->before, n));
  set_value(env, obj, "after", stats_array(env, j->after, n));
  for (uint32_t i = 0; i < n; i++) {
    status[i] = j->status[i];
    deduped[i] = (double)j->deduped[i];
  }
  if (j->maps == NULL) return obj;
  uint32_t *counts;
  size_t total = 0;
  for (uint32_t i = 0; i < 2 * n; i++) total += j->map_counts[i];
  double *d;
  set_value(env, obj, "counts", new_typed(env, napi_uint32_array, (size_t)n * 2, sizeof(uint32_t), (void **)&counts));
  set_value(env, obj, "extents", new_typed(env, napi_float64_array, total * 4, sizeof(double), (void **)&d));
  for (uint32_t i = 0; i < 2 * n; i++) {
    counts[i] = j->map_counts[i];
    d = put_extents(d, j->maps[i], j->map_counts[i]);
  }
  return obj;
}

static void dedupe_free(job_t *job) {
  dedupe_job *j = (dedupe_job *)job;
  free(j->status);
  free(j->deduped);
  free(j->before);
  free(j->after);
  for (uint32_t i = 0; j->maps != NULL && i < 2 * j->files.n; i++) free(j->maps[i]);
  free(j->maps);
  free(j->map_counts);
  job_ats_free(&j->files);
}

/* ---- compareFiles(aDirs, aNames, bDirs, bNames, flags, async): each pair's contents ---- */

typedef struct {
  job_t job;
  job_ats a, b;
  int32_t *out; /* 0 the same, 1 different, -errno */
  const char **syscalls;
} compare_job;

static bool compare_parse(napi_env env, napi_value *argv, job_t *job) {
  compare_job *j = (compare_job *)job;
  job_flags(job, (uint32_t)arg_number(env, argv[4]));
  if (!arg_ats(env, argv[0], argv[1], job, &j->a) || !arg_ats(env, argv[2], argv[3], job, &j->b)) return false;
  if (j->a.n != j->b.n) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", "compareFiles: as many of a as of b");
    return false;
  }
  return (j->out = job_calloc(env, j->a.n, sizeof(int32_t))) != NULL &&
         (j->syscalls = job_calloc(env, j->a.n, sizeof(char *))) != NULL;
}

static void compare_run(job_t *job) {
  compare_job *j = (compare_job *)job;
  for (uint32_t i = 0; i < j->a.n; i++) {
    cf_error err = {0};
    j->out[i] = cf_compare_files(j->a.at[i], j->b.at[i], &err);
    j->syscalls[i] = err.syscall;
  }
}

/* { results: Int32Array (0 same, 1 different, -errno), syscalls: string[] where failed } */
static napi_value compare_result(napi_env env, job_t *job) {
  compare_job *j = (compare_job *)job;
  int32_t *out;
  napi_value obj, syscalls;
  napi_create_object(env, &obj);
  set_value(env, obj, "results", new_typed(env, napi_int32_array, j->a.n, sizeof(int32_t), (void **)&out));
  napi_create_array_with_length(env, j->a.n, &syscalls);
  for (uint32_t i = 0; i < j->a.n; i++) {
    out[i] = j->out[i];
    if (j->out[i] < 0 && j->syscalls[i] != NULL) napi_set_element(env, syscalls, i, new_string(env, j->syscalls[i], false));
  }
  set_value(env, obj, "syscalls", syscalls);
  return obj;
}

static void compare_free(job_t *job) {
  compare_job *j = (compare_job *)job;
  free(j->out);
  free((void *)j->syscalls);
  job_ats_free(&j->a);
  job_ats_free(&j->b);
}

/* ---- metaMany(dirs, names, flags, async): Scan.Meta's hashes of entries named one by one ---- */

typedef struct {
  job_t job;
  job_ats at;
  uint32_t *meta; /* 5 an entry, as scanDirs' meta */
} meta_job;

static bool meta_parse(napi_env env, napi_value *argv, job_t *job) {
  meta_job *j = (meta_job *)job;
  job_flags(job, (uint32_t)arg_number(env, argv[2]));
  return arg_ats(env, argv[0], argv[1], job, &j->at) && (j->meta = job_calloc(env, (size_t)j->at.n * 5, sizeof(uint32_t))) != NULL;
}

static void meta_run(job_t *job) {
  meta_job *j = (meta_job *)job;
  for (uint32_t i = 0; i < j->at.n; i++) {
    cf_error err = {0};
    uint64_t x, t;
    uint32_t *m = j->meta + (size_t)i * 5;
    if (cf_entry_meta(j->at.at[i], &x, &t, &err) < 0) {
      m[4] = (uint32_t)err.errnum;
      continue;
    }
    m[0] = (uint32_t)x;
    m[1] = (uint32_t)(x >> 32);
    m[2] = (uint32_t)t;
    m[3] = (uint32_t)(t >> 32);
  }
}

static napi_value meta_result(napi_env env, job_t *job) {
  meta_job *j = (meta_job *)job;
  uint32_t *out;
  napi_value arr = new_typed(env, napi_uint32_array, (size_t)j->at.n * 5, sizeof(uint32_t), (void **)&out);
  if (j->at.n > 0) memcpy(out, j->meta, (size_t)j->at.n * 5 * sizeof(uint32_t));
  return arr;
}

static void meta_free(job_t *job) {
  meta_job *j = (meta_job *)job;
  free(j->meta);
  job_ats_free(&j->at);
}

/* ---- swapFiles(dirs, names, flags, temps, async): macOS's dedupe, file 0 cloned, verified
 * and swapped in for every other under temps[i]; the answer is dedupeFiles' ---- */

typedef struct {
  dedupe_job d; /* first: dedupe_result and dedupe_free take it */
  const char **temps;
  char *temps_arena;
} swap_job;

static bool swap_parse(napi_env env, napi_value *argv, job_t *job) {
  swap_job *j = (swap_job *)job;
  job_flags(job, (uint32_t)arg_number(env, argv[2]));
  if (!arg_ats(env, argv[0], argv[1], job, &j->d.files)) return false;
  uint32_t n = j->d.files.n;
  return arg_names(env, argv[3], n, job, &j->temps, &j->temps_arena) &&
         (j->d.status = job_calloc(env, n, sizeof(int32_t))) != NULL &&
         (j->d.deduped = job_calloc(env, n, sizeof(uint64_t))) != NULL &&
         (j->d.before = job_calloc(env, n, sizeof(cf_stat))) != NULL &&
         (j->d.after = job_calloc(env, n, sizeof(cf_stat))) != NULL;
}

static void swap_run(job_t *job) {
  swap_job *j = (swap_job *)job;
  if (cancelled_before(job)) return;
  job->result = cf_swap_files(j->d.files.at, j->temps, j->d.files.n, j->d.status, j->d.deduped, j->d.before,
                              j->d.after, &job->err);
}

static void swap_free(job_t *job) {
  swap_job *j = (swap_job *)job;
  free((void *)j->temps);
  free(j->temps_arena);
  dedupe_free(job);
}

/* ---- the exports: name, args struct, `async` argument (-1: synchronous only), functions ---- */

const job_kind job_kinds[] = {
    {"cloneFile", sizeof(clone_file_job), 5, clone_file_parse, clone_file_run, job_number_result, clone_file_free},
    {"cloneRange", sizeof(range_job), 6, range_parse, clone_range_run, job_number_result, NULL},
    {"dedupeRange", sizeof(range_job), -1, range_parse, dedupe_range_run, job_number_result, NULL},
    {"fsInfo", sizeof(fs_info_job), -1, fs_info_parse, fs_info_run, fs_info_result, path_free},
    {"extentsMany", sizeof(extents_job), 3, extents_parse, extents_run, extents_result, extents_free},
    {"sampleFiles", sizeof(sample_job), 5, sample_parse, sample_run, sample_result, sample_free},
    {"dedupeFiles", sizeof(dedupe_job), 4, dedupe_parse, dedupe_run, dedupe_result, dedupe_free},
    {"swapFiles", sizeof(swap_job), 4, swap_parse, swap_run, dedupe_result, swap_free},
    {"fileSpace", sizeof(space_job), 3, space_parse, space_run, space_result, space_free},
    {"runOps", sizeof(ops_job), 7, ops_parse, ops_run, ops_result, ops_free},
    {"scanDirs", sizeof(scan_job), 3, scan_parse, scan_run, scan_result, scan_free},
    {"openDir", sizeof(entry_job), -1, open_dir_parse, open_dir_run, open_dir_result, entry_free},
    {"closeDirs", sizeof(fds_job), -1, close_dirs_parse, close_dirs_run, job_undefined_result, fds_free},
    {"makeDir", sizeof(entry_job), -1, make_dir_parse, make_dir_run, job_number_result, entry_free},
    {"rename", sizeof(rename_job), -1, rename_parse, rename_run, job_undefined_result, rename_free},
    {"remove", sizeof(entry_job), -1, entry_flag_parse, remove_run, job_undefined_result, entry_free},
    {"exchange", sizeof(rename_job), -1, two_at_parse, exchange_run, job_undefined_result, rename_free},
    {"subvolSnapshot", sizeof(rename_job), -1, subvol_snapshot_parse, subvol_snapshot_run, job_undefined_result, rename_free},
    {"subvolDelete", sizeof(entry_job), -1, entry_parse, subvol_delete_run, job_undefined_result, entry_free},
    {"compareFiles", sizeof(compare_job), 5, compare_parse, compare_run, compare_result, compare_free},
    {"metaMany", sizeof(meta_job), 3, meta_parse, meta_run, meta_result, meta_free},
    {"ancestors", sizeof(ancestors_job), -1, ancestors_parse, ancestors_run, ancestors_result, ancestors_free},
    {"lock", sizeof(entry_job), -1, entry_flag_parse, lock_run, job_number_result, entry_free},
    {"unlock", sizeof(fds_job), -1, unlock_parse, unlock_run, job_undefined_result, fds_free},
    {NULL, 0, 0, NULL, NULL, NULL, NULL},
};
