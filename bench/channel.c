/* Framed messages over a socket pair (see channel.h). */
#include "bench/channel.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct header {
    uint32_t type;
    uint32_t len;
} header_t;

static bool write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            (void)poll(&pfd, 1, 1000);
            continue;
        }
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

static bool read_all(int fd, void *buf, size_t len)
{
    char *p = buf;
    while (len > 0) {
        ssize_t n = recv(fd, p, len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd pfd = {.fd = fd, .events = POLLIN};
            (void)poll(&pfd, 1, 1000);
            continue;
        }
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

bool bench_chan_send(int fd, bench_msg_t type, const void *payload, size_t len)
{
    header_t h = {.type = (uint32_t)type, .len = (uint32_t)len};
    return write_all(fd, &h, sizeof h) && (len == 0 || write_all(fd, payload, len));
}

int bench_chan_recv(int fd, int timeout_ms, bench_msg_t *type, void *buf, size_t cap, size_t *len)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int pr;
    do
        pr = poll(&pfd, 1, timeout_ms);
    while (pr < 0 && errno == EINTR);
    if (pr == 0)
        return 0;
    header_t h;
    if (pr < 0 || !read_all(fd, &h, sizeof h) || h.len > cap)
        return -1;
    if (h.len > 0 && !read_all(fd, buf, h.len))
        return -1;
    *type = (bench_msg_t)h.type;
    *len = h.len;
    return 1;
}
