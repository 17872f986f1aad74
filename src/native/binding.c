/*
 * N-API glue: converts arguments, runs the platform functions (on the libuv
 * thread pool for the async forms) and turns a failure into a thrown object
 * { errno, syscall, onDest } that src/binding.ts makes into a Node-style error.
 */
#include <node_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>

#include "platform.h"

/* Bits of runOps' flags and scanDirs' `how` that the glue handles itself. */
#define JOB_LANE_SHIFT 26
#define JOB_LANE_MASK (15u << JOB_LANE_SHIFT) /* 1-15: the lane to run in (src/binding.ts: lane()) */
#define SCAN_MERGE 0x100u                    /* scanDirs: a directory to make that exists already is no error */
/* runOps, scanDirs: path strings are byte strings, one character (U+0000-U+00FF) per byte of the
 * name as the filesystem has it (Latin-1 in N-API's terms), and names come back so: a name that
 * is not UTF-8 survives the trip through JavaScript. */
#define JOB_RAW (1u << 30)

/* Lanes (async jobs only): the jobs of one lane run one after another, in the order they were
 * queued, whatever the size of the thread pool; jobs of different lanes run side by side. A
 * caller chooses how many run at once, and which jobs never run together (filesystems whose
 * metadata updates contend gain from fewer at once; and on XFS two jobs creating files in one
 * allocation group wait for each other). A job whose lane is taken is queued there and its pool
 * thread goes back to the pool at once, free for any other work of the process; the thread
 * that has the lane runs the queued jobs after its own, with no wake-up in between (that costs
 * some 0.1 ms, as long as a small job), until the lane is empty. Every lane job's promise is
 * settled on the JavaScript thread through a thread-safe function, as soon as the job is done. */
#define LANES 15
typedef struct {
  struct job *head, *tail;
  int busy; /* a thread has the lane */
} lane_t;
static uv_once_t lane_once = UV_ONCE_INIT;
static uv_mutex_t lane_lock;
static lane_t lanes[LANES + 1];
static void lane_init(void) {
  uv_mutex_init(&lane_lock);
}

#define CHECK(call)                                   \
  do {                                                \
    if ((call) != napi_ok) return throw_internal(env); \
  } while (0)

static napi_value throw_internal(napi_env env) {
  const napi_extended_error_info *info = NULL;
  napi_get_last_error_info(env, &info);
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) napi_throw_error(env, "ERR_CLONEFILE_NATIVE", info && info->error_message ? info->error_message : "N-API call failed");
  return NULL;
}

static napi_value make_error(napi_env env, const cf_error *err) {
  napi_value obj, msg, v;
  napi_create_string_utf8(env, err->syscall, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, NULL, msg, &obj);
  napi_create_int32(env, err->errnum, &v);
  napi_set_named_property(env, obj, "errno", v);
  napi_create_string_utf8(env, err->syscall, NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, obj, "syscall", v);
  napi_get_boolean(env, err->on_dest != 0, &v);
  napi_set_named_property(env, obj, "onDest", v);
  return obj;
}

/* The bytes of a string (*len of them, NUL-terminated): UTF-8, or with `raw` one byte per
 * character (JOB_RAW). NULL if it is not a string or memory runs out. */
static char *get_string(napi_env env, napi_value value, bool raw, size_t *len) {
  napi_status (*get)(napi_env, napi_value, char *, size_t, size_t *) =
      raw ? napi_get_value_string_latin1 : napi_get_value_string_utf8;
  if (get(env, value, NULL, 0, len) != napi_ok) return NULL;
  char *s = malloc(*len + 1);
  if (s != NULL) get(env, value, s, *len + 1, len);
  return s;
}

/* A path from a string or a Buffer (bytes as they are, for names that are not UTF-8). */
static char *get_path_as(napi_env env, napi_value value, bool raw) {
  napi_valuetype type;
  if (napi_typeof(env, value, &type) != napi_ok) return NULL;
  size_t len = 0;
  if (type == napi_string) return get_string(env, value, raw, &len);
  bool is_buffer = false;
  napi_is_buffer(env, value, &is_buffer);
  if (!is_buffer) return NULL;
  void *data;
  if (napi_get_buffer_info(env, value, &data, &len) != napi_ok) return NULL;
  char *s = malloc(len + 1);
  if (s != NULL) {
    memcpy(s, data, len);
    s[len] = '\0';
  }
  return s;
}

static char *get_path(napi_env env, napi_value value) {
  return get_path_as(env, value, false);
}

/* Reads n paths into out[0..n): from a JS array of strings or Buffers (each malloc'd), or from
 * one string of them joined by NUL characters, which one conversion reads whole: then out[i]
 * point into *arena, the one allocation. False, with a TypeError naming `who`, on a bad one. */
