/*
 * Forced include (-include) for the windows-gnu compiles of scripts/check-cross.sh: makes
 * mingw-w64's headers behave like MSVC's CRT (the Universal CRT that node-gyp builds with)
 * where they differ, so that code that would not build under MSVC fails the check here.
 *
 * What MSVC's CRT lacks, from Microsoft's docs ("Compatibility", "POSIX functions" and the
 * pages of <sys/stat.h>, <io.h>, <string.h> of the CRT reference, learn.microsoft.com/cpp/c-runtime-library):
 * - <sys/stat.h> defines only S_IFMT, S_IFDIR, S_IFCHR, S_IFREG, S_IREAD/S_IWRITE/S_IEXEC (and
 *   the _S_ forms, _S_IFIFO): no S_ISREG/S_ISDIR/... macros, no S_IFLNK, S_IFSOCK, S_IFBLK,
 *   no S_IRUSR-style bits, no mode_t type outside <sys/types.h>' unsigned short _mode_t;
 * - no ssize_t (the CRT uses int / SSIZE_T of <BaseTsd.h>, which is uppercase);
 * - no strcasecmp / strncasecmp (_stricmp / _strnicmp), strndup, strtok_r (strtok_s),
 *   no pread / pwrite, readlink, fsync (_commit), usleep, gettimeofday (poisoned below; link,
 *   symlink and sleep are missing too but are common local names, so are left to the linker),
 *   clock_gettime was added late; no O_CLOEXEC, O_NOFOLLOW, O_DIRECTORY; no PATH_MAX (MAX_PATH,
 *   _MAX_PATH); no <unistd.h>, <dirent.h>, <strings.h>, <pthread.h>, <sys/time.h> at all (the
 *   directory scripts/msvc-crt shadows those with #error headers).
 *
 * Everything the sources include is included first, here, so that the poison below applies
 * to the project's code and not to the system headers themselves.
 */
#ifndef CLONEFILE_MSVC_CRT_H
#define CLONEFILE_MSVC_CRT_H

#define WIN32_LEAN_AND_MEAN
#include <windows.h>
#include <aclapi.h>
#include <errno.h>
#include <io.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <wchar.h>
#include <winioctl.h>
#include <node_api.h>
#include <uv.h>

/* mingw defines these; MSVC does not: a use is a compile error from here on. */
#undef S_ISREG
#undef S_ISDIR
#undef S_ISLNK
#undef S_ISCHR
#undef S_ISBLK
#undef S_ISFIFO
#undef S_ISSOCK
#undef S_IFLNK
#undef S_IFSOCK
#undef S_IFBLK
#undef S_IRUSR
#undef S_IWUSR
#undef S_IXUSR
#undef S_IRWXU
#undef O_CLOEXEC
#undef O_NOFOLLOW
#undef O_DIRECTORY
#undef PATH_MAX
#undef strcasecmp
#undef strncasecmp
#pragma GCC poison S_ISREG S_ISDIR S_ISLNK S_ISCHR S_ISBLK S_ISFIFO S_ISSOCK
#pragma GCC poison S_IFLNK S_IFSOCK S_IFBLK S_IRUSR S_IWUSR S_IXUSR S_IRWXU
#pragma GCC poison O_CLOEXEC O_NOFOLLOW O_DIRECTORY PATH_MAX
#pragma GCC poison ssize_t mode_t
#pragma GCC poison strcasecmp strncasecmp strndup strtok_r
#pragma GCC poison pread pwrite readlink fsync usleep gettimeofday

#endif
