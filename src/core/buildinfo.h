/*
 * What levee was built from and runs with, for `levee --version` and the
 * levee_build_info metric: the versions of its libraries. Kept apart from
 * core/version.[ch], which the demo backend links without these libraries.
 */
#ifndef LV_CORE_BUILDINFO_H
#define LV_CORE_BUILDINFO_H

#include <stddef.h>

#define LV_BUILDINFO_NLIBS 5

struct lv_libversion {
    const char *name;  /* "libuv", "llhttp", "openssl", "hiredis", "libyaml" */
    const char *label; /* how people write it: "libuv", ..., "OpenSSL", ... */
    char version[32];  /* "1.44.2" */
};

/*
 * Fills out[] with the library versions, in the order above. libuv, OpenSSL
 * and libyaml are asked at run time (the shared library actually loaded);
 * llhttp (compiled into levee) and hiredis (no run-time call; its soname
 * pins the version) give the version levee was compiled against.
 */
void lv_buildinfo_libs(struct lv_libversion out[LV_BUILDINFO_NLIBS]);

#endif
