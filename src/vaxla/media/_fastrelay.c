/*
 * _fastrelay: the relay fast path of Växla's anchored calls.
 *
 * One Relay object owns a worker thread that runs epoll over the RTP
 * sockets of anchored calls, without the GIL, and does in C what
 * RelaySide.datagram_received does in Python (src/vaxla/media/anchor.py):
 *
 *   - latch: follow the address a phone's packets come from (symmetric RTP,
 *     NAT), unless another address is still active (relatch_after);
 *   - check the RTP version, count RFC 3550 A.1 reception statistics and
 *     A.8 interarrival jitter per SSRC;
 *   - forward the datagram unchanged from the peer stream's socket to the
 *     peer's phone (its latched address, else its SDP address).
 *
 * What it does not handle goes to Python through a queue ("hand-offs",
 * signalled on an eventfd that the event loop watches): RTCP multiplexed on
 * the RTP port, and a copy of every RTP packet of a stream whose "tap" flag
 * is set (recording, listen-in, whisper decode what the phones send).
 *
 * Batching: after each wakeup the thread sleeps until `tick` has passed
 * since the wakeup, so that at high load one epoll_wait serves many
 * sockets (the sleep adds at most `tick` to a packet's transit; a packet
 * that arrives when the thread is idle is forwarded at once). Each ready
 * socket is read with recvmmsg, and what it carried is forwarded with
 * one sendmmsg.
 *
 * Locking: the stream table is guarded by one mutex. The worker holds it
 * while it handles the events of one epoll_wait; every method called from
 * Python takes it too, so removing a stream (then closing its socket in
 * Python) is safe while the thread runs: an event for a removed stream
 * carries an outdated handle (slot + generation) and is skipped. The
 * worker never touches Python objects; Python never blocks on the worker
 * for longer than one batch.
 *
 * Python owns the sockets: the relay never closes a file descriptor it was
 * given.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_SOURCES 8     /* SSRCs remembered per stream; older ones are summed up */
#define BATCH 8           /* datagrams read from one socket per wakeup */
#define MAX_EVENTS 1024   /* sockets handled per epoll_wait */
#define DGRAM_MAX 4096    /* larger datagrams are dropped (counted as invalid) */
#define QUEUE_MAX 8192    /* hand-offs waiting for Python; beyond that, dropped */

#define CLOCK_RATE 8000.0 /* G.711 and telephone-event: the only codecs anchored */
#define RTP_SEQ_MOD 65536u
#define MAX_DROPOUT 3000u
#define MAX_MISORDER 100u
#define MIN_SEQUENTIAL 2u

#define WAKE_HANDLE UINT64_MAX

enum { HANDOFF_RTCP = 1, HANDOFF_TAP = 2 };

/* ------------------------------------------------------------------ sources */

/* One SSRC's reception state: RFC 3550 A.1, as RtpSourceStats in rtp.py. */
typedef struct {
    uint32_t ssrc;
    int in_use;
    uint32_t base_seq, max_seq, bad_seq, cycles, probation;
    uint64_t received;
    double jitter;       /* A.8, timestamp units */
    double last_arrival; /* seconds (CLOCK_REALTIME); < 0: none yet */
    uint32_t last_ts;
    uint64_t used;       /* for choosing which source to forget */
} source_t;

static void source_restart(source_t *s, uint32_t seq) {
    s->base_seq = seq;
    s->max_seq = seq;
    s->bad_seq = RTP_SEQ_MOD + 1;
    s->cycles = 0;
    s->received = 0;
    s->last_arrival = -1.0;
}

static void source_init(source_t *s, uint32_t ssrc, uint32_t first_seq) {
    memset(s, 0, sizeof *s);
    s->ssrc = ssrc;
    s->in_use = 1;
    s->base_seq = first_seq;
    s->max_seq = (first_seq - 1) & 0xFFFF;
    s->bad_seq = RTP_SEQ_MOD + 1;
    s->probation = MIN_SEQUENTIAL;
    s->last_arrival = -1.0;
}

/* A.1 update_seq; returns 0 for a packet not (yet) counted. */
static int source_update_seq(source_t *s, uint32_t seq) {
    uint32_t udelta = (seq - s->max_seq) & 0xFFFF;
    if (s->probation) {
        if (seq == ((s->max_seq + 1) & 0xFFFF)) {
            s->probation--;
            s->max_seq = seq;
        } else {
            s->probation = MIN_SEQUENTIAL - 1;
            s->max_seq = seq;
        }
        if (s->probation == 0) {
            source_restart(s, seq);
            s->received++;
            return 1;
        }
        return 0;
    }
    if (udelta < MAX_DROPOUT) {
        if (seq < s->max_seq)
            s->cycles++; /* wrapped */
        s->max_seq = seq;
    } else if (udelta <= RTP_SEQ_MOD - MAX_MISORDER) {
        /* a very large jump: accept it only when the next packet confirms it */
        if (seq == s->bad_seq) {
            source_restart(s, seq);
        } else {
            s->bad_seq = (seq + 1) & 0xFFFF;
            return 0;
        }
    } /* else: duplicate or reordered, counted, max_seq unchanged */
    s->received++;
    return 1;
}

