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

/* Sends (out) or receives all len bytes of buf; waits when the socket is not ready. False if
 * the peer is gone. */
static bool transfer(int fd, void *buf, size_t len, bool out)
{
    char *p = buf;
    while (len > 0) {
        ssize_t n = out ? send(fd, p, len, MSG_NOSIGNAL) : recv(fd, p, len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd pfd = {.fd = fd, .events = out ? POLLOUT : POLLIN};
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
    return transfer(fd, &h, sizeof h, true) &&
           (len == 0 || transfer(fd, (void *)payload, len, true));
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
    if (pr < 0 || !transfer(fd, &h, sizeof h, false) || h.len > cap)
        return -1;
    if (h.len > 0 && !transfer(fd, buf, h.len, false))
        return -1;
    *type = (bench_msg_t)h.type;
    *len = h.len;
    return 1;
}
