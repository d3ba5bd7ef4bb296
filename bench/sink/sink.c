/*
 * sink: the receiving side of the benchmarks. Opens N Pusher WebSocket connections to one loopback
 * server, subscribes each to one public channel, then counts the event frames they receive and,
 * while asked to, records publish-to-receive latency from the timestamp inside each event.
 *
 *   sink --port P --key K --channel C --connections N [--concurrency K] [--max-seconds S]
 *        [--channels M]   (connection i subscribes to C-<i mod M> instead of C)
 *        --stats FILE
 *
 * Why C: at ~100,000 deliveries/s every delivery arrives as its own read on its own socket; a Python
 * reader spent about 40% of its core in the interpreter on top of the kernel's share and reached its
 * core's limit before the server did (see docs/performance.md).
 *
 * Live counters are 64-bit words in the file FILE (mmap-shared with the Python script driving the
 * run; layout in enum slot). The driver writes slot CONTROL: 1 = record latency, 2 = stop recording,
 * 3 = exit. At exit the sink prints one line with latency percentiles of what it recorded.
 * Bounded: it exits after --max-seconds whatever happens.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum slot { SUBSCRIBED, FAILED, CLOSED, EVENTS, EVENT_BYTES, SETUP_START_NS, SETUP_END_NS,
            LATENCY_COUNT, CONTROL, READY, SLOTS };
enum state { CONNECTING, HANDSHAKE, ESTABLISHING, SUBSCRIBING, COUNTING, DEAD };

#define MIN_EVENT_PAYLOAD 120 /* pusher control messages are shorter than benchmark events */
#define BUF_SIZE 65536
#define SETUP_BUF 8192
#define MAX_LATENCIES (8u << 20)

typedef struct {
    int fd;
    int index;          /* position in the connection table, picks the channel */
    enum state state;
    uint64_t skip;      /* payload bytes of the current frame still to arrive */
    uint32_t have;      /* bytes held in buf (setup data, or a frame being assembled) */
    char *buf;          /* SETUP_BUF during setup; NULL while only counting */
} conn_t;

static volatile uint64_t *stats;
static volatile sig_atomic_t stop_requested;
static int64_t *latencies;
static uint64_t latency_count;
static char subscribe_msg[512];
static size_t subscribe_len;
static const char *channel_name = "bench";
static int channel_count = 0; /* >0: connection i subscribes to "<channel>-<i % channel_count>" */

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void on_signal(int sig) { (void)sig; stop_requested = 1; }

/* One masked client text frame (zero mask: the payload stays as it is). */
static size_t client_frame(char *out, const char *payload, size_t len, int opcode) {
    size_t head = 2;
    out[0] = (char)(0x80 | opcode);
    if (len < 126) {
        out[1] = (char)(0x80 | len);
    } else {
        out[1] = (char)(0x80 | 126);
        out[2] = (char)(len >> 8);
        out[3] = (char)(len & 0xff);
        head = 4;
    }
    memset(out + head, 0, 4);
    memcpy(out + head + 4, payload, len);
    return head + 4 + len;
}

static void send_text(conn_t *c, const char *payload, size_t len, int opcode) {
    char frame[600];
    if (len > 500) return;
    size_t n = client_frame(frame, payload, len, opcode);
    if (write(c->fd, frame, n) < 0) { /* the read side notices a dead connection */ }
}

/* Close a connection: a failure if it never subscribed, a loss if it was counting. */
static void kill_conn(int epfd, conn_t *c, int was_counting) {
    stats[was_counting ? CLOSED : FAILED]++;
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->buf);
    c->buf = NULL;
    c->state = DEAD;
}

static void record_latency(const char *payload, size_t len, uint64_t now) {
    const char *p = memmem(payload, len, "t\\\":", 4);
    if (!p || latency_count >= MAX_LATENCIES) return;
    int64_t t = strtoll(p + 4, NULL, 10);
    if (t > 0) latencies[latency_count++] = (int64_t)now - t;
}