static void source_update(source_t *s, uint32_t seq, uint32_t ts, double arrival) {
    if (!source_update_seq(s, seq))
        return;
    if (s->last_arrival >= 0.0) {
        /* A.8: D = (Rj - Ri) - (Sj - Si) in timestamp units; J += (|D| - J) / 16 */
        double d = (arrival - s->last_arrival) * CLOCK_RATE - (double)(int32_t)(ts - s->last_ts);
        s->jitter += (fabs(d) - s->jitter) / 16.0;
    }
    s->last_arrival = arrival;
    s->last_ts = ts;
}

static int64_t source_lost(const source_t *s) {
    if (s->probation)
        return 0; /* not valid yet: nothing expected */
    int64_t expected = ((int64_t)s->cycles << 16) + s->max_seq - s->base_seq + 1;
    int64_t lost = expected - (int64_t)s->received;
    if (lost < -0x800000)
        lost = -0x800000;
    if (lost > 0x7FFFFF)
        lost = 0x7FFFFF;
    return lost;
}

/* ------------------------------------------------------------------ streams */

/* One RTP socket of an anchored call, facing one phone. */
typedef struct {
    int fd;         /* -1: free slot */
    uint32_t gen;   /* bumped when the slot is freed: outdated handles miss */
    uint64_t peer;  /* handle of the other side's stream, 0: none */
    double relatch_after;
    struct sockaddr_storage sdp;  /* the phone's SDP address */
    socklen_t sdp_len;            /* 0: none */
    struct sockaddr_storage addr; /* latched: where its packets come from */
    socklen_t addr_len;           /* 0: not latched */
    double last_seen;             /* CLOCK_MONOTONIC seconds */
    int family;
    int relaying; /* forward the peer's packets to this phone */
    int tap;      /* hand a copy of this phone's packets to Python */
    int rtcp_mux; /* RTCP arrives on this socket: hand it to Python */
    uint64_t packets_in, bytes_in, packets_out, invalid, relatches, ignored;
    uint64_t source_changes, send_errors;
    int cur; /* index of the current source, -1: none */
    uint64_t uses;
    source_t src[MAX_SOURCES];
    uint64_t retired_received, retired_lost; /* sources forgotten */
} stream_t;

typedef struct handoff {
    struct handoff *next;
    uint64_t handle;
    int kind;
    double arrival; /* CLOCK_MONOTONIC seconds */
    struct sockaddr_storage from;
    socklen_t from_len;
    size_t len;
    unsigned char data[];
} handoff_t;

typedef struct {
    PyObject_HEAD
    pthread_mutex_t lock;
    pthread_t thread;
    int running;
    atomic_int stop;
    int epfd, wakefd, notifyfd;
    long tick_ns;
    struct buffers *buffers; /* the worker's receive and send buffers */
    stream_t *streams;
    uint32_t nstreams, cap;
    uint32_t *free_slots;
    uint32_t nfree;
    handoff_t *q_head, *q_tail;
    uint32_t q_len;
    /* totals, for the benchmark and metrics */
    uint64_t wakeups, forwarded, handoffs, handoff_drops;
} Relay;

static uint64_t make_handle(uint32_t slot, uint32_t gen) {
    return ((uint64_t)gen << 32) | slot;
}

/* The stream of `handle`, or NULL when it was removed. Lock held. */
static stream_t *lookup(Relay *r, uint64_t handle) {
    uint32_t slot = (uint32_t)handle;
    if (handle == 0 || slot >= r->nstreams)
        return NULL;
    stream_t *s = &r->streams[slot];
    if (s->fd < 0 || s->gen != (uint32_t)(handle >> 32))
        return NULL;
    return s;
}

static double now_of(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int same_addr(const struct sockaddr_storage *a, socklen_t alen,
                     const struct sockaddr_storage *b, socklen_t blen) {
    if (alen == 0 || blen == 0 || a->ss_family != b->ss_family)
        return 0;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a->ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
        return x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
    }
    return 0;
}

/* Where to send to this stream's phone: latched address, else SDP address. */
static const struct sockaddr_storage *target_of(const stream_t *s, socklen_t *len) {
    if (s->addr_len) {
        *len = s->addr_len;
        return &s->addr;
    }
    *len = s->sdp_len;
    return s->sdp_len ? &s->sdp : NULL;
}

