/* The seam's <uv.h>: uv_get_osfhandle, which answers for Node's descriptors. */
#ifndef SEAM_UV_H
#define SEAM_UV_H
#include <windows.h>
typedef HANDLE uv_os_fd_t;
uv_os_fd_t uv_get_osfhandle(int fd);
#endif
