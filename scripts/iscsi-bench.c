/*
 * iscsi-bench: sequential write, then read-back, of one iSCSI LUN with libiscsi, several requests
 * in flight; for scripts/bench-storage.sh (compiled by it with `cc ... -liscsi`).
 *
 *   iscsi-bench URL MIB QUEUE_DEPTH REQUEST_KIB
 *
 * Writes MIB MiB from LBA 0 in REQUEST_KIB requests with QUEUE_DEPTH of them in flight (a
 * pattern that depends on the byte offset and a per-run seed), then reads the same range back
 * the same way and compares every byte. Prints one line:
 *
 *   write_MBps=W read_MBps=R bytes=N verified=yes
 *
 * (MB = 10^6 bytes) and exits 0, or prints the problem on stderr and exits 1 (a mismatch, a
 * SCSI error, a lost connection).
 */
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <iscsi/iscsi.h>
#include <iscsi/scsi-lowlevel.h>

struct run {
	struct iscsi_context *iscsi;
	int lun;
	uint32_t block;
	uint64_t total;   /* bytes to move */
	uint32_t req;     /* bytes per request */
	int depth;
	int writing;
	uint64_t next;    /* next byte offset to issue */
	uint64_t done;    /* bytes completed */
	int in_flight;
	int failed;
	uint64_t seed;
};

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

/* The pattern: 8-byte words holding their offset mixed with the seed. */
static void fill(unsigned char *buf, uint64_t off, uint32_t len, uint64_t seed)
{
	for (uint32_t i = 0; i + 8 <= len; i += 8) {
		uint64_t v = (off + i) * 0x9e3779b97f4a7c15ULL ^ seed;
		memcpy(buf + i, &v, 8);
	}
}

static int check(const unsigned char *buf, uint64_t off, uint32_t len, uint64_t seed)
{
	for (uint32_t i = 0; i + 8 <= len; i += 8) {
		uint64_t v = (off + i) * 0x9e3779b97f4a7c15ULL ^ seed, got;
		memcpy(&got, buf + i, 8);
		if (got != v)
			return 0;
	}
	return 1;
}

static void issue(struct run *r);

struct req {
	struct run *run;
	uint64_t off;
	uint32_t len;
	unsigned char *buf; /* the data of a write */
};

static void done_cb(struct iscsi_context *iscsi, int status, void *data, void *priv)
{
	struct scsi_task *task = data;
	struct req *q = priv;
	struct run *r = q->run;

	r->in_flight--;
	if (status != SCSI_STATUS_GOOD) {
		fprintf(stderr, "iscsi-bench: %s at offset %llu failed: %s\n",
			r->writing ? "WRITE16" : "READ16", (unsigned long long)q->off,
			iscsi_get_error(iscsi));
		r->failed = 1;
	} else if (!r->writing) {
		if (task->datain.size != (int)q->len ||
		    !check(task->datain.data, q->off, q->len, r->seed)) {
			fprintf(stderr, "iscsi-bench: data read back at offset %llu differs from what was written\n",
				(unsigned long long)q->off);
			r->failed = 1;
		}
	}
	if (task != NULL)
		scsi_free_scsi_task(task);
	r->done += q->len;
	free(q->buf);
	free(q);
	if (!r->failed)
		issue(r);
}

static void issue(struct run *r)
{
	while (r->in_flight < r->depth && r->next < r->total) {
		struct req *q = malloc(sizeof(*q));
		struct scsi_task *t;

		if (q == NULL) {
			r->failed = 1;
			return;
		}
		q->run = r;
		q->off = r->next;
		q->len = r->total - r->next < r->req ? (uint32_t)(r->total - r->next) : r->req;
		q->buf = NULL;
		if (r->writing) {
			/* libiscsi sends from this buffer until the command completes. */
			q->buf = malloc(q->len);
			if (q->buf == NULL) {
				free(q);
				r->failed = 1;
				return;
			}
			fill(q->buf, q->off, q->len, r->seed);
			t = iscsi_write16_task(r->iscsi, r->lun, q->off / r->block, q->buf, q->len,
					       r->block, 0, 0, 0, 0, 0, done_cb, q);
		} else {
			t = iscsi_read16_task(r->iscsi, r->lun, q->off / r->block, q->len, r->block,
					      0, 0, 0, 0, 0, done_cb, q);
		}
		if (t == NULL) {
			fprintf(stderr, "iscsi-bench: cannot queue a command: %s\n", iscsi_get_error(r->iscsi));
			free(q->buf);
			free(q);
			r->failed = 1;
			return;
		}
		r->in_flight++;
		r->next += q->len;
	}
}

