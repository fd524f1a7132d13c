/* Capped text writers, growable and fixed, and their escapers (core/strbuf.c). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "core/strbuf.h"
#include "unit/lv_test.h"

/* After any append the buffer holds a NUL-terminated string of len bytes,
 * inside its allocation, which never exceeds the cap. */
static void expect_sane(const struct lv_strbuf *sb)
{
    cr_expect_leq(sb->cap, sb->max, "cap %zu over max %zu", sb->cap, sb->max);
    if (sb->p == NULL) {
        cr_expect_eq(sb->len, 0);
        return;
    }
    cr_expect_lt(sb->len, sb->cap);
    cr_expect_eq(sb->p[sb->len], '\0');
    cr_expect_eq(strlen(sb->p), sb->len);
}

Test(strbuf, starts_empty)
{
    struct lv_strbuf sb;
    lv_strbuf_init(&sb, 100);
    cr_expect_eq(sb.len, 0);
    cr_expect_eq(sb.max, 100);
    cr_expect_not(sb.truncated);
    expect_sane(&sb);
    lv_strbuf_dispose(&sb);
    cr_expect_null(sb.p);
    cr_expect_eq(sb.len, 0);
}

Test(strbuf, appends)
{
    struct lv_strbuf sb;
    lv_strbuf_init(&sb, 1 << 20);
    lv_strbuf_add(&sb, "abcdef", 3);
    lv_strbuf_puts(&sb, "-xyz-");
    lv_strbuf_add(&sb, "", 0);
    lv_strbuf_puts(&sb, "");
    lv_strbuf_printf(&sb, "%d:%s:%c", 42, "q", '!');
    cr_expect_str_eq(sb.p, "abc-xyz-42:q:!");
    cr_expect_eq(sb.len, 14);
    cr_expect_not(sb.truncated);
    expect_sane(&sb);
    lv_strbuf_dispose(&sb);
    LV_EXPECT_NO_LEAKS();
}

Test(strbuf, grows_past_its_first_allocation)
{
    struct lv_strbuf sb;
    lv_strbuf_init(&sb, 1 << 20);
    char expect[10001];
    for (int i = 0; i < 10000; i++) {
        char c = (char)('a' + i % 26);
        lv_strbuf_add(&sb, &c, 1);
        expect[i] = c;
    }
    expect[10000] = '\0';
    cr_expect_eq(sb.len, 10000);
    cr_expect_str_eq(sb.p, expect);
    cr_expect_not(sb.truncated);
    expect_sane(&sb);
    lv_strbuf_dispose(&sb);
    LV_EXPECT_NO_LEAKS();
}

Test(strbuf, printf_short_and_long)
{
    struct lv_strbuf sb;
    lv_strbuf_init(&sb, 1 << 20);
    char big[2001];
    memset(big, 'b', 2000);
    big[2000] = '\0';
    lv_strbuf_puts(&sb, "<");
    lv_strbuf_printf(&sb, "[%s]", big); /* 2002 bytes: past the 512-byte scratch */
    lv_strbuf_printf(&sb, "%05d", 7);
    cr_expect_eq(sb.len, 1 + 2002 + 5);
    cr_expect_eq(sb.p[0], '<');
    cr_expect_eq(sb.p[1], '[');
    cr_expect_eq(memcmp(sb.p + 2, big, 2000), 0);
    cr_expect_str_eq(sb.p + 2002, "]00007");
    expect_sane(&sb);
    lv_strbuf_dispose(&sb);
    LV_EXPECT_NO_LEAKS();
}

Test(strbuf, printf_around_the_scratch_size)
{
    for (int len = 505; len <= 520; len++) {
        struct lv_strbuf sb;
        lv_strbuf_init(&sb, 1 << 16);
        lv_strbuf_puts(&sb, "ab");
        lv_strbuf_printf(&sb, "%0*d", len, 1);
        cr_expect_eq(sb.len, 2 + (size_t)len, "length %d", len);
        cr_expect_eq(sb.p[2 + len - 1], '1', "length %d", len);
        cr_expect_eq(sb.p[2], len == 1 ? '1' : '0');
        cr_expect_eq(memcmp(sb.p, "ab", 2), 0);
        expect_sane(&sb);
        lv_strbuf_dispose(&sb);
    }
    LV_EXPECT_NO_LEAKS();
}

Test(strbuf, fills_the_cap_exactly)
{
    struct lv_strbuf sb;
    lv_strbuf_init(&sb, 16); /* 15 bytes and the NUL */
    lv_strbuf_puts(&sb, "0123456789");
    lv_strbuf_puts(&sb, "abcde");
    cr_expect_not(sb.truncated);
    cr_expect_str_eq(sb.p, "0123456789abcde");
    cr_expect_eq(sb.cap, 16);
    expect_sane(&sb);
    lv_strbuf_puts(&sb, "X");
    cr_expect(sb.truncated);
    cr_expect_str_eq(sb.p, "0123456789abcde");
    expect_sane(&sb);
    lv_strbuf_dispose(&sb);
    LV_EXPECT_NO_LEAKS();
}

