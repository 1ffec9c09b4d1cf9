/* SPDX-License-Identifier: Apache-2.0 */
/* Decoders for the VictoriaMetrics on-disk formats; see vmformat.h and
 * vmstorage-layout.md §7.  Written from the format description, not from
 * VictoriaMetrics code. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "vmformat.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

/* ---- byte order and integer encodings (all big-endian) ---- */

static uint16_t get_u16(const uint8_t *p)
{
	return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get_u64(const uint8_t *p)
{
	return (uint64_t)get_u32(p) << 32 | get_u32(p + 4);
}

static void put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void put_u64(uint8_t *p, uint64_t v)
{
	put_u32(p, (uint32_t)(v >> 32));
	put_u32(p + 4, (uint32_t)v);
}

static int64_t unzigzag64(uint64_t u)
{
	return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

static uint64_t zigzag64(int64_t v)
{
	return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static int64_t get_i64z(const uint8_t *p)
{
	return unzigzag64(get_u64(p));
}

static int16_t get_i16z(const uint8_t *p)
{
	uint16_t u = get_u16(p);

	return (int16_t)((uint16_t)(u >> 1) ^ (uint16_t)-(u & 1));
}

/* LEB128.  Returns the bytes used, 0 when truncated or longer than 10. */
static size_t get_varuint(const uint8_t *p, size_t len, uint64_t *v)
{
	uint64_t x = 0;

	for (size_t i = 0; i < len && i < 10; i++) {
		x |= (uint64_t)(p[i] & 0x7f) << (7 * i);
		if (!(p[i] & 0x80)) {
			*v = x;
			return i + 1;
		}
	}
	return 0;
}

/* A "bytes" field: varuint length + data.  Returns bytes used, 0 if bad. */
static size_t get_bytes(const uint8_t *p, size_t len, const uint8_t **data, size_t *data_len)
{
	uint64_t n;
	size_t used = get_varuint(p, len, &n);

	if (!used || n > len - used)
		return 0;
	*data = p + used;
	*data_len = (size_t)n;
	return used + (size_t)n;
}

/* Lexicographic byte order, a shorter prefix first (Go string order). */
static int bytes_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	if (c)
		return c;
	return alen < blen ? -1 : alen > blen;
}

/* ---- growable byte buffer (the writer and the name renderer) ---- */

struct buf {
	uint8_t *p;
	size_t len;
	size_t cap;
};

static void buf_put(struct buf *b, const void *data, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = b->cap ? b->cap : 256;
		while (b->cap < b->len + n)
			b->cap *= 2;
		b->p = xrealloc(b->p, b->cap);
	}
	if (n)
		memcpy(b->p + b->len, data, n);
	b->len += n;
}

static void buf_u8(struct buf *b, uint8_t v)
{
	buf_put(b, &v, 1);
}

static void buf_u32(struct buf *b, uint32_t v)
{
	uint8_t tmp[4];

	put_u32(tmp, v);
	buf_put(b, tmp, 4);
}

static void buf_u64(struct buf *b, uint64_t v)
{
	uint8_t tmp[8];

	put_u64(tmp, v);
	buf_put(b, tmp, 8);
}

static void buf_varuint(struct buf *b, uint64_t v)
{
	while (v >= 0x80) {
		buf_u8(b, (uint8_t)(v | 0x80));
		v >>= 7;
	}
	buf_u8(b, (uint8_t)v);
}

static void buf_bytes(struct buf *b, const void *data, size_t n)
{
	buf_varuint(b, n);
	buf_put(b, data, n);
}

static void buf_str(struct buf *b, const char *s)
{
	buf_put(b, s, strlen(s));
}

/* ---- reusable buffers ---- */

/* Memory a part walk keeps from block to block. Thousands of blocks each
 * with its own malloc and free of up to megabytes made glibc grow and trim
 * the heap (brk) around every block; the trims flush the TLB of every CPU. */
struct scratch {
	uint8_t *p;
	size_t cap;
};

/* Room for n bytes and a NUL after them; keeps the contents. */
static uint8_t *scratch_reserve(struct scratch *s, size_t n)
{
	if (n + 1 > s->cap) {
		s->cap = n + 1 > 2 * s->cap ? n + 1 : 2 * s->cap;
		s->p = xrealloc(s->p, s->cap);
	}
	return s->p;
}

static void scratch_free(struct scratch *s)
{
	free(s->p);
	s->p = NULL;
	s->cap = 0;
}

/* ---- zstd ---- */

static int zstd_fail(struct error *err, const char *what, size_t code)
{
	return error_set(err, EINVAL, "%s: bad zstd frame: %s", what, ZSTD_getErrorName(code));
}

/* One zstd context per walk, made on first use: ZSTD_decompress makes and
 * frees one (about 100 KiB) for every frame. */
static int zstd_context(ZSTD_DCtx **dctx, const char *what, struct error *err)
{
	if (!*dctx)
		*dctx = ZSTD_createDCtx();
	if (!*dctx)
		return error_set(err, ENOMEM, "%s: cannot create a zstd context", what);
	return 0;
}

/* The frame has no content size: decode in steps, growing the output. */
static int zstd_stream(ZSTD_DCtx *dctx, const void *src, size_t len, size_t max_out,
		       const char *what, struct scratch *out, size_t *out_len, struct error *err)
{
	ZSTD_inBuffer in = { src, len, 0 };
	size_t cap = len < 1024 ? 4096 : len * 4, used = 0, ret;

	if (out->cap > cap + 1)
		cap = out->cap - 1;
	if (cap > max_out)
		cap = max_out + 1;
	ZSTD_DCtx_reset(dctx, ZSTD_reset_session_only);
	for (;;) {
		ZSTD_outBuffer o = { scratch_reserve(out, cap), cap, used };

		ret = ZSTD_decompressStream(dctx, &o, &in);
		used = o.pos;
		if (ZSTD_isError(ret))
			return zstd_fail(err, what, ret);
		if (used > max_out)
			return error_set(err, EFBIG, "%s: zstd frame decompresses to more than %zu "
					 "bytes", what, max_out);
		if (ret == 0)
			break;
		if (used < cap && in.pos == in.size)
			return error_set(err, EINVAL, "%s: truncated zstd frame", what);
		if (used == cap)
			cap = cap > max_out / 2 ? max_out + 1 : cap * 2;
	}
	out->p[used] = '\0';
	*out_len = used;
	return 0;
}

/* Decompresses the one zstd frame that fills src[0, len) into out (valid
 * until out is used again), with the context *dctx (made when NULL). */
static int zstd_decode(ZSTD_DCtx **dctx, const void *src, size_t len, size_t max_out,
		       const char *what, struct scratch *out, size_t *out_len, struct error *err)
{
	unsigned long long size;
	size_t frame_len, n;
	int rc;

	if (len == 0)
		return error_set(err, EINVAL, "%s: empty zstd frame", what);
	frame_len = ZSTD_findFrameCompressedSize(src, len);
	if (ZSTD_isError(frame_len))
		return zstd_fail(err, what, frame_len);
	if (frame_len != len)
		return error_set(err, EINVAL, "%s: %zu bytes after the zstd frame", what,
				 len - frame_len);
	size = ZSTD_getFrameContentSize(src, len);
	if (size == ZSTD_CONTENTSIZE_ERROR)
		return error_set(err, EINVAL, "%s: bad zstd frame header", what);
	rc = zstd_context(dctx, what, err);
	if (rc < 0)
		return rc;
	if (size == ZSTD_CONTENTSIZE_UNKNOWN)
		return zstd_stream(*dctx, src, len, max_out, what, out, out_len, err);
	if (size > max_out)
		return error_set(err, EFBIG, "%s: zstd frame content size %llu over the limit %zu",
				 what, size, max_out);
	n = ZSTD_decompressDCtx(*dctx, scratch_reserve(out, (size_t)size), (size_t)size, src, len);
	if (ZSTD_isError(n))
		return zstd_fail(err, what, n);
	if (n != size)
		return error_set(err, EINVAL, "%s: zstd frame gave %zu bytes, header says %llu",
				 what, n, size);
	out->p[n] = '\0';
	*out_len = n;
	return 0;
}

int vm_zstd_decompress(const void *src, size_t len, size_t max_out, const char *what,
		       void **out, size_t *out_len, struct error *err)
{
	ZSTD_DCtx *dctx = NULL;
	struct scratch buf = { 0 };
	int rc = zstd_decode(&dctx, src, len, max_out, what, &buf, out_len, err);

	ZSTD_freeDCtx(dctx);
	if (rc < 0)
		scratch_free(&buf);
	else
		*out = buf.p;
	return rc;
}

int vm_zstd_compress(const void *src, size_t len, bool content_size, void **out,
		     size_t *out_len, struct error *err)
{
	ZSTD_CCtx *cctx = ZSTD_createCCtx();
	size_t bound = ZSTD_compressBound(len), n;
	void *buf;

	if (!cctx)
		return error_set(err, ENOMEM, "cannot create a zstd context");
	ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, 1);
	ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, content_size ? 1 : 0);
	buf = xmalloc(bound);
	n = ZSTD_compress2(cctx, buf, bound, src, len);
	ZSTD_freeCCtx(cctx);
	if (ZSTD_isError(n)) {
		free(buf);
		return error_set(err, EIO, "zstd compression failed: %s", ZSTD_getErrorName(n));
	}
	*out = buf;
	*out_len = n;
	return 0;
}

