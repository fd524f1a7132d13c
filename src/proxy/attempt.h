/*
 * The attempt loop of an exchange: which backend gets the next try, whether
 * a failed try is tried again (and after how long), hedging, and the
 * outcome each try reports to its backend's circuit breaker.
 *
 *   start ─► choose (balancer over usable backends, untried first; breaker
 *   admits) ─► connection ─► outcome:
 *     response head, status not retryable ─► winner: the other try (hedge)
 *                                             is cancelled
 *     failure / retryable status ─► another try in flight? wait for it.
 *                                   else retry policy: retry after backoff,
 *                                   or answer with the failure
 *   hedge_after elapsed, no head yet ─► a second copy to another backend
 */
#ifndef LV_PROXY_ATTEMPT_H
#define LV_PROXY_ATTEMPT_H

#include "proxy/proxy-t.h"

/* The request head is in: make the first attempt. */
void lv_attempt_first(struct lv_exchange *ex);

/* The client's request is complete: a hedge may now be armed. */
void lv_attempt_request_complete(struct lv_exchange *ex);

/* A final response head arrived on up. Returns 0 when it is the answer
 * (up is now ex->up; any other try was cancelled), or -1 when it was
 * discarded (a retryable status that will be retried or that another try
 * may still beat): up is then released and must not be used. */
int lv_attempt_on_response(struct lv_exchange *ex, struct lv_upconn *up);

/* An attempt failed before its response was accepted (or, after, while the
 * body streamed: then the exchange is cut short). up is released. */
void lv_attempt_failed(struct lv_exchange *ex, struct lv_upconn *up, enum lv_fail_kind kind,
                       int sys_err);

/* Cancels every try in flight and any pending timer (the exchange is done
 * or abandoned); gives back the retry budget. */
void lv_attempt_stop(struct lv_exchange *ex);

/* Seconds a client should wait before trying again when no backend can
 * serve (the soonest a breaker probes, else a health-check interval). */
unsigned lv_attempt_retry_after(const struct lv_exchange *ex);

#endif