static source_t *source_for(stream_t *s, uint32_t ssrc, uint32_t seq) {
    s->uses++;
    if (s->cur >= 0 && s->src[s->cur].ssrc == ssrc) {
        s->src[s->cur].used = s->uses;
        return &s->src[s->cur];
    }
    if (s->cur >= 0)
        s->source_changes++;
    int slot = -1, oldest = -1;
    for (int i = 0; i < MAX_SOURCES && slot < 0; i++) {
        if (s->src[i].in_use && s->src[i].ssrc == ssrc)
            slot = i; /* a source that came back */
        else if (oldest < 0 || (s->src[oldest].in_use &&
                                (!s->src[i].in_use || s->src[i].used < s->src[oldest].used)))
            oldest = i; /* a free entry, else the least recently used */
    }
    if (slot < 0) {
        slot = oldest;
        source_t *old = &s->src[slot];
        if (old->in_use) { /* forget the least recently used, keep its totals */
            int64_t lost = source_lost(old);
            s->retired_received += old->received;
            s->retired_lost += lost > 0 ? (uint64_t)lost : 0;
        }
        source_init(&s->src[slot], ssrc, seq);
    }
    s->cur = slot;
    s->src[slot].used = s->uses;
    return &s->src[slot];
}

/* Queue a hand-off for Python. Lock held. Returns 1 if the queue was empty. */
static int handoff_push(Relay *r, uint64_t handle, int kind, double arrival,
                        const struct sockaddr_storage *from, socklen_t from_len,
                        const unsigned char *data, size_t len) {
    if (r->q_len >= QUEUE_MAX) {
        r->handoff_drops++;
        return 0;
    }
    handoff_t *h = malloc(sizeof *h + len);
    if (h == NULL) {
        r->handoff_drops++;
        return 0;
    }
    h->next = NULL;
    h->handle = handle;
    h->kind = kind;
    h->arrival = arrival;
    memcpy(&h->from, from, from_len);
    h->from_len = from_len;
    h->len = len;
    memcpy(h->data, data, len);
    int was_empty = r->q_head == NULL;
    if (r->q_tail)
        r->q_tail->next = h;
    else
        r->q_head = h;
    r->q_tail = h;
    r->q_len++;
    r->handoffs++;
    return was_empty;
}

static void handoff_free_all(handoff_t *h) {
    while (h) {
        handoff_t *next = h->next;
        free(h);
        h = next;
    }
}

/* Send `n` prepared messages from `fd`; EAGAIN drops the rest, any other
 * error skips the one message (an ICMP error reported late, a bad address). */
static unsigned send_batch(int fd, struct mmsghdr *msgs, unsigned n, uint64_t *errors) {
    unsigned i = 0, sent = 0;
    while (i < n) {
        int k = sendmmsg(fd, msgs + i, n - i, MSG_DONTWAIT);
        if (k > 0) {
            i += (unsigned)k;
            sent += (unsigned)k;
        } else if (k < 0 && errno == EINTR) {
            continue;
        } else if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            *errors += n - i;
            break;
        } else {
            (*errors)++;
            i++;
        }
    }
    return sent;
}

/* The worker's buffers. */
typedef struct buffers {
    unsigned char data[BATCH][DGRAM_MAX];
    struct sockaddr_storage from[BATCH];
    char control[BATCH][CMSG_SPACE(sizeof(struct timespec))];
    struct iovec iov[BATCH];
    struct mmsghdr in[BATCH];
    struct iovec out_iov[BATCH];
    struct sockaddr_storage out_to[BATCH];
    struct mmsghdr out[BATCH];
} buffers_t;

/* Read what one socket has and relay it. Lock held. Returns 1 when a
 * hand-off made the queue non-empty (Python must be notified). */