/* ---- part files ---- */

/* A walk asks for the blocks of a file in file order, a few KiB each: read
 * ahead so that one pread serves many of them. The window doubles while the
 * reads continue it and starts small again after a jump (a seek only wants
 * the blocks of one namespace). */
#define PFILE_AHEAD_MIN ((size_t)64 << 10)
#define PFILE_AHEAD_MAX ((size_t)1 << 20)

struct pfile {
	const char *name;
	int fd;
	uint64_t size;
	struct scratch window; /* the bytes at [window_off, window_off + window_len) */
	uint64_t window_off;
	size_t window_len, ahead;
};

static int pfile_open(int dirfd, const char *name, struct pfile *f, struct error *err)
{
	struct stat st;
	int e;

	f->name = name;
	f->fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (f->fd < 0) {
		e = errno;
		return error_set(err, e, "%s: cannot open: %s", name, strerror(e));
	}
	e = fstat(f->fd, &st) < 0 ? errno : S_ISREG(st.st_mode) ? 0 : EINVAL;
	if (e) {
		close(f->fd);
		f->fd = -1;
		return error_set(err, e, "%s: not a readable regular file", name);
	}
	f->size = (uint64_t)st.st_size;
	return 0;
}

static void pfile_close(struct pfile *f)
{
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
	scratch_free(&f->window);
	f->window_len = 0;
}

/* [off, off+size) must lie inside the file. */
static int pfile_range(const struct pfile *f, uint64_t off, uint64_t size, struct error *err)
{
	if (off > f->size || size > f->size - off)
		return error_set(err, EINVAL,
				 "%s: block at offset %" PRIu64 " size %" PRIu64
				 " past end of file (size %" PRIu64 ")",
				 f->name, off, size, f->size);
	return 0;
}

static int pfile_pread(const struct pfile *f, uint64_t off, size_t size, void *buf,
		       struct error *err)
{
	size_t done = 0;
	int rc = pfile_range(f, off, size, err);

