/*
 * The seam's <windows.h>: the Win32 types, constants and functions win.c uses, with the
 * values of the Windows SDK, declared for gcc on Linux. win-fake.c implements the functions.
 * wchar_t is 4 bytes here (2 on Windows): names are UTF-32 inside the seam, which changes
 * lengths of non-BMP names but nothing win.c decides.
 */
#ifndef SEAM_WINDOWS_H
#define SEAM_WINDOWS_H
#include <stddef.h>
#include <stdint.h>
#include <wchar.h>

typedef int BOOL;
typedef unsigned char BOOLEAN;
typedef unsigned char BYTE;
typedef unsigned short WORD;
typedef uint32_t DWORD;
typedef int32_t LONG;
typedef int64_t LONGLONG;
typedef wchar_t WCHAR;
typedef void *HANDLE;
typedef void *PVOID;
typedef void *LPVOID;
typedef DWORD *LPDWORD;
typedef const wchar_t *LPCWSTR;
typedef wchar_t *LPWSTR;
typedef WORD SECURITY_DESCRIPTOR_CONTROL;
typedef DWORD SECURITY_INFORMATION;
typedef void *PSECURITY_DESCRIPTOR;
typedef struct seam_acl ACL, *PACL;
typedef void *PSID;
typedef void *HLOCAL;
typedef struct { void *p; } SRWLOCK;
#define SRWLOCK_INIT {0}
#define TRUE 1
#define FALSE 0
#define MAX_PATH 260
#define MAXDWORD 0xffffffffu
#define WINAPI

typedef union {
  struct {
    DWORD LowPart;
    LONG HighPart;
  };
  LONGLONG QuadPart;
} LARGE_INTEGER;
typedef struct {
  DWORD dwLowDateTime, dwHighDateTime;
} FILETIME;
typedef struct {
  uintptr_t Internal, InternalHigh;
  DWORD Offset, OffsetHigh;
  HANDLE hEvent;
} OVERLAPPED;
typedef struct {
  LARGE_INTEGER CreationTime, LastAccessTime, LastWriteTime, ChangeTime;
  DWORD FileAttributes;
} FILE_BASIC_INFO;
typedef struct {
  LARGE_INTEGER AllocationSize, EndOfFile;
  DWORD NumberOfLinks;
  BOOLEAN DeletePending, Directory;
} FILE_STANDARD_INFO;
typedef struct {
  DWORD FileAttributes, ReparseTag;
} FILE_ATTRIBUTE_TAG_INFO;
typedef struct {
  LARGE_INTEGER EndOfFile;
} FILE_END_OF_FILE_INFO;
typedef struct {
  BOOLEAN SetSparse;
} FILE_SET_SPARSE_BUFFER;
typedef struct {
  DWORD dwFileAttributes;
  FILETIME ftCreationTime, ftLastAccessTime, ftLastWriteTime;
  DWORD dwVolumeSerialNumber, nFileSizeHigh, nFileSizeLow, nNumberOfLinks, nFileIndexHigh, nFileIndexLow;
} BY_HANDLE_FILE_INFORMATION;
typedef struct {
  DWORD dwFileAttributes;
  FILETIME ftCreationTime, ftLastAccessTime, ftLastWriteTime;
  DWORD nFileSizeHigh, nFileSizeLow, dwReserved0, dwReserved1;
  WCHAR cFileName[MAX_PATH], cAlternateFileName[14];
} WIN32_FIND_DATAW;
typedef enum { FileBasicInfo = 0, FileStandardInfo = 1, FileEndOfFileInfo = 6, FileAttributeTagInfo = 9 } FILE_INFO_BY_HANDLE_CLASS;
typedef enum { FindExInfoBasic = 1 } FINDEX_INFO_LEVELS;
typedef enum { FindExSearchNameMatch = 0 } FINDEX_SEARCH_OPS;
typedef enum { SE_FILE_OBJECT = 1 } SE_OBJECT_TYPE;

