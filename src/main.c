/*
 * levee's entry point: the command line, signals, startup and shutdown.
 *
 * The main thread loads the configuration, starts the workers, and then
 * runs its own loop: signals (SIGTERM/SIGINT drain, SIGHUP reload, SIGUSR1
 * reopen the access log, SIGUSR2 binary upgrade), active health checks, the
 * admin listener and the per-second metrics history. Workers never wait
 * for it.
 *
 * A binary upgrade (net/upgrade.h) starts the new binary with this
 * process's listening sockets; once it serves, this one stops accepting,
 * lets its connections finish and exits. The new process, started with
 * those sockets (net/inherit.h), reports that it serves instead of telling
 * systemd.
 *
 * Under systemd (Type=notify) it tells the service manager where it stands:
 * READY=1 once the listeners accept, RELOADING=1 ... READY=1 around a
 * reload, STOPPING=1 when a drain starts, MAINPID= of the new process after
 * an upgrade (the unit's NotifyAccess=main then lets the new process, and
 * no longer this one, notify). Without NOTIFY_SOCKET, sd_notify does
 * nothing.
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
#include <unistd.h>
#include <uv.h>

#include "admin/history.h"
#include "admin/admin.h"
#include "config/config.h"
#include "core/buildinfo.h"
#include "core/log.h"
#include "core/version.h"
#include "core/logfile.h"
#include "core/strbuf.h"
#include "net/inherit.h"
#include "net/upgrade.h"
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
    uv_signal_t sigterm, sigint, sighup, sigusr1, sigusr2;
    uv_timer_t grace;
    uv_timer_t idle_close; /* after an upgrade: close the idle keep-alive connections */
    uv_async_t worker_exit;
    struct lv_checker *checker;
    struct lv_admin *admin;
    struct lv_history *history;
    struct lv_upgrade *upgrade; /* a new binary is starting */
    bool draining;
    bool closed;
};

/* After an upgrade, how long the old process leaves a keep-alive connection
 * idle before it closes it (at most timeouts.shutdown). Meanwhile a request
 * that arrives on it is served, with Connection: close; closing it at once
 * would race with a request its client is sending at that moment, which
 * the client would see fail (RFC 9112, 9.3.1). */
#define HANDOVER_IDLE_CLOSE_MS 1000u

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
                 "running configuration stays). SIGUSR1 reopens the access log file.\n"
                 "SIGUSR2 upgrades the binary: the file levee was started from runs with\n"
                 "the listening sockets and, once it serves, this process drains and\n"
                 "exits (if it fails, this one keeps serving).\n");
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
    struct lv_checker_set set = {
        g->backends, g->cfg->backends, g->nbackends, g->checks, g->npools, on_checks_stopped, g};
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
    uv_close((uv_handle_t *)&m->sigusr2, NULL);
    uv_close((uv_handle_t *)&m->grace, NULL);
    uv_close((uv_handle_t *)&m->idle_close, NULL);
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

static void on_idle_close(uv_timer_t *t)
{
    /* The second half of the drain after an upgrade: the connections still
     * idle close now, the others after their response. */
    lv_proxy_drain(&((struct main_state *)t->data)->proxy);
}

/* Health checks and the admin listener stop at once; workers stop
 * accepting and finish their connections, at most timeouts.shutdown.
 * After a hand-over the listening sockets live on in the new process. */
static void drain(struct main_state *m, bool handed_over)
{
    m->draining = true;
    uint64_t grace = m->proxy.gen->cfg->timeouts.shutdown;
    lv_checker_stop(m->checker);
    m->checker = NULL;
    lv_admin_stop(m->admin);
    m->admin = NULL;
    if (handed_over) {
        lv_proxy_stop_accepting(&m->proxy);
        uv_timer_start(&m->idle_close, on_idle_close,
                       grace < HANDOVER_IDLE_CLOSE_MS ? grace : HANDOVER_IDLE_CLOSE_MS, 0);
    } else {
        lv_proxy_drain(&m->proxy);
    }
    uv_timer_start(&m->grace, on_grace_expired, grace, 0);
}

static void on_stop_signal(uv_signal_t *s, int signum)
{
    struct main_state *m = s->data;
    if (m->draining) {
        lv_warn("signal %d again: stopping now", signum);
        lv_proxy_stop(&m->proxy);
        return;
    }
    if (m->upgrade) {
        lv_upgrade_cancel(m->upgrade);
        m->upgrade = NULL;
    }
    lv_info("signal %d: draining (at most %llums)", signum,
            (unsigned long long)m->proxy.gen->cfg->timeouts.shutdown);
    sd_notify(0, "STOPPING=1");
    drain(m, false);
}

/* --- binary upgrade --------------------------------------------------------------------- */

static void on_upgrade_done(struct lv_upgrade *u, bool ready, const char *why, void *arg)
{
    struct main_state *m = arg;
    int pid = lv_upgrade_pid(u);
    m->upgrade = NULL;
    if (!ready) {
        lv_error("upgrade failed: the new levee (pid %d) %s; this one (pid %d) keeps serving", pid,
                 why, (int)getpid());
        /* The pid tells this failure from an earlier one (the Debian
         * postinst waits for a new STATUS). */
        sd_notifyf(0, "STATUS=upgrade failed (pid %d): %s; still serving (pid %d)", pid, why,
                   (int)getpid());
        return;
    }
    lv_info("upgrade: levee pid %d serves now; this process (pid %d) stops accepting and "
            "finishes its connections (at most %llums)",
            pid, (int)getpid(), (unsigned long long)m->proxy.gen->cfg->timeouts.shutdown);
    /* From here on the new process is the service's main process: systemd
     * takes its notifications (NotifyAccess=main), watches it, and sends it
     * the reload and stop signals; this one says nothing more. */
    sd_notifyf(0, "MAINPID=%d\nREADY=1\nSTATUS=serving (pid %d, upgraded from pid %d)", pid, pid,
               (int)getpid());
    drain(m, true);
}