/* Moves r->total bytes one way; returns the seconds it took, or -1. */
static double pass(struct run *r, int writing)
{
	double t0 = now_s();

	r->writing = writing;
	r->next = r->done = 0;
	issue(r);
	while (r->in_flight > 0) {
		struct pollfd p = { .fd = iscsi_get_fd(r->iscsi), .events = iscsi_which_events(r->iscsi) };

		if (poll(&p, 1, 1000) < 0)
			continue;
		if (iscsi_service(r->iscsi, p.revents) < 0) {
			fprintf(stderr, "iscsi-bench: connection failed: %s\n", iscsi_get_error(r->iscsi));
			return -1;
		}
	}
	if (r->failed || r->done != r->total)
		return -1;
	return now_s() - t0;
}

int main(int argc, char **argv)
{
	struct run r;
	struct iscsi_url *url;
	struct scsi_task *task;
	struct scsi_readcapacity16 *cap;
	double tw, tr;

	if (argc != 5) {
		fprintf(stderr, "usage: iscsi-bench iscsi://HOST[:PORT]/IQN/LUN MIB QUEUE_DEPTH REQUEST_KIB\n");
		return 2;
	}
	memset(&r, 0, sizeof(r));
	r.total = strtoull(argv[2], NULL, 10) << 20;
	r.depth = atoi(argv[3]);
	r.req = (uint32_t)atoi(argv[4]) << 10;
	if (r.total == 0 || r.depth < 1 || r.depth > 256 || r.req == 0 || r.req > (16u << 20)) {
		fprintf(stderr, "iscsi-bench: MIB > 0, QUEUE_DEPTH 1-256, REQUEST_KIB 1-16384\n");
		return 2;
	}
	r.seed = (uint64_t)time(NULL) * 0x2545f4914f6cdd1dULL;
	r.iscsi = iscsi_create_context("iqn.2026-11.org.vmkstack:bench");
	if (r.iscsi == NULL)
		return 1;
	url = iscsi_parse_full_url(r.iscsi, argv[1]);
	if (url == NULL) {
		fprintf(stderr, "iscsi-bench: bad URL %s: %s\n", argv[1], iscsi_get_error(r.iscsi));
		return 2;
	}
	iscsi_set_targetname(r.iscsi, url->target);
	iscsi_set_session_type(r.iscsi, ISCSI_SESSION_NORMAL);
	iscsi_set_header_digest(r.iscsi, ISCSI_HEADER_DIGEST_NONE);
	if (iscsi_full_connect_sync(r.iscsi, url->portal, url->lun) != 0) {
		fprintf(stderr, "iscsi-bench: login to %s failed: %s\n", argv[1], iscsi_get_error(r.iscsi));
		return 1;
	}
	r.lun = url->lun;
	iscsi_destroy_url(url);
	task = iscsi_readcapacity16_sync(r.iscsi, r.lun);
	if (task == NULL || task->status != SCSI_STATUS_GOOD ||
	    (cap = scsi_datain_unmarshall(task)) == NULL) {
		fprintf(stderr, "iscsi-bench: READ CAPACITY(16) failed: %s\n", iscsi_get_error(r.iscsi));
		return 1;
	}
	r.block = cap->block_length;
	if ((cap->returned_lba + 1) * r.block < r.total) {
		fprintf(stderr, "iscsi-bench: the LUN holds %llu bytes, fewer than %llu\n",
			(unsigned long long)((cap->returned_lba + 1) * r.block),
			(unsigned long long)r.total);
		return 1;
	}
	scsi_free_scsi_task(task);
	if (r.req % r.block != 0) {
		fprintf(stderr, "iscsi-bench: REQUEST_KIB is not a multiple of the block size %u\n", r.block);
		return 2;
	}
	tw = pass(&r, 1);
	if (tw < 0)
		return 1;
	tr = pass(&r, 0);
	if (tr < 0)
		return 1;
	printf("write_MBps=%.1f read_MBps=%.1f bytes=%llu verified=yes\n", r.total / tw / 1e6,
	       r.total / tr / 1e6, (unsigned long long)r.total);
	iscsi_logout_sync(r.iscsi);
	iscsi_destroy_context(r.iscsi);
	return 0;
}
