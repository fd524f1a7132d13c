/*
 * The one intrusive list of levee, and the one container_of. A node
 * (struct lv_list) is embedded in the object it links; the list is a circle
 * through a sentinel node (the head), as libuv's QUEUE and the Linux
 * kernel's list_head: no allocation, O(1) insertion and removal anywhere,
 * and an empty list is a head that points at itself. lv_container_of gives
 * the object back from its node (or from any embedded member).
 *
 * A node that lv_list_init set up, or that lv_list_remove took out, points
 * at itself: lv_list_linked says whether it is in a list, and removing it
 * again does nothing. Nodes in zeroed memory are neither: initialize them
 * (or track membership yourself) before asking.
 */
#ifndef LV_CORE_LIST_H
#define LV_CORE_LIST_H

#include <stdbool.h>
#include <stddef.h>

/* The object of type `type` whose member `member` is at ptr. */
#define lv_container_of(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

struct lv_list {
    struct lv_list *prev, *next;
};

/* An empty list (a head), or a node in no list. */
static inline void lv_list_init(struct lv_list *l)
{
    l->prev = l->next = l;
}

static inline bool lv_list_empty(const struct lv_list *head)
{
    return head->next == head;
}

/* Is n (initialized) in a list? */
static inline bool lv_list_linked(const struct lv_list *n)
{
    return n->next != n;
}

/* Links n between a and b (a->next == b). */
static inline void lv_list_link(struct lv_list *a, struct lv_list *n, struct lv_list *b)
{
    n->prev = a;
    n->next = b;
    a->next = n;
    b->prev = n;
}

/* Adds n first (most recent, for a LIFO) or last (a FIFO's newest). */
static inline void lv_list_push_front(struct lv_list *head, struct lv_list *n)
{
    lv_list_link(head, n, head->next);
}

static inline void lv_list_push_back(struct lv_list *head, struct lv_list *n)
{
    lv_list_link(head->prev, n, head);
}

/* Takes n out of its list; n is left pointing at itself. */
static inline void lv_list_remove(struct lv_list *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = n;
}

/* Moves every node of `from` to the empty list `to`, in order; `from` is
 * left empty (taking a whole queue at once, e.g. under a lock). */
static inline void lv_list_move_all(struct lv_list *to, struct lv_list *from)
{
    if (lv_list_empty(from)) {
        lv_list_init(to);
        return;
    }
    to->next = from->next;
    to->prev = from->prev;
    to->next->prev = to;
    to->prev->next = to;
    lv_list_init(from);
}

/* The first and the last node, or NULL when the list is empty. */
static inline struct lv_list *lv_list_first(const struct lv_list *head)
{
    return head->next == head ? NULL : head->next;
}

static inline struct lv_list *lv_list_last(const struct lv_list *head)
{
    return head->prev == head ? NULL : head->prev;
}

/* Iterates over the nodes, first to last. The _safe form lets the body
 * remove (or free) the current node. */
#define lv_list_foreach(it, head) for ((it) = (head)->next; (it) != (head); (it) = (it)->next)
#define lv_list_foreach_safe(it, tmp, head)                                                        \
    for ((it) = (head)->next, (tmp) = (it)->next; (it) != (head); (it) = (tmp), (tmp) = (it)->next)

#endif
