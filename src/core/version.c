/* The version strings (see version.h). */
#include "core/version.h"

const char lv_version[] = LV_VERSION;
const char lv_git_rev[] = LV_GIT_REV;