static bool get_paths(napi_env env, napi_value value, uint32_t n, char **out, char **arena, bool raw,
                      const char *who) {
  char message[96];
  snprintf(message, sizeof message, "%s: paths must be strings or Buffers", who);
  napi_valuetype type;
  if (napi_typeof(env, value, &type) == napi_ok && type == napi_string) {
    size_t len = 0;
    if ((*arena = get_string(env, value, raw, &len)) == NULL) {
      napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", message);
      return false;
    }
    char *p = *arena, *end = *arena + len;
    for (uint32_t i = 0; i < n; i++) {
      if (p > end) {
        napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", "joined paths: fewer than expected");
        return false;
      }
      out[i] = p;
      p += strlen(p) + 1;
    }
    return true;
  }
  for (uint32_t i = 0; i < n; i++) {
    napi_value v;
    if (napi_get_element(env, value, i, &v) != napi_ok || (out[i] = get_path_as(env, v, raw)) == NULL) {
      napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", message);
      return false;
    }
  }
  return true;
}

static double get_number(napi_env env, napi_value value) {
  double d = 0;
  napi_get_value_double(env, value, &d);
  return d;
}

/* ---- one job type for every async call ---- */

typedef enum { JOB_CLONE_FILE, JOB_CLONE_RANGE, JOB_EXTENTS, JOB_OPS, JOB_SCAN, JOB_SPACE } job_kind;

/* Kinds of tree operation in runOps(); src/binding.ts mirrors them. */
enum { OP_CLONE, OP_COPY, OP_SYMLINK, OP_SPECIAL, OP_DIR_META, OP_LINK };

/* Per module instance: the thread-safe function that settles lane jobs, referenced (keeping
 * the process alive) while any are outstanding. */
typedef struct {
  napi_threadsafe_function settle;
  uint32_t outstanding;
} instance_t;

typedef struct job {
  napi_async_work work;
  napi_deferred deferred;
  /* a lane job: its lane's queue, the instance whose thread-safe function settles it, and how
   * many of {settled, async work completed} are still to come (both on the JavaScript thread) */
  struct job *next;
  instance_t *inst;
  int holds;
  job_kind kind;
  cf_file src;
  char *src_path, *dst;
  int method, dst_fd;
  uint32_t flags;
  int lane; /* 0, or the lane it runs in */
  bool raw; /* JOB_RAW: strings in and out are byte strings */
  uint64_t src_offset, dst_offset, length;
  int64_t result;
  cf_error err;
  /* JOB_EXTENTS: many files, one worker-thread trip */
  char **paths;
  uint32_t npaths;
  /* where paths (or dsts) came as one NUL-joined string: its copy, which they point into */
  char *paths_arena, *dsts_arena;
  cf_extent **ext;
  uint32_t *counts;
  int32_t *errnums;
  /* JOB_OPS: kinds[i] on paths[i] -> dsts[i]; results[i] is bytes or -errno */
  uint8_t *kinds;
  char **dsts;
  double *results;
  const char **syscalls;
  /* JOB_SCAN: each of paths[] listed as `flags` (CF_SCAN_*) says; a directory that cannot
   * be listed has its errno in errnums[] (the others go on) */
  cf_dirent **ents;
  char **namebufs;
  uint32_t *nents;
  const char **dir_syscalls;
  uint8_t *dir_on_dest;
  /* and, where makes[i] is set, first mkdir(makes[i], modes[i]) (a failure skips the listing) */
  char **makes;
  uint32_t *modes;
  /* JOB_SPACE: what the filesystem says of each of paths[]; errnums[i] where it failed */
  cf_file_space *spaces;
} job_t;

static void job_free(job_t *job) {
  for (uint32_t i = 0; i < job->npaths; i++) {
    if (job->paths_arena == NULL) free(job->paths[i]);
    if (job->ext != NULL) free(job->ext[i]);
    if (job->dsts != NULL && job->dsts_arena == NULL) free(job->dsts[i]);
    if (job->makes != NULL) free(job->makes[i]);
  }
  free(job->makes);
  free(job->modes);
  free(job->dir_on_dest);
  free(job->kinds);
  free(job->dsts);
  free(job->results);
  free(job->syscalls);
  for (uint32_t i = 0; job->ents != NULL && i < job->npaths; i++) {
    for (uint32_t k = 0; job->ents[i] != NULL && k < job->nents[i]; k++) free(job->ents[i][k].ext);
    free(job->ents[i]);
    free(job->namebufs[i]);
  }
  free(job->ents);
  free(job->namebufs);
  free(job->nents);
  free(job->dir_syscalls);
  free(job->spaces);
  free(job->paths);
  free(job->paths_arena);
  free(job->dsts_arena);
  free(job->ext);
  free(job->counts);
  free(job->errnums);
  free(job->src_path);
  free(job->dst);
  free(job);
}

static int64_t run_op(int kind, const char *src, const char *dst, uint32_t flags, cf_error *err) {
  cf_clone_out out;
  cf_file file = {.path = src, .fd = -1};
  switch (kind) {
    case OP_CLONE:
    case OP_COPY: {
      int rc = cf_clone_file(&file, dst, kind == OP_CLONE ? CF_METHOD_CLONE : CF_METHOD_COPY, flags, &out, err);
      return rc < 0 ? rc : (int64_t)out.size;
    }
    case OP_SYMLINK: return cf_copy_symlink(src, dst, flags, err);
    case OP_SPECIAL: return cf_make_special(src, dst, flags, err);
    case OP_DIR_META: return cf_copy_dir_meta(src, dst, flags, err);
    case OP_LINK: return cf_hard_link(src, dst, flags, err);
    default: err->errnum = 22; err->syscall = "runOps"; return -22;
  }
}

