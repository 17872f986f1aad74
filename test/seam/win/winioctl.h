/* The seam's <winioctl.h>: the FSCTL codes (Windows SDK values). */
#ifndef SEAM_WINIOCTL_H
#define SEAM_WINIOCTL_H
#define FSCTL_SET_SPARSE 0x000900C4
#define FSCTL_GET_REPARSE_POINT 0x000900A8
#define FSCTL_SET_REPARSE_POINT 0x000900A4
#endif
