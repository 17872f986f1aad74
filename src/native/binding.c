/*
 * N-API glue: every export is a job kind of jobs.c, run by one callback (job_call) here and now
 * or on the libuv thread pool; a failure becomes a thrown object { errno, syscall, onDest,
 * bytesWritten? } that src/errors.ts makes into a Node-style error. Also here: the argument
 * readers and result builders the job kinds use (jobs.h).
 */
#include <errno.h>
#include <node_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "jobs.h"

/* Lanes (async jobs only): the jobs of one lane run one after another, in the order of the
 * calls, whatever the size of the thread pool; jobs of different lanes run side by side. A
 * caller chooses how many run at once, and which jobs never run together (filesystems whose
 * metadata updates contend gain from fewer at once; and on XFS two jobs creating files in one
 * allocation group wait for each other). A job whose lane is taken is queued there and its pool
 * thread goes back to the pool at once, free for any other work of the process; the thread
 * that has the lane runs the queued jobs after its own, with no wake-up in between (that costs
 * some 0.1 ms, as long as a small job), until the lane is empty. Every lane job's promise is
 * settled on the JavaScript thread through a thread-safe function, as soon as the job is done. */
typedef struct {
  job_t *head, *tail;
  int busy; /* a thread has the lane */
} lane_t;
static uv_once_t lane_once = UV_ONCE_INIT;
static uv_mutex_t lane_lock;
static lane_t lanes[LANES + 1];
static void lane_init(void) {
  uv_mutex_init(&lane_lock);
}

/* Per module instance: the thread-safe function that settles lane jobs, referenced (keeping
 * the process alive) while any are outstanding. */
typedef struct instance {
  napi_threadsafe_function settle;
  uint32_t outstanding;
} instance_t;

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

static bool throw_type(napi_env env, const char *who, const char *what) {
  char message[160];
  snprintf(message, sizeof message, "%s: %s", who, what);
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", message);
  return false;
}

static napi_value make_error(napi_env env, const cf_error *err) {
  napi_value obj, msg, v;
  const char *syscall = err->syscall != NULL ? err->syscall : "unknown";
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, NULL, msg, &obj);
  napi_create_int32(env, err->errnum, &v);
  set_value(env, obj, "errno", v);
  set_value(env, obj, "syscall", msg);
  napi_get_boolean(env, err->on_dest != 0, &v);
  set_value(env, obj, "onDest", v);
  if (err->bytes != 0) set_number(env, obj, "bytesWritten", (double)err->bytes);
  return obj;
}

/* ---- argument readers ---- */

double arg_number(napi_env env, napi_value value) {
  double d = 0;
  napi_get_value_double(env, value, &d);
  return d;
}

bool arg_bool(napi_env env, napi_value value) {
  bool b = false;
  napi_get_value_bool(env, value, &b);
  return b;
}

bool arg_given(napi_env env, napi_value value) {
  napi_valuetype type = napi_undefined;
  napi_typeof(env, value, &type);
  return type != napi_undefined && type != napi_null;
}

/* The bytes of a string (*len of them, NUL-terminated): UTF-8, or with `raw` one byte per
 * character. NULL if it is not a string or memory runs out. */
static char *get_string(napi_env env, napi_value value, bool raw, size_t *len) {
  napi_status (*get)(napi_env, napi_value, char *, size_t, size_t *) =
      raw ? napi_get_value_string_latin1 : napi_get_value_string_utf8;
  if (get(env, value, NULL, 0, len) != napi_ok) return NULL;
  char *s = malloc(*len + 1);
  if (s != NULL) get(env, value, s, *len + 1, len);
  return s;
}

/* A string, or a Buffer's bytes as they are (for names that are not UTF-8). */
static char *get_path(napi_env env, napi_value value, bool raw) {
  size_t len = 0;
  char *s = get_string(env, value, raw, &len);
  bool is_buffer = false;
  void *data;
  if (s != NULL || napi_is_buffer(env, value, &is_buffer) != napi_ok || !is_buffer ||
      napi_get_buffer_info(env, value, &data, &len) != napi_ok || (s = malloc(len + 1)) == NULL) return s;
  memcpy(s, data, len);
  s[len] = '\0';
  return s;
}

char *arg_path(napi_env env, napi_value value, const job_t *job) {
  char *s = get_path(env, value, job->raw);
  if (s == NULL) throw_type(env, job->kind->name, "paths must be strings or Buffers");
  return s;
}

bool arg_names(napi_env env, napi_value value, uint32_t n, const job_t *job, const char ***out, char **arena) {
  size_t len = 0;
  if ((*arena = get_string(env, value, job->raw, &len)) == NULL) return throw_type(env, job->kind->name, "names must be a string");
  if ((*out = job_calloc(env, n, sizeof(char *))) == NULL) return false;
  const char *p = *arena, *end = *arena + len;
  for (uint32_t i = 0; i < n; i++) {
    if (p > end) return throw_type(env, job->kind->name, "fewer joined names than entries");
    (*out)[i] = p;
    p += strlen(p) + 1;
  }
  return true;
}

