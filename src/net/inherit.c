/* Inherited listening sockets: collected from the environment at start,
 * taken by the listeners, released after the start (see inherit.h). */
#include "net/inherit.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "core/log.h"
#include "net/addr.h"

enum source { FROM_UPGRADE, FROM_SYSTEMD };

struct held {
    int fd;
    enum source from;
    bool taken;
    struct sockaddr_storage addr;
    char name[64]; /* systemd's FileDescriptorName=, or "" */
};

/* Written by lv_inherit_collect before any thread exists; `taken` and the
 * descriptors change under the lock afterwards. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct held held[LV_INHERIT_MAX];
static size_t nheld;
static int ready_fd = -1;

static const char *source_name(enum source from)
{
    return from == FROM_UPGRADE ? "the previous levee" : "systemd";
}

static int int_opt(int fd, int level, int name)
{
    int v = -1;
    socklen_t len = sizeof(v);
    if (getsockopt(fd, level, name, &v, &len) != 0) return -1;
    return v;
}

/* Keeps fd if it is a listening TCP socket; closes it otherwise. */
static void hold(int fd, enum source from, const char *name)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    memset(&ss, 0, sizeof(ss));
    const char *why = NULL;
    if (fcntl(fd, F_GETFD) < 0)
        why = "not an open descriptor";
    else if (int_opt(fd, SOL_SOCKET, SO_TYPE) != SOCK_STREAM ||
             int_opt(fd, SOL_SOCKET, SO_PROTOCOL) != IPPROTO_TCP ||
             getsockname(fd, (struct sockaddr *)&ss, &len) != 0 ||
             (ss.ss_family != AF_INET && ss.ss_family != AF_INET6))
        why = "not a TCP socket";
    else if (int_opt(fd, SOL_SOCKET, SO_ACCEPTCONN) != 1)
        why = "not listening";
    else if (nheld == LV_INHERIT_MAX)
        why = "more sockets than levee takes";
    if (why) {
        lv_warn("descriptor %d from %s%s%s%s: %s; ignored", fd, source_name(from),
                name && *name ? " (" : "", name && *name ? name : "", name && *name ? ")" : "",
                why);
        if (fcntl(fd, F_GETFD) >= 0) close(fd);
        return;
    }
    /* The acceptor polls it and accepts until EAGAIN: a blocking socket
     * would hang a worker whenever another one (or the other process) took
     * the connection first. */
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0 && !(fl & O_NONBLOCK)) fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    struct held *h = &held[nheld++];
    h->fd = fd;
    h->from = from;
    h->taken = false;
    h->addr = ss;
    snprintf(h->name, sizeof(h->name), "%s", name ? name : "");
}

static bool parse_int(const char *s, long *out)
{
    if (s == NULL || *s == '\0') return false;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end != '\0' || v < 0 || v > INT32_MAX) return false;
    *out = v;
    return true;
}

static bool kept(int fd, const int *keep, size_t nkeep)
{
    for (size_t i = 0; i < nkeep; i++)
        if (keep[i] == fd) return true;
    return false;
}

/* Everything the old process had open without close-on-exec (a Redis
 * client's socket, say) would live on here, holding that connection open
 * for the life of this process: close it. */
static void close_strays(const int *keep, size_t nkeep)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL) return;
    int stray[64];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < sizeof(stray) / sizeof(stray[0])) {
        long fd;
        if (!parse_int(e->d_name, &fd) || fd <= 2 || fd == dirfd(d)) continue;
        if (!kept((int)fd, keep, nkeep)) stray[n++] = (int)fd;
    }
    closedir(d);
    for (size_t i = 0; i < n; i++)
        close(stray[i]);
    if (n)
        lv_info("upgrade: closed %zu descriptor%s the previous levee leaked", n, n == 1 ? "" : "s");
}

static void collect_upgrade(void)
{
    const char *pid = getenv(LV_UPGRADE_ENV_PID);
    const char *fds = getenv(LV_UPGRADE_ENV_FDS);
    const char *rfd = getenv(LV_UPGRADE_ENV_READY_FD);
    if (pid == NULL && fds == NULL && rfd == NULL) return;
    long ppid = -1, r = -1;
    if (!parse_int(pid, &ppid) || ppid != (long)getppid() || !parse_int(rfd, &r) || r <= 2) {
        /* Left over in an environment copied from a levee (a shell started
         * by hand, say): these descriptors are not ours to take. */
        lv_warn("%s=%s is not this process's parent (%ld), or %s is missing: "
                "not started by an upgrade, the upgrade variables are ignored",
                LV_UPGRADE_ENV_PID, pid ? pid : "(unset)", (long)getppid(),
                LV_UPGRADE_ENV_READY_FD);
        goto out;
    }
    int keep[LV_INHERIT_MAX + 1];
    size_t nkeep = 0;
    keep[nkeep++] = (int)r;
    char list[4096];
    snprintf(list, sizeof(list), "%s", fds ? fds : "");
    char *save = NULL;
    for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        long fd;
        if (!parse_int(tok, &fd) || fd <= 2) {
            lv_warn("%s: '%s' is not a descriptor number; ignored", LV_UPGRADE_ENV_FDS, tok);
            continue;
        }
        if (nkeep <= LV_INHERIT_MAX) keep[nkeep++] = (int)fd;
    }
    close_strays(keep, nkeep);
    ready_fd = (int)r;
    fcntl(ready_fd, F_SETFD, FD_CLOEXEC);
    for (size_t i = 1; i < nkeep; i++)
        hold(keep[i], FROM_UPGRADE, NULL);
    lv_info("upgrade: started by levee pid %ld with %zu listening socket%s", ppid, nheld,
            nheld == 1 ? "" : "s");