	while (rc == 0 && done < size) {
		ssize_t n = pread(f->fd, (char *)buf + done, size - done, (off_t)(off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			rc = error_set(err, errno, "%s: read at offset %" PRIu64 ": %s", f->name,
				       off + done, strerror(errno));
		else if (n == 0)
			rc = error_set(err, EIO, "%s: file shrank while reading offset %" PRIu64,
				       f->name, off + done);
		else
			done += (size_t)n;
	}
	return rc;
}

/* Refills the window from off on, with at least size bytes. */
static int pfile_fill(struct pfile *f, uint64_t off, uint64_t size, struct error *err)
{
	bool continues = f->window_len && off == f->window_off + f->window_len;
	uint64_t want;
	int rc;

	if (!continues)
		f->ahead = PFILE_AHEAD_MIN;
	else if (f->ahead < PFILE_AHEAD_MAX)
		f->ahead *= 2;
	want = size > f->ahead ? size : f->ahead;
	if (want > f->size - off)
		want = f->size - off;
	f->window_len = 0;
	rc = pfile_pread(f, off, (size_t)want, scratch_reserve(&f->window, want), err);
	if (rc == 0) {
		f->window_off = off;
		f->window_len = (size_t)want;
	}
	return rc;
}

/* The block at [off, off+size), valid until the next read of f; blocks over
 * VM_BLOCK_MAX are garbage. */
static int pfile_block(struct pfile *f, uint64_t off, uint64_t size, const uint8_t **out,
		       struct error *err)
{
	int rc = pfile_range(f, off, size, err);

	if (rc < 0)
		return rc;
	if (size > VM_BLOCK_MAX)
		return error_set(err, EINVAL, "%s: block at offset %" PRIu64 " size %" PRIu64
				 " is too big", f->name, off, size);
	if (!f->window.p || off < f->window_off || off + size > f->window_off + f->window_len)
		rc = pfile_fill(f, off, size, err);
	if (rc == 0)
		*out = f->window.p + (off - f->window_off);
	return rc;
}

/* Reads and decompresses the zstd frame stored at [off, off+size) into out
 * (valid until out is used again). */
static int pfile_read_zstd(struct pfile *f, uint64_t off, uint64_t size, ZSTD_DCtx **dctx,
			   struct scratch *out, size_t *out_len, struct error *err)
{
	char what[128];
	const uint8_t *raw;
	int rc = pfile_block(f, off, size, &raw, err);

	if (rc < 0)
		return rc;
	snprintf(what, sizeof(what), "%s: block at offset %" PRIu64, f->name, off);
	return zstd_decode(dctx, raw, (size_t)size, VM_ZSTD_MAX_OUT, what, out, out_len, err);
}

/* metaindex.bin is one zstd frame, read whole as vmstorage does. */
static int read_metaindex(int dirfd, uint8_t **out, size_t *out_len, uint64_t *file_size,
			  struct error *err)
{
	struct pfile f = { .fd = -1 };
	uint8_t *raw;
	void *data;
	int rc = pfile_open(dirfd, "metaindex.bin", &f, err);

	if (rc < 0)
		return rc;
	*file_size = f.size;
	if (f.size > VM_ZSTD_MAX_OUT)
		rc = error_set(err, EFBIG, "metaindex.bin: %" PRIu64 " bytes is too big", f.size);
	if (rc == 0) {
		raw = xmalloc((size_t)f.size + 1);
		rc = pfile_pread(&f, 0, (size_t)f.size, raw, err);
		if (rc == 0)
			rc = vm_zstd_decompress(raw, (size_t)f.size, VM_ZSTD_MAX_OUT,
						"metaindex.bin", &data, out_len, err);
		if (rc == 0)
			*out = data;
		free(raw);
	}
	pfile_close(&f);
	return rc;
}

/* ---- data parts ---- */

struct data_mrow {
	struct vm_tsid tsid;
	uint32_t count;
	int64_t min_ts;
	int64_t max_ts;
	uint64_t offset;
	uint32_t size;
};

static size_t decode_tsid(const uint8_t *p, bool cluster, struct vm_tsid *t)
{
	size_t o = 0;

	t->account_id = t->project_id = 0;
	if (cluster) {
		t->account_id = get_u32(p);
		t->project_id = get_u32(p + 4);
		o = 8;
	}
	t->metric_group_id = get_u64(p + o);
	t->job_id = get_u32(p + o + 8);
	t->instance_id = get_u32(p + o + 12);
	t->metric_id = get_u64(p + o + 16);
	return o + 24;
}

#define CMP_FIELD(a, b, f)                                                   \
	do {                                                                 \
		if ((a)->f != (b)->f)                                        \
			return (a)->f < (b)->f ? -1 : 1;                     \
	} while (0)

static int tsid_cmp(const struct vm_tsid *a, const struct vm_tsid *b)
{
	CMP_FIELD(a, b, account_id);
	CMP_FIELD(a, b, project_id);
	CMP_FIELD(a, b, metric_group_id);
	CMP_FIELD(a, b, job_id);
	CMP_FIELD(a, b, instance_id);
	CMP_FIELD(a, b, metric_id);
	return 0;
}

static void decode_data_mrow(const uint8_t *p, bool cluster, struct data_mrow *r)
{
	p += decode_tsid(p, cluster, &r->tsid);
	r->count = get_u32(p);
	r->min_ts = get_i64z(p + 4);
	r->max_ts = get_i64z(p + 12);
	r->offset = get_u64(p + 20);
	r->size = get_u32(p + 28);
}

static void decode_data_block(const uint8_t *p, bool cluster, struct vm_data_block *bh)
{
	p += decode_tsid(p, cluster, &bh->tsid);
	bh->min_ts = get_i64z(p);
	bh->max_ts = get_i64z(p + 8);
	bh->first_value = get_i64z(p + 16);
	bh->ts_offset = get_u64(p + 24);
	bh->values_offset = get_u64(p + 32);
	bh->ts_size = get_u32(p + 40);
	bh->values_size = get_u32(p + 44);
	bh->rows = get_u32(p + 48);
	bh->scale = get_i16z(p + 52);
	bh->ts_marshal_type = p[54];
	bh->values_marshal_type = p[55];
	bh->precision_bits = p[56];
}

static size_t data_row_size(bool cluster)
{
	return cluster ? VM_DATA_METAINDEX_ROW_CLUSTER : VM_DATA_METAINDEX_ROW_SINGLE;
}

static size_t data_header_size(bool cluster)
{
	return cluster ? VM_DATA_BLOCK_HEADER_CLUSTER : VM_DATA_BLOCK_HEADER_SINGLE;
}

/* Splits the decompressed metaindex into rows and checks each row alone. */
static int parse_data_metaindex(const uint8_t *data, size_t len, bool cluster,
				struct data_mrow **out, size_t *nout, struct error *err)
{
	size_t rs = data_row_size(cluster), n = len / rs;
	struct data_mrow *rows;

	if (len == 0 || len % rs)
		return error_set(err, EINVAL, "metaindex.bin: %zu bytes is not a whole number of "
				 "%zu-byte %s rows", len, rs, cluster ? "cluster" : "single-node");
	rows = xcalloc(n, sizeof(*rows));
	for (size_t i = 0; i < n; i++) {
		struct data_mrow *r = &rows[i];
		int rc = 0;

		decode_data_mrow(data + i * rs, cluster, r);
		if (r->count == 0)
			rc = error_set(err, EINVAL, "metaindex.bin: row %zu has no block headers", i);
		else if (r->min_ts > r->max_ts)
			rc = error_set(err, EINVAL, "metaindex.bin: row %zu has MinTimestamp %" PRId64
				       " > MaxTimestamp %" PRId64, i, r->min_ts, r->max_ts);
		else if (i > 0 && tsid_cmp(&rows[i - 1].tsid, &r->tsid) > 0)
			rc = error_set(err, EINVAL, "metaindex.bin: row %zu is not sorted by TSID", i);
		if (rc < 0) {
			free(rows);
			return rc;
		}
	}
	*out = rows;
	*nout = n;
	return 0;
}

struct data_check {
	bool cluster;
	const struct vm_data_expect *expect;
	vm_data_block_fn fn;
	void *arg;
	struct pfile index, ts, values;
	ZSTD_DCtx *dctx;
	struct scratch headers; /* the index block being checked */
	struct vm_data_totals t;
	struct vm_tsid prev;
};

/* One block header, at position i of the index block at ib_off. */
static int check_data_block(struct data_check *c, const struct data_mrow *r,
			    const struct vm_data_block *bh, uint64_t ib_off, uint32_t i,
			    struct error *err)
{
	const struct vm_data_expect *e = c->expect;
	int rc;

	if (bh->rows == 0 || bh->min_ts > bh->max_ts || bh->precision_bits < 1 ||
	    bh->precision_bits > 64)
		return error_set(err, EINVAL, "index.bin: block header %" PRIu32 " of the index "
				 "block at offset %" PRIu64 " is invalid (rows %" PRIu32
				 ", timestamps [%" PRId64 ", %" PRId64 "], precision bits %u)",
				 i, ib_off, bh->rows, bh->min_ts, bh->max_ts, bh->precision_bits);
	if (bh->min_ts < r->min_ts || bh->max_ts > r->max_ts)
		return error_set(err, EINVAL, "index.bin: block header %" PRIu32 " of the index "
				 "block at offset %" PRIu64 " has timestamps outside its metaindex "
				 "row", i, ib_off);
	if (e && (bh->min_ts < e->min_ts || bh->max_ts > e->max_ts))
		return error_set(err, EINVAL, "index.bin: block header %" PRIu32 " of the index "
				 "block at offset %" PRIu64 " has timestamps [%" PRId64 ", %" PRId64
				 "] outside the part's [%" PRId64 ", %" PRId64 "]", i, ib_off,
				 bh->min_ts, bh->max_ts, e->min_ts, e->max_ts);
	if (c->t.blocks > 0 && tsid_cmp(&c->prev, &bh->tsid) > 0)
		return error_set(err, EINVAL, "index.bin: block header %" PRIu32 " of the index "
				 "block at offset %" PRIu64 " is not sorted by TSID", i, ib_off);
	if (i == 0 && tsid_cmp(&r->tsid, &bh->tsid) != 0)
		return error_set(err, EINVAL, "index.bin: the index block at offset %" PRIu64
				 " does not start with the TSID of its metaindex row", ib_off);
	rc = pfile_range(&c->ts, bh->ts_offset, bh->ts_size, err);
	if (rc == 0)
		rc = pfile_range(&c->values, bh->values_offset, bh->values_size, err);
	return rc;
}

static void count_data_block(struct data_check *c, const struct vm_data_block *bh)
{
	struct vm_data_totals *t = &c->t;

	if (t->blocks == 0 || tsid_cmp(&c->prev, &bh->tsid) != 0)
		t->series++;
	if (t->blocks == 0 || bh->min_ts < t->min_ts)
		t->min_ts = bh->min_ts;
	if (t->blocks == 0 || bh->max_ts > t->max_ts)
		t->max_ts = bh->max_ts;
	t->blocks++;
	t->rows += bh->rows;
	t->ts_bytes += bh->ts_size;
	t->values_bytes += bh->values_size;
	c->prev = bh->tsid;
}

static int check_index_block(struct data_check *c, const struct data_mrow *r, struct error *err)
{
	size_t hs = data_header_size(c->cluster), len;
	const uint8_t *data;
	int rc = pfile_read_zstd(&c->index, r->offset, r->size, &c->dctx, &c->headers, &len, err);

	if (rc < 0)
		return rc;
	data = c->headers.p;
	if (len != (uint64_t)r->count * hs)
		rc = error_set(err, EINVAL, "index.bin: the index block at offset %" PRIu64
			       " holds %zu bytes, expected %" PRIu32 " headers of %zu bytes",
			       r->offset, len, r->count, hs);
	for (uint32_t i = 0; rc == 0 && i < r->count; i++) {
		struct vm_data_block bh;

		decode_data_block(data + (size_t)i * hs, c->cluster, &bh);
		rc = check_data_block(c, r, &bh, r->offset, i, err);
		if (rc == 0)
			count_data_block(c, &bh);
		if (rc == 0 && c->fn)
			rc = c->fn(&bh, c->arg);
	}
	c->t.index_blocks++;
	return rc;
}

static int check_data_totals(const struct data_check *c, struct error *err)
{
	const struct vm_data_expect *e = c->expect;

	if (!e)
		return 0;
	if (c->t.blocks != e->blocks)
		return error_set(err, EINVAL, "index.bin: %" PRIu64 " block headers, expected "
				 "BlocksCount %" PRIu64, c->t.blocks, e->blocks);
	if (c->t.rows != e->rows)
		return error_set(err, EINVAL, "index.bin: block headers hold %" PRIu64 " rows, "
				 "expected RowsCount %" PRIu64, c->t.rows, e->rows);
	return 0;
}

static int open_data_files(int dirfd, struct data_check *c, struct error *err)
{
	int rc = pfile_open(dirfd, "index.bin", &c->index, err);

	if (rc == 0)
		rc = pfile_open(dirfd, "timestamps.bin", &c->ts, err);
	if (rc == 0)
		rc = pfile_open(dirfd, "values.bin", &c->values, err);
	return rc;
}

int vm_data_part_check(int dirfd, bool cluster, const struct vm_data_expect *expect,
		       vm_data_block_fn fn, void *arg, struct vm_data_totals *totals,
		       struct error *err)
{
	struct data_check c = {
		.cluster = cluster, .expect = expect, .fn = fn, .arg = arg,
		.index.fd = -1, .ts.fd = -1, .values.fd = -1,
	};
	struct data_mrow *rows = NULL;
	uint8_t *mi = NULL;
	size_t mi_len, nrows = 0;
	uint64_t mi_size;
	int rc = read_metaindex(dirfd, &mi, &mi_len, &mi_size, err);

	if (rc == 0)
		rc = parse_data_metaindex(mi, mi_len, cluster, &rows, &nrows, err);
	if (rc == 0)
		rc = open_data_files(dirfd, &c, err);
	for (size_t i = 0; rc == 0 && i < nrows; i++)
		rc = check_index_block(&c, &rows[i], err);
	if (rc == 0)
		rc = check_data_totals(&c, err);
	if (totals)
		*totals = c.t;
	pfile_close(&c.index);
	pfile_close(&c.ts);
	pfile_close(&c.values);
	ZSTD_freeDCtx(c.dctx);
	scratch_free(&c.headers);
	free(rows);
	free(mi);
	return rc;
}

/* Whether the metaindex decodes sensibly with one TSID layout. */
static bool data_layout_fits(int dirfd, const uint8_t *mi, size_t len, bool cluster)
{
	struct data_mrow *rows;
	struct pfile index = { .fd = -1 };
	ZSTD_DCtx *dctx = NULL;
	struct scratch headers = { 0 };
	uint64_t next = 0;
	size_t n, ib_len;
	bool fits;

	if (parse_data_metaindex(mi, len, cluster, &rows, &n, NULL) < 0)
		return false;
	for (size_t i = 0; i < n && next != UINT64_MAX; i++)
		next = rows[i].offset == next ? next + rows[i].size : UINT64_MAX;
	fits = pfile_open(dirfd, "index.bin", &index, NULL) == 0 && next == index.size &&
	       pfile_read_zstd(&index, rows[0].offset, rows[0].size, &dctx, &headers, &ib_len,
			       NULL) == 0 &&
	       ib_len == (uint64_t)rows[0].count * data_header_size(cluster);
	ZSTD_freeDCtx(dctx);
	scratch_free(&headers);
	pfile_close(&index);
	free(rows);
	return fits;
}

int vm_data_part_guess_cluster(int dirfd, bool *cluster, struct error *err)
{
	uint8_t *mi = NULL;
	size_t len = 0;
	uint64_t size;
	bool single_fits, cluster_fits;
	int rc = read_metaindex(dirfd, &mi, &len, &size, err);

	if (rc < 0)
		return rc;
	single_fits = data_layout_fits(dirfd, mi, len, false);
	cluster_fits = data_layout_fits(dirfd, mi, len, true);
	free(mi);
	if (single_fits == cluster_fits)
		return error_set(err, EINVAL, "metaindex.bin: %s", single_fits ?
				 "fits both the single-node and the cluster layout" :
				 "fits neither the single-node nor the cluster layout");
	*cluster = cluster_fits;
	return 0;
}

/* ---- mergeset parts ---- */

/* Caps that keep a corrupt header from making us allocate gigabytes. */
#define MS_MAX_ITEMS_PER_BLOCK ((uint32_t)1 << 20)

struct ms_mrow {
	const uint8_t *first;
	size_t first_len;
	uint32_t count;
	uint64_t offset;
	uint32_t size;
};

struct ms_bh {
	const uint8_t *cp;
	size_t cp_len;
	const uint8_t *first;
	size_t first_len;
	uint8_t type;
	uint32_t count;
	uint64_t items_off;
	uint64_t lens_off;
	uint32_t items_size;
	uint32_t lens_size;
};

struct vm_mergeset_iter {
	struct pfile index, items, lens;
	uint8_t *mi;
	size_t mi_len;
	struct ms_mrow *rows;
	size_t nrows;
	struct vm_mergeset_expect expect;
	bool have_expect;
	bool partial;		/* a seek skipped data: no count check */
	bool done;
	int failed;		/* sticky -errno: the walk state is unusable */

	/* The index block being walked. */
	size_t row;		/* metaindex row of ib; nrows before the first */
	const uint8_t *ib;	/* in index_block */
	size_t ib_len, ib_pos;
	uint32_t ib_next;	/* index of the next header in ib */
	struct ms_bh prev_bh;

	/* The decoded block: item i is data[off[i], off[i+1]). */
	uint8_t *data;
	size_t *off;
	uint32_t nitems, pos;

	/* Kept from block to block: the memory behind ib, data and off, and
	 * what a zstd block decodes through. */
	struct scratch index_block, data_buf, off_buf, lens_buf, suffix_buf, lengths_buf;
	ZSTD_DCtx *dctx;

	/* The last item of the previous block, for the order check. */
	uint8_t *last;
	size_t last_len, last_cap;
	bool have_last;

	uint8_t *key;		/* seek bound: skip items below it */
	size_t key_len;
	bool have_key;

	struct vm_mergeset_stats st;
};

static size_t parse_ms_mrow(const uint8_t *p, size_t len, struct ms_mrow *r)
{
	size_t n = get_bytes(p, len, &r->first, &r->first_len);

	if (!n || len - n < 16)
		return 0;
	r->count = get_u32(p + n);
	r->offset = get_u64(p + n + 4);
	r->size = get_u32(p + n + 12);
	return n + 16;
}

static int ms_check_mrow(const struct vm_mergeset_iter *it, size_t i, struct error *err)
{
	const struct ms_mrow *r = &it->rows[i];

	if (r->count == 0)
		return error_set(err, EINVAL, "metaindex.bin: row %zu has no block headers", i);
	if (i > 0 && bytes_cmp(it->rows[i - 1].first, it->rows[i - 1].first_len, r->first,
			       r->first_len) > 0)
		return error_set(err, EINVAL, "metaindex.bin: row %zu is not sorted by firstItem", i);
	return pfile_range(&it->index, r->offset, r->size, err);
}

static int ms_parse_metaindex(struct vm_mergeset_iter *it, struct error *err)
{
	size_t pos = 0, cap = 0;
	int rc = 0;

	while (rc == 0 && pos < it->mi_len) {
		struct ms_mrow *r = ARRAY_PUSH(it->rows, it->nrows, cap);
		size_t n = parse_ms_mrow(it->mi + pos, it->mi_len - pos, r);

		if (!n)
			return error_set(err, EINVAL, "metaindex.bin: truncated row %zu at byte %zu",
					 it->nrows - 1, pos);
		pos += n;
		rc = ms_check_mrow(it, it->nrows - 1, err);
	}
	if (rc == 0 && it->nrows == 0)
		rc = error_set(err, EINVAL, "metaindex.bin: no rows");
	return rc;
}

static int ms_open_files(int dirfd, struct vm_mergeset_iter *it, struct error *err)
{
	int rc = pfile_open(dirfd, "index.bin", &it->index, err);

	if (rc == 0)
		rc = pfile_open(dirfd, "items.bin", &it->items, err);
	if (rc == 0)
		rc = pfile_open(dirfd, "lens.bin", &it->lens, err);
	return rc;
}

int vm_mergeset_open(int dirfd, const struct vm_mergeset_expect *expect,
		     struct vm_mergeset_iter **out, struct error *err)
{
	struct vm_mergeset_iter *it = xcalloc(1, sizeof(*it));
	uint64_t size;
	int rc;

	it->index.fd = it->items.fd = it->lens.fd = -1;
	if (expect) {
		it->expect = *expect;
		it->have_expect = true;
	}
	rc = ms_open_files(dirfd, it, err);
	if (rc == 0)
		rc = read_metaindex(dirfd, &it->mi, &it->mi_len, &size, err);
	if (rc == 0)
		rc = ms_parse_metaindex(it, err);
	if (rc < 0) {
		vm_mergeset_close(it);
		return rc;
	}
	it->row = it->nrows;
	it->st.metaindex_rows = it->nrows;
	*out = it;
	return 0;
}

void vm_mergeset_close(struct vm_mergeset_iter *it)
{
	if (!it)
		return;
	pfile_close(&it->index);
	pfile_close(&it->items);
	pfile_close(&it->lens);
	free(it->mi);
	free(it->rows);
	scratch_free(&it->index_block);
	scratch_free(&it->data_buf);
	scratch_free(&it->off_buf);
	scratch_free(&it->lens_buf);
	scratch_free(&it->suffix_buf);
	scratch_free(&it->lengths_buf);
	ZSTD_freeDCtx(it->dctx);
	free(it->last);
	free(it->key);
	free(it);
}

void vm_mergeset_get_stats(const struct vm_mergeset_iter *it, struct vm_mergeset_stats *st)
{
	*st = it->st;
}

static int ms_load_index_block(struct vm_mergeset_iter *it, size_t row, struct error *err)
{
	const struct ms_mrow *r = &it->rows[row];
	int rc;

	it->ib_len = 0;
	it->row = row;
	it->ib_pos = 0;
	it->ib_next = 0;
	it->nitems = it->pos = 0;
	it->st.index_blocks++;
	rc = pfile_read_zstd(&it->index, r->offset, r->size, &it->dctx, &it->index_block,
			     &it->ib_len, err);
	it->ib = it->index_block.p;
	return rc;
}

static size_t parse_ms_bh(const uint8_t *p, size_t len, struct ms_bh *bh)
{
	size_t n = get_bytes(p, len, &bh->cp, &bh->cp_len), m;

	if (!n)
		return 0;
	m = get_bytes(p + n, len - n, &bh->first, &bh->first_len);
	if (!m || len - n - m < 29)
		return 0;
	p += n + m;
	bh->type = p[0];
	bh->count = get_u32(p + 1);
	bh->items_off = get_u64(p + 5);
	bh->lens_off = get_u64(p + 13);
	bh->items_size = get_u32(p + 21);
	bh->lens_size = get_u32(p + 25);
	return n + m + 29;
}

static int ms_check_bh(const struct vm_mergeset_iter *it, const struct ms_bh *bh,
		       struct error *err)
{
	const struct ms_mrow *r = &it->rows[it->row];
	uint64_t at = r->offset;
	uint32_t i = it->ib_next;
	int rc;

	if (bh->type > 1 || bh->count == 0 || bh->count > MS_MAX_ITEMS_PER_BLOCK)
		return error_set(err, EINVAL, "index.bin: block header %" PRIu32 " of the index "
				 "block at offset %" PRIu64 " is invalid (marshalType %u, "
				 "itemsCount %" PRIu32 ")", i, at, bh->type, bh->count);
	if (bh->cp_len > bh->first_len || memcmp(bh->cp, bh->first, bh->cp_len) != 0)
		return error_set(err, EINVAL, "index.bin: block header %" PRIu32 " of the index "
				 "block at offset %" PRIu64 ": firstItem does not start with the "
				 "common prefix", i, at);
	if (i == 0 && bytes_cmp(bh->first, bh->first_len, r->first, r->first_len) != 0)
		return error_set(err, EINVAL, "index.bin: the index block at offset %" PRIu64
				 " does not start with the firstItem of its metaindex row", at);
	if (i > 0 && bytes_cmp(it->prev_bh.first, it->prev_bh.first_len, bh->first,
			       bh->first_len) > 0)
		return error_set(err, EINVAL, "index.bin: block header %" PRIu32 " of the index "
				 "block at offset %" PRIu64 " is not sorted by firstItem", i, at);
	rc = pfile_range(&it->items, bh->items_off, bh->items_size, err);
	if (rc == 0)
		rc = pfile_range(&it->lens, bh->lens_off, bh->lens_size, err);
	return rc;
}

/* Takes the next block header from the current index block. */
static int ms_next_bh(struct vm_mergeset_iter *it, struct ms_bh *bh, struct error *err)
{
	const struct ms_mrow *r = &it->rows[it->row];
	size_t n = parse_ms_bh(it->ib + it->ib_pos, it->ib_len - it->ib_pos, bh);
	int rc;

	if (!n)
		return error_set(err, EINVAL, "index.bin: the index block at offset %" PRIu64
				 " ends inside block header %" PRIu32, r->offset, it->ib_next);
	rc = ms_check_bh(it, bh, err);
	if (rc < 0)
		return rc;
	it->ib_pos += n;
	it->ib_next++;
	it->prev_bh = *bh;
	if (it->ib_next == r->count && it->ib_pos != it->ib_len)
		return error_set(err, EINVAL, "index.bin: the index block at offset %" PRIu64
				 " has %zu bytes after its %" PRIu32 " block headers", r->offset,
				 it->ib_len - it->ib_pos, r->count);
	return 0;
}

/* Sizes the decoded block: cp + suffix for every item. */
static void ms_alloc_block(struct vm_mergeset_iter *it, uint32_t n, size_t data_len)
{
	it->data = scratch_reserve(&it->data_buf, data_len);
	it->off = (size_t *)scratch_reserve(&it->off_buf, ((size_t)n + 1) * sizeof(*it->off));
	it->nitems = n;
	it->pos = 0;
}

static int ms_block_err(const struct pfile *f, uint64_t off, const char *why, struct error *err)
{
	return error_set(err, EINVAL, "%s: block at offset %" PRIu64 ": %s", f->name, off, why);
}

static int ms_decode_plain(struct vm_mergeset_iter *it, const struct ms_bh *bh,
			   const uint8_t *items, const uint8_t *lens, struct error *err)
{
	uint64_t total = bh->first_len + (uint64_t)(bh->count - 1) * bh->cp_len + bh->items_size;
	size_t pos = 0, dpos;

	if (bh->lens_size != (uint64_t)(bh->count - 1) * 8)
		return ms_block_err(&it->lens, bh->lens_off, "size does not match itemsCount", err);
	if (total > VM_ZSTD_MAX_OUT)
		return ms_block_err(&it->items, bh->items_off, "decodes to too many bytes", err);
	ms_alloc_block(it, bh->count, (size_t)total);
	memcpy(it->data, bh->first, bh->first_len);
	it->off[0] = 0;
	dpos = it->off[1] = bh->first_len;
	for (uint32_t i = 1; i < bh->count; i++) {
		uint64_t len = get_u64(lens + (size_t)(i - 1) * 8);

		if (len > bh->items_size - pos)
			return ms_block_err(&it->items, bh->items_off, "item lengths exceed the block",
					    err);
		memcpy(it->data + dpos, bh->cp, bh->cp_len);
		memcpy(it->data + dpos + bh->cp_len, items + pos, (size_t)len);
		pos += (size_t)len;
		dpos += bh->cp_len + (size_t)len;
		it->off[i + 1] = dpos;
	}
	if (pos != bh->items_size)
		return ms_block_err(&it->items, bh->items_off, "bytes left after the last item", err);
	return 0;
}

/* zstd lens: (n-1) XOR-delta prefix lengths, then (n-1) XOR-delta lengths,
 * both relative to items without the common prefix. */
static int ms_decode_lens(const struct vm_mergeset_iter *it, const struct ms_bh *bh,
			  const uint8_t *lens, size_t len, uint64_t *pl, uint64_t *ln,
			  struct error *err)
{
	size_t pos = 0, used;
	uint64_t x;

	pl[0] = 0;
	ln[0] = bh->first_len - bh->cp_len;
	for (int pass = 0; pass < 2; pass++) {
		uint64_t *v = pass ? ln : pl;

		for (uint32_t i = 1; i < bh->count; i++) {
			used = get_varuint(lens + pos, len - pos, &x);
			if (!used)
				return ms_block_err(&it->lens, bh->lens_off, "truncated lengths", err);
			pos += used;
			v[i] = x ^ v[i - 1];
		}
	}
	if (pos != len)
		return ms_block_err(&it->lens, bh->lens_off, "bytes left after the lengths", err);
	return 0;
}

static int ms_build_zstd(struct vm_mergeset_iter *it, const struct ms_bh *bh, const uint64_t *pl,
			 const uint64_t *ln, const uint8_t *sfx, size_t sfx_len, struct error *err)
{
	uint64_t total = bh->first_len;
	size_t pos = 0, dpos;
	const uint8_t *prev;

	for (uint32_t i = 1; i < bh->count; i++) {
		if (pl[i] > ln[i] || pl[i] > ln[i - 1] || ln[i] > VM_ZSTD_MAX_OUT)
			return ms_block_err(&it->lens, bh->lens_off, "bad prefix length", err);
		total += bh->cp_len + ln[i];
		if (total > VM_ZSTD_MAX_OUT)
			return ms_block_err(&it->items, bh->items_off, "decodes to too many bytes",
					    err);
	}
	ms_alloc_block(it, bh->count, (size_t)total);
	memcpy(it->data, bh->first, bh->first_len);
	it->off[0] = 0;
	dpos = it->off[1] = bh->first_len;
	prev = it->data + bh->cp_len;
	for (uint32_t i = 1; i < bh->count; i++) {
		size_t keep = (size_t)pl[i], add = (size_t)(ln[i] - pl[i]);

		if (add > sfx_len - pos)
			return ms_block_err(&it->items, bh->items_off, "item lengths exceed the block",
					    err);
		memcpy(it->data + dpos, bh->cp, bh->cp_len);
		memcpy(it->data + dpos + bh->cp_len, prev, keep);
		memcpy(it->data + dpos + bh->cp_len + keep, sfx + pos, add);
		prev = it->data + dpos + bh->cp_len;
		pos += add;
		dpos += bh->cp_len + keep + add;
		it->off[i + 1] = dpos;
	}
	if (pos != sfx_len)
		return ms_block_err(&it->items, bh->items_off, "bytes left after the last item", err);
	return 0;
}

static int ms_decode_zstd(struct vm_mergeset_iter *it, const struct ms_bh *bh,
			  const uint8_t *items, const uint8_t *lens, struct error *err)
{
	uint64_t *pl = (uint64_t *)scratch_reserve(&it->lengths_buf, 2 * bh->count * sizeof(*pl));
	uint64_t *ln = pl + bh->count;
	char what[128];
	size_t lens_len, sfx_len;
	int rc;

	snprintf(what, sizeof(what), "lens.bin: block at offset %" PRIu64, bh->lens_off);
	rc = zstd_decode(&it->dctx, lens, bh->lens_size, VM_ZSTD_MAX_OUT, what, &it->lens_buf,
			 &lens_len, err);
	if (rc == 0)
		rc = ms_decode_lens(it, bh, it->lens_buf.p, lens_len, pl, ln, err);
	snprintf(what, sizeof(what), "items.bin: block at offset %" PRIu64, bh->items_off);
	if (rc == 0)
		rc = zstd_decode(&it->dctx, items, bh->items_size, VM_ZSTD_MAX_OUT, what,
				 &it->suffix_buf, &sfx_len, err);
	if (rc == 0)
		rc = ms_build_zstd(it, bh, pl, ln, it->suffix_buf.p, sfx_len, err);
	return rc;
}

/* Items must not decrease, within the block and from the previous block. */
static int ms_check_order(struct vm_mergeset_iter *it, const struct ms_bh *bh, struct error *err)
{
	for (uint32_t i = 0; i < it->nitems; i++) {
		const uint8_t *a = i ? it->data + it->off[i - 1] : it->last;
		size_t alen = i ? it->off[i] - it->off[i - 1] : it->last_len;

		if ((i || it->have_last) &&
		    bytes_cmp(a, alen, it->data + it->off[i], it->off[i + 1] - it->off[i]) > 0)
			return error_set(err, EINVAL, "items.bin: block at offset %" PRIu64
					 ": item %" PRIu32 " is smaller than the item before it",
					 bh->items_off, i);
	}
	it->last_len = it->off[it->nitems] - it->off[it->nitems - 1];
	if (it->last_len > it->last_cap) {
		it->last_cap = it->last_len;
		it->last = xrealloc(it->last, it->last_cap);
	}
	memcpy(it->last, it->data + it->off[it->nitems - 1], it->last_len);
	it->have_last = true;
	return 0;
}

static int ms_load_block(struct vm_mergeset_iter *it, const struct ms_bh *bh, struct error *err)
{
	const uint8_t *items = NULL, *lens = NULL;
	int rc = pfile_block(&it->items, bh->items_off, bh->items_size, &items, err);

	if (rc == 0)
		rc = pfile_block(&it->lens, bh->lens_off, bh->lens_size, &lens, err);
	if (rc == 0 && bh->type == 0)
		rc = ms_decode_plain(it, bh, items, lens, err);
	else if (rc == 0)
		rc = ms_decode_zstd(it, bh, items, lens, err);
	if (rc == 0)
		rc = ms_check_order(it, bh, err);
	if (rc < 0) {
		it->nitems = it->pos = 0;
		return rc;
	}
	it->st.blocks++;
	it->st.items += bh->count;
	if (bh->type == 0)
		it->st.plain_blocks++;
	else
		it->st.zstd_blocks++;
	return 0;
}

static int ms_check_totals(const struct vm_mergeset_iter *it, struct error *err)
{
	if (!it->have_expect || it->partial)
		return 0;
	if (it->st.blocks != it->expect.blocks)
		return error_set(err, EINVAL, "index.bin: %" PRIu64 " block headers, expected "
				 "BlocksCount %" PRIu64, it->st.blocks, it->expect.blocks);
	if (it->st.items != it->expect.items)
		return error_set(err, EINVAL, "index.bin: blocks hold %" PRIu64 " items, expected "
				 "ItemsCount %" PRIu64, it->st.items, it->expect.items);
	return 0;
}

/* Makes the next block current; 0 when there is none left. */
static int ms_advance(struct vm_mergeset_iter *it, struct error *err)
{
	struct ms_bh bh;
	int rc;

	while (it->row == it->nrows || it->ib_next == it->rows[it->row].count) {
		size_t next = it->row == it->nrows ? 0 : it->row + 1;

		if (it->row != it->nrows && next == it->nrows) {
			it->done = true;
			return ms_check_totals(it, err);
		}
		rc = ms_load_index_block(it, next, err);
		if (rc < 0)
			return rc;
	}
	rc = ms_next_bh(it, &bh, err);
	if (rc == 0)
		rc = ms_load_block(it, &bh, err);
	return rc < 0 ? rc : 1;
}

static int ms_failed(const struct vm_mergeset_iter *it, struct error *err)
{
	return error_set(err, -it->failed, "mergeset part: the scan already failed");
}

int vm_mergeset_next(struct vm_mergeset_iter *it, const uint8_t **item, size_t *len,
		     struct error *err)
{
	if (it->failed)
		return ms_failed(it, err);
	for (;;) {
		const uint8_t *p;
		size_t n;
		int rc;

		while (it->pos == it->nitems) {
			if (it->done)
				return 0;
			rc = ms_advance(it, err);
			if (rc < 0)
				it->failed = rc;
			if (rc <= 0)
				return rc;
		}
		p = it->data + it->off[it->pos];
		n = it->off[it->pos + 1] - it->off[it->pos];
		it->pos++;
		if (it->have_key && bytes_cmp(p, n, it->key, it->key_len) < 0)
			continue;
		it->have_key = false;
		*item = p;
		*len = n;
		return 1;
	}
}

/* The last metaindex row whose firstItem is below key (0 if none). */
static size_t ms_find_row(const struct vm_mergeset_iter *it, const uint8_t *key, size_t key_len)
{
	size_t lo = 0, hi = it->nrows;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct ms_mrow *r = &it->rows[mid];

		if (bytes_cmp(r->first, r->first_len, key, key_len) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo ? lo - 1 : 0;
}

/* Leaves ib positioned at the last header whose firstItem is below key. */
static int ms_seek_in_index_block(struct vm_mergeset_iter *it, const uint8_t *key,
				  size_t key_len, struct error *err)
{
	const struct ms_mrow *r = &it->rows[it->row];
	size_t start_pos = 0;
	uint32_t start_next = 0;
	struct ms_bh bh, start_prev = { 0 };

	while (it->ib_next < r->count) {
		size_t pos = it->ib_pos;
		uint32_t idx = it->ib_next;
		struct ms_bh prev = it->prev_bh;
		int rc = ms_next_bh(it, &bh, err);

		if (rc < 0)
			return rc;
		if (bytes_cmp(bh.first, bh.first_len, key, key_len) >= 0)
			break;
		start_pos = pos;
		start_next = idx;
		start_prev = prev;
	}
	it->ib_pos = start_pos;
	it->ib_next = start_next;
	it->prev_bh = start_prev;
	return 0;
}

int vm_mergeset_seek(struct vm_mergeset_iter *it, const void *key, size_t key_len,
		     struct error *err)
{
	size_t row = ms_find_row(it, key, key_len);
	int rc;

	if (it->failed)
		return ms_failed(it, err);
	it->partial = true;
	it->done = false;
	it->have_last = false;
	free(it->key);
	it->key = xmalloc(key_len + 1);
	memcpy(it->key, key, key_len);
	it->key_len = key_len;
	it->have_key = true;
	rc = ms_load_index_block(it, row, err);
	if (rc == 0)
		rc = ms_seek_in_index_block(it, key, key_len, err);
	if (rc < 0)
		it->failed = rc;
	return rc;
}

/* ---- indexdb items ---- */

int vm_decode_metric_name_item(const uint8_t *item, size_t len, bool cluster,
			       struct vm_metric_name_item *out, struct error *err)
{
	size_t hdr = cluster ? 25 : 9;

	if (len < hdr || item[0] != VM_NS_METRIC_ID_TO_METRIC_NAME)
		return error_set(err, EINVAL, "indexdb item of %zu bytes (namespace %u) is not a "
				 "%s MetricID->MetricName entry", len, len ? item[0] : 0,
				 cluster ? "cluster" : "single-node");
	out->account_id = out->project_id = 0;
	if (cluster) {
		out->account_id = get_u32(item + 1);
		out->project_id = get_u32(item + 5);
		if (get_u32(item + 17) != out->account_id || get_u32(item + 21) != out->project_id)
			return error_set(err, EINVAL, "indexdb MetricID->MetricName item: the "
					 "MetricName tenant differs from the item tenant");
	}
	out->metric_id = get_u64(item + (cluster ? 9 : 1));
	out->name = item + hdr;
	out->name_len = len - hdr;
	return 0;
}

/* Unescapes one 0x01-terminated string of a MetricName into b; returns the
 * bytes consumed, 0 if malformed. */
static size_t unescape_tag(const uint8_t *p, size_t len, struct buf *b)
{
	for (size_t i = 0; i < len; i++) {
		uint8_t c = p[i];

		if (c == 1)
			return i + 1;
		if (c == 2)
			return 0;
		if (c == 0) {
			if (i + 1 >= len || p[i + 1] < '0' || p[i + 1] > '2')
				return 0;
			c = (uint8_t)(p[++i] - '0');
		}
		buf_u8(b, c);
	}
	return 0;
}

/* A tag as spans of the unescaped buffer. */
struct tag_span {
	size_t key, key_len, val, val_len;
};

/* Unescapes the metric group (raw[0, *group_len)) and the tags. */
static int split_metric_name(const uint8_t *name, size_t len, struct buf *raw,
			     size_t *group_len, struct tag_span **tags, size_t *ntags)
{
	size_t pos, n, cap = 0;

	pos = n = unescape_tag(name, len, raw);
	*group_len = raw->len;
	while (n && pos < len) {
		struct tag_span *t = ARRAY_PUSH(*tags, *ntags, cap);

		t->key = raw->len;
		n = unescape_tag(name + pos, len - pos, raw);
		pos += n;
		t->key_len = raw->len - t->key;
		t->val = raw->len;
		n = n ? unescape_tag(name + pos, len - pos, raw) : 0;
		pos += n;
		t->val_len = raw->len - t->val;
	}
	return n ? 0 : -EINVAL;
}

static int tag_cmp(const uint8_t *raw, const struct tag_span *a, const struct tag_span *b)
{
	int c = bytes_cmp(raw + a->key, a->key_len, raw + b->key, b->key_len);

	return c ? c : bytes_cmp(raw + a->val, a->val_len, raw + b->val, b->val_len);
}

/* Few tags per name: insertion sort, no need for qsort_r. */
static void sort_tags(const uint8_t *raw, struct tag_span *t, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		struct tag_span x = t[i];
		size_t j = i;

		for (; j > 0 && tag_cmp(raw, &t[j - 1], &x) > 0; j--)
			t[j] = t[j - 1];
		t[j] = x;
	}
}

static void put_quoted(struct buf *b, const uint8_t *p, size_t n)
{
	buf_u8(b, '"');
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '\\' || p[i] == '"')
			buf_u8(b, '\\');
		if (p[i] == '\n')
			buf_put(b, "\\n", 2);
		else
			buf_u8(b, p[i]);
	}
	buf_u8(b, '"');
}