bool arg_typed(napi_env env, napi_value value, napi_typedarray_type type, void **data, size_t *n,
               const job_t *job) {
  napi_typedarray_type actual;
  bool is_typed = false;
  if (napi_is_typedarray(env, value, &is_typed) != napi_ok || !is_typed ||
      napi_get_typedarray_info(env, value, &actual, n, data, NULL, NULL) != napi_ok || actual != type)
    return throw_type(env, job->kind->name, "a typed array is not of the expected type");
  return true;
}

bool arg_ats(napi_env env, napi_value dirs, napi_value names, const job_t *job, job_ats *out) {
  int32_t *fds;
  size_t n = 0;
  const char **list = NULL;
  if (!arg_typed(env, dirs, napi_int32_array, (void **)&fds, &n, job)) return false;
  out->n = (uint32_t)n;
  bool ok = (out->at = job_calloc(env, n, sizeof(cf_at))) != NULL &&
            arg_names(env, names, out->n, job, &list, &out->arena);
  for (uint32_t i = 0; ok && i < out->n; i++) out->at[i] = (cf_at){fds[i], list[i]};
  free((void *)list);
  return ok;
}

void job_ats_free(job_ats *ats) {
  free(ats->at);
  free(ats->arena);
}

bool arg_cancel(napi_env env, napi_value value, job_t *job) {
  size_t n = 0;
  void *data;
  if (!arg_given(env, value)) return true;
  if (!arg_typed(env, value, napi_int32_array, &data, &n, job)) return false;
  if (n < 1) return throw_type(env, job->kind->name, "cancel must have an element");
  if (napi_create_reference(env, value, 1, &job->cancel_ref) != napi_ok) return throw_internal(env), false;
  job->cancel = data;
  return true;
}

uint32_t job_flags(job_t *job, uint32_t flags) {
  job->lane = (int)((flags & JOB_LANE_MASK) >> JOB_LANE_SHIFT);
  job->raw = (flags & JOB_RAW) != 0;
  return flags & ~(JOB_LANE_MASK | JOB_RAW);
}

void *job_calloc(napi_env env, size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size);
  if (p == NULL) napi_throw_error(env, "ERR_CLONEFILE_NATIVE", "out of memory");
  return p;
}

/* ---- result builders ---- */

napi_value new_typed(napi_env env, napi_typedarray_type type, size_t n, size_t size, void **data) {
  napi_value buf, arr;
  napi_create_arraybuffer(env, n * size, data, &buf);
  napi_create_typedarray(env, type, n, buf, 0, &arr);
  return arr;
}

napi_value new_string(napi_env env, const char *s, bool raw) {
  napi_value v;
  (raw ? napi_create_string_latin1 : napi_create_string_utf8)(env, s, NAPI_AUTO_LENGTH, &v);
  return v;
}

void set_value(napi_env env, napi_value obj, const char *key, napi_value value) {
  napi_set_named_property(env, obj, key, value);
}

void set_number(napi_env env, napi_value obj, const char *key, double n) {
  napi_value v;
  napi_create_double(env, n, &v);
  napi_set_named_property(env, obj, key, v);
}

napi_value job_number_result(napi_env env, job_t *job) {
  napi_value v;
  napi_create_double(env, (double)job->result, &v);
  return v;
}

napi_value job_undefined_result(napi_env env, job_t *job) {
  (void)job;
  napi_value v;
  napi_get_undefined(env, &v);
  return v;
}

/* ---- running jobs ---- */

static void job_free(napi_env env, job_t *job) {
  if (job->cancel_ref != NULL) napi_delete_reference(env, job->cancel_ref);
  if (job->kind->free != NULL) job->kind->free(job);
  free(job);
}

/* On the JavaScript thread, as the job is queued: the lane's queue is in the order of the
 * calls, whichever pool thread starts first. */
static void lane_push(job_t *job) {
  lane_t *lane = &lanes[job->lane];
  uv_mutex_lock(&lane_lock);
  job->next = NULL;
  if (lane->tail != NULL) lane->tail->next = job;
  else lane->head = job;
  lane->tail = job;
  uv_mutex_unlock(&lane_lock);
}

/* Takes a job out of its lane's queue where it still waits there (its async work was
 * cancelled); false where a lane thread has taken it (and will settle it). */
static bool lane_unqueue(job_t *job) {
  lane_t *lane = &lanes[job->lane];
  job_t *prev = NULL;
  bool found = false;
  uv_mutex_lock(&lane_lock);
  for (job_t **p = &lane->head; *p != NULL; prev = *p, p = &(*p)->next) {
    if (*p != job) continue;
    *p = job->next;
    if (lane->tail == job) lane->tail = prev;
    found = true;
    break;
  }
  uv_mutex_unlock(&lane_lock);
  return found;
}

