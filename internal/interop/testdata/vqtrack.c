/* vqtrack: a votequorum tracker for the interop suite. It tracks changes with context 42 and
 * prints one line per callback ("expected <votes>", "quorum <quorate> <entries>", "nodelist
 * <entries>"), so a test can compare what gototem and corosync send their trackers. */
#include <stdio.h>
#include <stdint.h>
#include <corosync/corotypes.h>
#include <corosync/votequorum.h>

static void on_quorum(votequorum_handle_t h, uint64_t ctx, uint32_t quorate, uint32_t n, votequorum_node_t *nodes)
{
	(void)h;
	(void)nodes;
	printf("quorum %u %u ctx=%llu\n", quorate, n, (unsigned long long)ctx);
	fflush(stdout);
}

static void on_expected(votequorum_handle_t h, uint64_t ctx, uint32_t expected)
{
	(void)h;
	printf("expected %u ctx=%llu\n", expected, (unsigned long long)ctx);
	fflush(stdout);
}

static void on_nodelist(votequorum_handle_t h, uint64_t ctx, votequorum_ring_id_t ring, uint32_t n, uint32_t list[])
{
	(void)h;
	(void)ring;
	(void)list;
	printf("nodelist %u ctx=%llu\n", n, (unsigned long long)ctx);
	fflush(stdout);
}

int main(void)
{
	votequorum_handle_t h;
	votequorum_callbacks_t cb = {0};
	cs_error_t err;

	cb.votequorum_quorum_notify_fn = on_quorum;
	cb.votequorum_expectedvotes_notify_fn = on_expected;
	cb.votequorum_nodelist_notify_fn = on_nodelist;
	if ((err = votequorum_initialize(&h, &cb)) != CS_OK) {
		fprintf(stderr, "votequorum_initialize: %d\n", err);
		return 1;
	}
	if ((err = votequorum_trackstart(h, 42, CS_TRACK_CHANGES)) != CS_OK) {
		fprintf(stderr, "votequorum_trackstart: %d\n", err);
		return 1;
	}
	printf("tracking\n");
	fflush(stdout);
	err = votequorum_dispatch(h, CS_DISPATCH_BLOCKING);
	fprintf(stderr, "votequorum_dispatch: %d\n", err);
	votequorum_finalize(h);
	return err == CS_OK ? 0 : 1;
}
