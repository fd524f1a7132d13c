/*
 * Worker threads: each owns one libuv loop and runs until its loop has
 * nothing left to do. Other threads talk to a worker only by posting a
 * message (a callback run on the worker's loop); that mailbox is the one
 * lock a worker has, and it is never on the request path.
 */
#ifndef LV_CORE_WORKER_H
#define LV_CORE_WORKER_H

#include <stdbool.h>
#include <uv.h>

#include "core/list.h"
#include "core/rand.h"

struct lv_worker;
typedef void (*lv_worker_cb)(struct lv_worker *w, void *arg);

struct lv_worker_msg {
    struct lv_list node; /* in the mailbox, oldest first */
    lv_worker_cb cb;
    void *arg;
};

struct lv_worker {
    unsigned id;
    uv_loop_t loop;
    uv_thread_t thread;
    uv_async_t wakeup;
    uv_mutex_t lock;
    struct lv_list msgs; /* under lock */
    bool wakeup_closed;
    struct lv_rand rand;
    lv_worker_cb setup; /* runs on the worker thread before the loop */
    void *data;         /* the owner's */
};

/* Prepares the loop and mailbox on the calling thread. 0 or a libuv error. */
int lv_worker_init(struct lv_worker *w, unsigned id, void *data);
/* Starts the thread: setup(w, data), then the loop until it is empty. */
int lv_worker_start(struct lv_worker *w, lv_worker_cb setup);
/* Runs cb(w, arg) on the worker's loop, soon. Thread-safe. Returns 0, or
 * UV_ECANCELED if the worker has stopped taking messages, or UV_ENOMEM
 * (cb is then not run). */
int lv_worker_post(struct lv_worker *w, lv_worker_cb cb, void *arg);
/* From the worker itself: stop taking messages, so that the loop can end
 * once everything else is closed. */
void lv_worker_close_mailbox(struct lv_worker *w);
/* Waits for the thread to end; then frees the loop. */
void lv_worker_join(struct lv_worker *w);

#endif