/* name{k="v",...}, or as a selector {__name__="name",k="v",...}. */
static int render_metric_name(const uint8_t *name, size_t len, bool selector, char **out,
			      struct error *err)
{
	struct buf raw = { 0 }, b = { 0 };
	struct tag_span *tags = NULL;
	size_t ntags = 0, group_len;

	if (split_metric_name(name, len, &raw, &group_len, &tags, &ntags) < 0) {
		free(raw.p);
		free(tags);
		return error_set(err, EINVAL, "malformed MetricName of %zu bytes", len);
	}
	sort_tags(raw.p, tags, ntags);
	if (selector) {
		buf_put(&b, "{__name__=", 10);
		put_quoted(&b, raw.p, group_len);
	} else {
		buf_put(&b, raw.p, group_len);
	}
	for (size_t i = 0; i < ntags; i++) {
		buf_u8(&b, i || selector ? ',' : '{');
		buf_put(&b, raw.p + tags[i].key, tags[i].key_len);
		buf_u8(&b, '=');
		put_quoted(&b, raw.p + tags[i].val, tags[i].val_len);
	}
	if (ntags || selector)
		buf_u8(&b, '}');
	buf_u8(&b, 0);
	free(raw.p);
	free(tags);
	*out = (char *)b.p;
	return 0;
}

