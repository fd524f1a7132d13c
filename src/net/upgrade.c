/* Starting the new binary of an upgrade with the listening sockets, and
 * watching it until it serves or fails (see upgrade.h). */
#include "net/upgrade.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "net/inherit.h"
#include "net/listener.h"

extern char **environ;

static char *binary; /* absolute path of the binary levee was started as */
static char **args;  /* argv, with binary as argv[0] */

enum state { ST_STARTING, ST_KILLING, ST_DONE };

struct lv_upgrade {
    uv_process_t proc;
    uv_pipe_t pipe; /* the new process's ready descriptor, read here */
    uv_timer_t timer;
    int handles; /* initialized and not yet closed */
    bool proc_open, pipe_open, timer_open;
    enum state state;
    int pid;
    uint64_t timeout_ms;
    char buf[16];
    size_t got;
    lv_upgrade_cb cb;
    void *arg;
};

/* --- the binary ---------------------------------------------------------------------- */

static char *join(const char *dir, const char *name)
{
    size_t len = strlen(dir) + 1 + strlen(name) + 1;
    char *p = malloc(len);
    if (p) snprintf(p, len, "%s/%s", dir, name);
    return p;
}

/* dir/name, with dir made absolute against the working directory. */
static char *absolute(const char *dir, const char *name)
{
    if (dir[0] == '/') return join(dir, name);
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof(cwd)) == NULL) return NULL;
    char *d = dir[0] ? join(cwd, dir) : strdup(cwd);
    char *p = d ? join(d, name) : NULL;
    free(d);
    return p;
}

/* What execvp would run for name (no slash in it): the first executable
 * PATH entry. */
static char *search_path(const char *name)
{
    const char *path = getenv("PATH");
    if (path == NULL || *path == '\0') path = "/usr/local/bin:/usr/bin:/bin";
    for (const char *p = path;;) {
        const char *colon = strchr(p, ':');
        size_t len = colon ? (size_t)(colon - p) : strlen(p);
        char dir[PATH_MAX];
        if (len < sizeof(dir)) {
            memcpy(dir, p, len);
            dir[len] = '\0';
            char *cand = absolute(dir, name); /* an empty entry is the cwd */
            if (cand && access(cand, X_OK) == 0) return cand;
            free(cand);
        }
        if (colon == NULL) return NULL;
        p = colon + 1;
    }
}

int lv_upgrade_init(int argc, char **argv)
{
    if (argc < 1 || argv[0] == NULL || argv[0][0] == '\0') return -1;
    const char *a0 = argv[0];
    if (a0[0] == '/')
        binary = strdup(a0);
    else if (strchr(a0, '/')) {
        while (a0[0] == '.' && a0[1] == '/')
            a0 += 2; /* "./levee": the cwd's levee, named plainly in the logs */
        binary = absolute("", a0);
    } else
        binary = search_path(a0);
    if (binary == NULL) return -1; /* lv_upgrade_start says so, if one is asked for */
    args = calloc((size_t)argc + 1, sizeof(*args));
    if (args == NULL) {
        free(binary);
        binary = NULL;
        return -1;
    }
    args[0] = binary;
    for (int i = 1; i < argc; i++)
        args[i] = argv[i]; /* argv lives as long as the process */
    return 0;
}

const char *lv_upgrade_binary(void)
{
    return binary;
}

/* --- the new process ------------------------------------------------------------------ */

static void on_closed(uv_handle_t *h)
{
    struct lv_upgrade *u = h->data;
    if (--u->handles == 0) free(u);
}

static void close_handle(uv_handle_t *h, bool *open)
{
    if (!*open) return;
    *open = false;
    uv_close(h, on_closed);
}

static void finish(struct lv_upgrade *u)
{
    u->state = ST_DONE;
    close_handle((uv_handle_t *)&u->pipe, &u->pipe_open);
    close_handle((uv_handle_t *)&u->timer, &u->timer_open);
    /* Closing a process handle does not signal the process: after a
     * success the new one runs on, unwatched (it outlives this one). */
    close_handle((uv_handle_t *)&u->proc, &u->proc_open);
}