/* A complete frame seen during setup or in a small control frame while counting. */
static void on_frame(conn_t *c, int opcode, const char *payload, size_t len) {
    if (opcode == 0x9) { send_text(c, payload, len, 0xA); return; }
    if (opcode == 0x8) { c->state = DEAD; return; }
    if (opcode != 0x1) return;
    if (memmem(payload, len, "pusher:ping", 11)) {
        send_text(c, "{\"event\":\"pusher:pong\",\"data\":{}}", 33, 0x1);
    } else if (c->state == ESTABLISHING && memmem(payload, len, "connection_established", 22)) {
        if (channel_count > 0) {
            char msg[512];
            int n = snprintf(msg, sizeof msg,
                "{\"event\":\"pusher:subscribe\",\"data\":{\"channel\":\"%s-%d\"}}",
                channel_name, c->index % channel_count);
            send_text(c, msg, (size_t)n, 0x1);
        } else {
            send_text(c, subscribe_msg, subscribe_len, 0x1);
        }
        c->state = SUBSCRIBING;
    } else if (c->state == SUBSCRIBING && memmem(payload, len, "subscription_succeeded", 22)) {
        c->state = COUNTING;
        stats[SUBSCRIBED]++;
    } else if (c->state != COUNTING && memmem(payload, len, "error", 5)) {
        c->state = DEAD;
    }
}

/* Parse the header at buf[pos]; returns header length, or 0 if incomplete. */
static size_t frame_header(const unsigned char *b, size_t avail, uint64_t *len) {
    if (avail < 2) return 0;
    uint64_t l = b[1] & 0x7f;
    if (l == 126) {
        if (avail < 4) return 0;
        *len = ((uint64_t)b[2] << 8) | b[3];
        return 4;
    }
    if (l == 127) {
        if (avail < 10) return 0;
        uint64_t v = 0;
        for (int i = 2; i < 10; i++) v = (v << 8) | b[i];
        *len = v;
        return 10;
    }
    *len = l;
    return 2;
}

/* Handle one complete frame held in b (event or control). */
static void whole_frame(conn_t *c, const unsigned char *b, size_t head, uint64_t len,
                        int recording, uint64_t now, uint64_t *events, uint64_t *bytes) {
    if (len >= MIN_EVENT_PAYLOAD) {
        (*events)++;
        *bytes += len;
        if (recording) record_latency((const char *)b + head, len, now);
    } else {
        on_frame(c, b[0] & 0x0f, (const char *)b + head, len);
    }
}

static int hold(conn_t *c, const char *from, size_t n) {
    if (!c->buf) c->buf = malloc(BUF_SIZE);
    if (!c->buf) return -1;
    memcpy(c->buf, from, n);
    c->have = (uint32_t)n;
    return 0;
}

/* Count event frames in data while COUNTING, walking headers without touching event payloads.
 * A frame cut by the end of a read is held in c->buf when its payload matters (a control frame,
 * or latency is being recorded); otherwise it is counted at once and its rest skipped. */
static void count_frames(conn_t *c, const char *data, size_t size, int recording) {
    uint64_t now = recording ? now_ns() : 0, events = 0, bytes = 0, len = 0;
    unsigned char *held = (unsigned char *)c->buf;
    size_t pos = 0, head;
    if (c->skip) {
        if (c->skip >= size) { c->skip -= size; return; }
        pos = c->skip;
        c->skip = 0;
    } else if (c->have) { /* finish the frame begun in an earlier read */
        while (!(head = frame_header(held, c->have, &len))) {
            if (pos == size) return;
            held[c->have++] = (unsigned char)data[pos++];
        }
        uint64_t total = head + len;
        if ((len < MIN_EVENT_PAYLOAD || recording) && total <= BUF_SIZE) {
            size_t copy = total - c->have < size - pos ? total - c->have : size - pos;
            memcpy(held + c->have, data + pos, copy);
            c->have += (uint32_t)copy;
            pos += copy;
            if (c->have < total) return;
            whole_frame(c, held, head, len, recording, now, &events, &bytes);
            c->have = 0;
        } else {
            uint64_t rest = total - c->have;
            c->have = 0;
            if (len >= MIN_EVENT_PAYLOAD) { events++; bytes += len; }
            if (rest > size - pos) { c->skip = rest - (size - pos); pos = size; }
            else pos += rest;
        }
    }
    while (pos < size) {
        const unsigned char *b = (const unsigned char *)data + pos;
        size_t avail = size - pos;
        head = frame_header(b, avail, &len);
        if (!head) { hold(c, (const char *)b, avail); break; }
        uint64_t total = head + len;
        if (total <= avail) {
            whole_frame(c, b, head, len, recording, now, &events, &bytes);
            pos += total;
            continue;
        }
        if ((len < MIN_EVENT_PAYLOAD || recording) && total <= BUF_SIZE) {
            hold(c, (const char *)b, avail);
        } else {
            if (len >= MIN_EVENT_PAYLOAD) { events++; bytes += len; }
            c->skip = total - avail;
        }
        break;
    }
    stats[EVENTS] += events;
    stats[EVENT_BYTES] += bytes;
}