Test(strbuf, an_append_past_the_cap_is_dropped_whole_and_sticks)
{
    struct lv_strbuf sb;
    lv_strbuf_init(&sb, 16);
    lv_strbuf_puts(&sb, "0123456789");
    lv_strbuf_puts(&sb, "abcdef"); /* 10 + 6 + 1 > 16 */
    cr_expect(sb.truncated);
    cr_expect_str_eq(sb.p, "0123456789", "nothing of it written");
    cr_expect_eq(sb.len, 10);
    /* Later appends that would fit are dropped too: a document with a hole
     * is worse than a cut one. */
    lv_strbuf_puts(&sb, "x");
    lv_strbuf_printf(&sb, "%d", 1);
    lv_strbuf_json_str(&sb, "");
    cr_expect_str_eq(sb.p, "0123456789");
    cr_expect(sb.truncated);
    expect_sane(&sb);
    lv_strbuf_dispose(&sb);
    LV_EXPECT_NO_LEAKS();
}

Test(strbuf, a_long_printf_past_the_cap)
{
    struct lv_strbuf sb;
    lv_strbuf_init(&sb, 1000);
    lv_strbuf_puts(&sb, "head");
    lv_strbuf_printf(&sb, "%0999d", 5);
    cr_expect(sb.truncated);
    cr_expect_str_eq(sb.p, "head");
    expect_sane(&sb);
    lv_strbuf_dispose(&sb);

    lv_strbuf_init(&sb, 1000);
    lv_strbuf_printf(&sb, "%0999d", 5); /* exactly 999 + NUL */
    cr_expect_not(sb.truncated);
    cr_expect_eq(sb.len, 999);
    cr_expect_eq(sb.p[998], '5');
    expect_sane(&sb);
    lv_strbuf_dispose(&sb);
    LV_EXPECT_NO_LEAKS();
}

Test(strbuf, the_cap_bounds_growth)
{
    /* Growth by doubling stops at the cap: 3000 bytes of room, never a
     * 4096-byte allocation. */
    struct lv_strbuf sb;
    lv_strbuf_init(&sb, 3000);
    char chunk[100];
    memset(chunk, 'c', sizeof(chunk));
    for (int i = 0; i < 40; i++)
        lv_strbuf_add(&sb, chunk, sizeof(chunk));
    cr_expect(sb.truncated);
    cr_expect_eq(sb.len, 2900);
    cr_expect_leq(sb.cap, 3000);
    expect_sane(&sb);
    lv_strbuf_dispose(&sb);
    LV_EXPECT_NO_LEAKS();
}

static void expect_json(const char *in, const char *want)
{
    struct lv_strbuf sb;
    lv_strbuf_init(&sb, 4096);
    lv_strbuf_json_str(&sb, in);
    cr_expect_not(sb.truncated);
    cr_expect_str_eq(sb.p, want);
    lv_strbuf_dispose(&sb);
}

Test(strbuf, json_strings)
{
    expect_json("", "\"\"");
    expect_json("plain text", "\"plain text\"");
    expect_json("say \"hi\"", "\"say \\\"hi\\\"\"");
    expect_json("C:\\dir\\", "\"C:\\\\dir\\\\\"");
    expect_json("\\\"", "\"\\\\\\\"\"");
    expect_json("/", "\"/\"");
    LV_EXPECT_NO_LEAKS();
}

Test(strbuf, json_control_characters)
{
    expect_json("a\nb", "\"a\\u000ab\"");
    expect_json("\t\r\b\f", "\"\\u0009\\u000d\\u0008\\u000c\"");
    expect_json("\x01\x1f", "\"\\u0001\\u001f\"");
    expect_json(" \x7f", "\" \x7f\"");             /* DEL needs no escape in JSON */
    expect_json("caf\xc3\xa9", "\"caf\xc3\xa9\""); /* UTF-8 passes through */
    /* Every control character, in order. */
    char in[32];
    for (int i = 1; i < 32; i++)
        in[i - 1] = (char)i;
    in[31] = '\0';
    struct lv_strbuf sb;
    lv_strbuf_init(&sb, 4096);
    lv_strbuf_json_str(&sb, in);
    cr_assert_eq(sb.len, 2 + 31 * 6);
    for (int i = 1; i < 32; i++) {
        char want[7];
        snprintf(want, sizeof(want), "\\u%04x", i);
        cr_expect_eq(memcmp(sb.p + 1 + (i - 1) * 6, want, 6), 0, "byte %d", i);
    }
    lv_strbuf_dispose(&sb);
    LV_EXPECT_NO_LEAKS();
}

Test(strbuf, json_string_past_the_cap)
{
    struct lv_strbuf sb;
    lv_strbuf_init(&sb, 8);
    lv_strbuf_json_str(&sb, "abcdefgh");
    cr_expect(sb.truncated);
    cr_expect_leq(sb.len, 7);
    expect_sane(&sb);
    lv_strbuf_dispose(&sb);
    LV_EXPECT_NO_LEAKS();
}

/* --- a writer into the caller's memory --------------------------------------------- */

