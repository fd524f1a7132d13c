/* The registry of balancing strategies. */
#include "upstream/balancer.h"

#include <string.h>

extern const struct lv_balancer_ops lv_lb_round_robin;
extern const struct lv_balancer_ops lv_lb_random;
extern const struct lv_balancer_ops lv_lb_weighted;
extern const struct lv_balancer_ops lv_lb_least_connections;
extern const struct lv_balancer_ops lv_lb_power_of_two;
extern const struct lv_balancer_ops lv_lb_peak_ewma;

const struct lv_balancer_ops *const lv_balancers[] = {
    &lv_lb_round_robin,
    &lv_lb_random,
    &lv_lb_weighted,
    &lv_lb_least_connections,
    &lv_lb_power_of_two,
    &lv_lb_peak_ewma,
    NULL,
};

const struct lv_balancer_ops *lv_balancer_find(const char *name)
{
    for (size_t i = 0; lv_balancers[i]; i++) {
        if (strcmp(lv_balancers[i]->name, name) == 0) return lv_balancers[i];
    }
    return NULL;
}