/* Setup data: the HTTP 101 response, then whole frames until the subscription is confirmed. */
static void setup_data(conn_t *c, const char *data, size_t size, int recording) {
    if (c->have + size > SETUP_BUF) { c->state = DEAD; return; }
    memcpy(c->buf + c->have, data, size);
    c->have += (uint32_t)size;
    size_t pos = 0;
    if (c->state == HANDSHAKE) {
        char *end = memmem(c->buf, c->have, "\r\n\r\n", 4);
        if (!end) return;
        if (c->have < 12 || memcmp(c->buf, "HTTP/1.1 101", 12) != 0) { c->state = DEAD; return; }
        pos = (size_t)(end - c->buf) + 4;
        c->state = ESTABLISHING;
    }
    while (c->state == ESTABLISHING || c->state == SUBSCRIBING) {
        uint64_t len;
        size_t head = frame_header((unsigned char *)c->buf + pos, c->have - pos, &len);
        if (!head || pos + head + len > c->have) break;
        on_frame(c, c->buf[pos] & 0x0f, c->buf + pos + head, len);
        pos += head + len;
    }
    size_t rest = c->have - pos;
    if (c->state == COUNTING) {
        char *leftover = c->buf;
        c->buf = NULL;
        c->have = 0;
        if (rest) count_frames(c, leftover + pos, rest, recording);
        free(leftover);
        return;
    }
    memmove(c->buf, c->buf + pos, rest);
    c->have = (uint32_t)rest;
}

static int start_conn(int epfd, conn_t *c, int port) {
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c->fd < 0) return -1;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->buf = malloc(SETUP_BUF);
    c->have = 0;
    c->skip = 0;
    c->state = CONNECTING;
    if (connect(c->fd, (struct sockaddr *)&addr, sizeof addr) < 0 && errno != EINPROGRESS) {
        close(c->fd);
        return -1;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = c};
    return epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static double percentile_us(double q) {
    if (!latency_count) return -1;
    uint64_t i = (uint64_t)(q * (double)(latency_count - 1));
    return (double)latencies[i] / 1000.0;
}

