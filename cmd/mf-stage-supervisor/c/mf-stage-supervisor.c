/*
 * mf-stage-supervisor: the process between mf-bridge and each stage it
 * starts (lib/chain says why there is one; mf-stage-supervisor(8) what it
 * does). This is the program make installs where there is a C compiler:
 * it is started, or forked, for every stage run, and a Go program's
 * runtime start costs more than the stage's own exec. ../main.go is the
 * same in Go, for a build without one and for mf-bridge as its own
 * supervisor; the two speak the same arguments and status lines
 * (lib/supervise).
 *
 * Arguments: SIZE-LIMIT CREDENTIALS PATH ARGV..., CREDENTIALS being
 * "uid:gid:g1,g2" or "-". Descriptors 0, 1, 2 are the stage's, 3 the
 * lifeline (EOF once the bridge is gone, or has given up on this run), 4
 * the status pipe, which gets one line: "exit N", "signal N" or
 * "start ERRNO TEXT".
 *
 * Or, as "mf-stage-supervisor -resident", it stays: mf-bridge starts it
 * once with a socket on descriptor 3 and its lifeline on 4, and for each
 * stage run sends one packet, the five descriptors above and the
 * arguments and environment as NUL-ended strings (the count of arguments
 * first). A spare it forked ahead takes the packet, writes "+" on the
 * run's status pipe, saying it has taken the run, and is that run's
 * supervisor: it takes those descriptors as its own and goes on as
 * above, while the resident forks the next spare. A fork of this small
 * process, made before the run asks, in place of an exec in every run.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { LIFELINE = 3, STATUS = 4, MAXGROUPS = 256 };

/* capget and capset's structures, as in linux/capability.h, which the
 * headers of a libc other than glibc (musl's) do not bring. */
struct cap_header {
	unsigned version;
	int pid;
};
struct cap_data {
	unsigned effective, permitted, inheritable;
};
enum { CAP_VERSION_3 = 0x20080522 };

/* The calls that take 32-bit ids: on 32-bit x86 and arm the plain ones
 * take 16 bits. */
#ifdef SYS_setuid32
#define SYS_SETUID SYS_setuid32
#define SYS_SETGID SYS_setgid32
#define SYS_SETGROUPS SYS_setgroups32
#else
#define SYS_SETUID SYS_setuid
#define SYS_SETGID SYS_setgid
#define SYS_SETGROUPS SYS_setgroups
#endif

static int isfifo(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode);
}

/* fail says the stage could not be started, as Go's errors read. */
static int fail(int err, const char *what, const char *path)
{
	char text[256];
	snprintf(text, sizeof text, "%s", strerror(err));
	text[0] = (char)tolower((unsigned char)text[0]);
	if (path)
		dprintf(STATUS, "start %d %s %s: %s", err, what, path, text);
	else
		dprintf(STATUS, "start %d %s: %s", err, what, text);
	return 0;
}

static int parse_u32(const char *s, const char *end, unsigned *out)
{
	if (s == end)
		return -1;
	unsigned long v = 0;
	for (const char *p = s; p < end; p++) {
		if (*p < '0' || *p > '9')
			return -1;
		v = v * 10 + (unsigned)(*p - '0');
		if (v > 0xffffffffUL)
			return -1;
	}
	*out = (unsigned)v;
	return 0;
}