int vm_metric_name_render(const uint8_t *name, size_t len, char **out, struct error *err)
{
	return render_metric_name(name, len, false, out, err);
}

int vm_metric_name_selector(const uint8_t *name, size_t len, char **out, struct error *err)
{
	return render_metric_name(name, len, true, out, err);
}

int vm_mergeset_scan_namespace(int dirfd, uint8_t ns, vm_item_fn fn, void *arg,
			       struct error *err)
{
	struct vm_mergeset_iter *it;
	const uint8_t *item;
	size_t len;
	int rc = vm_mergeset_open(dirfd, NULL, &it, err);

	if (rc < 0)
		return rc;
	rc = vm_mergeset_seek(it, &ns, 1, err);
	while (rc == 0 && (rc = vm_mergeset_next(it, &item, &len, err)) == 1) {
		rc = 0;
		if (item[0] != ns)
			break;
		rc = fn(item, len, arg);
	}
	vm_mergeset_close(it);
	return rc;
}

struct metric_name_scan {
	bool cluster;
	vm_metric_name_fn fn;
	void *arg;
	struct error *err;
};

static int scan_metric_name(const uint8_t *item, size_t len, void *arg)
{
	struct metric_name_scan *scan = arg;
	struct vm_metric_name_item mn;
	int rc = vm_decode_metric_name_item(item, len, scan->cluster, &mn, scan->err);

	return rc < 0 ? rc : scan->fn(&mn, scan->arg);
}

