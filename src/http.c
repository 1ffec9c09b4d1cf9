/* SPDX-License-Identifier: Apache-2.0 */
/* HTTP GET through libcurl. The body is handed over one line at a time so
 * that an export of millions of series never sits in memory whole. */
#include "http.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define CONNECT_TIMEOUT_S 10L
#define ERROR_BODY_MAX 300

struct transfer {
	http_line_fn fn;
	void *arg;
	char *line;
	size_t len, capacity;
	int rc;       /* from fn */
	long status;  /* known once the body starts */
	CURL *curl;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int flush_line(struct transfer *t)
{
	array_reserve(&t->line, &t->capacity, t->len, 1);
	t->line[t->len] = 0;
	t->rc = t->fn(t->arg, t->line, t->len);
	t->len = 0;
	return t->rc;
}

static size_t on_body(char *data, size_t size, size_t count, void *arg)
{
	struct transfer *t = arg;
	size_t n = size * count;

	if (!t->status)
		curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &t->status);
	if (t->status != 200) {
		/* Keep the start of an error body for the message. */
		for (size_t i = 0; i < n && t->len < ERROR_BODY_MAX; i++)
			*ARRAY_PUSH(t->line, t->len, t->capacity) = data[i];
		return n;
	}
	for (size_t i = 0; i < n; i++) {
		if (data[i] != '\n') {
			*ARRAY_PUSH(t->line, t->len, t->capacity) = data[i];
			continue;
		}
		if (flush_line(t) != 0)
			return 0; /* aborts the transfer */
	}
	return n;
}

char *http_escape(const char *s)
{
	char *e = curl_easy_escape(NULL, s, 0), *copy;

	if (!e)
		abort();
	copy = xstrdup(e);
	curl_free(e);
	return copy;
}

int http_get_lines(const char *url, long timeout_s, http_line_fn fn, void *arg,
		   struct error *err)
{
	struct transfer t = { .fn = fn, .arg = arg };
	char curl_err[CURL_ERROR_SIZE] = "";
	int shown = (int)strcspn(url, "?"); /* the query can be long */
	CURLcode res;
	int rc = 0;

	pthread_once(&curl_once, curl_init);
	t.curl = curl_easy_init();
	if (!t.curl)
		return error_set(err, ENOMEM, "%.*s: cannot start a transfer", shown, url);
	curl_easy_setopt(t.curl, CURLOPT_URL, url);
	curl_easy_setopt(t.curl, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
	curl_easy_setopt(t.curl, CURLOPT_TIMEOUT, timeout_s);
	curl_easy_setopt(t.curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(t.curl, CURLOPT_ERRORBUFFER, curl_err);
	curl_easy_setopt(t.curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(t.curl, CURLOPT_WRITEDATA, &t);
	curl_easy_setopt(t.curl, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(t.curl, CURLOPT_USERAGENT, "vmunion/" PACKAGE_VERSION);
	res = curl_easy_perform(t.curl);
	if (res == CURLE_OK && !t.status)
		curl_easy_getinfo(t.curl, CURLINFO_RESPONSE_CODE, &t.status);
	if (res == CURLE_WRITE_ERROR && t.rc != 0) {
		rc = t.rc; /* fn's error, err already set */
	} else if (res == CURLE_COULDNT_CONNECT || res == CURLE_COULDNT_RESOLVE_HOST) {
		rc = error_set(err, ECONNREFUSED, "%.*s: the node is unreachable: %s", shown, url,
			       curl_err[0] ? curl_err : curl_easy_strerror(res));
	} else if (res == CURLE_OPERATION_TIMEDOUT) {
		rc = error_set(err, ETIMEDOUT, "%.*s: no complete answer within %ld s: %s", shown, url,
			       timeout_s, curl_err);
	} else if (res != CURLE_OK) {
		rc = error_set(err, EIO, "%.*s: %s", shown, url,
			       curl_err[0] ? curl_err : curl_easy_strerror(res));
	} else if (t.status != 200) {
		rc = error_set(err, EIO, "%.*s: HTTP status %ld: %.*s", shown, url, t.status,
			       (int)t.len, t.line ? t.line : "");
	} else if (t.len > 0) {
		rc = flush_line(&t); /* the last line has no '\n' */
	}
	free(t.line);
	curl_easy_cleanup(t.curl);
	return rc;
}
