/*
 * A log file shared by whoever names the same path (configuration
 * generations), reopened in place on SIGUSR1 so that log rotation works
 * without the writers knowing: the file descriptor number stays the same.
 */
#ifndef LV_CORE_LOGFILE_H
#define LV_CORE_LOGFILE_H

#include <stdatomic.h>
#include <stdbool.h>

struct lv_logfile {
    char *path;
    int fd;
    bool owned; /* opened by levee (not stdout/stderr) */
    atomic_int refs;
};

/* Opens path ("stdout", "stderr" or a file, appended) with one reference;
 * NULL after logging why. */
struct lv_logfile *lv_logfile_open(const char *path);
void lv_logfile_ref(struct lv_logfile *f);
void lv_logfile_unref(struct lv_logfile *f);
/* Reopens the file under the same descriptor number. 0 or a libuv error
 * code (open or dup3 failed, logged). */
int lv_logfile_reopen(struct lv_logfile *f);

#endif