int vm_indexdb_scan_metric_names(int dirfd, bool cluster, vm_metric_name_fn fn, void *arg,
				 struct error *err)
{
	struct metric_name_scan scan = { .cluster = cluster, .fn = fn, .arg = arg, .err = err };

	return vm_mergeset_scan_namespace(dirfd, VM_NS_METRIC_ID_TO_METRIC_NAME, scan_metric_name,
					  &scan, err);
}

/* ---- metadata/minTimestampForCompositeIndex ---- */

int vm_min_ts_composite_decode(const void *buf, size_t len, int64_t *ts, struct error *err)
{
	if (len != VM_MIN_TS_COMPOSITE_SIZE)
		return error_set(err, EINVAL, "minTimestampForCompositeIndex: %zu bytes, expected %d",
				 len, VM_MIN_TS_COMPOSITE_SIZE);
	*ts = get_i64z(buf);
	return 0;
}

void vm_min_ts_composite_encode(int64_t ts, uint8_t out[VM_MIN_TS_COMPOSITE_SIZE])
{
	put_u64(out, zigzag64(ts));
}

/* ---- test-only mergeset writer ---- */

struct ms_writer {
	const struct vm_mergeset_write_opts *o;
	int items_fd, lens_fd, index_fd;
	uint64_t items_off, lens_off, index_off;
	struct buf ib;		/* unpacked index block */
	struct buf mi;		/* unpacked metaindex */
	const struct vm_item *ib_first;
	uint32_t ib_count;
	uint64_t blocks;
};

