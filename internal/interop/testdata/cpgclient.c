/*
 * cpgclient.c -- a line-oriented CPG client for gototem's interop suite.
 *
 * It joins one CPG group on the local corosync (libcpg) and reports, one line each on stdout:
 *   READY <local nodeid> <pid>                   joined (cpg_join accepted)
 *   CONFCHG members=<l> joined=<l> left=<l>      a group change; <l> = nodeid/pid:reason,...
 *                                                  or "-" (reason: cpg.h CPG_REASON_*)
 *   DELIVER <nodeid> <pid> <payload>             a delivered message (AGREED order); payload
 *                                                  bytes: printable ASCII as is, '\' as "\\",
 *                                                  anything else as \xHH
 *   SENT <n>                                     n messages handed to cpg_mcast_joined so far
 *   ERROR <what> <cs_error>                      a library call failed
 *   BYE                                          leaving (signal, time limit)
 * Messages to send come from stdin, one line each (without the newline), and/or from -n COUNT
 * generated messages "<prefix>-<seq>" (seq zero-padded to 4 digits) every -i MS milliseconds.
 * End of stdin does not end the client (unless -x); SIGTERM/SIGINT or the -T limit do, after
 * cpg_leave.
 *
 * Usage: cpgclient [-g GROUP] [-n COUNT] [-i MS] [-p PREFIX] [-w MEMBERS] [-T SECS] [-x]
 *   -w MEMBERS  hold generated sends until the group has this many members (<= 30 s)
 *   -x          exit once stdin is closed, the COUNT messages are sent and every message this
 *               client sent was delivered back to it (a send that returns after total order)
 * Every wait is bounded; the program always ends within -T seconds (default 300).
 */
#define _GNU_SOURCE
#include <corosync/cpg.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop_requested;
static int members_now;
static unsigned long sent_count, own_delivered;
static uint32_t local_nodeid;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static long long mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void print_escaped(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\\')
			fputs("\\\\", stdout);
		else if (p[i] >= 0x20 && p[i] < 0x7f)
			putchar(p[i]);
		else
			printf("\\x%02X", p[i]);
	}
}

static void print_list(const char *label, const struct cpg_address *a, size_t n)
{
	printf(" %s=", label);
	if (n == 0) {
		putchar('-');
		return;
	}
	for (size_t i = 0; i < n; i++)
		printf("%s%u/%u:%u", i ? "," : "", a[i].nodeid, a[i].pid, a[i].reason);
}

static void deliver_cb(cpg_handle_t h, const struct cpg_name *group, uint32_t nodeid,
		       uint32_t pid, void *msg, size_t len)
{
	(void)h;
	(void)group;
	if (nodeid == local_nodeid && pid == (uint32_t)getpid())
		own_delivered++;
	printf("DELIVER %u %u ", nodeid, pid);
	print_escaped(msg, len);
	putchar('\n');
}

static void confchg_cb(cpg_handle_t h, const struct cpg_name *group,
		       const struct cpg_address *members, size_t nmembers,
		       const struct cpg_address *left, size_t nleft,
		       const struct cpg_address *joined, size_t njoined)
{
	(void)h;
	(void)group;
	members_now = (int)nmembers;
	printf("CONFCHG");
	print_list("members", members, nmembers);
	print_list("joined", joined, njoined);
	print_list("left", left, nleft);
	putchar('\n');
}

/* dispatch whatever is pending, waiting at most ms for the first event */
static int pump(cpg_handle_t h, int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int r = poll(&p, 1, ms);
	if (r > 0) {
		cs_error_t e = cpg_dispatch(h, CS_DISPATCH_ALL);
		if (e != CS_OK && e != CS_ERR_TRY_AGAIN) {
			printf("ERROR cpg_dispatch %d\n", e);
			return -1;
		}
	}
	return 0;
}

/* multicast one message; corosync answers TRY_AGAIN under flow control or during a sync, so
 * keep dispatching (which is what drains the flow control) and retry, for at most 30 s */
