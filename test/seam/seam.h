/* The controls both seams give their test programs: injected failures and the call log. */
#ifndef SEAM_H
#define SEAM_H
/* Every later call of `call` fails with `err` (an errno, or a Win32 ERROR_* for the Windows
 * seam) until seam_reset(); `after` calls succeed first. */
void seam_inject(const char *call, long err, int after);
/* The next call of `call` runs fn first (once): a change made "meanwhile", between two calls of
 * the code under test. */
void seam_on(const char *call, void (*fn)(void));
/* Forgets injections, hooks and the call log. */
void seam_reset(void);
/* How many calls of `call` were made since seam_reset(), and the flags/argument of the last. */
int seam_count(const char *call);
unsigned long seam_last_arg(const char *call);
/* For the fakes: records a call of `call` (and its argument), and returns the failure injected
 * for it now (an errno or ERROR_*), or 0 when it may go on. */
long seam_enter(const char *call, unsigned long arg);
#endif