static void report(struct lv_upgrade *u, bool ready, const char *why)
{
    lv_upgrade_cb cb = u->cb;
    u->cb = NULL;
    if (cb) cb(u, ready, why, u->arg);
}

static void on_kill_timer(uv_timer_t *t);

/* SIGTERM first: a levee that did start drains the connections it took. */
static void stop_child(struct lv_upgrade *u)
{
    u->state = ST_KILLING;
    uv_process_kill(&u->proc, SIGTERM);
    close_handle((uv_handle_t *)&u->pipe, &u->pipe_open);
    uv_timer_start(&u->timer, on_kill_timer, u->timeout_ms, 0);
}

static void on_kill_timer(uv_timer_t *t)
{
    struct lv_upgrade *u = t->data;
    lv_warn("upgrade: pid %d still runs %llums after SIGTERM: SIGKILL", u->pid,
            (unsigned long long)u->timeout_ms);
    uv_process_kill(&u->proc, SIGKILL);
}

static void on_timeout(uv_timer_t *t)
{
    struct lv_upgrade *u = t->data;
    if (u->state != ST_STARTING) return;
    char why[96];
    snprintf(why, sizeof(why), "did not report that it serves within %llums (sent SIGTERM)",
             (unsigned long long)u->timeout_ms);
    stop_child(u);
    report(u, false, why);
}

static void on_exit_cb(uv_process_t *p, int64_t status, int signo)
{
    struct lv_upgrade *u = p->data;
    if (u->state == ST_STARTING) {
        char why[96];
        if (signo)
            snprintf(why, sizeof(why), "was killed by signal %d before it served", signo);
        else
            snprintf(why, sizeof(why), "exited with status %lld before it served",
                     (long long)status);
        finish(u);
        report(u, false, why);
        return;
    }
    finish(u);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    struct lv_upgrade *u = h->data;
    *buf = uv_buf_init(u->buf + u->got, (unsigned)(sizeof(u->buf) - 1 - u->got));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    struct lv_upgrade *u = s->data;
    if (n < 0) {
        /* Closed without a word: it exits (the exit callback tells how), or
         * it is not a levee and runs on (the timeout ends it). */
        close_handle((uv_handle_t *)&u->pipe, &u->pipe_open);
        return;
    }
    u->got += (size_t)n;
    u->buf[u->got] = '\0';
    if (u->state != ST_STARTING) return;
    if (strstr(u->buf, LV_UPGRADE_READY_MSG) != NULL) {
        finish(u);
        report(u, true, NULL);
        return;
    }
    if (u->got == sizeof(u->buf) - 1)
        close_handle((uv_handle_t *)&u->pipe, &u->pipe_open); /* not a levee talking */
}

static bool replaced_var(const char *kv)
{
    static const char *const ours[] = {
        LV_UPGRADE_ENV_PID "=", LV_UPGRADE_ENV_FDS "=", LV_UPGRADE_ENV_READY_FD "=",
        "LISTEN_PID=",          "LISTEN_FDS=",          "LISTEN_FDNAMES="};
    for (size_t i = 0; i < sizeof(ours) / sizeof(ours[0]); i++)
        if (strncmp(kv, ours[i], strlen(ours[i])) == 0) return true;
    return false;
}

/* This process's environment, less what describes its own descriptors,
 * plus the upgrade's variables. NULL on ENOMEM. */
static char **child_env(int nfds, char *pidv, char *fdsv, char *readyv)
{
    size_t n = 0;
    while (environ && environ[n])
        n++;
    char **env = calloc(n + 4, sizeof(*env));
    if (env == NULL) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (!replaced_var(environ[i])) env[k++] = environ[i];
    env[k++] = pidv;
    if (nfds > 0) env[k++] = fdsv;
    env[k++] = readyv;
    return env;
}

int lv_upgrade_pid(const struct lv_upgrade *u)
{
    return u->pid;
}