static int relay_socket(Relay *r, uint64_t handle, stream_t *s, buffers_t *b,
                        double mono, double real_minus_mono) {
    int notify = 0;
    for (int i = 0; i < BATCH; i++) {
        b->iov[i].iov_base = b->data[i];
        b->iov[i].iov_len = DGRAM_MAX;
        memset(&b->in[i].msg_hdr, 0, sizeof b->in[i].msg_hdr);
        b->in[i].msg_hdr.msg_name = &b->from[i];
        b->in[i].msg_hdr.msg_namelen = sizeof b->from[i];
        b->in[i].msg_hdr.msg_iov = &b->iov[i];
        b->in[i].msg_hdr.msg_iovlen = 1;
        b->in[i].msg_hdr.msg_control = b->control[i];
        b->in[i].msg_hdr.msg_controllen = sizeof b->control[i];
    }
    int n = recvmmsg(s->fd, b->in, BATCH, MSG_DONTWAIT, NULL);
    if (n <= 0)
        return 0; /* EAGAIN, or an error (e.g. ECONNREFUSED) now consumed */

    stream_t *peer = lookup(r, s->peer);
    unsigned nout = 0;
    for (int i = 0; i < n; i++) {
        struct msghdr *m = &b->in[i].msg_hdr;
        const unsigned char *d = b->data[i];
        size_t len = b->in[i].msg_len;
        socklen_t from_len = m->msg_namelen;
        /* arrival: the kernel's receive timestamp, so the jitter figure does
         * not depend on when this thread woke up */
        double real = mono + real_minus_mono;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
                struct timespec ts;
                memcpy(&ts, CMSG_DATA(c), sizeof ts);
                real = (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
            }
        }
        /* latch (as RelaySide.datagram_received) */
        if (!same_addr(&b->from[i], from_len, &s->addr, s->addr_len)) {
            if (s->addr_len && mono - s->last_seen < s->relatch_after) {
                s->ignored++; /* someone else while the phone is active */
                continue;
            }
            if (s->addr_len)
                s->relatches++;
            memcpy(&s->addr, &b->from[i], from_len);
            s->addr_len = from_len;
        }
        s->last_seen = mono;
        if ((m->msg_flags & MSG_TRUNC) || len < 12 || (d[0] & 0xC0) != 0x80) {
            s->invalid++;
            continue;
        }
        if (s->rtcp_mux && d[1] >= 192 && d[1] <= 223) {
            notify |= handoff_push(r, handle, HANDOFF_RTCP, real - real_minus_mono, &b->from[i],
                                   from_len, d, len);
            continue;
        }
        s->packets_in++;
        s->bytes_in += len;
        uint32_t seq = ((uint32_t)d[2] << 8) | d[3];
        uint32_t ts = ((uint32_t)d[4] << 24) | ((uint32_t)d[5] << 16) | ((uint32_t)d[6] << 8) | d[7];
        uint32_t ssrc = ((uint32_t)d[8] << 24) | ((uint32_t)d[9] << 16) | ((uint32_t)d[10] << 8) | d[11];
        source_update(source_for(s, ssrc, seq), seq, ts, real);
        if (peer != NULL && peer->relaying) {
            socklen_t tlen;
            const struct sockaddr_storage *t = target_of(peer, &tlen);
            if (t != NULL) {
                memcpy(&b->out_to[nout], t, tlen);
                b->out_iov[nout].iov_base = (void *)d;
                b->out_iov[nout].iov_len = len;
                memset(&b->out[nout].msg_hdr, 0, sizeof b->out[nout].msg_hdr);
                b->out[nout].msg_hdr.msg_name = &b->out_to[nout];
                b->out[nout].msg_hdr.msg_namelen = tlen;
                b->out[nout].msg_hdr.msg_iov = &b->out_iov[nout];
                b->out[nout].msg_hdr.msg_iovlen = 1;
                nout++;
            }
        }
        if (s->tap)
            notify |= handoff_push(r, handle, HANDOFF_TAP, real - real_minus_mono, &b->from[i],
                                   from_len, d, len);
    }
    if (nout) {
        unsigned sent = send_batch(peer->fd, b->out, nout, &peer->send_errors);
        peer->packets_out += sent;
        r->forwarded += sent;
    }
    return notify;
}

/* An ICMP error (port unreachable: the phone is gone) is pending: clear it,
 * and empty the error queue (only filled with IP_RECVERR), so that
 * level-triggered epoll does not report the socket again and again. */
static void clear_errors(int fd) {
    int err;
    socklen_t elen = sizeof err;
    char data[256], control[512];
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen);
    for (int i = 0; i < 64; i++) {
        struct iovec iov = {.iov_base = data, .iov_len = sizeof data};
        struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1,
                           .msg_control = control, .msg_controllen = sizeof control};
        if (recvmsg(fd, &m, MSG_ERRQUEUE | MSG_DONTWAIT) < 0)
            break;
    }
}

static void *worker(void *arg) {
    Relay *r = arg;
    struct epoll_event events[MAX_EVENTS];
    buffers_t *b = r->buffers;
    while (!atomic_load(&r->stop)) {
        int n = epoll_wait(r->epfd, events, MAX_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        struct timespec woke;
        clock_gettime(CLOCK_MONOTONIC, &woke);
        double mono = (double)woke.tv_sec + (double)woke.tv_nsec * 1e-9;
        double real_minus_mono = now_of(CLOCK_REALTIME) - mono;
        int notify = 0;
        pthread_mutex_lock(&r->lock);
        r->wakeups++;
        for (int i = 0; i < n; i++) {
            uint64_t handle = events[i].data.u64;
            if (handle == WAKE_HANDLE) {
                uint64_t v;
                if (read(r->wakefd, &v, sizeof v) < 0) { /* EAGAIN: already read */
                }
                continue;
            }
            stream_t *s = lookup(r, handle);
            if (s == NULL)
                continue; /* removed after epoll_wait returned */
            if (events[i].events & EPOLLERR)
                clear_errors(s->fd);
            if (events[i].events & EPOLLIN)
                notify |= relay_socket(r, handle, s, b, mono, real_minus_mono);
        }
        pthread_mutex_unlock(&r->lock);
        if (notify) {
            uint64_t one = 1;
            if (write(r->notifyfd, &one, sizeof one) < 0) { /* counter full: Python is behind */
            }
        }
        if (r->tick_ns > 0 && n < MAX_EVENTS && !atomic_load(&r->stop)) {
            /* let packets gather so that the next wakeup serves many sockets
             * (unless sockets are still waiting: then go on at once) */
            woke.tv_nsec += r->tick_ns;
            while (woke.tv_nsec >= 1000000000L) {
                woke.tv_nsec -= 1000000000L;
                woke.tv_sec++;
            }
            while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &woke, NULL) == EINTR) {
            }
        }
    }
    return NULL;
}

/* ------------------------------------------------------------ Python side */