Test(strbuf_fixed, writes_into_the_callers_memory_and_never_past_it)
{
    char mem[12];
    memset(mem, '#', sizeof(mem));
    struct lv_strbuf sb;
    lv_strbuf_init_fixed(&sb, mem, 10);
    lv_strbuf_puts(&sb, "abc");
    lv_strbuf_printf(&sb, "%d", 42);
    cr_expect_eq(sb.p, mem, "no allocation");
    cr_expect_eq(sb.len, 5);
    cr_expect_str_eq(mem, "abc42");
    lv_strbuf_puts(&sb, "defgh"); /* exactly to the end: 10 bytes, no NUL */
    cr_expect_not(sb.truncated);
    cr_expect_eq(sb.len, 10);
    cr_expect_eq(memcmp(mem, "abc42defgh", 10), 0);
    cr_expect_eq(mem[10], '#', "nothing written past the 10 bytes");
    lv_strbuf_add(&sb, "x", 1);
    cr_expect(sb.truncated);
    cr_expect_eq(sb.len, 10);
    cr_expect_eq(mem[10], '#');
    lv_strbuf_dispose(&sb); /* frees nothing: mem is on the stack */
    LV_EXPECT_NO_LEAKS();
}

Test(strbuf_fixed, a_long_printf_that_just_fits_and_one_that_does_not)
{
    char mem[1001];
    mem[1000] = '#';
    struct lv_strbuf sb;
    lv_strbuf_init_fixed(&sb, mem, 1000);
    lv_strbuf_printf(&sb, "%01000d", 7); /* 1000 bytes: no room for vsnprintf's NUL */
    cr_expect_not(sb.truncated);
    cr_expect_eq(sb.len, 1000);
    cr_expect_eq(mem[999], '7');
    cr_expect_eq(mem[1000], '#');
    lv_strbuf_init_fixed(&sb, mem, 1000);
    lv_strbuf_puts(&sb, "ab");
    lv_strbuf_printf(&sb, "%0999d", 7);
    cr_expect(sb.truncated, "dropped whole, as a heap writer does");
    cr_expect_eq(sb.len, 2);
    cr_expect_str_eq(mem, "ab");
    LV_EXPECT_NO_LEAKS();
}

/* --- the escapers ------------------------------------------------------------------- */

static void expect_escaped(const char *in, size_t n, int mode, const char *want)
{
    struct lv_strbuf sb;
    lv_strbuf_init(&sb, 4096);
    if (mode == 2)
        lv_strbuf_text_escape(&sb, in, n);
    else
        lv_strbuf_json_escape(&sb, in, n, mode == 1);
    cr_expect_not(sb.truncated);
    cr_expect_str_eq(sb.p ? sb.p : "", want);
    lv_strbuf_dispose(&sb);
}

Test(strbuf, json_escape_of_bytes_with_their_length)
{
    expect_escaped("", 0, 0, "");
    expect_escaped("a\"b\\c", 5, 0, "a\\\"b\\\\c");
    expect_escaped("a\0b", 3, 0, "a\\u0000b"); /* a NUL inside is a byte like another */
    expect_escaped("caf\xc3\xa9\x7f", 6, 0, "caf\xc3\xa9\x7f");
    expect_escaped("abcdef", 3, 0, "abc");
    LV_EXPECT_NO_LEAKS();
}

Test(strbuf, json_escape_ascii_only_escapes_every_byte_past_0x7e)
{
    /* What a client sent need not be UTF-8: the log stays valid JSON. */
    expect_escaped("caf\xc3\xa9", 5, 1, "caf\\u00c3\\u00a9");
    expect_escaped("\x7f\xff~ ", 4, 1, "\\u007f\\u00ff~ ");
    expect_escaped("q\"\\\n", 4, 1, "q\\\"\\\\\\u000a");
    LV_EXPECT_NO_LEAKS();
}

Test(strbuf, text_escape_keeps_a_quoted_log_field_on_its_line)
{
    expect_escaped("Mozilla/5.0 (X11)", 17, 2, "Mozilla/5.0 (X11)");
    expect_escaped("a\"b\\c", 5, 2, "a\\x22b\\x5Cc");
    expect_escaped("x\r\n127.0.0.1 - - [", 18, 2, "x\\x0D\\x0A127.0.0.1 - - [");
    expect_escaped("\x7f\xc3\xa9\t", 4, 2, "\\x7F\\xC3\\xA9\\x09");
    LV_EXPECT_NO_LEAKS();
}

Test(strbuf_fixed, an_escape_past_the_end_is_dropped_and_marks_it)
{
    char mem[8];
    struct lv_strbuf sb;
    lv_strbuf_init_fixed(&sb, mem, sizeof(mem));
    lv_strbuf_json_escape(&sb, "abcd\n", 5, true); /* 4 + 6 bytes */
    cr_expect(sb.truncated);
    cr_expect_eq(sb.len, 4);
    cr_expect_eq(memcmp(mem, "abcd", 4), 0);
    LV_EXPECT_NO_LEAKS();
}
