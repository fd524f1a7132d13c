/*
 * How inherited listening sockets are shared among workers
 * (net/inherit.c, lv_inherit_share): every socket is accepted on by some
 * worker (a socket nobody polls would hold its connections forever), every
 * worker gets at least one, and a socket goes to one worker when there are
 * enough to go round.
 */
#include <criterion/criterion.h>
#include <stddef.h>

#include "net/inherit.h"

/* For k sockets and n workers: how many workers accept on each socket, and
 * how many sockets each worker got. */
static void share_all(size_t k, unsigned n, unsigned per_socket[], size_t per_worker[])
{
    for (size_t j = 0; j < k; j++)
        per_socket[j] = 0;
    for (unsigned i = 0; i < n; i++) {
        size_t mine[LV_INHERIT_MAX];
        per_worker[i] = lv_inherit_share(k, i, n, mine, LV_INHERIT_MAX);
        for (size_t j = 0; j < per_worker[i]; j++) {
            cr_assert_lt(mine[j], k);
            per_socket[mine[j]]++;
        }
    }
}

Test(inherit_share, as_many_sockets_as_workers_one_each)
{
    unsigned per_socket[4];
    size_t per_worker[4];
    share_all(4, 4, per_socket, per_worker);
    for (int i = 0; i < 4; i++) {
        cr_expect_eq(per_worker[i], 1);
        cr_expect_eq(per_socket[i], 1);
    }
    size_t mine[4];
    cr_expect_eq(lv_inherit_share(4, 2, 4, mine, 4), 1);
    cr_expect_eq(mine[0], 2, "worker i takes socket i");
}

Test(inherit_share, more_sockets_than_workers_every_socket_served_once)
{
    /* An upgrade from 8 workers to 3: 8 sockets, 3 workers. */
    unsigned per_socket[8];
    size_t per_worker[3];
    share_all(8, 3, per_socket, per_worker);
    for (int j = 0; j < 8; j++)
        cr_expect_eq(per_socket[j], 1, "socket %d is served by %u workers", j, per_socket[j]);
    cr_expect_eq(per_worker[0], 3); /* 0, 3, 6 */
    cr_expect_eq(per_worker[1], 3); /* 1, 4, 7 */
    cr_expect_eq(per_worker[2], 2); /* 2, 5 */
}

Test(inherit_share, fewer_sockets_than_workers_shared_evenly)
{
    /* systemd's one socket, 4 workers: all of them accept on it. */
    unsigned per_socket[2];
    size_t per_worker[5];
    share_all(1, 4, per_socket, per_worker);
    cr_expect_eq(per_socket[0], 4);
    for (int i = 0; i < 4; i++)
        cr_expect_eq(per_worker[i], 1);
    /* 2 sockets, 5 workers: 3 on one, 2 on the other. */
    share_all(2, 5, per_socket, per_worker);
    cr_expect_eq(per_socket[0], 3);
    cr_expect_eq(per_socket[1], 2);
    for (int i = 0; i < 5; i++)
        cr_expect_eq(per_worker[i], 1);
}

Test(inherit_share, nothing_to_share_or_no_such_worker)
{
    size_t mine[4];
    cr_expect_eq(lv_inherit_share(0, 0, 2, mine, 4), 0);
    cr_expect_eq(lv_inherit_share(3, 2, 2, mine, 4), 0, "worker 2 of 2 does not exist");
}

Test(inherit_share, at_most_max)
{
    size_t mine[2];
    cr_expect_eq(lv_inherit_share(10, 0, 1, mine, 2), 2);
    cr_expect_eq(mine[0], 0);
    cr_expect_eq(mine[1], 1);
}
