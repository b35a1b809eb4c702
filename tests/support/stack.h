/* What integration tests share: the stack the ctest fixture started (read from the file
 * CHAT_STACK_ENV names) and small helpers for unique names. */
#ifndef CHAT_TESTS_SUPPORT_STACK_H
#define CHAT_TESTS_SUPPORT_STACK_H

#include <stddef.h>

/* Loads CHAT_STACK_ENV (KEY=value lines, shell quoting of scripts/up) into the process
 * environment, without overriding variables already set. Aborts the test program with a
 * message if the file is missing: integration tests need the fixture. */
void chat_test_stack_load(void);

/* Value of a variable of the stack (after chat_test_stack_load); aborts if unset. */
const char *chat_test_stack_get(const char *name);

/* Writes "<prefix>-<pid>-<counter>-<random>" into buf: names that do not collide between
 * runs or tests sharing one stack (topics, groups, rooms, tenants). */
void chat_test_unique(char *buf, size_t len, const char *prefix);

#endif