#define INVALID_HANDLE_VALUE ((HANDLE)(intptr_t)-1)
#define INVALID_FILE_ATTRIBUTES ((DWORD)-1)
#define GENERIC_READ 0x80000000u
#define GENERIC_WRITE 0x40000000u
#define FILE_READ_ATTRIBUTES 0x0080
#define FILE_WRITE_ATTRIBUTES 0x0100
#define FILE_LIST_DIRECTORY 0x0001
#define READ_CONTROL 0x00020000
#define WRITE_DAC 0x00040000
#define FILE_SHARE_READ 1
#define FILE_SHARE_WRITE 2
#define FILE_SHARE_DELETE 4
#define CREATE_NEW 1
#define OPEN_EXISTING 3
#define FILE_ATTRIBUTE_READONLY 0x1
#define FILE_ATTRIBUTE_HIDDEN 0x2
#define FILE_ATTRIBUTE_SYSTEM 0x4
#define FILE_ATTRIBUTE_DIRECTORY 0x10
#define FILE_ATTRIBUTE_ARCHIVE 0x20
#define FILE_ATTRIBUTE_NORMAL 0x80
#define FILE_ATTRIBUTE_SPARSE_FILE 0x200
#define FILE_ATTRIBUTE_REPARSE_POINT 0x400
#define FILE_ATTRIBUTE_NOT_CONTENT_INDEXED 0x2000
#define FILE_FLAG_BACKUP_SEMANTICS 0x02000000
#define FILE_FLAG_OPEN_REPARSE_POINT 0x00200000
#define FILE_TYPE_DISK 1
#define MOVEFILE_REPLACE_EXISTING 1
#define IO_REPARSE_TAG_MOUNT_POINT 0xA0000003u
#define IO_REPARSE_TAG_SYMLINK 0xA000000Cu
#define MAXIMUM_REPARSE_DATA_BUFFER_SIZE (16 * 1024)
#define SYMBOLIC_LINK_FLAG_DIRECTORY 1
#define SYMBOLIC_LINK_FLAG_ALLOW_UNPRIVILEGED_CREATE 2
#define LOCKFILE_FAIL_IMMEDIATELY 1
#define LOCKFILE_EXCLUSIVE_LOCK 2
#define FIND_FIRST_EX_LARGE_FETCH 2
#define FILE_NAME_NORMALIZED 0
#define VOLUME_NAME_DOS 0
#define CP_UTF8 65001
#define MB_ERR_INVALID_CHARS 8
#define DACL_SECURITY_INFORMATION 4
#define PROTECTED_DACL_SECURITY_INFORMATION 0x80000000u
#define UNPROTECTED_DACL_SECURITY_INFORMATION 0x20000000u
#define SE_DACL_PROTECTED 0x1000

/* winerror.h: the codes win.c names (its errno table is libuv's list). */
#define ERROR_SUCCESS 0L
#define ERROR_INVALID_FUNCTION 1L
#define ERROR_FILE_NOT_FOUND 2L
#define ERROR_PATH_NOT_FOUND 3L
#define ERROR_TOO_MANY_OPEN_FILES 4L
#define ERROR_ACCESS_DENIED 5L
#define ERROR_INVALID_HANDLE 6L
#define ERROR_NOT_ENOUGH_MEMORY 8L
#define ERROR_ENVIRONMENT_BAD 10L
#define ERROR_INVALID_DATA 13L
#define ERROR_OUTOFMEMORY 14L
#define ERROR_INVALID_DRIVE 15L
#define ERROR_NOT_SAME_DEVICE 17L
#define ERROR_NO_MORE_FILES 18L
#define ERROR_WRITE_PROTECT 19L
#define ERROR_CRC 23L
#define ERROR_GEN_FAILURE 31L
#define ERROR_SHARING_VIOLATION 32L
#define ERROR_LOCK_VIOLATION 33L
#define ERROR_HANDLE_EOF 38L
#define ERROR_HANDLE_DISK_FULL 39L
#define ERROR_NOT_SUPPORTED 50L
#define ERROR_NETNAME_DELETED 64L
#define ERROR_FILE_EXISTS 80L
#define ERROR_CANNOT_MAKE 82L
#define ERROR_INVALID_PARAMETER 87L
#define ERROR_OPEN_FAILED 110L
#define ERROR_BUFFER_OVERFLOW 111L
#define ERROR_DISK_FULL 112L
#define ERROR_SEM_TIMEOUT 121L
#define ERROR_INSUFFICIENT_BUFFER 122L
#define ERROR_INVALID_NAME 123L
#define ERROR_MOD_NOT_FOUND 126L
#define ERROR_DIR_NOT_EMPTY 145L
#define ERROR_SIGNAL_REFUSED 156L
#define ERROR_BAD_PATHNAME 161L
#define ERROR_ALREADY_EXISTS 183L
#define ERROR_ENVVAR_NOT_FOUND 203L
#define ERROR_FILENAME_EXCED_RANGE 206L
#define ERROR_META_EXPANSION_TOO_LONG 208L
#define ERROR_BAD_PIPE 230L
#define ERROR_PIPE_BUSY 231L
#define ERROR_NO_DATA 232L
#define ERROR_PIPE_NOT_CONNECTED 233L
#define ERROR_DIRECTORY 267L
#define ERROR_EA_TABLE_FULL 277L
#define ERROR_OPERATION_ABORTED 995L
#define ERROR_NOACCESS 998L
#define ERROR_INVALID_FLAGS 1004L
#define ERROR_END_OF_MEDIA 1100L
#define ERROR_FILEMARK_DETECTED 1101L
#define ERROR_BEGINNING_OF_MEDIA 1102L
#define ERROR_SETMARK_DETECTED 1103L
#define ERROR_NO_DATA_DETECTED 1104L
#define ERROR_INVALID_BLOCK_LENGTH 1106L
#define ERROR_BUS_RESET 1111L
#define ERROR_NO_UNICODE_TRANSLATION 1113L
#define ERROR_IO_DEVICE 1117L
#define ERROR_EOM_OVERFLOW 1129L
#define ERROR_DEVICE_REQUIRES_CLEANING 1165L
#define ERROR_DEVICE_DOOR_OPEN 1166L
#define ERROR_CONNECTION_REFUSED 1225L
#define ERROR_NETWORK_UNREACHABLE 1231L
#define ERROR_HOST_UNREACHABLE 1232L
#define ERROR_CONNECTION_ABORTED 1236L
#define ERROR_PRIVILEGE_NOT_HELD 1314L
#define ERROR_DISK_CORRUPT 1393L
#define ERROR_CANT_ACCESS_FILE 1920L
#define ERROR_CANT_RESOLVE_FILENAME 1921L
#define ERROR_NOT_CONNECTED 2250L
#define ERROR_INVALID_REPARSE_DATA 4392L
#define ERROR_NO_SIGNAL_SENT 205L
#define ERROR_SYMLINK_NOT_SUPPORTED 1464L
#define ERROR_BROKEN_PIPE 109L

