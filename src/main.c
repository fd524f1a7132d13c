/*
 * levee's entry point: the command line, signals, startup and shutdown.
 *
 * The main thread loads the configuration, starts the workers, and then
 * runs its own loop: signals (SIGTERM/SIGINT drain, SIGHUP reload, SIGUSR1
 * reopen the access log), active health checks, the admin listener and the
 * per-second metrics history. Workers never wait for it.
 *
 * Under systemd (Type=notify) it tells the service manager where it stands:
 * READY=1 once the listeners accept, RELOADING=1 ... READY=1 around a
 * reload, STOPPING=1 when a drain starts. Without NOTIFY_SOCKET, sd_notify
 * does nothing.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <uv.h>

#include "admin/history.h"
#include "admin/admin.h"
#include "config/config.h"
#include "core/buildinfo.h"
#include "core/log.h"
#include "core/version.h"
#include "core/logfile.h"
#include "core/strbuf.h"
#include "proxy/proxy.h"
#include "upstream/checker.h"
#include "config/gen.h"

/* The Makefile sets it from sysconfdir (/etc/levee/levee.yaml when PREFIX
 * is /usr). */
#ifndef LV_CONFIG_PATH
#define LV_CONFIG_PATH "/etc/levee/levee.yaml"
#endif

struct main_state {
    uv_loop_t *loop;
    const char *config_path;
    struct lv_proxy proxy;
    uv_signal_t sigterm, sigint, sighup, sigusr1;
    uv_timer_t grace;
    uv_async_t worker_exit;
    struct lv_checker *checker;
    struct lv_admin *admin;
    struct lv_history *history;
    bool draining;
    bool closed;
};

static void usage(FILE *out)
{
    fprintf(out, "usage: levee [-c FILE] [-t] [--version] [--help]\n"
                 "\n"
                 "  -c, --config FILE  configuration file (default " LV_CONFIG_PATH ")\n"
                 "  -t, --test         check the configuration and exit: prints\n"
                 "                     'configuration OK', or every error as\n"
                 "                     FILE:LINE:COL: message (exit status 1)\n"
                 "  -v, --version      print the version, the source revision and the\n"
                 "                     versions of the libraries, and exit\n"
                 "  -h, --help         print this help and exit\n"
                 "\n"
                 "Signals: SIGTERM/SIGINT stop accepting connections, let requests in\n"
                 "flight finish (at most timeouts.shutdown) and exit 0; a second one\n"
                 "exits at once. SIGHUP reloads the configuration file (on an error the\n"
                 "running configuration stays). SIGUSR1 reopens the access log file.\n");
}

/* levee's version and revision on the first line (as in levee_build_info),
 * then one library a line. */
static void print_version(void)
{
    printf("levee %s (%s)\n", lv_version, lv_git_rev);
    struct lv_libversion libs[LV_BUILDINFO_NLIBS];
    lv_buildinfo_libs(libs);
    for (size_t i = 0; i < LV_BUILDINFO_NLIBS; i++)
        printf("%s %s\n", libs[i].label, libs[i].version);
}

static void on_checks_stopped(void *arg)
{
    lv_gen_unref(arg);
}

/* Active health checks of generation g, which they hold until stopped. */
static struct lv_checker *start_checks(uv_loop_t *loop, struct lv_gen *g)
{
    struct lv_checker_set set = {g->backends,
                                 g->cfg->backends,
                                 g->nbackends,
                                 &g->cfg->health,
                                 &g->cfg->breaker,
                                 on_checks_stopped,
                                 g};
    lv_gen_ref(g);
    struct lv_checker *ck = lv_checker_start(loop, &set);
    if (ck == NULL) lv_gen_unref(g);
    return ck;
}

