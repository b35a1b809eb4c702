/* Unit tests of services/gateway/outq: reference-counted frame buffers (headroom, payload,
 * sharing, release) and the bounded write queue (FIFO order, bound, growth, wrap-around,
 * clear). Leaks show up under ASan. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "services/gateway/outq.h"
#include "tests/support/util.h"

START_TEST(test_buf_payload_and_headroom)
{
    gw_buf_t *b = gw_buf_new("hello", 5);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq(b->len, 5);
    ck_assert_mem_eq(gw_buf_payload(b), "hello", 5);
    ck_assert_int_eq(gw_buf_payload(b)[5], '\0');
    ck_assert_ptr_eq(gw_buf_payload(b), b->data + GW_BUF_PRE);
    /* The headroom is writable (lws puts the frame header there). */
    memset(b->data, 0xab, GW_BUF_PRE);
    ck_assert_mem_eq(gw_buf_payload(b), "hello", 5);
    gw_buf_unref(b);
}
END_TEST

START_TEST(test_buf_take_text)
{
    char *text = strdup("{\"type\":\"pong\"}");
    gw_buf_t *b = gw_buf_take_text(text);
    ck_assert_ptr_nonnull(b);
    ck_assert_str_eq((const char *)gw_buf_payload(b), "{\"type\":\"pong\"}");
    gw_buf_unref(b);
    ck_assert_ptr_null(gw_buf_take_text(NULL));
}
END_TEST

START_TEST(test_buf_refcount_shared)
{
    gw_buf_t *b = gw_buf_new("x", 1);
    ck_assert_ptr_eq(gw_buf_ref(b), b);
    ck_assert_ptr_eq(gw_buf_ref(b), b);
    ck_assert_uint_eq(atomic_load(&b->refs), 3);
    gw_buf_unref(b);
    gw_buf_unref(b);
    ck_assert_uint_eq(atomic_load(&b->refs), 1);
    gw_buf_unref(b); /* freed: ASan would report a leak otherwise */
    gw_buf_unref(NULL);
}
END_TEST

START_TEST(test_queue_fifo_and_seq)
{
    gw_outq_t q;
    gw_outq_init(&q, 8);
    for (int i = 0; i < 5; i++) {
        char c = (char)('a' + i);
        ck_assert(gw_outq_push(&q, gw_buf_new(&c, 1), i * 10));
    }
    ck_assert_uint_eq(gw_outq_len(&q), 5);
    ck_assert_uint_eq(gw_outq_room(&q), 3);
    for (int i = 0; i < 5; i++) {
        gw_outq_entry_t e;
        ck_assert(gw_outq_pop(&q, &e));
        ck_assert_int_eq(gw_buf_payload(e.buf)[0], 'a' + i);
        ck_assert_int_eq(e.seq, i * 10);
        gw_buf_unref(e.buf);
    }
    gw_outq_entry_t e;
    ck_assert(!gw_outq_pop(&q, &e));
    gw_outq_clear(&q);
}
END_TEST

START_TEST(test_queue_bound_drops_reference)
{
    gw_outq_t q;
    gw_outq_init(&q, 3);
    gw_buf_t *shared = gw_buf_new("s", 1);
    for (int i = 0; i < 3; i++)
        ck_assert(gw_outq_push(&q, gw_buf_ref(shared), 0));
    ck_assert_uint_eq(gw_outq_room(&q), 0);
    /* Refused: the queue drops the reference it was given. */
    ck_assert(!gw_outq_push(&q, gw_buf_ref(shared), 0));
    ck_assert_uint_eq(atomic_load(&shared->refs), 4);
    ck_assert_uint_eq(gw_outq_len(&q), 3);
    gw_outq_clear(&q);
    ck_assert_uint_eq(atomic_load(&shared->refs), 1);
    ck_assert_uint_eq(gw_outq_len(&q), 0);
    gw_buf_unref(shared);
}
END_TEST

START_TEST(test_queue_wraps_and_grows)
{
    gw_outq_t q;
    gw_outq_init(&q, 100);
    int next_in = 0, next_out = 0;
    /* Interleave pushes and pops so the ring wraps several times while it grows. */
    for (int round = 0; round < 50; round++) {
        for (int i = 0; i < 3; i++, next_in++)
            ck_assert(gw_outq_push(&q, gw_buf_new(&next_in, sizeof next_in), next_in));
        for (int i = 0; i < 2; i++, next_out++) {
            gw_outq_entry_t e;
            ck_assert(gw_outq_pop(&q, &e));
            int v;
            memcpy(&v, gw_buf_payload(e.buf), sizeof v);
            ck_assert_int_eq(v, next_out);
            ck_assert_int_eq(e.seq, next_out);
            gw_buf_unref(e.buf);
        }
    }
    ck_assert_uint_eq(gw_outq_len(&q), 50);
    ck_assert_uint_le(q.alloc, 64); /* grows by need, not to the bound */
    gw_outq_clear(&q);
    /* Usable again after clear. */
    ck_assert(gw_outq_push(&q, gw_buf_new("z", 1), 0));
    gw_outq_clear(&q);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gateway_outq");
    TCase *tc = tcase_create("outq");
    tcase_add_test(tc, test_buf_payload_and_headroom);
    tcase_add_test(tc, test_buf_take_text);
    tcase_add_test(tc, test_buf_refcount_shared);
    tcase_add_test(tc, test_queue_fifo_and_seq);
    tcase_add_test(tc, test_queue_bound_drops_reference);
    tcase_add_test(tc, test_queue_wraps_and_grows);
    suite_add_tcase(s, tc);
    return chat_test_suite_run(s, false);
}