/* SIGUSR2 and POST /upgrade. Returns the new process's pid, or
 * LV_ADMIN_UPGRADE_REFUSED / another negative value with why. */
static int do_upgrade(void *arg, struct lv_strbuf *why)
{
    struct main_state *m = arg;
    const char *refused = m->draining  ? "levee is shutting down"
                          : m->upgrade ? "an upgrade is in progress already"
                                       : NULL;
    if (refused) {
        lv_warn("upgrade: %s: not upgrading", refused);
        if (why) lv_strbuf_puts(why, refused);
        return LV_ADMIN_UPGRADE_REFUSED;
    }
    int err = 0;
    m->upgrade = lv_upgrade_start(m->loop, m->proxy.gen->cfg->timeouts.binary_upgrade,
                                  on_upgrade_done, m, &err);
    if (m->upgrade == NULL) {
        if (why)
            lv_strbuf_printf(why, "cannot start %s: %s",
                             lv_upgrade_binary() ? lv_upgrade_binary() : "the binary",
                             uv_strerror(err));
        sd_notifyf(0, "STATUS=upgrade failed: cannot start %s: %s; still serving (pid %d)",
                   lv_upgrade_binary() ? lv_upgrade_binary() : "the binary", uv_strerror(err),
                   (int)getpid());
        return err < 0 ? err : -2;
    }
    int pid = lv_upgrade_pid(m->upgrade);
    sd_notifyf(0, "STATUS=upgrading: the new levee (pid %d) is starting", pid);
    return pid;
}

static void on_usr2(uv_signal_t *s, int signum)
{
    (void)signum;
    lv_info("SIGUSR2: upgrading to %s",
            lv_upgrade_binary() ? lv_upgrade_binary() : "(the binary is not known)");
    do_upgrade(s->data, NULL);
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
    /* First: before anything opens a descriptor (it closes those an old
     * process leaked into an upgrade's new one) or starts a thread (it
     * changes the environment). */
    bool inherited = lv_inherit_collect() > 0;
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
    uv_signal_init(m.loop, &m.sigusr2);
    uv_timer_init(m.loop, &m.grace);
    uv_timer_init(m.loop, &m.idle_close);
    uv_async_init(m.loop, &m.worker_exit, on_worker_exit);
    m.sigterm.data = m.sigint.data = m.sighup.data = m.sigusr1.data = m.sigusr2.data = &m;
    m.grace.data = m.idle_close.data = m.worker_exit.data = &m;
    uv_signal_start(&m.sigterm, on_stop_signal, SIGTERM);
    uv_signal_start(&m.sigint, on_stop_signal, SIGINT);
    uv_signal_start(&m.sighup, on_hup, SIGHUP);
    uv_signal_start(&m.sigusr1, on_usr1, SIGUSR1);
    uv_signal_start(&m.sigusr2, on_usr2, SIGUSR2);
    uv_unref((uv_handle_t *)&m.grace);
    uv_unref((uv_handle_t *)&m.idle_close);

    unsigned workers = cfg->workers;
    size_t nlisten = cfg->n_listeners, nbackends = cfg->n_backends;
    int rc = lv_proxy_start(&m.proxy, cfg, m.loop, &m.worker_exit);
    if (rc == 0) {
        m.history = lv_history_start(m.loop, &m.proxy);
        int err = 0;
        static const struct lv_admin_ops admin_ops = {.reload = do_reload, .upgrade = do_upgrade};
        m.admin = lv_admin_start(m.loop, &m.proxy, m.history, &admin_ops, &m, &err);
        if (err != 0) rc = err;
    }
    if (rc != 0) {
        lv_error("levee could not start");
        m.draining = true;
        lv_admin_stop(m.admin);
        m.admin = NULL;
        if (inherited && m.proxy.gen) {
            /* Workers may have accepted from sockets another process
             * serves too: those connections are finished, not dropped. */
            lv_proxy_drain(&m.proxy);
            uv_timer_start(&m.grace, on_grace_expired, m.proxy.gen->cfg->timeouts.shutdown, 0);
        } else {
            lv_proxy_stop(&m.proxy);
        }
        if (atomic_load(&m.proxy.workers_running) == 0) close_main_handles(&m);
    } else {
        m.checker = start_checks(m.loop, m.proxy.gen);
        const struct lv_config *c = m.proxy.gen->cfg;
        for (size_t i = 0; i < nlisten; i++) {
            lv_info("levee %s listening on %s (%u worker%s, %zu backend%s)", lv_version,
                    c->listeners[i].address, workers, workers == 1 ? "" : "s", nbackends,
                    nbackends == 1 ? "" : "s");
        }
        /* Every listener is bound and listening (the workers' setup is done). */
        if (lv_inherit_upgrading())
            lv_inherit_report_ready(); /* the old process tells systemd: MAINPID= */
        else
            sd_notifyf(0, "READY=1\nSTATUS=serving configuration generation %llu",
                       (unsigned long long)m.proxy.gen->id);
    }
    /* The listeners have taken theirs: the rest are not used. */
    lv_inherit_release();
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
    /* Before getopt reorders argv: the command line of an upgrade. */
    lv_upgrade_init(argc, argv);
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