static void close_main_handles(struct main_state *m)
{
    if (m->closed) return;
    m->closed = true;
    lv_checker_stop(m->checker);
    m->checker = NULL;
    lv_admin_stop(m->admin);
    m->admin = NULL;
    lv_history_stop(m->history);
    m->history = NULL;
    uv_close((uv_handle_t *)&m->sigterm, NULL);
    uv_close((uv_handle_t *)&m->sigint, NULL);
    uv_close((uv_handle_t *)&m->sighup, NULL);
    uv_close((uv_handle_t *)&m->sigusr1, NULL);
    uv_close((uv_handle_t *)&m->grace, NULL);
    uv_close((uv_handle_t *)&m->worker_exit, NULL);
}

static void on_worker_exit(uv_async_t *a)
{
    struct main_state *m = a->data;
    if (atomic_load(&m->proxy.workers_running) == 0) close_main_handles(m);
}

static void on_grace_expired(uv_timer_t *t)
{
    struct main_state *m = t->data;
    lv_warn("shutdown grace period over: closing the connections still open");
    lv_proxy_stop(&m->proxy);
}

static void on_stop_signal(uv_signal_t *s, int signum)
{
    struct main_state *m = s->data;
    if (m->draining) {
        lv_warn("signal %d again: stopping now", signum);
        lv_proxy_stop(&m->proxy);
        return;
    }
    m->draining = true;
    uint64_t grace = m->proxy.gen->cfg->timeouts.shutdown;
    lv_info("signal %d: draining (at most %llums)", signum, (unsigned long long)grace);
    sd_notify(0, "STOPPING=1");
    /* Health checks and the admin listener stop at once; workers finish. */
    lv_checker_stop(m->checker);
    m->checker = NULL;
    lv_admin_stop(m->admin);
    m->admin = NULL;
    lv_proxy_drain(&m->proxy);
    uv_timer_start(&m->grace, on_grace_expired, grace, 0);
}

/* Reload: SIGHUP and POST /reload. */
static int do_reload(void *arg, struct lv_strbuf *errs)
{
    struct main_state *m = arg;
    if (m->draining) {
        if (errs) lv_strbuf_puts(errs, "levee is shutting down\n");
        return UV_ECANCELED;
    }
    /* MONOTONIC_USEC: systemd 253+ matches it to the reload it asked for
     * (Type=notify-reload); older ones ignore it. */
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
               (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000);
    if (lv_proxy_reload(&m->proxy, m->config_path, errs) != 0) {
        sd_notify(0, "READY=1\nSTATUS=reload failed: running the previous configuration");
        return UV_EINVAL;
    }
    lv_checker_stop(m->checker);
    m->checker = start_checks(m->loop, m->proxy.gen);
    lv_admin_apply(m->admin);
    sd_notifyf(0, "READY=1\nSTATUS=serving configuration generation %llu",
               (unsigned long long)m->proxy.gen->id);
    return 0;
}

static void on_hup(uv_signal_t *s, int signum)
{
    (void)signum;
    lv_info("SIGHUP: reloading %s", ((struct main_state *)s->data)->config_path);
    do_reload(s->data, NULL);
}

static void on_usr1(uv_signal_t *s, int signum)
{
    (void)signum;
    struct main_state *m = s->data;
    if (lv_logfile_reopen(m->proxy.gen->alog) == 0) lv_info("SIGUSR1: access log reopened");
}

/* A proxy holds two descriptors per client (its own and a backend's): the
 * soft limit (often 1024) is raised to the hard one, as nginx's
 * worker_rlimit_nofile and HAProxy do. limits.max_connections is derived
 * from what this leaves (net/maxconn.h). */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
    rlim_t was = rl.rlim_cur;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            lv_warn("cannot raise the file descriptor limit from %llu to %llu: %s",
                    (unsigned long long)was, (unsigned long long)rl.rlim_max, strerror(errno));
            return;
        }
        lv_info("file descriptor limit raised from %llu to %llu (the hard limit)",
                (unsigned long long)was, (unsigned long long)rl.rlim_cur);
        return;
    }
    lv_info("file descriptor limit: %llu (the hard limit)", (unsigned long long)was);
}