static void job_run_now(job_t *job) {
  if (job->kind == JOB_SCAN) {
    int how = (int)(job->flags & (CF_SCAN_FOLLOW | CF_SCAN_EXTENTS));
    for (uint32_t i = 0; i < job->npaths; i++) {
      cf_error e = {0, NULL, 0};
      if ((job->makes != NULL && job->makes[i] != NULL &&
           cf_make_dir(job->makes[i], job->modes[i], (job->flags & SCAN_MERGE) != 0, &e) < 0) ||
          cf_scan_dir(job->paths[i], how, &job->ents[i], &job->nents[i], &job->namebufs[i], &e) < 0) {
        job->errnums[i] = e.errnum;
        job->dir_syscalls[i] = e.syscall;
        job->dir_on_dest[i] = (uint8_t)e.on_dest;
      }
    }
    job->result = 0;
  } else if (job->kind == JOB_OPS) {
    /* Every operation runs, whatever the others did: the caller decides what a failure means. */
    for (uint32_t i = 0; i < job->npaths; i++) {
      cf_error e = {0, NULL, 0};
      int64_t r = run_op(job->kinds[i], job->paths[i], job->dsts[i], job->flags, &e);
      job->results[i] = (double)r;
      job->syscalls[i] = r < 0 ? e.syscall : NULL;
    }
    job->result = 0;
  } else if (job->kind == JOB_CLONE_FILE) {
    cf_clone_out out;
    int rc = cf_clone_file(&job->src, job->dst, job->method, job->flags, &out, &job->err);
    job->result = rc < 0 ? rc : (int64_t)out.size;
  } else if (job->kind == JOB_SPACE) {
    for (uint32_t i = 0; i < job->npaths; i++) {
      cf_error e;
      job->errnums[i] = cf_file_space_get(job->paths[i], &job->spaces[i], &e) < 0 ? e.errnum : 0;
    }
    job->result = 0;
  } else if (job->kind == JOB_EXTENTS) {
    /* A file that fails (vanished, unreadable) is reported, not fatal: errnums[i]. */
    for (uint32_t i = 0; i < job->npaths; i++) {
      cf_error e;
      job->errnums[i] = cf_extents(job->paths[i], &job->ext[i], &job->counts[i], &e) < 0 ? e.errnum : 0;
    }
    job->result = 0;
  } else {
    job->result = cf_clone_range(job->src.fd, job->dst_fd, job->src_offset, job->dst_offset,
                                 job->length, job->method, &job->err);
  }
}

/* A lane job, on a pool thread: queued behind the lane's running job, or, where the lane is
 * free, run now with every job queued behind it, each settled as soon as it is done. */
static void job_run_in_lane(job_t *job) {
  lane_t *lane = &lanes[job->lane];
  uv_mutex_lock(&lane_lock);
  job->next = NULL;
  if (lane->tail != NULL) lane->tail->next = job;
  else lane->head = job;
  lane->tail = job;
  if (lane->busy) {
    uv_mutex_unlock(&lane_lock);
    return;
  }
  lane->busy = 1;
  while (lane->head != NULL) {
    job_t *next = lane->head;
    lane->head = next->next;
    if (lane->head == NULL) lane->tail = NULL;
    uv_mutex_unlock(&lane_lock);
    job_run_now(next);
    napi_call_threadsafe_function(next->inst->settle, next, napi_tsfn_nonblocking);
    uv_mutex_lock(&lane_lock);
  }
  lane->busy = 0;
  uv_mutex_unlock(&lane_lock);
}

/* The lane a job's flags ask for (0: none), and the flags without it (or JOB_RAW). */
static int take_lane(uint32_t *flags, bool *raw) {
  int lane = (int)((*flags & JOB_LANE_MASK) >> JOB_LANE_SHIFT);
  *raw = (*flags & JOB_RAW) != 0;
  *flags &= ~(JOB_LANE_MASK | JOB_RAW);
  return lane;
}

static void job_execute(napi_env env, void *data) {
  (void)env;
  job_t *job = data;
  if (job->lane != 0) job_run_in_lane(job);
  else job_run_now(job);
}

static napi_value extents_result(napi_env env, job_t *job);
static napi_value ops_result(napi_env env, job_t *job);
static napi_value scan_result(napi_env env, job_t *job);
static napi_value space_result(napi_env env, job_t *job);

static napi_value job_value(napi_env env, job_t *job) {
  napi_value value;
  if (job->kind == JOB_EXTENTS) return extents_result(env, job);
  if (job->kind == JOB_OPS) return ops_result(env, job);
  if (job->kind == JOB_SCAN) return scan_result(env, job);
  if (job->kind == JOB_SPACE) return space_result(env, job);
  napi_create_double(env, (double)job->result, &value);
  return value;
}

static void job_settle(napi_env env, job_t *job, napi_status status) {
  if (status != napi_ok) {
    cf_error e = {.errnum = 125 /* ECANCELED */, .syscall = "uv_queue_work", .on_dest = 0};
    napi_reject_deferred(env, job->deferred, make_error(env, &e));
  } else if (job->result < 0) {
    napi_reject_deferred(env, job->deferred, make_error(env, &job->err));
  } else {
    napi_resolve_deferred(env, job->deferred, job_value(env, job));
  }
}

