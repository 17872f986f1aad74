#error "<dirent.h> is not in MSVC's CRT (scripts/msvc-crt/msvc-crt.h)"