/* A lane job's turn on a pool thread: where another thread has the lane, it runs this job in
 * its turn; else this thread takes the lane and runs every job queued there, each settled as
 * soon as it is done. */
static void lane_run(int number) {
  lane_t *lane = &lanes[number];
  uv_mutex_lock(&lane_lock);
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
    next->kind->run(next);
    napi_call_threadsafe_function(next->inst->settle, next, napi_tsfn_nonblocking);
    uv_mutex_lock(&lane_lock);
  }
  lane->busy = 0;
  uv_mutex_unlock(&lane_lock);
}

static void job_execute(napi_env env, void *data) {
  (void)env;
  job_t *job = data;
  /* A lane job may be run (and settled) by another thread before this one starts: its lane
   * number is read first, and the job not touched after. */
  if (job->lane != 0) lane_run(job->lane);
  else job->kind->run(job);
}

static void job_settle(napi_env env, job_t *job, napi_status status) {
  if (status != napi_ok) {
    cf_error e = {.errnum = ECANCELED, .syscall = "uv_queue_work"};
    napi_reject_deferred(env, job->deferred, make_error(env, &e));
  } else if (job->result < 0) {
    napi_reject_deferred(env, job->deferred, make_error(env, &job->err));
  } else {
    napi_resolve_deferred(env, job->deferred, job->kind->result(env, job));
  }
}

static void lane_job_released(napi_env env, job_t *job) {
  if (--job->holds > 0) return;
  if (--job->inst->outstanding == 0) napi_unref_threadsafe_function(env, job->inst->settle);
  job_free(env, job);
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
    job_free(env, job);
    return;
  }
  /* A lane job is settled by lane_job_done; one whose work was cancelled may still wait in its
   * lane's queue, and is settled here. */
  if (status != napi_ok && lane_unqueue(job)) {
    job_settle(env, job, status);
    job->holds--;
  }
  lane_job_released(env, job);
}

static napi_value job_queue(napi_env env, job_t *job) {
  napi_value promise, name;
  CHECK(napi_create_promise(env, &job->deferred, &promise));
  CHECK(napi_create_string_utf8(env, job->kind->name, NAPI_AUTO_LENGTH, &name));
  CHECK(napi_create_async_work(env, NULL, name, job_execute, job_complete, job, &job->work));
  if (job->lane != 0) {
    CHECK(napi_get_instance_data(env, (void **)&job->inst));
    job->holds = 2;
    lane_push(job);
  }
  if (napi_queue_async_work(env, job->work) != napi_ok) {
    if (job->lane != 0) lane_unqueue(job);
    napi_delete_async_work(env, job->work);
    return throw_internal(env);
  }
  /* (settled on this thread, so never before this) */
  if (job->lane != 0 && job->inst->outstanding++ == 0) napi_ref_threadsafe_function(env, job->inst->settle);
  return promise;
}

/* ---- jobs on a thread of their own, for a synchronous caller ----
 * A synchronous driver (cloneTreeSync, clonefile/fs cpSync) that blocks anyway may have its
 * jobs run side by side: with the async argument "thread" a job starts on a new thread and the
 * call returns a handle at once; finish(handle) waits for that thread and returns the job's
 * result or throws, as the synchronous call would have. No event loop is involved, so the
 * caller needs no turn of it; it must finish every job it started (a handle collected without
 * finish() waits for its thread in the finalizer, then frees the job). */
typedef struct {
  job_t *job;
  uv_thread_t thread;
  int done;     /* its run is over (under started_lock) */
  int finished; /* finish() took it: the job is freed */
} started_t;

/* Every started job's end is announced here, for waitAny(). */
static uv_once_t started_once = UV_ONCE_INIT;
static uv_mutex_t started_lock;
static uv_cond_t started_ended;

static void started_init(void) {
  uv_mutex_init(&started_lock);
  uv_cond_init(&started_ended);
}

static void started_run(void *arg) {
  started_t *s = arg;
  s->job->kind->run(s->job);
  uv_mutex_lock(&started_lock);
  s->done = 1;
  uv_cond_broadcast(&started_ended);
  uv_mutex_unlock(&started_lock);
}

static void started_free(napi_env env, void *data, void *hint) {
  (void)hint;
  started_t *s = data;
  if (!s->finished) {
    uv_thread_join(&s->thread);
    job_free(env, s->job);
  }
  free(s);
}

static bool is_thread_arg(napi_env env, napi_value value) {
  char mode[8];
  size_t n = 0;
  napi_valuetype type = napi_undefined;
  napi_typeof(env, value, &type);
  return type == napi_string && napi_get_value_string_utf8(env, value, mode, sizeof mode, &n) == napi_ok &&
         strcmp(mode, "thread") == 0;
}