static void lane_job_released(napi_env env, job_t *job) {
  if (--job->holds > 0) return;
  if (--job->inst->outstanding == 0) napi_unref_threadsafe_function(env, job->inst->settle);
  job_free(job);
}

/* On the JavaScript thread, for a lane job its lane's thread has run. */
static void lane_job_done(napi_env env, napi_value js_cb, void *context, void *data) {
  (void)js_cb;
  (void)context;
  job_t *job = data;
  if (env == NULL) return; /* the instance is going away */
  job_settle(env, job, napi_ok);
  lane_job_released(env, job);
}

static void job_complete(napi_env env, napi_status status, void *data) {
  job_t *job = data;
  napi_delete_async_work(env, job->work);
  if (job->lane == 0) {
    job_settle(env, job, status);
    job_free(job);
    return;
  }
  /* A lane job is settled by lane_job_done; one that was cancelled never reached its lane. */
  if (status != napi_ok) {
    job_settle(env, job, status);
    job->holds--;
  }
  lane_job_released(env, job);
}

/* Sync: run here and return the count or throw. Async: queue and return a promise. */
static napi_value job_finish(napi_env env, job_t *job, bool async) {
  napi_value result;
  if (async) {
    napi_value name;
    CHECK(napi_create_promise(env, &job->deferred, &result));
    CHECK(napi_create_string_utf8(env, "clonefile", NAPI_AUTO_LENGTH, &name));
    CHECK(napi_create_async_work(env, NULL, name, job_execute, job_complete, job, &job->work));
    if (job->lane != 0) {
      CHECK(napi_get_instance_data(env, (void **)&job->inst));
      job->holds = 2;
      if (job->inst->outstanding++ == 0) CHECK(napi_ref_threadsafe_function(env, job->inst->settle));
    }
    CHECK(napi_queue_async_work(env, job->work));
    return result;
  }
  /* Run here and now: a lane says nothing to a synchronous call. */
  job_run_now(job);
  if (job->result < 0) {
    napi_throw(env, make_error(env, &job->err));
    job_free(job);
    return NULL;
  }
  result = job_value(env, job);
  job_free(job);
  return result;
}

/* cloneFile(src: string | Buffer | fd, dst: string | Buffer, method, flags, async) */
static napi_value clone_file(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  job_t *job = calloc(1, sizeof *job);
  if (job == NULL) return throw_internal(env);
  job->kind = JOB_CLONE_FILE;
  napi_valuetype type;
  napi_typeof(env, argv[0], &type);
  job->src.fd = type == napi_number ? (int)get_number(env, argv[0]) : -1;
  job->src_path = type == napi_number ? NULL : get_path(env, argv[0]);
  job->src.path = job->src_path;
  job->dst = get_path(env, argv[1]);
  job->method = (int)get_number(env, argv[2]);
  job->flags = (uint32_t)get_number(env, argv[3]);
  bool async = false;
  napi_get_value_bool(env, argv[4], &async);
  if (job->dst == NULL || (job->src.fd < 0 && job->src_path == NULL)) {
    job_free(job);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "cloneFile: bad path arguments");
    return NULL;
  }
  return job_finish(env, job, async);
}

/* cloneRange(srcFd, dstFd, srcOffset, dstOffset, length, method, async) */
static napi_value clone_range(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  job_t *job = calloc(1, sizeof *job);
  if (job == NULL) return throw_internal(env);
  job->kind = JOB_CLONE_RANGE;
  job->src.fd = (int)get_number(env, argv[0]);
  job->dst_fd = (int)get_number(env, argv[1]);
  job->src_offset = (uint64_t)get_number(env, argv[2]);
  job->dst_offset = (uint64_t)get_number(env, argv[3]);
  job->length = (uint64_t)get_number(env, argv[4]);
  job->method = (int)get_number(env, argv[5]);
  bool async = false;
  napi_get_value_bool(env, argv[6], &async);
  return job_finish(env, job, async);
}

/* dedupeRange(srcFd, dstFd, srcOffset, dstOffset, length) */
static napi_value dedupe_range(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5], result;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  cf_error err;
  int64_t n = cf_dedupe_range((int)get_number(env, argv[0]), (int)get_number(env, argv[1]),
                              (uint64_t)get_number(env, argv[2]), (uint64_t)get_number(env, argv[3]),
                              (uint64_t)get_number(env, argv[4]), &err);
  if (n < 0) {
    napi_throw(env, make_error(env, &err));
    return NULL;
  }
  CHECK(napi_create_double(env, (double)n, &result));
  return result;
}

static void set_number(napi_env env, napi_value obj, const char *key, double n) {
  napi_value v;
  napi_create_double(env, n, &v);
  napi_set_named_property(env, obj, key, v);
}

