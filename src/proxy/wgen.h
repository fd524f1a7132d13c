/*
 * A worker's view of a configuration generation (config/gen.h): the
 * balancer's state, scratch arrays, the access-log buffer, and a plain
 * count of the requests using it. Nothing on the request path touches an
 * atomic reference count: the view holds one reference on the generation
 * for all its requests.
 */
#ifndef LV_PROXY_WGEN_H
#define LV_PROXY_WGEN_H

#include "proxy/proxy-t.h"

/* The worker's view of g (taking a reference on g). NULL on ENOMEM. */
struct lv_wgen *lv_wgen_create(struct lv_server *srv, struct lv_gen *g);
/* Frees a view no request uses any more (dropping its reference on g). */
void lv_wgen_destroy(struct lv_wgen *wg);

#endif
