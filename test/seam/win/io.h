/* The seam's <io.h>: _get_osfhandle of the addon's own CRT, which knows none of Node's fds. */
#ifndef SEAM_IO_H
#define SEAM_IO_H
#include <stdint.h>
intptr_t _get_osfhandle(int fd);
#endif
