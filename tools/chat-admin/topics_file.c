/* Parser of the topics file (see topics_file.h). Everything a spec points to is owned by
 * the chat_topics_file_t, so specs can be handed to chat_bus_topics_ensure as they are. */
#include "tools/chat-admin/topics_file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOPICS_MAX 64
#define CONFIGS_MAX 16

typedef struct topic_entry {
    char *name;
    char *configs[CONFIGS_MAX + 1]; /* NULL-terminated */
} topic_entry_t;

struct chat_topics_file {
    chat_bus_topic_spec_t specs[TOPICS_MAX];
    topic_entry_t entries[TOPICS_MAX];
    size_t n;
};

void chat_topics_file_free(chat_topics_file_t *f)
{
    if (f == NULL)
        return;
    for (size_t i = 0; i < f->n; i++) {
        free(f->entries[i].name);
        for (size_t j = 0; f->entries[i].configs[j] != NULL; j++)
            free(f->entries[i].configs[j]);
    }
    free(f);
}

static bool topic_name_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 249 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return false;
    return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

/* Parses one non-empty line into the next entry. Returns NULL or a static reason. */
static const char *parse_line(chat_topics_file_t *f, char *line)
{
    char *save = NULL;
    char *name = strtok_r(line, " \t", &save);
    char *parts = strtok_r(NULL, " \t", &save);
    if (parts == NULL)
        return "expected: name partitions [key=value ...]";
    if (!topic_name_valid(name))
        return "bad topic name";
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->entries[i].name, name) == 0)
            return "topic listed twice";
    char *end;
    errno = 0;
    long p = strtol(parts, &end, 10);
    if (errno != 0 || *end != '\0' || p < 1 || p > 10000)
        return "partitions must be a number from 1 to 10000";
    if (f->n == TOPICS_MAX)
        return "too many topics";

    topic_entry_t *e = &f->entries[f->n];
    memset(e, 0, sizeof *e);
    size_t nc = 0;
    for (char *kv; (kv = strtok_r(NULL, " \t", &save)) != NULL;) {
        char *eq = strchr(kv, '=');
        if (eq == NULL || eq == kv || eq[1] == '\0')
            return "topic configs must be key=value";
        if (nc == CONFIGS_MAX)
            return "too many configs";
        if ((e->configs[nc++] = strdup(kv)) == NULL)
            return "out of memory";
    }
    if ((e->name = strdup(name)) == NULL)
        return "out of memory";
    f->specs[f->n] = (chat_bus_topic_spec_t){
        .name = e->name,
        .partitions = (int)p,
        .replication = -1,
        .configs = (const char *const *)e->configs,
    };
    f->n++;
    return NULL;
}

chat_err_t chat_topics_file_load(const char *path, chat_topics_file_t **out, char *errbuf,
                                 size_t errlen)
{
    *out = NULL;
    FILE *fp = fopen(path, "r");
    if (fp == NULL) {
        snprintf(errbuf, errlen, "cannot read %s: %s", path, strerror(errno));
        return CHAT_ERR_IO;
    }
    chat_topics_file_t *f = calloc(1, sizeof *f);
    if (f == NULL) {
        fclose(fp);
        return CHAT_ERR_NOMEM;
    }
    char line[1024];
    int lineno = 0;
    while (fgets(line, sizeof line, fp) != NULL) {
        lineno++;
        line[strcspn(line, "#\r\n")] = '\0';
        if (strspn(line, " \t") == strlen(line))
            continue;
        const char *reason = parse_line(f, line);
        if (reason != NULL) {
            snprintf(errbuf, errlen, "%s: line %d: %s", path, lineno, reason);
            fclose(fp);
            /* parse_line may have stored configs of the failed entry */
            if (f->n < TOPICS_MAX)
                f->n++;
            chat_topics_file_free(f);
            return CHAT_ERR_CONFIG;
        }
    }
    fclose(fp);
    if (f->n == 0) {
        snprintf(errbuf, errlen, "%s: no topics", path);
        chat_topics_file_free(f);
        return CHAT_ERR_CONFIG;
    }
    *out = f;
    return CHAT_OK;
}

const chat_bus_topic_spec_t *chat_topics_file_specs(const chat_topics_file_t *f, size_t *n)
{
    *n = f->n;
    return f->specs;
}