DWORD GetLastError(void);
void SetLastError(DWORD e);
int MultiByteToWideChar(unsigned cp, DWORD flags, const char *s, int n, wchar_t *w, int wn);
int WideCharToMultiByte(unsigned cp, DWORD flags, const wchar_t *w, int wn, char *s, int n, const char *def, BOOL *used);
void AcquireSRWLockExclusive(SRWLOCK *l);
void ReleaseSRWLockExclusive(SRWLOCK *l);
void AcquireSRWLockShared(SRWLOCK *l);
void ReleaseSRWLockShared(SRWLOCK *l);
BOOL CloseHandle(HANDLE h);
DWORD GetFullPathNameW(const wchar_t *p, DWORD n, wchar_t *buf, wchar_t **file);
HANDLE CreateFileW(const wchar_t *p, DWORD access, DWORD share, void *sa, DWORD disp, DWORD flags, HANDLE tmpl);
HANDLE ReOpenFile(HANDLE h, DWORD access, DWORD share, DWORD flags);
BOOL GetFileInformationByHandleEx(HANDLE h, FILE_INFO_BY_HANDLE_CLASS c, void *buf, DWORD size);
BOOL SetFileInformationByHandle(HANDLE h, FILE_INFO_BY_HANDLE_CLASS c, void *buf, DWORD size);
BOOL GetFileInformationByHandle(HANDLE h, BY_HANDLE_FILE_INFORMATION *bi);
BOOL GetFileSizeEx(HANDLE h, LARGE_INTEGER *n);
DWORD GetFileType(HANDLE h);
BOOL FlushFileBuffers(HANDLE h);
BOOL ReadFile(HANDLE h, void *buf, DWORD n, DWORD *got, OVERLAPPED *ov);
BOOL WriteFile(HANDLE h, const void *buf, DWORD n, DWORD *put, OVERLAPPED *ov);
BOOL DeviceIoControl(HANDLE h, DWORD code, void *in, DWORD in_size, void *out, DWORD out_size, DWORD *bytes, OVERLAPPED *ov);
BOOL MoveFileExW(const wchar_t *from, const wchar_t *to, DWORD flags);
BOOL DeleteFileW(const wchar_t *p);
BOOL SetFileAttributesW(const wchar_t *p, DWORD attrs);
DWORD GetFileAttributesW(const wchar_t *p);
BOOL CreateDirectoryW(const wchar_t *p, void *sa);
BOOL RemoveDirectoryW(const wchar_t *p);
BOOL CreateSymbolicLinkW(const wchar_t *link, const wchar_t *target, DWORD flags);
BOOL CreateHardLinkW(const wchar_t *link, const wchar_t *existing, void *sa);
BOOL GetVolumePathNameW(const wchar_t *p, wchar_t *root, DWORD n);
BOOL GetDiskFreeSpaceW(const wchar_t *root, DWORD *per_cluster, DWORD *sector, DWORD *free_clusters, DWORD *clusters);
BOOL GetVolumeInformationW(const wchar_t *root, wchar_t *name, DWORD n, DWORD *serial, DWORD *maxlen, DWORD *flags, wchar_t *fs, DWORD fsn);
HANDLE FindFirstFileExW(const wchar_t *p, FINDEX_INFO_LEVELS l, void *data, FINDEX_SEARCH_OPS o, void *f, DWORD flags);
BOOL FindNextFileW(HANDLE h, WIN32_FIND_DATAW *data);
BOOL FindClose(HANDLE h);
BOOL LockFileEx(HANDLE h, DWORD flags, DWORD reserved, DWORD lo, DWORD hi, OVERLAPPED *ov);
DWORD GetFinalPathNameByHandleW(HANDLE h, wchar_t *buf, DWORD n, DWORD flags);
HLOCAL LocalFree(HLOCAL p);
BOOL GetSecurityDescriptorControl(PSECURITY_DESCRIPTOR sd, SECURITY_DESCRIPTOR_CONTROL *c, DWORD *rev);
#define _wcsdup wcsdup
#endif