static napi_value job_start(napi_env env, job_t *job) {
  started_t *s = job_calloc(env, 1, sizeof *s);
  napi_value handle;
  if (s == NULL) return NULL;
  s->job = job;
  if (uv_thread_create(&s->thread, started_run, s) != 0) {
    free(s);
    return throw_internal(env);
  }
  if (napi_create_external(env, s, started_free, NULL, &handle) != napi_ok) {
    uv_thread_join(&s->thread);
    free(s);
    return throw_internal(env);
  }
  return handle;
}

static napi_value job_finish(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result = NULL;
  started_t *s = NULL;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || napi_get_value_external(env, argv[0], (void **)&s) != napi_ok || s == NULL || s->finished) {
    throw_type(env, "finish", "expects a handle of a started job, not finished yet");
    return NULL;
  }
  job_t *job = s->job;
  uv_thread_join(&s->thread);
  s->finished = 1;
  if (job->result < 0) napi_throw(env, make_error(env, &job->err));
  else result = job->kind->result(env, job);
  job_free(env, job);
  return result;
}

/* waitAny(handles): the index of one of the started jobs whose run is over, waiting until one
 * is (its finish() then returns at once): a caller with several jobs takes each as it ends. */
static napi_value job_wait_any(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  uint32_t n = 0;
  bool is_array = false;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1 || napi_is_array(env, argv[0], &is_array) != napi_ok || !is_array ||
      napi_get_array_length(env, argv[0], &n) != napi_ok || n == 0)
    return throw_type(env, "waitAny", "expects an array of handles of started jobs"), NULL;
  started_t **list = job_calloc(env, n, sizeof *list);
  if (list == NULL) return NULL;
  for (uint32_t i = 0; i < n; i++) {
    napi_value h;
    if (napi_get_element(env, argv[0], i, &h) != napi_ok || napi_get_value_external(env, h, (void **)&list[i]) != napi_ok ||
        list[i] == NULL || list[i]->finished) {
      free(list);
      return throw_type(env, "waitAny", "expects handles of started jobs, not finished yet"), NULL;
    }
  }
  int64_t found = -1;
  uv_mutex_lock(&started_lock);
  while (found < 0) {
    for (uint32_t i = 0; i < n && found < 0; i++)
      if (list[i]->done) found = i;
    if (found < 0) uv_cond_wait(&started_ended, &started_lock);
  }
  uv_mutex_unlock(&started_lock);
  free(list);
  CHECK(napi_create_uint32(env, (uint32_t)found, &result));
  return result;
}

/* Every export: parse the arguments into a job of the kind the export was made for; then run
 * it here and now (a lane says nothing to a synchronous call) and return or throw, queue it
 * and return a promise, or start it on a thread of its own ("thread") and return a handle. */
static napi_value job_call(napi_env env, napi_callback_info info) {
  size_t argc = JOB_MAX_ARGS;
  napi_value argv[JOB_MAX_ARGS], result = NULL;
  const job_kind *kind;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, (void **)&kind));
  job_t *job = job_calloc(env, 1, kind->size);
  if (job == NULL) return NULL;
  job->kind = kind;
  if (!kind->parse(env, argv, job)) {
    job_free(env, job);
    return NULL;
  }
  if (kind->async_arg >= 0 && is_thread_arg(env, argv[kind->async_arg])) {
    if ((result = job_start(env, job)) == NULL) job_free(env, job);
    return result;
  }
  if (kind->async_arg >= 0 && arg_bool(env, argv[kind->async_arg])) {
    if ((result = job_queue(env, job)) == NULL) job_free(env, job);
    return result;
  }
  kind->run(job);
  if (job->result < 0) napi_throw(env, make_error(env, &job->err));
  else result = kind->result(env, job);
  job_free(env, job);
  return result;
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
  napi_value finish, wait_any;
  uv_once(&started_once, started_init);
  if (napi_create_function(env, "finish", NAPI_AUTO_LENGTH, job_finish, NULL, &finish) != napi_ok ||
      napi_set_named_property(env, exports, "finish", finish) != napi_ok ||
      napi_create_function(env, "waitAny", NAPI_AUTO_LENGTH, job_wait_any, NULL, &wait_any) != napi_ok ||
      napi_set_named_property(env, exports, "waitAny", wait_any) != napi_ok)
    return NULL;
  for (const job_kind *kind = job_kinds; kind->name != NULL; kind++) {
    napi_value fn;
    if (napi_create_function(env, kind->name, NAPI_AUTO_LENGTH, job_call, (void *)kind, &fn) != napi_ok ||
        napi_set_named_property(env, exports, kind->name, fn) != napi_ok)
      return NULL;
  }
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
