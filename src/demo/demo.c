/* levee-demo-backend: reads the options, binds the listeners, starts the workers, prints the
 * startup line and waits for SIGTERM or SIGINT, then closes everything and exits 0. The main
 * thread only handles signals; the workers (demo_server.c) do all the HTTP. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "demo/options.h"
#include "demo/demo_server.h"

static struct lv_demo_server server;

static void on_signal(uv_signal_t *sig, int signum)
{
    (void)signum;
    lv_demo_server_stop(&server);
    uv_close((uv_handle_t *)sig, NULL);
    uv_close(sig->data, NULL); /* the other signal handle */
}

int main(int argc, char **argv)
{
    struct lv_demo_options o;
    int rc = lv_demo_options_parse(&o, argc, argv);
    if (rc) return rc > 0 ? 0 : 2;
    signal(SIGPIPE, SIG_IGN); /* a peer gone mid-write is an error code, not a death */
    if (!o.seed_given) o.seed = (uint64_t)time(NULL) ^ uv_hrtime() ^ ((uint64_t)getpid() << 32);

    int err = lv_demo_server_init(&server, &o);
    if (err) {
        fprintf(stderr, "levee-demo-backend: listen on %s:%d: %s\n", o.host, o.port,
                uv_strerror(err));
        return 1;
    }
    char id[32];
    if (o.id == NULL) {
        snprintf(id, sizeof(id), "backend-%d", server.port);
        o.id = id;
    }

    uv_loop_t loop;
    uv_signal_t sigterm, sigint;
    uv_loop_init(&loop);
    uv_signal_init(&loop, &sigterm);
    uv_signal_init(&loop, &sigint);
    sigterm.data = &sigint;
    sigint.data = &sigterm;
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    uv_signal_start(&sigint, on_signal, SIGINT);

    err = lv_demo_server_start(&server);
    if (err) {
        fprintf(stderr, "levee-demo-backend: starting workers: %s\n", uv_strerror(err));
        uv_close((uv_handle_t *)&sigterm, NULL);
        uv_close((uv_handle_t *)&sigint, NULL);
        lv_demo_server_stop(&server);
    } else {
        int v6 = strchr(o.host, ':') != NULL;
        printf("levee-demo-backend %s listening on %s%s%s:%d\n", o.id, v6 ? "[" : "", o.host,
               v6 ? "]" : "", server.port);
        fflush(stdout);
        if (!o.quiet && (o.error_rate > 0 || o.hang_rate > 0 || o.reset_rate > 0 || o.jitter_ms))
            fprintf(stderr, "levee-demo-backend %s: --seed %llu\n", o.id,
                    (unsigned long long)o.seed);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    int leak = lv_demo_server_dispose(&server);
    if (uv_loop_close(&loop) || leak) {
        fprintf(stderr, "levee-demo-backend: a handle was left open at exit\n");
        return 1;
    }
    return err ? 1 : 0;
}
