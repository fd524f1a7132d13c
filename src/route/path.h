/*
 * The request path as routes see it: an origin-form target split into its
 * path and its query, the path normalized so that one resource has one
 * spelling (RFC 3986 §6.2.2), and the host of a Host value. Routes match on
 * these; the target sent to a backend stays the client's unless a route
 * rewrites it (docs/routes.md).
 *
 * Normalization, in one pass, never reading an escape twice:
 *   - "%XX" of an unreserved character (ALPHA DIGIT - . _ ~) is decoded
 *     ("%7Euser" -> "~user", "%2e" -> ".");
 *   - every other escape is kept, its hex digits in upper case ("%2f" ->
 *     "%2F"): an encoded "/" stays data inside a segment, never a separator
 *     (Envoy's default), "%25" stays "%25" (no double decoding), and
 *     "%C0%AE" (an overlong ".") is not a dot;
 *   - "//" is one "/" (nginx's merge_slashes);
 *   - "." and ".." segments are resolved (RFC 3986 §5.2.4, decoded dots
 *     included); ".." at the root stays at the root ("/../a" -> "/a").
 * A "%" not followed by two hex digits makes the path invalid (400, as
 * nginx). Pure functions; no allocation.
 */
#ifndef LV_ROUTE_PATH_H
#define LV_ROUTE_PATH_H

#include <stddef.h>
#include <sys/types.h>

/* A host name is at most this long (RFC 1035); a longer Host matches no
 * host pattern. */
#define LV_ROUTE_HOST_MAX 255

/*
 * Splits a target t[0..n) at its first '?': *path_len is the length of the
 * path, *query and *query_len the query without the '?' (NULL and 0 when the
 * target has no '?'; an empty query is "" and 0).
 */
void lv_target_split(const char *t, size_t n, size_t *path_len, const char **query,
                     size_t *query_len);

/*
 * Normalizes path p[0..n) (origin form: it starts with '/'; "*" is kept as
 * it is) into out, which has room for n bytes: the result is never longer.
 * out may not overlap p. Returns the length written, or -1 when p has an
 * invalid escape or does not start with '/'.
 */
ssize_t lv_path_normalize(const char *p, size_t n, char *out);

/*
 * The host of a Host value or authority h[0..n) as host patterns compare
 * it: the port removed ("a.example:8080" -> "a.example", "[::1]:80" ->
 * "[::1]"), ASCII letters in lower case, one trailing dot removed
 * ("example.com." is example.com, as nginx has it). Writes it to out
 * (LV_ROUTE_HOST_MAX bytes) and returns its length, or -1 when there is no
 * host or it is longer than LV_ROUTE_HOST_MAX. Percent-escapes are not
 * decoded (a host with one matches no name).
 */
ssize_t lv_route_host(const char *h, size_t n, char *out);

#endif
