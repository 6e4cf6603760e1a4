/*
 * mf-qmail-queue-client: the program QMAILQUEUE names when the chain runs
 * in a resident "mf-bridge qmail-server". It parses nothing. It hands its
 * descriptors 0 and 1 (the message and the envelope qmail-smtpd writes),
 * the custom error descriptors 4 and 6 when open, and its environment
 * (tcpserver's variables) to the server over a unix socket, then does
 * what the server answers: exit with a qmail-queue status, or become the
 * real qmail-queue on the message and envelope the server hands back, so
 * qmail-queue runs as the user qmail-smtpd runs as and its Received line
 * is the one it always writes. A server that cannot be reached, or that
 * answers nothing, is exit 71 (451 for the client, which sends again):
 * no mail is lost. See mf-bridge(8).
 *
 * It is C because it is started for every message: a Go program's
 * runtime start alone costs about what the real qmail-queue does.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef SOCKET
#define SOCKET "/run/mf-bridge/qmail.sock"
#endif

enum { TEMP = 71 }; /* qmail-queue: temporary failure */
enum { ENVMAX = 64 * 1024, REPLYMAX = 4096 };

extern char **environ;

static void say(const char *what, const char *detail)
{
	/* qmail-smtpd's stderr is tcpserver's log (multilog). */
	const char *e = errno ? strerror(errno) : "";
	dprintf(2, "mf-qmail-queue-client: %s%s%s%s%s\n", what, detail ? " " : "",
		detail ? detail : "", *e ? ": " : "", e);
}

static int open_fd(int fd) { return fcntl(fd, F_GETFD) != -1; }

int main(void)
{
	const char *path = getenv("MF_QMAIL_SOCKET");
	if (!path || !*path)
		path = SOCKET;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof sa.sun_path) {
		errno = 0;
		say("socket path too long:", path);
		return TEMP;
	}
	strcpy(sa.sun_path, path);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0) {
		say("socket", 0);
		return TEMP;
	}
	if (connect(s, (struct sockaddr *)&sa, sizeof sa) < 0) {
		say("connect", path);
		return TEMP;
	}

	/* The request: "fds=0,1[,4][,6]", then each NAME=VALUE of the
	 * environment, every one ended by a NUL; the descriptors ride on the
	 * first write, in that order. */
	static char req[ENVMAX];
	int fds[4], nfd = 0;
	size_t n = (size_t)snprintf(req, sizeof req, "fds=0,1");
	fds[nfd++] = 0;
	fds[nfd++] = 1;
	for (int fd = 4; fd <= 6; fd += 2)
		if (open_fd(fd)) {
			n += (size_t)snprintf(req + n, sizeof req - n, ",%d", fd);
			fds[nfd++] = fd;
		}
	req[n++] = 0;
	for (char **e = environ; *e; e++) {
		size_t l = strlen(*e) + 1;
		if (n + l > sizeof req) {
			errno = 0;
			say("environment too large", 0);
			return TEMP;
		}
		memcpy(req + n, *e, l);
		n += l;
	}
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof fds)];
	} cm;
	memset(&cm, 0, sizeof cm);
	struct iovec iov = {.iov_base = req, .iov_len = n};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf,
			   .msg_controllen = CMSG_SPACE(nfd * sizeof(int))};
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(nfd * sizeof(int));
	memcpy(CMSG_DATA(c), fds, nfd * sizeof(int));
	ssize_t w = sendmsg(s, &m, MSG_NOSIGNAL);
	if (w < 0) {
		say("send", 0);
		return TEMP;
	}
	for (size_t off = (size_t)w; off < n; off += (size_t)w) {
		w = send(s, req + off, n - off, MSG_NOSIGNAL);
		if (w < 0) {
			say("send", 0);
			return TEMP;
		}
	}
	shutdown(s, SHUT_WR);
	/* 0 and 1 stay open until they are replaced, so the descriptors
	 * received below are never numbered 0 or 1. */

	/* The answer, one line: "exit CODE", or "queue PATH" with the
	 * message and the envelope as two descriptors. */
	static char rep[REPLYMAX];
	size_t got = 0;
	int in[2] = {-1, -1}, nin = 0;
	for (;;) {
		union {
			struct cmsghdr h;
			char buf[CMSG_SPACE(2 * sizeof(int))];
		} rc;
		struct iovec riov = {.iov_base = rep + got, .iov_len = sizeof rep - 1 - got};
		struct msghdr r = {.msg_iov = &riov, .msg_iovlen = 1, .msg_control = rc.buf,
				   .msg_controllen = sizeof rc.buf};
		ssize_t k = recvmsg(s, &r, MSG_CMSG_CLOEXEC);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			say("receive", 0);
			return TEMP;
		}
		for (struct cmsghdr *h = CMSG_FIRSTHDR(&r); h; h = CMSG_NXTHDR(&r, h))
			if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS)
				for (size_t i = 0; i < (h->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
					int fd;
					memcpy(&fd, CMSG_DATA(h) + i * sizeof(int), sizeof fd);
					if (nin < 2)
						in[nin++] = fd;
					else
						close(fd);
				}
		if (k == 0 || (r.msg_flags & MSG_CTRUNC)) {
			errno = 0;
			say(k == 0 ? "the server closed without an answer" : "too many descriptors", 0);
			return TEMP;
		}
		got += (size_t)k;
		if (memchr(rep, '\n', got))
			break;
		if (got == sizeof rep - 1) {
			errno = 0;
			say("answer too long", 0);
			return TEMP;
		}
	}
	*(char *)memchr(rep, '\n', got) = 0;
	errno = 0;
	if (strncmp(rep, "exit ", 5) == 0) {
		char *end;
		long code = strtol(rep + 5, &end, 10);
		if (*end || end == rep + 5 || code < 0 || code > 255) {
			say("bad answer:", rep);
			return TEMP;
		}
		return (int)code;
	}
	if (strncmp(rep, "queue /", 7) != 0 || nin != 2) {
		say("bad answer:", rep);
		return TEMP;
	}
	if (dup2(in[0], 0) < 0 || dup2(in[1], 1) < 0) {
		say("dup2", 0);
		return TEMP;
	}
	char *argv[] = {rep + 6, 0};
	execve(argv[0], argv, environ);
	say("exec", argv[0]);
	return TEMP;
}
