/* The seam's <aclapi.h>: the two calls win.c makes; the fake keeps no DACLs. */
#ifndef SEAM_ACLAPI_H
#define SEAM_ACLAPI_H
#include <windows.h>
DWORD GetSecurityInfo(HANDLE h, SE_OBJECT_TYPE t, SECURITY_INFORMATION i, PSID *o, PSID *g, PACL *d, PACL *s, PSECURITY_DESCRIPTOR *sd);
DWORD SetSecurityInfo(HANDLE h, SE_OBJECT_TYPE t, SECURITY_INFORMATION i, PSID o, PSID g, PACL d, PACL s);
#endif
