/* Reads config/topics.conf: one topic per line, "name partitions [key=value ...]", with
 * '#' comments. The same file drives scripts/up and the Helm chart. */
#ifndef CHAT_ADMIN_TOPICS_FILE_H
#define CHAT_ADMIN_TOPICS_FILE_H

#include <stddef.h>

#include "common/bus.h"
#include "common/err.h"

typedef struct chat_topics_file chat_topics_file_t;

/* Parses path. On failure returns CHAT_ERR_CONFIG (or CHAT_ERR_IO if it cannot be read)
 * with "line N: reason" in errbuf. Free with chat_topics_file_free. */
chat_err_t chat_topics_file_load(const char *path, chat_topics_file_t **out, char *errbuf,
                                 size_t errlen);

/* The parsed topics; owned by f. */
const chat_bus_topic_spec_t *chat_topics_file_specs(const chat_topics_file_t *f, size_t *n);

void chat_topics_file_free(chat_topics_file_t *f);

#endif
