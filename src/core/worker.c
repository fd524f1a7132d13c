/* Worker threads and their mailboxes. */
#include "core/worker.h"

#include <stdlib.h>

#include "core/clock.h"
#include "core/log.h"

static void on_wakeup(uv_async_t *a)
{
    struct lv_worker *w = a->data;
    struct lv_list msgs, *it, *tmp;
    uv_mutex_lock(&w->lock);
    lv_list_move_all(&msgs, &w->msgs);
    uv_mutex_unlock(&w->lock);
    lv_list_foreach_safe(it, tmp, &msgs)
    {
        struct lv_worker_msg *m = lv_container_of(it, struct lv_worker_msg, node);
        m->cb(w, m->arg);
        free(m);
    }
}

int lv_worker_init(struct lv_worker *w, unsigned id, void *data)
{
    w->id = id;
    w->data = data;
    lv_list_init(&w->msgs);
    w->wakeup_closed = false;
    lv_rand_seed(&w->rand, lv_clock_ns() ^ ((uint64_t)id << 48) ^ (uint64_t)(uintptr_t)w);
    int rc = uv_loop_init(&w->loop);
    if (rc) return rc;
    uv_mutex_init(&w->lock);
    w->wakeup.data = w;
    return uv_async_init(&w->loop, &w->wakeup, on_wakeup);
}

static void thread_main(void *arg)
{
    struct lv_worker *w = arg;
    if (w->setup) w->setup(w, w->data);
    uv_run(&w->loop, UV_RUN_DEFAULT);
}

int lv_worker_start(struct lv_worker *w, lv_worker_cb setup)
{
    w->setup = setup;
    return uv_thread_create(&w->thread, thread_main, w);
}

int lv_worker_post(struct lv_worker *w, lv_worker_cb cb, void *arg)
{
    struct lv_worker_msg *m = malloc(sizeof(*m));
    if (m == NULL) return UV_ENOMEM;
    m->cb = cb;
    m->arg = arg;
    uv_mutex_lock(&w->lock);
    if (w->wakeup_closed) {
        uv_mutex_unlock(&w->lock);
        free(m);
        return UV_ECANCELED;
    }
    lv_list_push_back(&w->msgs, &m->node);
    uv_async_send(&w->wakeup);
    uv_mutex_unlock(&w->lock);
    return 0;
}

void lv_worker_close_mailbox(struct lv_worker *w)
{
    uv_mutex_lock(&w->lock);
    if (w->wakeup_closed) {
        uv_mutex_unlock(&w->lock);
        return;
    }
    w->wakeup_closed = true;
    struct lv_list msgs, *it, *tmp;
    lv_list_move_all(&msgs, &w->msgs);
    uv_mutex_unlock(&w->lock);
    lv_list_foreach_safe(it, tmp, &msgs) /* messages that raced with the close are dropped */
    {
        free(lv_container_of(it, struct lv_worker_msg, node));
    }
    uv_close((uv_handle_t *)&w->wakeup, NULL);
}

static void close_leftover(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h)) {
        lv_warn("worker: closing a handle left open (type %s)", uv_handle_type_name(h->type));
        uv_close(h, NULL);
    }
}

void lv_worker_join(struct lv_worker *w)
{
    uv_thread_join(&w->thread);
    if (uv_loop_close(&w->loop) == UV_EBUSY) {
        uv_walk(&w->loop, close_leftover, NULL);
        uv_run(&w->loop, UV_RUN_DEFAULT);
        uv_loop_close(&w->loop);
    }
    uv_mutex_destroy(&w->lock);
}