static size_t common_prefix(const struct vm_item *a, const struct vm_item *b)
{
	const uint8_t *x = a->data, *y = b->data;
	size_t n = a->len < b->len ? a->len : b->len, i = 0;

	while (i < n && x[i] == y[i])
		i++;
	return i;
}

/* Writes data (compressed when zstd) to fd at *off; returns its size. */
static int ms_put_block(struct ms_writer *w, int fd, uint64_t *off, const struct buf *data,
			bool zstd, const char *name, uint32_t *size, struct error *err)
{
	void *z = NULL;
	size_t zlen = data->len;
	const void *p = data->p;
	int rc = 0;

	if (zstd) {
		rc = vm_zstd_compress(data->p, data->len, w->o->content_size, &z, &zlen, err);
		p = z;
	}
	if (rc == 0 && (rc = write_all(fd, p, zlen)) < 0)
		rc = error_set(err, -rc, "%s: write: %s", name, strerror(-rc));
	free(z);
	*size = (uint32_t)zlen;
	*off += zlen;
	return rc;
}

/* Encodes items (suffixes after cp) and lens the way marshalType says. */
static void ms_encode_block(const struct vm_item *items, size_t n, size_t cp, bool zstd,
			    struct buf *sfx, struct buf *lens)
{
	struct buf ls = { 0 };
	uint64_t prev_pl = 0, prev_len = items[0].len - cp;