int main(int argc, char **argv) {
    int port = 0, connections = 1000, concurrency = 200;
    double max_seconds = 300;
    const char *key = "app-key", *channel = "bench", *stats_path = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--port")) port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--key")) key = argv[i + 1];
        else if (!strcmp(argv[i], "--channel")) channel = argv[i + 1];
        else if (!strcmp(argv[i], "--connections")) connections = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--channels")) channel_count = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--concurrency")) concurrency = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--max-seconds")) max_seconds = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--stats")) stats_path = argv[i + 1];
    }
    if (!port || !stats_path || connections < 1 || concurrency < 1) {
        fprintf(stderr, "usage: sink --port P --key K --channel C --connections N --stats FILE\n");
        return 2;
    }
    int sfd = open(stats_path, O_RDWR | O_CREAT, 0600);
    if (sfd < 0 || ftruncate(sfd, SLOTS * 8) < 0) { perror("stats file"); return 1; }
    stats = mmap(NULL, SLOTS * 8, PROT_READ | PROT_WRITE, MAP_SHARED, sfd, 0);
    if (stats == MAP_FAILED) { perror("mmap"); return 1; }
    latencies = malloc(MAX_LATENCIES * sizeof *latencies);
    conn_t *conns = calloc((size_t)connections, sizeof *conns);
    if (!latencies || !conns) { fprintf(stderr, "out of memory\n"); return 1; }
    char handshake[512];
    int hlen = snprintf(handshake, sizeof handshake,
        "GET /app/%s?protocol=7&client=js&version=8.4.0 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: YmVuY2htYXJrLWNsaWVudA==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        key, port);
    channel_name = channel;
    subscribe_len = (size_t)snprintf(subscribe_msg, sizeof subscribe_msg,
        "{\"event\":\"pusher:subscribe\",\"data\":{\"channel\":\"%s\"}}", channel);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);

    int epfd = epoll_create1(0);
    static char data[BUF_SIZE];
    struct epoll_event events[1024];
    uint64_t started = now_ns(), deadline = started + (uint64_t)(max_seconds * 1e9);
    stats[SETUP_START_NS] = started;
    int next = 0, in_setup = 0, setup_reported = 0;
    while (!stop_requested && stats[CONTROL] != 3 && now_ns() < deadline) {
        while (next < connections && in_setup < concurrency) {
            conn_t *c = &conns[next];
            c->index = next++;
            if (start_conn(epfd, c, port) < 0) {
                stats[FAILED]++;
                free(c->buf);
                c->buf = NULL;
                c->state = DEAD;
                continue;
            }
            in_setup++;
        }
        if (!setup_reported && next >= connections && in_setup == 0) {
            stats[SETUP_END_NS] = now_ns();
            stats[READY] = 1;
            setup_reported = 1;
        }
        int n = epoll_wait(epfd, events, 1024, 10);
        int recording = stats[CONTROL] == 1;
        for (int i = 0; i < n; i++) {
            conn_t *c = events[i].data.ptr;
            if (c->state == DEAD) continue;
            enum state before = c->state;
            if (c->state == CONNECTING && (events[i].events & (EPOLLOUT | EPOLLERR))) {
                if (events[i].events & (EPOLLERR | EPOLLHUP) ||
                    write(c->fd, handshake, (size_t)hlen) != hlen) {
                    kill_conn(epfd, c, 0);
                    in_setup--;
                    continue;
                }
                c->state = HANDSHAKE;
            }
            for (;;) { /* edge-triggered: read until a short read or EAGAIN */
                ssize_t got = read(c->fd, data, sizeof data);
                if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
                if (got <= 0) { c->state = DEAD; break; }
                if (c->state == COUNTING) count_frames(c, data, (size_t)got, recording);
                else setup_data(c, data, (size_t)got, recording);
                if (c->state == DEAD || (size_t)got < sizeof data) break;
            }
            int was_setup = before != COUNTING;
            if (c->state == DEAD) {
                kill_conn(epfd, c, !was_setup);
                if (was_setup) in_setup--;
            } else if (was_setup && c->state == COUNTING) {
                in_setup--;
            }
        }
        stats[LATENCY_COUNT] = latency_count;
    }
    for (int i = 0; i < next; i++) {
        if (conns[i].state != DEAD) close(conns[i].fd);
    }
    qsort(latencies, latency_count, sizeof *latencies, cmp_i64);
    printf("sink subscribed=%llu failed=%llu closed=%llu events=%llu latency_samples=%llu "
           "p50_us=%.1f p90_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f\n",
           (unsigned long long)stats[SUBSCRIBED], (unsigned long long)stats[FAILED],
           (unsigned long long)stats[CLOSED], (unsigned long long)stats[EVENTS],
           (unsigned long long)latency_count, percentile_us(0.5), percentile_us(0.9),
           percentile_us(0.99), percentile_us(0.999),
           latency_count ? (double)latencies[latency_count - 1] / 1000.0 : -1.0);
    return 0;
}