out:
    unsetenv(LV_UPGRADE_ENV_PID);
    unsetenv(LV_UPGRADE_ENV_FDS);
    unsetenv(LV_UPGRADE_ENV_READY_FD);
}

static void collect_systemd(void)
{
    char **names = NULL;
    int n = sd_listen_fds_with_names(1, &names); /* 1: unset LISTEN_* */
    if (n < 0) {
        lv_warn("LISTEN_FDS: %s; no socket taken from systemd", strerror(-n));
        return;
    }
    size_t before = nheld;
    for (int i = 0; i < n; i++)
        hold(SD_LISTEN_FDS_START + i, FROM_SYSTEMD, names ? names[i] : NULL);
    for (int i = 0; names && i < n; i++)
        free(names[i]);
    free(names);
    if (n > 0)
        lv_info("socket activation: %zu listening socket%s from systemd", nheld - before,
                nheld - before == 1 ? "" : "s");
}

int lv_inherit_collect(void)
{
    collect_upgrade();
    collect_systemd();
    for (size_t i = 0; i < nheld; i++) {
        char text[LV_ADDR_TEXT_MAX];
        lv_debug("inherited socket %d: %s from %s", held[i].fd,
                 lv_addr_text((const struct sockaddr *)&held[i].addr, text, sizeof(text)),
                 source_name(held[i].from));
    }
    return (int)nheld;
}

bool lv_inherit_upgrading(void)
{
    return ready_fd >= 0;
}

size_t lv_inherit_count(const struct sockaddr *addr)
{
    size_t k = 0;
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < nheld; i++)
        k += lv_addr_same((const struct sockaddr *)&held[i].addr, addr);
    pthread_mutex_unlock(&lock);
    return k;
}

size_t lv_inherit_share(size_t k, unsigned index, unsigned n, size_t *out, size_t max)
{
    if (k == 0 || index >= n) return 0;
    /* k >= n: every socket to exactly one worker; k < n: shared. */
    size_t first = k >= n ? index : index % k;
    size_t step = k >= n ? n : k;
    size_t got = 0;
    for (size_t j = first; j < k && got < max; j += step)
        out[got++] = j;
    return got;
}

int lv_inherit_take(const struct sockaddr *addr, unsigned index, unsigned n, int *fds, size_t max)
{
    if (n == 0 || index >= n) return -EINVAL;
    pthread_mutex_lock(&lock);
    size_t match[LV_INHERIT_MAX], mine[LV_INHERIT_MAX];
    size_t k = 0;
    for (size_t i = 0; i < nheld; i++)
        if (lv_addr_same((const struct sockaddr *)&held[i].addr, addr)) match[k++] = i;
    size_t m = lv_inherit_share(k, index, n, mine, max < LV_INHERIT_MAX ? max : LV_INHERIT_MAX);
    int out = 0, err = 0;
    for (size_t j = 0; j < m; j++) {
        struct held *h = &held[match[mine[j]]];
        int fd = fcntl(h->fd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0) {
            err = -errno;
            break;
        }
        h->taken = true;
        fds[out++] = fd;
    }
    pthread_mutex_unlock(&lock);
    if (err) {
        while (out > 0)
            close(fds[--out]);
        return err;
    }
    return out;
}

void lv_inherit_release(void)
{
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < nheld; i++) {
        struct held *h = &held[i];
        if (!h->taken) {
            char text[LV_ADDR_TEXT_MAX];
            lv_warn("the socket on %s from %s%s%s%s is not a listen address of the "
                    "configuration: not used",
                    lv_addr_text((const struct sockaddr *)&h->addr, text, sizeof(text)),
                    source_name(h->from), h->name[0] ? " (" : "", h->name, h->name[0] ? ")" : "");
        }
        close(h->fd);
    }
    nheld = 0;
    pthread_mutex_unlock(&lock);
}

int lv_inherit_report_ready(void)
{
    if (ready_fd < 0) return 0;
    const char msg[] = LV_UPGRADE_READY_MSG;
    ssize_t w;
    do
        w = write(ready_fd, msg, sizeof(msg) - 1);
    while (w < 0 && errno == EINTR);
    int err = w == (ssize_t)(sizeof(msg) - 1) ? 0 : (w < 0 ? errno : EIO);
    close(ready_fd);
    ready_fd = -1;
    if (err) {
        lv_warn("upgrade: cannot tell the previous levee that this one serves: %s", strerror(err));
        return -1;
    }
    return 0;
}