static int check_config(const char *path)
{
    int nerr = 0;
    struct lv_config *cfg = lv_config_load(path, stderr, &nerr);
    if (cfg == NULL) {
        fprintf(stderr, "levee: %s: %d error%s\n", path, nerr, nerr == 1 ? "" : "s");
        return 1;
    }
    lv_config_destroy(cfg);
    printf("configuration OK\n");
    return 0;
}

static int run(const char *path)
{
    int nerr = 0;
    struct lv_config *cfg = lv_config_load(path, stderr, &nerr);
    if (cfg == NULL) {
        fprintf(stderr, "levee: %s: %d error%s, not starting\n", path, nerr, nerr == 1 ? "" : "s");
        return 1;
    }
    lv_log_set_level(cfg->log_level);
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();

    static struct main_state m;
    m.loop = uv_default_loop();
    m.config_path = path;
    uv_signal_init(m.loop, &m.sigterm);
    uv_signal_init(m.loop, &m.sigint);
    uv_signal_init(m.loop, &m.sighup);
    uv_signal_init(m.loop, &m.sigusr1);
    uv_timer_init(m.loop, &m.grace);
    uv_async_init(m.loop, &m.worker_exit, on_worker_exit);
    m.sigterm.data = m.sigint.data = m.sighup.data = m.sigusr1.data = &m;
    m.grace.data = m.worker_exit.data = &m;
    uv_signal_start(&m.sigterm, on_stop_signal, SIGTERM);
    uv_signal_start(&m.sigint, on_stop_signal, SIGINT);
    uv_signal_start(&m.sighup, on_hup, SIGHUP);
    uv_signal_start(&m.sigusr1, on_usr1, SIGUSR1);
    uv_unref((uv_handle_t *)&m.grace);

    unsigned workers = cfg->workers;
    size_t nlisten = cfg->n_listeners, nbackends = cfg->n_backends;
    int rc = lv_proxy_start(&m.proxy, cfg, m.loop, &m.worker_exit);
    if (rc == 0) {
        m.history = lv_history_start(m.loop, &m.proxy);
        int err = 0;
        m.admin = lv_admin_start(m.loop, &m.proxy, m.history, do_reload, &m, &err);
        if (err != 0) rc = err;
    }
    if (rc != 0) {
        lv_error("levee could not start");
        m.draining = true;
        lv_proxy_stop(&m.proxy);
        if (atomic_load(&m.proxy.workers_running) == 0)
            close_main_handles(&m);
        else {
            lv_admin_stop(m.admin);
            m.admin = NULL;
        }
    } else {
        m.checker = start_checks(m.loop, m.proxy.gen);
        const struct lv_config *c = m.proxy.gen->cfg;
        for (size_t i = 0; i < nlisten; i++) {
            lv_info("levee %s listening on %s (%u worker%s, %zu backend%s)", lv_version,
                    c->listeners[i].address, workers, workers == 1 ? "" : "s", nbackends,
                    nbackends == 1 ? "" : "s");
        }
        /* Every listener is bound and listening (the workers' setup is done). */
        sd_notifyf(0, "READY=1\nSTATUS=serving configuration generation %llu",
                   (unsigned long long)m.proxy.gen->id);
    }
    uv_run(m.loop, UV_RUN_DEFAULT);
    lv_proxy_destroy(&m.proxy);
    uv_loop_close(m.loop);
    if (rc == 0) lv_info("levee stopped");
    return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"test", no_argument, NULL, 't'},
        {"version", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *path = LV_CONFIG_PATH;
    bool test = false;
    int ch;
    while ((ch = getopt_long(argc, argv, "c:tvh", opts, NULL)) != -1) {
        switch (ch) {
        case 'c': path = optarg; break;
        case 't': test = true; break;
        case 'v': print_version(); return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 2;
    }
    return test ? check_config(path) : run(path);
}