/* fsInfo(path) -> { type, name, blockSize, dev, mountId, canClone } */
static napi_value fs_info(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], obj, v;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char *path = get_path(env, argv[0]);
  if (path == NULL) return throw_internal(env);
  cf_fs_info fi;
  cf_error err;
  int rc = cf_fs_info_get(path, &fi, &err);
  free(path);
  if (rc < 0) {
    napi_throw(env, make_error(env, &err));
    return NULL;
  }
  CHECK(napi_create_object(env, &obj));
  set_number(env, obj, "type", (double)fi.type);
  set_number(env, obj, "blockSize", (double)fi.block_size);
  set_number(env, obj, "dev", (double)fi.dev);
  set_number(env, obj, "mountId", (double)fi.mount_id);
  set_number(env, obj, "canClone", fi.can_clone);
  CHECK(napi_create_string_utf8(env, fi.name, NAPI_AUTO_LENGTH, &v));
  CHECK(napi_set_named_property(env, obj, "name", v));
  return obj;
}

/* extents(path) -> Float64Array of [logical, physical, length, flags] * n */
static napi_value extents(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], array, result;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char *path = get_path(env, argv[0]);
  if (path == NULL) return throw_internal(env);
  cf_extent *ext = NULL;
  uint32_t count = 0;
  cf_error err;
  int rc = cf_extents(path, &ext, &count, &err);
  free(path);
  if (rc < 0) {
    napi_throw(env, make_error(env, &err));
    return NULL;
  }
  double *data;
  napi_status st = napi_create_arraybuffer(env, (size_t)count * 4 * sizeof(double), (void **)&data, &array);
  if (st == napi_ok) {
    for (uint32_t i = 0; i < count; i++) {
      data[i * 4] = (double)ext[i].logical;
      data[i * 4 + 1] = (double)ext[i].physical;
      data[i * 4 + 2] = (double)ext[i].length;
      data[i * 4 + 3] = (double)ext[i].flags;
    }
  }
  free(ext);
  CHECK(st);
  CHECK(napi_create_typedarray(env, napi_float64_array, (size_t)count * 4, array, 0, &result));
  return result;
}

/* { counts: Uint32Array, errnos: Int32Array, extents: Float64Array } for extentsMany() */
static napi_value extents_result(napi_env env, job_t *job) {
  size_t total = 0;
  for (uint32_t i = 0; i < job->npaths; i++) total += job->counts[i];
  napi_value obj, buf, arr;
  void *data;
  napi_create_object(env, &obj);
  napi_create_arraybuffer(env, job->npaths * sizeof(uint32_t), &data, &buf);
  memcpy(data, job->counts, job->npaths * sizeof(uint32_t));
  napi_create_typedarray(env, napi_uint32_array, job->npaths, buf, 0, &arr);
  napi_set_named_property(env, obj, "counts", arr);
  napi_create_arraybuffer(env, job->npaths * sizeof(int32_t), &data, &buf);
  memcpy(data, job->errnums, job->npaths * sizeof(int32_t));
  napi_create_typedarray(env, napi_int32_array, job->npaths, buf, 0, &arr);
  napi_set_named_property(env, obj, "errnos", arr);
  napi_create_arraybuffer(env, total * 4 * sizeof(double), &data, &buf);
  double *d = data;
  for (uint32_t i = 0; i < job->npaths; i++) {
    for (uint32_t k = 0; k < job->counts[i]; k++, d += 4) {
      cf_extent *e = &job->ext[i][k];
      d[0] = (double)e->logical;
      d[1] = (double)e->physical;
      d[2] = (double)e->length;
      d[3] = (double)e->flags;
    }
  }
  napi_create_typedarray(env, napi_float64_array, total * 4, buf, 0, &arr);
  napi_set_named_property(env, obj, "extents", arr);
  return obj;
}

/* A call (paths[], async) that does one thing to each path on the worker thread: the job gets
 * the paths, an errno and a result slot for each (extents, or space). */
static napi_value paths_call(napi_env env, napi_callback_info info, job_kind kind, const char *who) {
  size_t argc = 2;
  napi_value argv[2];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint32_t n = 0;
  CHECK(napi_get_array_length(env, argv[0], &n));
  job_t *job = calloc(1, sizeof *job);
  if (job == NULL) return throw_internal(env);
  size_t m = n ? n : 1;
  job->kind = kind;
  job->npaths = n;
  job->paths = calloc(m, sizeof(char *));
  job->errnums = calloc(m, sizeof(int32_t));
  bool ok = job->paths != NULL && job->errnums != NULL;
  if (kind == JOB_EXTENTS) {
    job->ext = calloc(m, sizeof(cf_extent *));
    job->counts = calloc(m, sizeof(uint32_t));
    ok = ok && job->ext != NULL && job->counts != NULL;
  } else {
    job->spaces = calloc(m, sizeof(cf_file_space));
    ok = ok && job->spaces != NULL;
  }
  if (!ok) {
    job_free(job);
    return throw_internal(env);
  }
  if (!get_paths(env, argv[0], n, job->paths, &job->paths_arena, false, who)) {
    job_free(job);
    return NULL;
  }
  bool async = false;
  napi_get_value_bool(env, argv[1], &async);
  return job_finish(env, job, async);
}

/* extentsMany(paths: Array<string | Buffer>, async) -> extents of every file, in one trip */
static napi_value extents_many(napi_env env, napi_callback_info info) {
  return paths_call(env, info, JOB_EXTENTS, "extentsMany");
}

