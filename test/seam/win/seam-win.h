/* The Windows seam: force-included into win.c compiled by gcc on Linux. The fake headers in
 * this directory (windows.h, aclapi.h, winioctl.h, uv.h, io.h) stand in for the SDK's;
 * win-fake.c implements the calls on the Linux filesystem (ARCHITECTURE.md, "The syscall
 * seam"). */
#ifndef SEAM_WIN_H
#define SEAM_WIN_H
#define _GNU_SOURCE
#include <errno.h>
#endif