static int parse_addr(Relay *r, int family, PyObject *addr, struct sockaddr_storage *out,
                      socklen_t *out_len) {
    (void)r;
    const char *host;
    int port;
    if (!PyArg_ParseTuple(addr, "si", &host, &port))
        return -1;
    if (port < 0 || port > 65535) {
        PyErr_SetString(PyExc_ValueError, "port out of range");
        return -1;
    }
    memset(out, 0, sizeof *out);
    struct in_addr v4;
    struct in6_addr v6;
    if (inet_pton(AF_INET, host, &v4) == 1) {
        if (family == AF_INET) {
            struct sockaddr_in *sa = (void *)out;
            sa->sin_family = AF_INET;
            sa->sin_port = htons((uint16_t)port);
            sa->sin_addr = v4;
            *out_len = sizeof *sa;
            return 0;
        }
        /* an IPv4 phone seen from an IPv6 socket: v4-mapped */
        struct sockaddr_in6 *sa = (void *)out;
        sa->sin6_family = AF_INET6;
        sa->sin6_port = htons((uint16_t)port);
        sa->sin6_addr.s6_addr[10] = 0xFF;
        sa->sin6_addr.s6_addr[11] = 0xFF;
        memcpy(&sa->sin6_addr.s6_addr[12], &v4, 4);
        *out_len = sizeof *sa;
        return 0;
    }
    if (family == AF_INET6 && inet_pton(AF_INET6, host, &v6) == 1) {
        struct sockaddr_in6 *sa = (void *)out;
        sa->sin6_family = AF_INET6;
        sa->sin6_port = htons((uint16_t)port);
        sa->sin6_addr = v6;
        *out_len = sizeof *sa;
        return 0;
    }
    PyErr_Format(PyExc_ValueError, "not a numeric address for this socket: %s", host);
    return -1;
}

static PyObject *addr_tuple(const struct sockaddr_storage *a, socklen_t len) {
    char host[INET6_ADDRSTRLEN];
    if (len == 0)
        Py_RETURN_NONE;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *sa = (const void *)a;
        inet_ntop(AF_INET, &sa->sin_addr, host, sizeof host);
        return Py_BuildValue("(si)", host, ntohs(sa->sin_port));
    }
    const struct sockaddr_in6 *sa = (const void *)a;
    inet_ntop(AF_INET6, &sa->sin6_addr, host, sizeof host);
    return Py_BuildValue("(si)", host, ntohs(sa->sin6_port));
}

static stream_t *lookup_or_raise(Relay *r, unsigned long long handle) {
    stream_t *s = lookup(r, handle);
    if (s == NULL)
        PyErr_SetString(PyExc_KeyError, "no such relay stream");
    return s;
}

static PyObject *Relay_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"tick", NULL};
    double tick = 0.001;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "|d", kwlist, &tick))
        return NULL;
    if (tick < 0.0 || tick > 0.02) {
        PyErr_SetString(PyExc_ValueError, "tick must be between 0 and 0.02 s");
        return NULL;
    }
    Relay *r = (Relay *)type->tp_alloc(type, 0);
    if (r == NULL)
        return NULL;
    r->epfd = r->wakefd = r->notifyfd = -1;
    r->tick_ns = (long)(tick * 1e9);
    atomic_init(&r->stop, 0);
    pthread_mutex_init(&r->lock, NULL);
    r->epfd = epoll_create1(EPOLL_CLOEXEC);
    r->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    r->notifyfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (r->epfd < 0 || r->wakefd < 0 || r->notifyfd < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        Py_DECREF(r);
        return NULL;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = WAKE_HANDLE};
    if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->wakefd, &ev) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        Py_DECREF(r);
        return NULL;
    }
    return (PyObject *)r;
}

static void relay_stop(Relay *r) {
    if (!r->running)
        return;
    atomic_store(&r->stop, 1);
    uint64_t one = 1;
    if (write(r->wakefd, &one, sizeof one) < 0) { /* the counter is non-zero already */
    }
    Py_BEGIN_ALLOW_THREADS
    pthread_join(r->thread, NULL);
    Py_END_ALLOW_THREADS
    r->running = 0;
}

static void Relay_dealloc(Relay *r) {
    relay_stop(r);
    if (r->epfd >= 0)
        close(r->epfd);
    if (r->wakefd >= 0)
        close(r->wakefd);
    if (r->notifyfd >= 0)
        close(r->notifyfd);
    free(r->buffers);
    handoff_free_all(r->q_head);
    free(r->streams);
    free(r->free_slots);
    pthread_mutex_destroy(&r->lock);
    Py_TYPE(r)->tp_free((PyObject *)r);
}