/* { results: Float64Array, syscalls: Array<string | undefined> } for runOps() */
static napi_value ops_result(napi_env env, job_t *job) {
  napi_value obj, buf, arr, names, v;
  void *data;
  napi_create_object(env, &obj);
  napi_create_arraybuffer(env, job->npaths * sizeof(double), &data, &buf);
  memcpy(data, job->results, job->npaths * sizeof(double));
  napi_create_typedarray(env, napi_float64_array, job->npaths, buf, 0, &arr);
  napi_set_named_property(env, obj, "results", arr);
  napi_create_array_with_length(env, job->npaths, &names);
  for (uint32_t i = 0; i < job->npaths; i++) {
    if (job->syscalls[i] == NULL) continue;
    napi_create_string_utf8(env, job->syscalls[i], NAPI_AUTO_LENGTH, &v);
    napi_set_element(env, names, i, v);
  }
  napi_set_named_property(env, obj, "syscalls", names);
  return obj;
}

/* runOps(kinds: Uint8Array, srcs: string[], dsts: string[], flags, async) */
static napi_value run_ops(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  napi_typedarray_type type;
  size_t n = 0;
  void *kinds = NULL;
  CHECK(napi_get_typedarray_info(env, argv[0], &type, &n, &kinds, NULL, NULL));
  job_t *job = calloc(1, sizeof *job);
  if (job == NULL) return throw_internal(env);
  job->kind = JOB_OPS;
  size_t m = n ? n : 1;
  job->kinds = malloc(m);
  job->paths = calloc(m, sizeof(char *));
  job->dsts = calloc(m, sizeof(char *));
  job->results = calloc(m, sizeof(double));
  job->syscalls = calloc(m, sizeof(char *));
  if (job->kinds == NULL || job->paths == NULL || job->dsts == NULL || job->results == NULL || job->syscalls == NULL) {
    job_free(job);
    return throw_internal(env);
  }
  memcpy(job->kinds, kinds, n);
  job->npaths = (uint32_t)n;
  job->flags = (uint32_t)get_number(env, argv[3]);
  job->lane = take_lane(&job->flags, &job->raw);
  if (!get_paths(env, argv[1], (uint32_t)n, job->paths, &job->paths_arena, job->raw, "runOps") ||
      !get_paths(env, argv[2], (uint32_t)n, job->dsts, &job->dsts_arena, job->raw, "runOps")) {
    job_free(job);
    return NULL;
  }
  bool async = false;
  napi_get_value_bool(env, argv[4], &async);
  return job_finish(env, job, async);
}

static napi_value typed(napi_env env, napi_typedarray_type type, size_t n, size_t size, void **data) {
  napi_value buf, arr;
  napi_create_arraybuffer(env, n * size, data, &buf);
  napi_create_typedarray(env, type, n, buf, 0, &arr);
  return arr;
}

/* All the directories' entries one after the other: { dirs: Uint32Array (entries of each
 * directory), dirErrnos: Int32Array, dirSyscalls, names: string[], stats: Float64Array [mode, dev,
 * ino, size, nlink] * n } and, with CF_SCAN_EXTENTS, { counts, errnos, extents } as
 * extentsMany() gives them, one per entry. */
static napi_value scan_result(napi_env env, job_t *job) {
  napi_value obj, names, syscalls, v;
  uint32_t *dirs, total = 0;
  int32_t *dir_errnos;
  uint8_t *dir_on_dest;
  size_t next = 0;
  for (uint32_t i = 0; i < job->npaths; i++) {
    total += job->nents[i];
    for (uint32_t k = 0; k < job->nents[i]; k++) next += job->ents[i][k].ext_count;
  }
  double *d;
  napi_create_object(env, &obj);
  napi_set_named_property(env, obj, "dirs", typed(env, napi_uint32_array, job->npaths, sizeof(uint32_t), (void **)&dirs));
  napi_set_named_property(env, obj, "dirErrnos", typed(env, napi_int32_array, job->npaths, sizeof(int32_t), (void **)&dir_errnos));
  napi_set_named_property(env, obj, "dirOnDest", typed(env, napi_uint8_array, job->npaths, 1, (void **)&dir_on_dest));
  napi_create_array_with_length(env, job->npaths, &syscalls);
  napi_create_array_with_length(env, total, &names);
  napi_set_named_property(env, obj, "stats", typed(env, napi_float64_array, (size_t)total * 5, sizeof(double), (void **)&d));
  uint32_t *counts = NULL;
  int32_t *errnos = NULL;
  double *x = NULL;
  if (job->flags & CF_SCAN_EXTENTS) {
    napi_set_named_property(env, obj, "counts", typed(env, napi_uint32_array, total, sizeof(uint32_t), (void **)&counts));
    napi_set_named_property(env, obj, "errnos", typed(env, napi_int32_array, total, sizeof(int32_t), (void **)&errnos));
    napi_set_named_property(env, obj, "extents", typed(env, napi_float64_array, next * 4, sizeof(double), (void **)&x));
  }
  uint32_t at = 0;
  for (uint32_t i = 0; i < job->npaths; i++) {
    dirs[i] = job->nents[i];
    dir_errnos[i] = job->errnums[i];
    dir_on_dest[i] = job->dir_on_dest[i];
    if (job->dir_syscalls[i] != NULL) {
      napi_create_string_utf8(env, job->dir_syscalls[i], NAPI_AUTO_LENGTH, &v);
      napi_set_element(env, syscalls, i, v);
    }
    for (uint32_t k = 0; k < job->nents[i]; k++, at++) {
      cf_dirent *e = &job->ents[i][k];
      /* Measuring, a file's name is wanted only for an error: tens of thousands of strings
       * fewer for a large tree (`names` has holes there). */
      if (counts == NULL || !S_ISREG(e->mode) || e->ext_err != 0) {
        (job->raw ? napi_create_string_latin1 : napi_create_string_utf8)(env, job->namebufs[i] + e->name, NAPI_AUTO_LENGTH, &v);
        napi_set_element(env, names, at, v);
      }
      d[at * 5] = e->mode;
      d[at * 5 + 1] = (double)e->dev;
      d[at * 5 + 2] = (double)e->ino;
      d[at * 5 + 3] = (double)e->size;
      d[at * 5 + 4] = (double)e->nlink;
      if (counts == NULL) continue;
      counts[at] = e->ext_count;
      errnos[at] = e->ext_err;
      for (uint32_t j = 0; j < e->ext_count; j++, x += 4) {
        x[0] = (double)e->ext[j].logical;
        x[1] = (double)e->ext[j].physical;
        x[2] = (double)e->ext[j].length;
        x[3] = (double)e->ext[j].flags;
      }
    }
  }
  napi_set_named_property(env, obj, "dirSyscalls", syscalls);
  napi_set_named_property(env, obj, "names", names);
  return obj;
}

