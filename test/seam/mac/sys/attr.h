/* The seam's <sys/attr.h>: the getattrlist(2) types and bits mac.c uses (values of the macOS
 * SDK). The fake answers only VOL_CAP_INT_CLONE and ENOTSUP for per-file space. */
#ifndef SEAM_SYS_ATTR_H
#define SEAM_SYS_ATTR_H
#include <stddef.h>
#include <stdint.h>
typedef uint32_t attrgroup_t;
struct attrlist {
  unsigned short bitmapcount, reserved;
  attrgroup_t commonattr, volattr, dirattr, fileattr, forkattr;
};
typedef struct attribute_set {
  attrgroup_t commonattr, volattr, dirattr, fileattr, forkattr;
} attribute_set_t;
typedef uint32_t vol_capabilities_set_t[4];
typedef struct vol_capabilities_attr {
  vol_capabilities_set_t capabilities, valid;
} vol_capabilities_attr_t;
#define ATTR_BIT_MAP_COUNT 5
#define ATTR_VOL_INFO 0x80000000
#define ATTR_VOL_CAPABILITIES 0x00020000
#define VOL_CAPABILITIES_INTERFACES 1
#define VOL_CAP_INT_CLONE 0x00010000
#define ATTR_CMN_RETURNED_ATTRS 0x80000000
#define ATTR_CMN_CRTIME 0x00000200
#define ATTR_FILE_ALLOCSIZE 0x00000004
#define ATTR_CMNEXT_PRIVATESIZE 0x00000008
#define FSOPT_NOFOLLOW 0x00000001
#define FSOPT_ATTR_CMN_EXTENDED 0x00000020
int getattrlist(const char *path, void *list, void *buf, size_t size, unsigned int options);
int getattrlistat(int fd, const char *path, void *list, void *buf, size_t size, unsigned long options);
int fgetattrlist(int fd, void *list, void *buf, size_t size, unsigned int options);
int fsetattrlist(int fd, void *list, void *buf, size_t size, unsigned int options);
#endif