/* parse_cred reads "uid:gid:g1,g2,..." (groups may be empty). */
static int parse_cred(const char *s, unsigned *uid, unsigned *gid, gid_t *groups, int *ngroups)
{
	const char *c1 = strchr(s, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : 0;
	if (!c2 || strchr(c2 + 1, ':'))
		return -1;
	if (parse_u32(s, c1, uid) || parse_u32(c1 + 1, c2, gid))
		return -1;
	*ngroups = 0;
	for (const char *p = c2 + 1; *p;) {
		const char *e = strchr(p, ',');
		if (!e)
			e = p + strlen(p);
		unsigned g;
		if (*ngroups == MAXGROUPS || parse_u32(p, e, &g))
			return -1;
		groups[(*ngroups)++] = g;
		p = *e ? e + 1 : e;
	}
	return 0;
}

/* children lists this process's children, from
 * /proc/self/task/TID/children where the kernel has it, else from every
 * process's parent. */
static int children(pid_t *out, int max)
{
	int n = 0;
	char path[64];
	snprintf(path, sizeof path, "/proc/self/task/%d/children", (int)getpid());
	FILE *f = fopen(path, "re");
	if (f) {
		int pid;
		while (n < max && fscanf(f, "%d", &pid) == 1)
			out[n++] = pid;
		fclose(f);
		return n;
	}
	DIR *d = opendir("/proc");
	if (!d)
		return 0;
	struct dirent *e;
	while (n < max && (e = readdir(d))) {
		char *end;
		long pid = strtol(e->d_name, &end, 10);
		if (*end || pid <= 0)
			continue;
		char buf[512];
		snprintf(path, sizeof path, "/proc/%ld/stat", pid);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		ssize_t k = read(fd, buf, sizeof buf - 1);
		close(fd);
		if (k <= 0)
			continue;
		buf[k] = 0;
		char *rp = strrchr(buf, ')');
		int ppid;
		if (rp && sscanf(rp + 1, " %*c %d", &ppid) == 1 && ppid == getpid())
			out[n++] = (pid_t)pid;
	}
	closedir(d);
	return n;
}

/* end_all kills every process left below the supervisor: as a subreaper
 * it inherits each orphan of its subtree, so killing its children until
 * none is left ends all of them, however they detached. */
static void end_all(void)
{
	long pause = 1000000; /* ns */
	for (;;) {
		int ws;
		pid_t r = waitpid(-1, &ws, WNOHANG);
		if (r < 0 && errno == ECHILD)
			return;
		if (r > 0)
			continue;
		pid_t kids[1024];
		int n = children(kids, 1024);
		for (int i = 0; i < n; i++)
			kill(kids[i], SIGKILL);
		r = waitpid(-1, &ws, WNOHANG);
		if (r < 0 && errno == ECHILD)
			return;
		if (r > 0 || (r < 0 && errno == EINTR)) {
			pause = 1000000;
			continue;
		}
		struct timespec ts = {0, pause};
		nanosleep(&ts, 0);
		pause = pause * 2 > 20000000 ? 20000000 : pause * 2;
	}
}

/* supervise is one stage run's supervisor: argv as described above. */
static int supervise(int argc, char **argv)
{
	if (!isfifo(STATUS) || !isfifo(LIFELINE) || argc < 5) {
		fputs("mf-stage-supervisor: started by hand: it is run by mf-bridge only\n", stderr);
		return 2;
	}
	fcntl(STATUS, F_SETFD, FD_CLOEXEC);
	fcntl(LIFELINE, F_SETFD, FD_CLOEXEC);
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
		return fail(errno, "prctl PR_SET_CHILD_SUBREAPER", 0);
	/* Capabilities handed down for the change of user go no further. */
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	struct cap_header hdr = {CAP_VERSION_3, 0};
	struct cap_data data[2];
	if (syscall(SYS_capget, &hdr, data) == 0 && (data[0].inheritable || data[1].inheritable)) {
		data[0].inheritable = data[1].inheritable = 0;
		syscall(SYS_capset, &hdr, data);
	}

	char *end;
	errno = 0;
	unsigned long long fsize = strtoull(argv[1], &end, 10);
	if (*end || !isdigit((unsigned char)argv[1][0]) || errno) {
		dprintf(STATUS, "start 0 file size limit \"%s\"", argv[1]);
		return 0;
	}
	int cred = strcmp(argv[2], "-") != 0;
	unsigned uid = 0, gid = 0;
	static gid_t groups[MAXGROUPS];
	int ngroups = 0;
	if (cred && parse_cred(argv[2], &uid, &gid, groups, &ngroups)) {
		dprintf(STATUS, "start 0 credentials \"%s\"", argv[2]);
		return 0;
	}
	if (fsize > 0) {
		/* No file the stage writes, its output among them, may grow
		 * past this: a stage gone wild is stopped (SIGXFSZ) before it
		 * fills the spool's disk. */
		struct rlimit rl = {fsize, fsize};
		if (setrlimit(RLIMIT_FSIZE, &rl) < 0)
			return fail(errno, "setrlimit", 0);
	}

	sigset_t mask, old;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGTERM);
	sigprocmask(SIG_BLOCK, &mask, &old);
	int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0)
		return fail(errno, "signalfd", 0);
	pid_t self = getpid();
	/* vfork: this process waits, its memory shared, until the stage is
	 * exec'd or could not be, so no copy of its page tables is made and
	 * thrown away (a fork was a tenth of a short stage's whole cost).
	 * The child therefore makes system calls only: the changes of user
	 * are the raw calls, which keep no state in libc, and why the exec
	 * failed comes back in start_errno. */
	static volatile int start_errno;
	start_errno = 0;
	pid_t pid = vfork();
	if (pid < 0)
		return fail(errno, "fork/exec", argv[3]);
	if (pid == 0) {
		int e = 0;
		sigprocmask(SIG_SETMASK, &old, 0);
		/* The death signal after the change of user, which clears it;
		 * and should the supervisor have died meanwhile, no stage. */
		if (setpgid(0, 0) < 0)
			e = errno;
		else if (cred && (syscall(SYS_SETGROUPS, (size_t)ngroups, groups) < 0 ||
				  syscall(SYS_SETGID, gid) < 0 || syscall(SYS_SETUID, uid) < 0))
			e = errno;
		else if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
			e = errno;
		else if (getppid() != self)
			_exit(127);
		else {
			execv(argv[3], argv + 4);
			e = errno;
		}
		start_errno = e;
		_exit(127);
	}
	if (start_errno) {
		waitpid(pid, 0, 0);
		return fail(start_errno, "fork/exec", argv[3]);
	}
	/* The stage has its descriptors; the supervisor keeps none of them,
	 * so the bridge sees the stage's output end with the stage. */
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null >= 0) {
		for (int fd = 0; fd <= 2; fd++)
			dup3(null, fd, 0);
		close(null);
	}

	int ws = 0, done = 0, killed = 0;
	while (!done) {
		struct pollfd p[2] = {{sfd, POLLIN, 0}, {LIFELINE, POLLIN, 0}};
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[0].revents & POLLIN) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof si) == sizeof si) {
				if (si.ssi_signo == SIGTERM && !killed) {
					kill(-pid, SIGKILL);
					killed = 1;
				}
				if (si.ssi_signo != SIGCHLD)
					continue;
				pid_t r;
				int st;
				while ((r = waitpid(-1, &st, WNOHANG)) > 0)
					if (r == pid) {
						ws = st;
						done = 1;
					}
			}
		}
		if (!done && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
			char buf[64];
			if (read(LIFELINE, buf, sizeof buf) <= 0) {
				/* The bridge is gone: nobody is left to read the status. */
				kill(-pid, SIGKILL);
				waitpid(pid, 0, 0);
				end_all();
				return 1;
			}
		}
	}
	end_all();
	if (WIFSIGNALED(ws))
		dprintf(STATUS, "signal %d", WTERMSIG(ws));
	else
		dprintf(STATUS, "exit %d", WEXITSTATUS(ws));
	return 0;
}