/* A scan of `n` directories, paths still to be filled in. */
static job_t *scan_job(uint32_t n) {
  job_t *job = calloc(1, sizeof *job);
  if (job == NULL) return NULL;
  job->kind = JOB_SCAN;
  size_t m = n ? n : 1;
  job->paths = calloc(m, sizeof(char *));
  job->ents = calloc(m, sizeof(cf_dirent *));
  job->namebufs = calloc(m, sizeof(char *));
  job->nents = calloc(m, sizeof(uint32_t));
  job->errnums = calloc(m, sizeof(int32_t));
  job->dir_syscalls = calloc(m, sizeof(char *));
  job->dir_on_dest = calloc(m, 1);
  job->npaths = n;
  if (job->paths && job->ents && job->namebufs && job->nents && job->errnums && job->dir_syscalls && job->dir_on_dest) return job;
  job_free(job);
  return NULL;
}

/* scanDir(path, how: CF_SCAN_* bits): one directory, here and now; a failure throws. */
static napi_value scan_dir(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], result;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  job_t *job = scan_job(1);
  if (job == NULL) return throw_internal(env);
  job->flags = (uint32_t)get_number(env, argv[1]);
  (void)take_lane(&job->flags, &job->raw);
  if ((job->paths[0] = get_path_as(env, argv[0], job->raw)) == NULL) {
    job_free(job);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "scanDir: path must be a string or Buffer");
    return NULL;
  }
  job_run_now(job);
  if (job->errnums[0] != 0) {
    cf_error e = {job->errnums[0], job->dir_syscalls[0], 0};
    napi_throw(env, make_error(env, &e));
    job_free(job);
    return NULL;
  }
  result = scan_result(env, job);
  job_free(job);
  return result;
}

/* Reads makes[] (a path, or undefined: nothing to make) and modes (Uint32Array) of scanDirs. */
static bool get_makes(napi_env env, napi_value array, napi_value modes, job_t *job) {
  napi_typedarray_type type;
  size_t n = 0;
  void *data = NULL;
  if (napi_get_typedarray_info(env, modes, &type, &n, &data, NULL, NULL) != napi_ok || type != napi_uint32_array || n < job->npaths) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "scanDirs: modes must be a Uint32Array, one per path");
    return false;
  }
  size_t m = job->npaths ? job->npaths : 1;
  job->makes = calloc(m, sizeof(char *));
  job->modes = malloc(m * sizeof(uint32_t));
  if (job->makes == NULL || job->modes == NULL) {
    throw_internal(env);
    return false;
  }
  memcpy(job->modes, data, job->npaths * sizeof(uint32_t));
  for (uint32_t i = 0; i < job->npaths; i++) {
    napi_value v;
    napi_valuetype t;
    if (napi_get_element(env, array, i, &v) != napi_ok || napi_typeof(env, v, &t) != napi_ok) {
      throw_internal(env);
      return false;
    }
    if (t == napi_undefined) continue;
    if ((job->makes[i] = get_path_as(env, v, job->raw)) == NULL) {
      napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "scanDirs: directories to make must be strings or Buffers");
      return false;
    }
  }
  return true;
}

/* scanDirs(paths[], how, async, makes?, modes?): many directories in one trip to the thread
 * pool; where makes[i] is given, that directory is made first (mode modes[i]). */