static PyObject *Relay_start(Relay *r, PyObject *Py_UNUSED(ignored)) {
    if (r->running)
        Py_RETURN_NONE;
    if (r->epfd < 0) {
        PyErr_SetString(PyExc_RuntimeError, "relay is closed");
        return NULL;
    }
    if (r->buffers == NULL && (r->buffers = malloc(sizeof *r->buffers)) == NULL)
        return PyErr_NoMemory();
    atomic_store(&r->stop, 0);
    int err = pthread_create(&r->thread, NULL, worker, r);
    if (err) {
        errno = err;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    r->running = 1;
    Py_RETURN_NONE;
}

static PyObject *Relay_close(Relay *r, PyObject *Py_UNUSED(ignored)) {
    relay_stop(r);
    Py_RETURN_NONE;
}

static PyObject *Relay_add(Relay *r, PyObject *args) {
    int fd;
    double relatch_after = 1.0;
    if (!PyArg_ParseTuple(args, "i|d", &fd, &relatch_after))
        return NULL;
    struct sockaddr_storage local;
    socklen_t llen = sizeof local;
    if (getsockname(fd, (struct sockaddr *)&local, &llen) < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    if (local.ss_family != AF_INET && local.ss_family != AF_INET6) {
        PyErr_SetString(PyExc_ValueError, "not an IP socket");
        return NULL;
    }
    int on = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on) < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    pthread_mutex_lock(&r->lock);
    uint32_t slot;
    if (r->nfree) {
        slot = r->free_slots[--r->nfree];
    } else {
        if (r->nstreams == r->cap) {
            uint32_t cap = r->cap ? r->cap * 2 : 64;
            stream_t *grown = realloc(r->streams, cap * sizeof *grown);
            uint32_t *slots = grown ? realloc(r->free_slots, cap * sizeof *slots) : NULL;
            if (grown)
                r->streams = grown;
            if (slots == NULL) {
                pthread_mutex_unlock(&r->lock);
                return PyErr_NoMemory();
            }
            r->free_slots = slots;
            r->cap = cap;
        }
        slot = r->nstreams++;
        r->streams[slot].gen = 1;
    }
    stream_t *s = &r->streams[slot];
    uint32_t gen = s->gen;
    memset(s, 0, sizeof *s);
    s->gen = gen;
    s->fd = fd;
    s->family = local.ss_family;
    s->relatch_after = relatch_after;
    s->relaying = 1;
    s->cur = -1;
    uint64_t handle = make_handle(slot, gen);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = handle};
    if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        int err = errno;
        s->fd = -1;
        s->gen++;
        r->free_slots[r->nfree++] = slot;
        pthread_mutex_unlock(&r->lock);
        errno = err;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    pthread_mutex_unlock(&r->lock);
    return PyLong_FromUnsignedLongLong(handle);
}

static PyObject *Relay_remove(Relay *r, PyObject *args) {
    unsigned long long handle;
    if (!PyArg_ParseTuple(args, "K", &handle))
        return NULL;
    pthread_mutex_lock(&r->lock);
    stream_t *s = lookup(r, handle);
    if (s != NULL) {
        epoll_ctl(r->epfd, EPOLL_CTL_DEL, s->fd, NULL);
        stream_t *peer = lookup(r, s->peer);
        if (peer != NULL && peer->peer == handle)
            peer->peer = 0;
        s->fd = -1;
        s->gen++;
        if (s->gen == 0)
            s->gen = 1;
        r->free_slots[r->nfree++] = (uint32_t)handle;
    }
    pthread_mutex_unlock(&r->lock);
    Py_RETURN_NONE;
}

static PyObject *Relay_link(Relay *r, PyObject *args) {
    unsigned long long a, b;
    if (!PyArg_ParseTuple(args, "KK", &a, &b))
        return NULL;
    pthread_mutex_lock(&r->lock);
    stream_t *sa = lookup(r, a), *sb = lookup(r, b);
    if (sa && sb) {
        sa->peer = b;
        sb->peer = a;
    }
    pthread_mutex_unlock(&r->lock);
    if (!(sa && sb)) {
        PyErr_SetString(PyExc_KeyError, "no such relay stream");
        return NULL;
    }
    Py_RETURN_NONE;
}

/* set_target(handle, addr or None, relatch): the phone's SDP address; with
 * relatch, forget the latched address (a new device: follow its SDP until
 * its packets arrive). */
static PyObject *Relay_set_target(Relay *r, PyObject *args) {
    unsigned long long handle;
    PyObject *addr;
    int relatch;
    if (!PyArg_ParseTuple(args, "KOp", &handle, &addr, &relatch))
        return NULL;
    pthread_mutex_lock(&r->lock);
    stream_t *s = lookup_or_raise(r, handle);
    if (s == NULL) {
        pthread_mutex_unlock(&r->lock);
        return NULL;
    }
    int family = s->family;
    pthread_mutex_unlock(&r->lock);
    struct sockaddr_storage sa;
    socklen_t len = 0;
    if (addr != Py_None && parse_addr(r, family, addr, &sa, &len) < 0)
        return NULL;
    pthread_mutex_lock(&r->lock);
    s = lookup_or_raise(r, handle);
    if (s != NULL) {
        if (len)
            memcpy(&s->sdp, &sa, len);
        s->sdp_len = len;
        if (relatch)
            s->addr_len = 0;
    }
    pthread_mutex_unlock(&r->lock);
    if (s == NULL)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *Relay_set_flags(Relay *r, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"handle", "relaying", "tap", "rtcp_mux", NULL};
    unsigned long long handle;
    int relaying = -1, tap = -1, mux = -1;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "K|$ppp", kwlist, &handle, &relaying, &tap, &mux))
        return NULL;
    pthread_mutex_lock(&r->lock);
    stream_t *s = lookup_or_raise(r, handle);
    if (s != NULL) {
        if (relaying >= 0)
            s->relaying = relaying;
        if (tap >= 0)
            s->tap = tap;
        if (mux >= 0)
            s->rtcp_mux = mux;
    }
    pthread_mutex_unlock(&r->lock);
    if (s == NULL)
        return NULL;
    Py_RETURN_NONE;
}