	for (size_t i = 1; i < n; i++) {
		const uint8_t *cur = (const uint8_t *)items[i].data + cp;
		const uint8_t *prev = (const uint8_t *)items[i - 1].data + cp;
		size_t cur_len = items[i].len - cp, pl = 0, max = items[i - 1].len - cp;

		if (!zstd) {
			buf_put(sfx, cur, cur_len);
			buf_u64(lens, cur_len);
			continue;
		}
		while (pl < max && pl < cur_len && prev[pl] == cur[pl])
			pl++;
		buf_put(sfx, cur + pl, cur_len - pl);
		buf_varuint(lens, pl ^ prev_pl);
		buf_varuint(&ls, cur_len ^ prev_len);
		prev_pl = pl;
		prev_len = cur_len;
	}
	buf_put(lens, ls.p, ls.len);
	free(ls.p);
}

static int ms_flush_index_block(struct ms_writer *w, struct error *err)
{
	uint64_t off = w->index_off;
	uint32_t size;
	int rc;

	if (w->ib_count == 0)
		return 0;
	rc = ms_put_block(w, w->index_fd, &w->index_off, &w->ib, true, "index.bin", &size, err);
	buf_bytes(&w->mi, w->ib_first->data, w->ib_first->len);
	buf_u32(&w->mi, w->ib_count);
	buf_u64(&w->mi, off);
	buf_u32(&w->mi, size);
	w->ib.len = 0;
	w->ib_count = 0;
	return rc;
}

static int ms_write_block(struct ms_writer *w, const struct vm_item *items, size_t n,
			  struct error *err)
{
	struct buf sfx = { 0 }, lens = { 0 };
	size_t cp = items[0].len;
	bool zstd = w->o->zstd && n >= 2;
	uint64_t items_off = w->items_off, lens_off = w->lens_off;
	uint32_t items_size, lens_size;
	int rc;

	for (size_t i = 1; i < n; i++) {
		size_t c = common_prefix(&items[0], &items[i]);

		cp = c < cp ? c : cp;
	}
	ms_encode_block(items, n, cp, zstd, &sfx, &lens);
	rc = ms_put_block(w, w->items_fd, &w->items_off, &sfx, zstd, "items.bin", &items_size, err);
	if (rc == 0)
		rc = ms_put_block(w, w->lens_fd, &w->lens_off, &lens, zstd, "lens.bin", &lens_size,
				  err);
	free(sfx.p);
	free(lens.p);
	if (rc < 0)
		return rc;
	if (w->ib_count == 0)
		w->ib_first = &items[0];
	buf_bytes(&w->ib, items[0].data, cp);
	buf_bytes(&w->ib, items[0].data, items[0].len);
	buf_u8(&w->ib, zstd ? 1 : 0);
	buf_u32(&w->ib, (uint32_t)n);
	buf_u64(&w->ib, items_off);
	buf_u64(&w->ib, lens_off);
	buf_u32(&w->ib, items_size);
	buf_u32(&w->ib, lens_size);
	w->ib_count++;
	w->blocks++;
	if (w->ib.len >= (w->o->max_index_block_bytes ? w->o->max_index_block_bytes : 65536))
		return ms_flush_index_block(w, err);
	return 0;
}

static void buf_hex(struct buf *b, const struct vm_item *item)
{
	static const char hex[] = "0123456789abcdef";
	const uint8_t *p = item->data;

	for (size_t i = 0; i < item->len; i++) {
		buf_u8(b, (uint8_t)hex[p[i] >> 4]);
		buf_u8(b, (uint8_t)hex[p[i] & 15]);
	}
}

static int ms_write_metadata(int dirfd, const struct vm_item *items, size_t n, uint64_t blocks,
			     struct error *err)
{
	struct buf b = { 0 };
	char num[96];
	int rc;

	snprintf(num, sizeof(num), "{\"ItemsCount\":%zu,\"BlocksCount\":%" PRIu64 ",", n, blocks);
	buf_str(&b, num);
	buf_str(&b, "\"FirstItem\":\"");
	buf_hex(&b, &items[0]);
	buf_str(&b, "\",\"LastItem\":\"");
	buf_hex(&b, &items[n - 1]);
	buf_str(&b, "\"}");
	rc = write_file_atomic(dirfd, "metadata.json", b.p, b.len);
	free(b.p);
	return rc < 0 ? error_set(err, -rc, "metadata.json: cannot write: %s", strerror(-rc)) : 0;
}

static int ms_create(int dirfd, const char *name, int *fd, struct error *err)
{
	*fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (*fd < 0)
		return error_set(err, errno, "%s: cannot create: %s", name, strerror(errno));
	return 0;
}

static int ms_write_blocks(struct ms_writer *w, const struct vm_item *items, size_t n,
			   struct error *err)
{
	size_t max = w->o->max_block_bytes ? w->o->max_block_bytes : 65536;
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < n;) {
		size_t j = i + 1, bytes = items[i].len;

		while (j < n && bytes + items[j].len <= max)
			bytes += items[j++].len;
		rc = ms_write_block(w, items + i, j - i, err);
		i = j;
	}
	if (rc == 0)
		rc = ms_flush_index_block(w, err);
	return rc;
}

static int ms_write_metaindex(int dirfd, struct ms_writer *w, struct error *err)
{
	uint64_t off = 0;
	uint32_t size;
	int fd, rc = ms_create(dirfd, "metaindex.bin", &fd, err);

	if (rc < 0)
		return rc;
	rc = ms_put_block(w, fd, &off, &w->mi, true, "metaindex.bin", &size, err);
	close(fd);
	return rc;
}

int vm_mergeset_write_part(int dirfd, const struct vm_item *items, size_t n,
			   const struct vm_mergeset_write_opts *opts, struct error *err)
{
	struct ms_writer w = { .o = opts, .items_fd = -1, .lens_fd = -1, .index_fd = -1 };
	int rc = 0;

	if (n == 0)
		return error_set(err, EINVAL, "a mergeset part needs at least one item");
	for (size_t i = 1; i < n; i++)
		if (bytes_cmp(items[i - 1].data, items[i - 1].len, items[i].data, items[i].len) > 0)
			return error_set(err, EINVAL, "item %zu is not sorted", i);
	rc = ms_create(dirfd, "items.bin", &w.items_fd, err);
	if (rc == 0)
		rc = ms_create(dirfd, "lens.bin", &w.lens_fd, err);
	if (rc == 0)
		rc = ms_create(dirfd, "index.bin", &w.index_fd, err);
	if (rc == 0)
		rc = ms_write_blocks(&w, items, n, err);
	if (rc == 0)
		rc = ms_write_metaindex(dirfd, &w, err);
	if (rc == 0)
		rc = ms_write_metadata(dirfd, items, n, w.blocks, err);
	if (w.items_fd >= 0)
		close(w.items_fd);
	if (w.lens_fd >= 0)
		close(w.lens_fd);
	if (w.index_fd >= 0)
		close(w.index_fd);
	free(w.ib.p);
	free(w.mi.p);
	return rc;
}