/* The resident's descriptors: the bridge's requests, and its lifeline. */
enum { REQUESTS = 3, RESIDENT_LIFELINE = 4, RUNFDS = 5, MAXREQ = 256 << 10, MAXSTRS = 16384 };

static int issocket(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

/* run_request is the child forked for one request of n bytes: the
 * descriptors sent with it become its 0 to 4, its strings its argv and
 * environment, and it is that run's supervisor. */
static int run_request(char *buf, size_t n, const int *fds)
{
	static char *strs[MAXSTRS + 2];
	for (int k = 0; k < RUNFDS; k++)
		if (dup2(fds[k], k) < 0)
			return 1;
	for (int k = 0; k < RUNFDS; k++)
		if (fds[k] >= RUNFDS)
			close(fds[k]);
	char *end;
	long argc = strtol(buf, &end, 10);
	if (*end || argc < 1 || argc > MAXSTRS) {
		dprintf(STATUS, "start 0 a request without its count of arguments");
		return 0;
	}
	size_t i = strlen(buf) + 1;
	int ns = 0;
	while (i < n && ns < MAXSTRS) {
		strs[ns++] = buf + i;
		i += strlen(buf + i) + 1;
	}
	if (ns < argc || i < n) {
		dprintf(STATUS, "start 0 a request of %d strings, %ld of them arguments", ns, argc);
		return 0;
	}
	/* argv, a NULL, the environment, a NULL. */
	memmove(&strs[argc + 1], &strs[argc], (size_t)(ns - argc) * sizeof *strs);
	strs[argc] = 0;
	strs[ns + 1] = 0;
	environ = &strs[argc + 1];
	return supervise((int)argc, strs);
}

/* spare waits for one request on REQUESTS and becomes that run's
 * supervisor, once it has said "+" on the run's status pipe and told the
 * resident its pid on taken, so that the resident forks the next spare.
 * Forked ahead of the request, it takes the fork off the run's way. It
 * dies with the resident until it has taken a run, and ends at EOF, when
 * the bridge has closed the socket. */
static int spare(pid_t resident_pid, int taken)
{
	static char buf[MAXREQ];
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 || getppid() != resident_pid)
		return 0;
	for (;;) {
		union {
			struct cmsghdr h;
			char space[CMSG_SPACE(8 * sizeof(int))];
		} ctl;
		struct iovec iov = {buf, sizeof buf};
		struct msghdr m = {0};
		m.msg_iov = &iov;
		m.msg_iovlen = 1;
		m.msg_control = ctl.space;
		m.msg_controllen = sizeof ctl.space;
		ssize_t n = recvmsg(REQUESTS, &m, MSG_CMSG_CLOEXEC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0;
		int fds[8], nfds = 0;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
			if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
				continue;
			int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
			for (int j = 0; j < k && nfds < 8; j++)
				memcpy(&fds[nfds++], CMSG_DATA(c) + j * sizeof(int), sizeof(int));
		}
		if (nfds == RUNFDS && !(m.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) && buf[n - 1] == 0) {
			/* The run outlives the resident from here on; then taken,
			 * whatever happens now: the stage may have run. */
			prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0);
			if (write(fds[4], "+", 1) == 1) {
				/* Should the resident be gone, the run is still this one's. */
				pid_t self = getpid();
				(void)!write(taken, &self, sizeof self);
				close(taken);
				close(REQUESTS);
				close(RESIDENT_LIFELINE);
				return run_request(buf, (size_t)n, fds);
			}
			prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
			if (getppid() != resident_pid)
				return 0;
		} else if (nfds == RUNFDS) {
			dprintf(fds[4], "+start 0 a request of %zd bytes, cut short or not NUL-ended", n);
		}
		for (int j = 0; j < nfds; j++)
			close(fds[j]);
	}
}