/* send(handle, data, addr=None): send from the stream's socket to `addr`,
 * or to its phone (latched or SDP address; counted in packets_out).
 * Returns False when there was nowhere to send or the send failed. */
static PyObject *Relay_send(Relay *r, PyObject *args) {
    unsigned long long handle;
    Py_buffer data;
    PyObject *addr = Py_None;
    if (!PyArg_ParseTuple(args, "Ky*|O", &handle, &data, &addr))
        return NULL;
    PyObject *result = NULL;
    struct sockaddr_storage sa;
    socklen_t len = 0;
    int ok = 0;
    pthread_mutex_lock(&r->lock);
    stream_t *s = lookup_or_raise(r, handle);
    int family = s ? s->family : 0;
    pthread_mutex_unlock(&r->lock);
    if (s == NULL || (addr != Py_None && parse_addr(r, family, addr, &sa, &len) < 0)) {
        PyBuffer_Release(&data);
        return NULL;
    }
    pthread_mutex_lock(&r->lock);
    s = lookup_or_raise(r, handle);
    if (s != NULL) {
        const struct sockaddr_storage *to = &sa;
        if (addr == Py_None)
            to = target_of(s, &len);
        if (to != NULL) {
            ok = sendto(s->fd, data.buf, (size_t)data.len, MSG_DONTWAIT,
                        (const struct sockaddr *)to, len) >= 0;
            if (!ok)
                s->send_errors++;
            else if (addr == Py_None)
                s->packets_out++;
        }
    }
    pthread_mutex_unlock(&r->lock);
    if (s != NULL)
        result = PyBool_FromLong(ok);
    PyBuffer_Release(&data);
    return result;
}

/* info(handle) -> dict of the stream's addresses, counters and sources. */
static PyObject *Relay_info(Relay *r, PyObject *args) {
    unsigned long long handle;
    if (!PyArg_ParseTuple(args, "K", &handle))
        return NULL;
    pthread_mutex_lock(&r->lock);
    stream_t *s = lookup_or_raise(r, handle);
    if (s == NULL) {
        pthread_mutex_unlock(&r->lock);
        return NULL;
    }
    stream_t copy = *s; /* a snapshot: build Python objects without the lock */
    pthread_mutex_unlock(&r->lock);

    PyObject *sources = PyList_New(0);
    if (sources == NULL)
        return NULL;
    for (int i = 0; i < MAX_SOURCES; i++) {
        const source_t *src = &copy.src[i];
        if (!src->in_use)
            continue;
        PyObject *t = Py_BuildValue("(kKLdO)", (unsigned long)src->ssrc,
                                    (unsigned long long)src->received, (long long)source_lost(src),
                                    src->jitter, src->probation ? Py_False : Py_True);
        if (t == NULL || PyList_Append(sources, t) < 0) {
            Py_XDECREF(t);
            Py_DECREF(sources);
            return NULL;
        }
        Py_DECREF(t);
    }
    PyObject *addr = addr_tuple(&copy.addr, copy.addr_len);
    PyObject *sdp = addr_tuple(&copy.sdp, copy.sdp_len);
    PyObject *ssrc = copy.cur >= 0 ? PyLong_FromUnsignedLong(copy.src[copy.cur].ssrc)
                                   : (Py_INCREF(Py_None), Py_None);
    PyObject *result = NULL;
    if (addr && sdp && ssrc)
        result = Py_BuildValue(
            "{s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:K,s:O,s:O,s:O,s:d,s:O,s:K,s:K}",
            "packets_in", (unsigned long long)copy.packets_in,
            "bytes_in", (unsigned long long)copy.bytes_in,
            "packets_out", (unsigned long long)copy.packets_out,
            "invalid", (unsigned long long)copy.invalid,
            "relatches", (unsigned long long)copy.relatches,
            "ignored", (unsigned long long)copy.ignored,
            "source_changes", (unsigned long long)copy.source_changes,
            "send_errors", (unsigned long long)copy.send_errors,
            "addr", addr, "sdp_addr", sdp, "ssrc", ssrc,
            "last_seen", copy.last_seen,
            "sources", sources,
            "retired_received", (unsigned long long)copy.retired_received,
            "retired_lost", (unsigned long long)copy.retired_lost);
    Py_XDECREF(addr);
    Py_XDECREF(sdp);
    Py_XDECREF(ssrc);
    Py_DECREF(sources);
    return result;
}

