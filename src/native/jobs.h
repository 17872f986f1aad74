/*
 * What every native call of the addon is: a job of one kind. jobs.c holds the table of kinds
 * (each one its args struct, its parse, run, result and free functions); binding.c is the N-API
 * glue that runs any of them, here and now or on the thread pool, and the argument readers and
 * result builders declared below that the kinds use. Adding a native call = one row of
 * job_kinds[] and its functions, in jobs.c.
 */
#ifndef CLONEFILE_JOBS_H
#define CLONEFILE_JOBS_H

#include <node_api.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "platform.h"

/* Bits of a call's flags (runOps) or `how` (scanDirs, openDir) that the glue handles itself. */
#define JOB_LANE_SHIFT 26
#define JOB_LANE_MASK (15u << JOB_LANE_SHIFT) /* 1-15: the lane to run in (src/binding.ts: lane()) */
#define LANES 15
/* Names given as strings are byte strings, one character (U+0000-U+00FF) per byte of the name
 * as the filesystem has it (Latin-1 in N-API's terms), and names come back so: a name that is
 * not UTF-8 survives the trip through JavaScript. */
#define JOB_RAW (1u << 30)

/* The most arguments any call takes (runOps). */
#define JOB_MAX_ARGS 9

struct job_kind;
struct instance;

/* What every job has. A kind's args struct begins with it (its first member, `job`). */
typedef struct job {
  const struct job_kind *kind;
  int lane;        /* 0, or the lane it runs in (async only) */
  bool raw;        /* JOB_RAW: strings in and out are byte strings */
  int64_t result;  /* >= 0: done (a count, a descriptor); < 0: failed as `err` says */
  cf_error err;
  /* a shared Int32Array whose [0] turns non-zero to stop a batch, held by `cancel_ref` for the
   * job's life; NULL when none was given */
  volatile int32_t *cancel;
  napi_ref cancel_ref;
  /* binding.c's: the async work, its promise, and a lane job's queue link, instance, and how
   * many of {settled, async work completed} are still to come */
  napi_async_work work;
  napi_deferred deferred;
  struct job *next;
  struct instance *inst;
  int holds;
} job_t;

typedef struct job_kind {
  const char *name; /* the export */
  size_t size;      /* of the args struct, zeroed before parse */
  int async_arg;    /* the index of the `async` argument, or -1: always synchronous */
  /* On the JavaScript thread: reads argv (JOB_MAX_ARGS, undefined where not given) into the
   * job; false after throwing (free is still called). */
  bool (*parse)(napi_env env, napi_value *argv, job_t *job);
  /* On a worker thread (or the JavaScript thread, synchronously): no N-API here. */
  void (*run)(job_t *job);
  /* On the JavaScript thread, for a job whose result is >= 0. */
  napi_value (*result)(napi_env env, job_t *job);
  /* Frees what parse and run allocated (not the struct); NULL when nothing. */
  void (*free)(job_t *job);
} job_kind;

/* jobs.c: the kinds, ended by a row whose name is NULL. */
extern const job_kind job_kinds[];

/* ---- binding.c: argument readers (each throws a TypeError naming the job's call and returns
 * false or NULL on a bad argument; strings are byte strings where job->raw is set) ---- */

/* Many entries addressed as cf_at, from an Int32Array of directories and a string of as many
 * names joined by NUL characters (read in one conversion into `arena`). */
typedef struct {
  uint32_t n;
  cf_at *at;
  char *arena;
} job_ats;

double arg_number(napi_env env, napi_value value);
bool arg_bool(napi_env env, napi_value value);
bool arg_given(napi_env env, napi_value value); /* neither undefined nor null */
/* A path or name from a string (UTF-8, or bytes with `raw`) or a Buffer: malloc'd. */
char *arg_path(napi_env env, napi_value value, const job_t *job);
/* n names joined by NUL characters: out[i] point into *arena. */
bool arg_names(napi_env env, napi_value value, uint32_t n, const job_t *job, const char ***out, char **arena);
bool arg_typed(napi_env env, napi_value value, napi_typedarray_type type, void **data, size_t *n,
               const job_t *job);
bool arg_ats(napi_env env, napi_value dirs, napi_value names, const job_t *job, job_ats *out);
void job_ats_free(job_ats *ats);
/* An optional cancel flag (Int32Array), held for the job's life. */
bool arg_cancel(napi_env env, napi_value value, job_t *job);
/* Takes the lane and JOB_RAW bits out of flags into the job; returns the rest. */
uint32_t job_flags(job_t *job, uint32_t flags);
/* calloc of max(n, 1) elements; NULL after throwing when memory runs out. */
void *job_calloc(napi_env env, size_t n, size_t size);

/* ---- binding.c: result builders ---- */

napi_value new_typed(napi_env env, napi_typedarray_type type, size_t n, size_t size, void **data);
napi_value new_string(napi_env env, const char *s, bool raw);
void set_value(napi_env env, napi_value obj, const char *key, napi_value value);
void set_number(napi_env env, napi_value obj, const char *key, double n);
/* job->result as a number; undefined. */
napi_value job_number_result(napi_env env, job_t *job);
napi_value job_undefined_result(napi_env env, job_t *job);

#endif
