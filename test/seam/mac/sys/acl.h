/* The seam's <sys/acl.h>: the acl(3) calls mac.c uses; the fake keeps no ACLs (ENOENT). */
#ifndef SEAM_SYS_ACL_H
#define SEAM_SYS_ACL_H
typedef struct seam_acl *acl_t;
typedef enum { ACL_TYPE_EXTENDED = 0x100 } acl_type_t;
acl_t acl_get_fd_np(int fd, acl_type_t type);
int acl_set_fd_np(int fd, acl_t acl, acl_type_t type);
int acl_free(void *obj);
acl_t acl_init(int count);
#endif