/* drain() -> [(handle, kind, data, addr, arrival)]: what waits for Python. */
static PyObject *Relay_drain(Relay *r, PyObject *Py_UNUSED(ignored)) {
    uint64_t v;
    if (read(r->notifyfd, &v, sizeof v) < 0) { /* EAGAIN: nothing signalled */
    }
    pthread_mutex_lock(&r->lock);
    handoff_t *h = r->q_head;
    r->q_head = r->q_tail = NULL;
    r->q_len = 0;
    pthread_mutex_unlock(&r->lock);
    PyObject *out = PyList_New(0);
    if (out == NULL)
        goto fail;
    for (; h != NULL;) {
        PyObject *addr = addr_tuple(&h->from, h->from_len);
        PyObject *t = addr ? Py_BuildValue("(Kiy#Od)", (unsigned long long)h->handle, h->kind,
                                           (const char *)h->data, (Py_ssize_t)h->len, addr,
                                           h->arrival)
                           : NULL;
        Py_XDECREF(addr);
        if (t == NULL || PyList_Append(out, t) < 0) {
            Py_XDECREF(t);
            Py_DECREF(out);
            goto fail;
        }
        Py_DECREF(t);
        handoff_t *next = h->next;
        free(h);
        h = next;
    }
    return out;
fail:
    handoff_free_all(h);
    return NULL;
}

static PyObject *Relay_counters(Relay *r, PyObject *Py_UNUSED(ignored)) {
    pthread_mutex_lock(&r->lock);
    unsigned long long w = r->wakeups, f = r->forwarded, h = r->handoffs, d = r->handoff_drops;
    unsigned long n = (unsigned long)(r->nstreams - r->nfree);
    pthread_mutex_unlock(&r->lock);
    return Py_BuildValue("{s:K,s:K,s:K,s:K,s:k}", "wakeups", w, "forwarded", f, "handoffs", h,
                         "handoff_drops", d, "streams", n);
}

static PyObject *Relay_notify_fd(Relay *r, void *Py_UNUSED(closure)) {
    return PyLong_FromLong(r->notifyfd);
}

static PyObject *Relay_running(Relay *r, void *Py_UNUSED(closure)) {
    return PyBool_FromLong(r->running);
}

static PyMethodDef Relay_methods[] = {
    {"start", (PyCFunction)Relay_start, METH_NOARGS, "Start the worker thread."},
    {"close", (PyCFunction)Relay_close, METH_NOARGS, "Stop the worker thread and wait for it."},
    {"add", (PyCFunction)Relay_add, METH_VARARGS,
     "add(fd, relatch_after=1.0) -> handle: relay what arrives on this UDP socket."},
    {"remove", (PyCFunction)Relay_remove, METH_VARARGS,
     "remove(handle): stop watching the socket (the caller closes it afterwards)."},
    {"link", (PyCFunction)Relay_link, METH_VARARGS, "link(a, b): each forwards to the other."},
    {"set_target", (PyCFunction)Relay_set_target, METH_VARARGS,
     "set_target(handle, (host, port) | None, relatch): the phone's SDP address."},
    {"set_flags", (PyCFunction)(void (*)(void))Relay_set_flags, METH_VARARGS | METH_KEYWORDS,
     "set_flags(handle, *, relaying, tap, rtcp_mux)."},
    {"send", (PyCFunction)Relay_send, METH_VARARGS,
     "send(handle, data, addr=None) -> bool: send from the stream's socket."},
    {"info", (PyCFunction)Relay_info, METH_VARARGS, "info(handle) -> dict of the stream's state."},
    {"drain", (PyCFunction)Relay_drain, METH_NOARGS,
     "drain() -> [(handle, kind, data, addr, arrival)] waiting for Python."},
    {"counters", (PyCFunction)Relay_counters, METH_NOARGS, "Totals of the relay."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Relay_getset[] = {
    {"notify_fd", (getter)Relay_notify_fd, NULL, "eventfd readable when hand-offs wait.", NULL},
    {"running", (getter)Relay_running, NULL, "Whether the worker thread runs.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject RelayType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "vaxla.media._fastrelay.Relay",
    .tp_doc = "Relay(tick=0.001): the C relay of anchored calls' RTP.",
    .tp_basicsize = sizeof(Relay),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = Relay_new,
    .tp_dealloc = (destructor)Relay_dealloc,
    .tp_methods = Relay_methods,
    .tp_getset = Relay_getset,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "vaxla.media._fastrelay",
    .m_doc = "The relay fast path of anchored calls (see vaxla.media.fastrelay).",
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__fastrelay(void) {
    if (PyType_Ready(&RelayType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&RelayType);
    if (PyModule_AddObject(m, "Relay", (PyObject *)&RelayType) < 0 ||
        PyModule_AddIntConstant(m, "HANDOFF_RTCP", HANDOFF_RTCP) < 0 ||
        PyModule_AddIntConstant(m, "HANDOFF_TAP", HANDOFF_TAP) < 0) {
        Py_DECREF(&RelayType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
