/*
 * levee's version (the VERSION file) and the source revision it was built
 * from (git), compiled into one object that the Makefile rebuilds when
 * either changes, so that no other object carries a stale copy.
 */
#ifndef LV_CORE_VERSION_H
#define LV_CORE_VERSION_H

extern const char lv_version[];
extern const char lv_git_rev[];

#endif
