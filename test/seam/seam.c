/* The call log and the injected failures both seams share (seam.h). */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "seam.h"

enum { MAX = 64 };
static struct {
  char call[48];
  long err;
  int after;
} inj[MAX];
static int n_inj;
static struct {
  char call[48];
  int count;
  unsigned long arg;
} log_[MAX];
static int n_log;
static struct {
  char call[48];
  void (*fn)(void);
} hook;

void seam_inject(const char *call, long err, int after) {
  if (n_inj < MAX) {
    snprintf(inj[n_inj].call, sizeof inj[n_inj].call, "%s", call);
    inj[n_inj].err = err;
    inj[n_inj++].after = after;
  }
}

void seam_on(const char *call, void (*fn)(void)) {
  snprintf(hook.call, sizeof hook.call, "%s", call);
  hook.fn = fn;
}

void seam_reset(void) {
  n_inj = n_log = 0;
  hook.fn = NULL;
}

int seam_count(const char *call) {
  for (int i = 0; i < n_log; i++)
    if (strcmp(log_[i].call, call) == 0) return log_[i].count;
  return 0;
}

unsigned long seam_last_arg(const char *call) {
  for (int i = 0; i < n_log; i++)
    if (strcmp(log_[i].call, call) == 0) return log_[i].arg;
  return 0;
}

long seam_enter(const char *call, unsigned long arg) {
  if (hook.fn != NULL && strcmp(hook.call, call) == 0) {
    void (*fn)(void) = hook.fn;
    hook.fn = NULL;
    fn();
  }
  int i;
  for (i = 0; i < n_log && strcmp(log_[i].call, call) != 0; i++) {}
  if (i == n_log && n_log < MAX) {
    snprintf(log_[n_log].call, sizeof log_[0].call, "%s", call);
    log_[n_log++].count = 0;
  }
  if (i < MAX) log_[i].count++, log_[i].arg = arg;
  for (int j = 0; j < n_inj; j++)
    if (strcmp(inj[j].call, call) == 0) {
      if (inj[j].after > 0) {
        inj[j].after--;
        return 0;
      }
      return inj[j].err;
    }
  return 0;
}