/* resident keeps a spare supervisor waiting on REQUESTS until the bridge
 * closes it or its lifeline reads EOF. The supervisors it forked go on
 * on their own: each has its run's lifeline, which ends with the bridge. */
static int resident(void)
{
	const int life = RESIDENT_LIFELINE;
	if (!issocket(REQUESTS) || !isfifo(life)) {
		fputs("mf-stage-supervisor: started by hand: it is run by mf-bridge only\n", stderr);
		return 2;
	}
	fcntl(REQUESTS, F_SETFD, FD_CLOEXEC);
	fcntl(life, F_SETFD, FD_CLOEXEC);
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	sigset_t mask, orig;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, &orig);
	int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	int taken[2];
	if (sfd < 0 || pipe2(taken, O_CLOEXEC | O_NONBLOCK) < 0)
		return 1;
	if (write(REQUESTS, "R", 1) != 1) /* ready */
		return 1;
	pid_t self = getpid(), waiting = 0; /* the spare, 0 for none */
	for (;;) {
		if (!waiting) {
			pid_t pid = fork();
			if (pid == 0) {
				close(taken[0]);
				close(sfd);
				sigprocmask(SIG_SETMASK, &orig, 0);
				_exit(spare(self, taken[1]));
			}
			if (pid > 0)
				waiting = pid;
		}
		/* The socket only for its end: the spare reads it. Without a
		 * spare (a fork failed), the next SIGCHLD or a second's wait
		 * tries again. */
		struct pollfd p[4] = {{REQUESTS, 0, 0}, {life, POLLIN, 0}, {sfd, POLLIN, 0}, {taken[0], POLLIN, 0}};
		if (poll(p, 4, waiting ? -1 : 1000) < 0) {
			if (errno == EINTR)
				continue;
			return 1;
		}
		if (p[0].revents & (POLLHUP | POLLERR))
			return 0;
		if (p[1].revents) {
			char c;
			if (read(life, &c, 1) <= 0)
				return 0;
		}
		if (p[2].revents & POLLIN) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof si) == sizeof si)
				;
			pid_t r;
			while ((r = waitpid(-1, 0, WNOHANG)) > 0)
				if (r == waiting)
					waiting = 0;
		}
		if (p[3].revents & POLLIN) {
			pid_t pid;
			while (read(taken[0], &pid, sizeof pid) == sizeof pid)
				if (pid == waiting)
					waiting = 0;
		}
	}
}

int main(int argc, char **argv)
{
	prctl(PR_SET_NAME, "mf-stage-supervisor", 0, 0, 0);
	if (argc == 2 && strcmp(argv[1], "-resident") == 0)
		return resident();
	return supervise(argc, argv);
}