static int send_msg(cpg_handle_t h, int fd, const char *buf, size_t len)
{
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	long long give_up = mono_ms() + 30000;
	cs_error_t e;
	while ((e = cpg_mcast_joined(h, CPG_TYPE_AGREED, &iov, 1)) == CS_ERR_TRY_AGAIN) {
		if (mono_ms() > give_up || stop_requested)
			break;
		if (pump(h, fd, 5) < 0)
			return -1;
	}
	if (e != CS_OK) {
		printf("ERROR cpg_mcast_joined %d\n", e);
		return -1;
	}
	sent_count++;
	printf("SENT %lu\n", sent_count);
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: cpgclient [-g GROUP] [-n COUNT] [-i MS] [-p PREFIX] [-w MEMBERS] [-T SECS] [-x]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *group = "gototem-interop", *prefix = "msg";
	long count = 0, interval_ms = 10, max_secs = 300, want_members = 0;
	cpg_callbacks_t cb = { .cpg_deliver_fn = deliver_cb, .cpg_confchg_fn = confchg_cb };
	struct cpg_name name;
	cpg_handle_t h;
	unsigned int local = 0;
	int fd, c, stdin_open = 1, rc = 0, exit_when_done = 0;
	char line[65536];
	size_t have = 0;
	cs_error_t e;

	while ((c = getopt(argc, argv, "g:n:i:p:w:T:x")) != -1) {
		switch (c) {
		case 'g': group = optarg; break;
		case 'n': count = strtol(optarg, NULL, 10); break;
		case 'i': interval_ms = strtol(optarg, NULL, 10); break;
		case 'p': prefix = optarg; break;
		case 'w': want_members = strtol(optarg, NULL, 10); break;
		case 'T': max_secs = strtol(optarg, NULL, 10); break;
		case 'x': exit_when_done = 1; break;
		default: usage();
		}
	}
	if (count < 0 || count > 1000000 || interval_ms < 0 || interval_ms > 60000 ||
	    max_secs < 1 || max_secs > 3600 || want_members < 0 || want_members > 1000 ||
	    strlen(group) < 1 || strlen(group) >= CPG_MAX_NAME_LENGTH)
		usage();
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGPIPE, SIG_IGN);
	alarm((unsigned)max_secs + 10); /* if everything else fails, the kernel ends us */
	long long deadline = mono_ms() + max_secs * 1000;

	e = cpg_initialize(&h, &cb);
	for (int k = 0; e == CS_ERR_TRY_AGAIN && k < 100; k++) {
		usleep(100000);
		e = cpg_initialize(&h, &cb);
	}
	if (e != CS_OK) {
		printf("ERROR cpg_initialize %d\n", e);
		return 1;
	}
	cpg_local_get(h, &local);
	local_nodeid = local;
	cpg_fd_get(h, &fd);
	memset(&name, 0, sizeof(name));
	memcpy(name.value, group, strlen(group));
	name.length = strlen(group);
	/* a join is refused with TRY_AGAIN while the daemon runs a sync: retry for <= 30 s */
	for (int k = 0; k < 300; k++) {
		e = cpg_join(h, &name);
		if (e != CS_ERR_TRY_AGAIN || stop_requested)
			break;
		usleep(100000);
	}
	if (e != CS_OK) {
		printf("ERROR cpg_join %d\n", e);
		cpg_finalize(h);
		return 1;
	}
	printf("READY %u %d\n", local, (int)getpid());

	long long hold_until = mono_ms() + 30000;
	long long next_send = mono_ms();
	long generated = 0;
	while (!stop_requested && mono_ms() < deadline) {
		if (exit_when_done && !stdin_open && generated >= count && own_delivered >= sent_count)
			break;
		struct pollfd p[2] = { { .fd = fd, .events = POLLIN }, { .fd = 0, .events = POLLIN } };
		int np = stdin_open ? 2 : 1;
		int wait = 100;
		int may_generate = generated < count && (members_now >= want_members || mono_ms() > hold_until);
		if (may_generate) {
			long long d = next_send - mono_ms();
			wait = d < 0 ? 0 : (d < 100 ? (int)d : 100);
		}
		if (poll(p, np, wait) < 0 && errno != EINTR)
			break;
		if (p[0].revents & POLLIN) {
			e = cpg_dispatch(h, CS_DISPATCH_ALL);
			if (e != CS_OK && e != CS_ERR_TRY_AGAIN) {
				printf("ERROR cpg_dispatch %d\n", e);
				rc = 1;
				break;
			}
		}
		if (np == 2 && (p[1].revents & (POLLIN | POLLHUP))) {
			ssize_t r = read(0, line + have, sizeof(line) - 1 - have);
			if (r <= 0) {
				stdin_open = 0;
			} else {
				have += (size_t)r;
				char *nl;
				while ((nl = memchr(line, '\n', have)) != NULL) {
					size_t len = (size_t)(nl - line);
					if (send_msg(h, fd, line, len) < 0)
						rc = 1;
					memmove(line, nl + 1, have - len - 1);
					have -= len + 1;
				}
				if (have == sizeof(line) - 1) { /* an over-long line goes out as it is */
					if (send_msg(h, fd, line, have) < 0)
						rc = 1;
					have = 0;
				}
			}
		}
		if (may_generate && mono_ms() >= next_send) {
			char buf[256];
			int len = snprintf(buf, sizeof(buf), "%s-%04ld", prefix, generated);
			if (send_msg(h, fd, buf, (size_t)len) < 0)
				rc = 1;
			generated++;
			next_send = mono_ms() + interval_ms;
		}
	}
	printf("BYE\n");
	cpg_leave(h, &name);
	/* let the leave go out before the connection closes */
	for (int k = 0; k < 5; k++)
		pump(h, fd, 20);
	cpg_finalize(h);
	return rc;
}