static napi_value scan_dirs(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint32_t n = 0;
  CHECK(napi_get_array_length(env, argv[0], &n));
  job_t *job = scan_job(n);
  if (job == NULL) return throw_internal(env);
  napi_valuetype makes_type = napi_undefined;
  if (argc >= 5) napi_typeof(env, argv[3], &makes_type);
  job->flags = (uint32_t)get_number(env, argv[1]);
  job->lane = take_lane(&job->flags, &job->raw);
  if (!get_paths(env, argv[0], n, job->paths, &job->paths_arena, job->raw, "scanDirs") ||
      (makes_type != napi_undefined && !get_makes(env, argv[3], argv[4], job))) {
    job_free(job);
    return NULL;
  }
  bool async = false;
  napi_get_value_bool(env, argv[2], &async);
  return job_finish(env, job, async);
}

/* { allocated, privateSize: Float64Array, cloneId, extFlags: BigUint64Array, cloneRefcount,
 * known: Uint32Array, errnos: Int32Array } for fileSpace(), one element per path. The ids and
 * flags are 64-bit: a double would round them. */
static napi_value space_result(napi_env env, job_t *job) {
  napi_value obj;
  size_t n = job->npaths;
  double *allocated, *private_size;
  uint64_t *clone_id, *ext_flags;
  uint32_t *refcount, *known;
  int32_t *errnos;
  napi_create_object(env, &obj);
  napi_set_named_property(env, obj, "allocated", typed(env, napi_float64_array, n, sizeof(double), (void **)&allocated));
  napi_set_named_property(env, obj, "privateSize", typed(env, napi_float64_array, n, sizeof(double), (void **)&private_size));
  napi_set_named_property(env, obj, "cloneId", typed(env, napi_biguint64_array, n, sizeof(uint64_t), (void **)&clone_id));
  napi_set_named_property(env, obj, "extFlags", typed(env, napi_biguint64_array, n, sizeof(uint64_t), (void **)&ext_flags));
  napi_set_named_property(env, obj, "cloneRefcount", typed(env, napi_uint32_array, n, sizeof(uint32_t), (void **)&refcount));
  napi_set_named_property(env, obj, "known", typed(env, napi_uint32_array, n, sizeof(uint32_t), (void **)&known));
  napi_set_named_property(env, obj, "errnos", typed(env, napi_int32_array, n, sizeof(int32_t), (void **)&errnos));
  for (size_t i = 0; i < n; i++) {
    const cf_file_space *sp = &job->spaces[i];
    allocated[i] = (double)sp->allocated;
    private_size[i] = (double)sp->private_size;
    clone_id[i] = sp->clone_id;
    ext_flags[i] = sp->ext_flags;
    refcount[i] = sp->clone_refcount;
    known[i] = sp->known;
    errnos[i] = job->errnums[i];
  }
  return obj;
}

/* fileSpace(paths: Array<string | Buffer>, async): what the filesystem says of each file's
 * space, in one trip (ENOTSUP in errnos off macOS). */
static napi_value file_space(napi_env env, napi_callback_info info) {
  return paths_call(env, info, JOB_SPACE, "fileSpace");
}

/* rename(from, to, noreplace) */
static napi_value rename_path(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char *from = get_path(env, argv[0]);
  char *to = get_path(env, argv[1]);
  bool noreplace = false, bad = from == NULL || to == NULL;
  napi_get_value_bool(env, argv[2], &noreplace);
  cf_error err;
  int rc = bad ? 0 : cf_rename(from, to, noreplace, &err);
  free(from);
  free(to);
  if (bad) return throw_internal(env);
  if (rc < 0) napi_throw(env, make_error(env, &err));
  return NULL;
}

static void instance_free(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free(data);
}

static napi_value init(napi_env env, napi_value exports) {
  uv_once(&lane_once, lane_init);
  instance_t *inst = calloc(1, sizeof *inst);
  napi_value name;
  if (inst == NULL || napi_create_string_utf8(env, "clonefile lanes", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_threadsafe_function(env, NULL, NULL, name, 0, 1, NULL, NULL, NULL, lane_job_done, &inst->settle) != napi_ok ||
      napi_unref_threadsafe_function(env, inst->settle) != napi_ok ||
      napi_set_instance_data(env, inst, instance_free, NULL) != napi_ok) {
    free(inst);
    return NULL;
  }
  napi_property_descriptor props[] = {
      {"cloneFile", NULL, clone_file, NULL, NULL, NULL, napi_enumerable, NULL},
      {"cloneRange", NULL, clone_range, NULL, NULL, NULL, napi_enumerable, NULL},
      {"dedupeRange", NULL, dedupe_range, NULL, NULL, NULL, napi_enumerable, NULL},
      {"fsInfo", NULL, fs_info, NULL, NULL, NULL, napi_enumerable, NULL},
      {"extents", NULL, extents, NULL, NULL, NULL, napi_enumerable, NULL},
      {"extentsMany", NULL, extents_many, NULL, NULL, NULL, napi_enumerable, NULL},
      {"runOps", NULL, run_ops, NULL, NULL, NULL, napi_enumerable, NULL},
      {"scanDir", NULL, scan_dir, NULL, NULL, NULL, napi_enumerable, NULL},
      {"scanDirs", NULL, scan_dirs, NULL, NULL, NULL, napi_enumerable, NULL},
      {"fileSpace", NULL, file_space, NULL, NULL, NULL, napi_enumerable, NULL},
      {"rename", NULL, rename_path, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  if (napi_define_properties(env, exports, sizeof props / sizeof props[0], props) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
