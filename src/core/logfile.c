/* Shared, reopenable log files. */
#include "core/logfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "core/log.h"

struct lv_logfile *lv_logfile_open(const char *path)
{
    struct lv_logfile *f = calloc(1, sizeof(*f));
    if (f == NULL) return NULL;
    f->path = strdup(path);
    if (strcmp(path, "stdout") == 0) {
        f->fd = STDOUT_FILENO;
    } else if (strcmp(path, "stderr") == 0) {
        f->fd = STDERR_FILENO;
    } else {
        f->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        f->owned = true;
        if (f->fd < 0) {
            lv_error("cannot open access log %s: %s", path, strerror(errno));
            free(f->path);
            free(f);
            return NULL;
        }
    }
    atomic_init(&f->refs, 1);
    return f;
}

void lv_logfile_ref(struct lv_logfile *f)
{
    atomic_fetch_add(&f->refs, 1);
}

void lv_logfile_unref(struct lv_logfile *f)
{
    if (f == NULL || atomic_fetch_sub(&f->refs, 1) != 1) return;
    if (f->owned) close(f->fd);
    free(f->path);
    free(f);
}

int lv_logfile_reopen(struct lv_logfile *f)
{
    if (f == NULL || !f->owned) return 0;
    int fd = open(f->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        lv_error("cannot reopen access log %s: %s", f->path, strerror(errno));
        return uv_translate_sys_error(errno);
    }
    /* dup3 replaces the file under the same number: workers keep writing
     * to f->fd and land in the new file. */
    int rc = dup3(fd, f->fd, O_CLOEXEC) < 0 ? uv_translate_sys_error(errno) : 0;
    close(fd);
    return rc;
}
