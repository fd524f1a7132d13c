/*
 * levee's entry point: the command line, signals, startup and shutdown.
 *
 * The main thread loads the configuration, starts the workers and then only
 * waits: for SIGTERM/SIGINT (drain: stop accepting, finish what is in
 * flight, at most timeouts.shutdown), or for the workers to end.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <uv.h>

#include "config/config.h"
#include "core/log.h"
#include "proxy/proxy.h"
#include "upstream/checker.h"

#define DEFAULT_CONFIG "/etc/levee/levee.yaml"

struct main_state {
    uv_loop_t *loop;
    struct lv_proxy proxy;
    uv_signal_t sigterm, sigint, sighup;
    uv_timer_t grace;
    uv_async_t worker_exit;
    struct lv_checker *checker;
    bool draining;
};

static void usage(FILE *out)
{
    fprintf(out, "usage: levee [-c FILE] [-t] [--version] [--help]\n"
                 "\n"
                 "  -c, --config FILE  configuration file (default " DEFAULT_CONFIG ")\n"
                 "  -t, --test         check the configuration and exit: prints\n"
                 "                     'configuration OK', or every error as\n"
                 "                     FILE:LINE:COL: message (exit status 1)\n"
                 "  -v, --version      print the version and exit\n"
                 "  -h, --help         print this help and exit\n"
                 "\n"
                 "Signals: SIGTERM/SIGINT stop accepting connections, let requests in\n"
                 "flight finish (at most timeouts.shutdown) and exit 0; a second one\n"
                 "exits at once.\n");
}

static void close_main_handles(struct main_state *m)
{
    lv_checker_stop(m->checker);
    m->checker = NULL;
    uv_close((uv_handle_t *)&m->sigterm, NULL);
    uv_close((uv_handle_t *)&m->sigint, NULL);
    uv_close((uv_handle_t *)&m->sighup, NULL);
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
    lv_info("signal %d: draining (at most %llums)", signum,
            (unsigned long long)m->proxy.cfg->timeouts.shutdown);
    lv_proxy_drain(&m->proxy);
    uv_timer_start(&m->grace, on_grace_expired, m->proxy.cfg->timeouts.shutdown, 0);
}

static void on_hup(uv_signal_t *s, int signum)
{
    (void)s;
    (void)signum;
    lv_warn("SIGHUP: configuration reload is not available in this version; ignored");
}

static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
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
    uv_signal_init(m.loop, &m.sigterm);
    uv_signal_init(m.loop, &m.sigint);
    uv_signal_init(m.loop, &m.sighup);
    uv_timer_init(m.loop, &m.grace);
    uv_async_init(m.loop, &m.worker_exit, on_worker_exit);
    m.sigterm.data = m.sigint.data = m.sighup.data = m.grace.data = m.worker_exit.data = &m;
    uv_signal_start(&m.sigterm, on_stop_signal, SIGTERM);
    uv_signal_start(&m.sigint, on_stop_signal, SIGINT);
    uv_signal_start(&m.sighup, on_hup, SIGHUP);
    uv_unref((uv_handle_t *)&m.grace);

    int rc = lv_proxy_start(&m.proxy, cfg, m.loop, &m.worker_exit);
    if (rc != 0) {
        lv_error("levee could not start");
        m.draining = true;
        lv_proxy_stop(&m.proxy);
        if (atomic_load(&m.proxy.workers_running) == 0) close_main_handles(&m);
    } else {
        m.checker = lv_checker_start(m.loop, cfg, m.proxy.backends, m.proxy.nbackends);
        for (size_t i = 0; i < cfg->n_listeners; i++) {
            lv_info("levee %s listening on %s (%u worker%s, %zu backend%s)", LV_VERSION,
                    cfg->listeners[i].address, cfg->workers, cfg->workers == 1 ? "" : "s",
                    cfg->n_backends, cfg->n_backends == 1 ? "" : "s");
        }
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
    const char *path = DEFAULT_CONFIG;
    bool test = false;
    int ch;
    while ((ch = getopt_long(argc, argv, "c:tvh", opts, NULL)) != -1) {
        switch (ch) {
        case 'c': path = optarg; break;
        case 't': test = true; break;
        case 'v': printf("levee %s (%s)\n", LV_VERSION, LV_GIT_REV); return 0;
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
