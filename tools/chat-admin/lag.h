/* chat-admin lag serve: a Prometheus exporter of consumer group lag as the brokers see it
 * (committed offsets against high watermarks), which keeps reporting while a consumer is
 * down, and of the platform topics' growth. */
#ifndef CHAT_TOOLS_CHAT_ADMIN_LAG_H
#define CHAT_TOOLS_CHAT_ADMIN_LAG_H

#include <stddef.h>

/* Runs until SIGTERM or SIGINT. topics: the n platform topics whose high watermark sums are
 * served. argv holds the options after "lag serve". Returns the exit code. */
int chat_admin_lag_serve(const char *brokers, const char *const *topics, size_t ntopics, int argc,
                         char **argv);

#endif
