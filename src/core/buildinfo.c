/* Library versions (see buildinfo.h). */
#include "core/buildinfo.h"

#include <hiredis/hiredis.h>
#include <llhttp.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <uv.h>
#include <yaml.h>

static void set(struct lv_libversion *v, const char *name, const char *label, const char *version)
{
    v->name = name;
    v->label = label;
    snprintf(v->version, sizeof(v->version), "%s", version);
}

void lv_buildinfo_libs(struct lv_libversion out[LV_BUILDINFO_NLIBS])
{
    char buf[32];
    set(&out[0], "libuv", "libuv", uv_version_string());
    snprintf(buf, sizeof(buf), "%d.%d.%d", LLHTTP_VERSION_MAJOR, LLHTTP_VERSION_MINOR,
             LLHTTP_VERSION_PATCH);
    set(&out[1], "llhttp", "llhttp", buf);
    set(&out[2], "openssl", "OpenSSL", OpenSSL_version(OPENSSL_VERSION_STRING));
    snprintf(buf, sizeof(buf), "%d.%d.%d", HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH);
    set(&out[3], "hiredis", "hiredis", buf);
    set(&out[4], "libyaml", "libyaml", yaml_get_version_string());
}