struct lv_upgrade *lv_upgrade_start(uv_loop_t *loop, uint64_t timeout_ms, lv_upgrade_cb cb,
                                    void *arg, int *err)
{
    *err = 0;
    if (binary == NULL) {
        lv_error("upgrade: the file levee was started from is not known (its argv[0] was not "
                 "found, or memory ran out at start)");
        *err = UV_ENOENT;
        return NULL;
    }
    int fds[LV_INHERIT_MAX];
    int n = lv_listener_export(fds, LV_INHERIT_MAX);
    if (n < 0) {
        lv_error("upgrade: cannot duplicate the listening sockets: %s", uv_strerror(n));
        *err = n;
        return NULL;
    }
    struct lv_upgrade *u = calloc(1, sizeof(*u));
    uv_stdio_container_t *stdio = calloc((size_t)n + 4, sizeof(*stdio));
    char pidv[48], readyv[48], fdsv[LV_INHERIT_MAX * 5 + 32];
    snprintf(pidv, sizeof(pidv), "%s=%d", LV_UPGRADE_ENV_PID, (int)getpid());
    snprintf(readyv, sizeof(readyv), "%s=%d", LV_UPGRADE_ENV_READY_FD, 3 + n);
    size_t off = (size_t)snprintf(fdsv, sizeof(fdsv), "%s=", LV_UPGRADE_ENV_FDS);
    for (int i = 0; i < n; i++)
        off += (size_t)snprintf(fdsv + off, sizeof(fdsv) - off, "%s%d", i ? "," : "", 3 + i);
    char **env = child_env(n, pidv, fdsv, readyv);
    int rc = u && stdio && env ? 0 : UV_ENOMEM;
    if (rc == 0) {
        /* The child's descriptors: 0-2 as ours (its log goes where ours
         * does), 3.. the sockets, then its end of the ready pipe. */
        for (int i = 0; i < 3; i++) {
            stdio[i].flags = UV_INHERIT_FD;
            stdio[i].data.fd = i;
        }
        for (int i = 0; i < n; i++) {
            stdio[3 + i].flags = UV_INHERIT_FD;
            stdio[3 + i].data.fd = fds[i];
        }
        uv_pipe_init(loop, &u->pipe, 0);
        u->pipe.data = u;
        u->pipe_open = true;
        u->handles++;
        stdio[3 + n].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
        stdio[3 + n].data.stream = (uv_stream_t *)&u->pipe;
        uv_process_options_t opts = {
            .exit_cb = on_exit_cb,
            .file = binary,
            .args = args,
            .env = env,
            .stdio_count = n + 4,
            .stdio = stdio,
        };
        u->proc.data = u;
        rc = uv_spawn(loop, &u->proc, &opts);
        /* Initialized even when it fails: closed like the others. */
        u->proc_open = true;
        u->handles++;
    }
    for (int i = 0; i < n; i++)
        close(fds[i]); /* the child has its own now */
    free(env);
    free(stdio);
    if (u == NULL) return NULL;
    if (rc != 0) {
        lv_error("upgrade: cannot start %s: %s", binary, uv_strerror(rc));
        *err = rc;
        if (u->handles == 0)
            free(u);
        else
            finish(u); /* frees it once the handles are closed */
        return NULL;
    }
    u->pid = u->proc.pid;
    u->cb = cb;
    u->arg = arg;
    u->timeout_ms = timeout_ms;
    u->state = ST_STARTING;
    uv_timer_init(loop, &u->timer);
    u->timer.data = u;
    u->timer_open = true;
    u->handles++;
    uv_timer_start(&u->timer, on_timeout, timeout_ms, 0);
    uv_read_start((uv_stream_t *)&u->pipe, on_alloc, on_read);
    lv_info("upgrade: started %s (pid %d) with %d listening socket%s; it takes over once it "
            "serves (at most %llums from now)",
            binary, u->pid, n, n == 1 ? "" : "s", (unsigned long long)timeout_ms);
    return u;
}

void lv_upgrade_cancel(struct lv_upgrade *u)
{
    u->cb = NULL;
    if (u->state == ST_STARTING) {
        lv_warn("upgrade: cancelled: pid %d gets SIGTERM", u->pid);
        stop_child(u);
    }
}
