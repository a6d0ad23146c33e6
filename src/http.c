/*-------------------------------------------------------------------------
 *
 * http.c
 *		  The HTTP transport of vapi_fdw: the only file that includes curl.
 *
 * One VapiHttp wraps a curl easy handle (which keeps the TCP/TLS connection
 * alive between requests) and a multi handle used to drive transfers from
 * our own loop, so that query cancel, statement_timeout and backend
 * termination are noticed within a fraction of a second.  Everything curl
 * allocates is owned by a memory context through a reset callback, so an
 * ERROR that unwinds the context frees it.  Callbacks called by curl never
 * raise errors: they report failure through return codes and flags and the
 * caller raises the error once curl has returned.
 *
 * A request can be started and finished later (vapi_http_start, _pump,
 * _finish), so that a scan can ask for its next page while it returns the
 * current one.
 *
 * Retries (GETs and other idempotent requests) happen here: on 429, 502,
 * 503, 504 and transport errors, honouring Retry-After, otherwise with
 * exponential back-off and jitter, never sleeping past statement_timeout.
 *
 * src/http.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <curl/curl.h>

#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/memutils.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"
#if PG_VERSION_NUM >= 150000
#include "common/pg_prng.h"
#endif

#include "vapi_fdw.h"

/* How often a transfer wakes up to look for interrupts. */
#define VAPI_POLL_INTERVAL_MS	50

/* Back-off without Retry-After: base * 2^n, capped, with jitter. */
#define VAPI_BACKOFF_BASE_MS	250
#define VAPI_BACKOFF_CAP_MS		8000

/* State shared with the write callback for one transfer. */
typedef struct VapiSink
{
	MemoryContext cxt;
	char	   *data;
	size_t		len;
	size_t		cap;
	size_t		hint;			/* first allocation, to avoid regrowth */
	size_t		max;
	bool		too_large;
	bool		oom;
} VapiSink;

struct VapiHttp
{
	CURL	   *easy;			/* NULL after a transfer was abandoned */
	CURLM	   *multi;
	struct curl_slist *headers; /* Authorization, Accept, Expect */
	struct curl_slist *headers_body;	/* the same plus Content-Type */
	bool		attached;		/* easy is inside multi */

	/* the request under way (vapi_http_start .. vapi_http_finish) */
	bool		pending;		/* a request was started, not finished */
	bool		transfer_done;	/* its current attempt has completed */
	CURLcode	done_code;		/* and how */
	VapiHttpRequest req;		/* copy, strings in resp_cxt */
	MemoryContext resp_cxt;
	VapiSink	sink;
	size_t		last_len;		/* size of the last answer: buffer hint */
};

/* The parts of a URL vapi_fdw looks at (palloc'd, NULL if absent). */
typedef struct VapiUrlParts
{
	bool		parsed;			/* an absolute URL curl understands */
	char	   *scheme;
	char	   *host;
	char	   *port;
	char	   *path;
	char	   *user;
	char	   *query;
	char	   *fragment;
} VapiUrlParts;

static void vapi_http_cleanup(void *arg);
static bool vapi_http_ensure_easy(VapiHttp *http);
static size_t vapi_http_write_cb(char *ptr, size_t size, size_t nmemb,
								 void *userdata);
static void vapi_http_begin(VapiHttp *http);
static void vapi_http_complete(VapiHttp *http, VapiHttpResponse *resp);
static bool vapi_http_should_retry(const VapiHttpRequest *req,
								   const VapiHttpResponse *resp);
static long vapi_http_backoff_ms(int attempt, long retry_after_ms);
static void vapi_http_sleep(long ms);
static const char *vapi_http_failure_text(CURLcode code);
static void vapi_http_url_parse(const char *url, VapiUrlParts *parts);

/*
 * vapi_http_global_init
 *		Initialise libcurl once per backend, from _PG_init.
 */
void
vapi_http_global_init(void)
{
	if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("could not initialize libcurl")));
}

/*
 * vapi_http_create
 *		Make a transport whose curl objects live as long as "cxt".
 *
 * The bearer header is built here once; the key is kept nowhere else in
 * this file.
 */
VapiHttp *
vapi_http_create(MemoryContext cxt, const char *api_key)
{
	VapiHttp   *http;
	MemoryContextCallback *cb;
	char	   *auth;
	bool		ok = true;
	int			i;

	http = MemoryContextAllocZero(cxt, sizeof(VapiHttp));
	cb = MemoryContextAlloc(cxt, sizeof(MemoryContextCallback));
	auth = MemoryContextAlloc(cxt, strlen(api_key) + 32);
	snprintf(auth, strlen(api_key) + 32, "Authorization: Bearer %s", api_key);

	/* Register the cleanup first, so a failure below frees what was made. */
	cb->func = vapi_http_cleanup;
	cb->arg = http;
	MemoryContextRegisterResetCallback(cxt, cb);

	http->multi = curl_multi_init();
	if (http->multi == NULL)
		ok = false;

	/* Two header lists: with and without a JSON request body. */
	for (i = 0; i < 2 && ok; i++)
	{
		struct curl_slist *list = NULL;
		struct curl_slist *tmp;
		const char *lines[] = {
			auth,
			"Accept: application/json",
			"Expect:",
			i == 1 ? "Content-Type: application/json" : NULL
		};
		int			j;

		for (j = 0; j < lengthof(lines) && lines[j] != NULL; j++)
		{
			tmp = curl_slist_append(list, lines[j]);
			if (tmp == NULL)
			{
				ok = false;
				break;
			}
			list = tmp;
		}
		if (i == 0)
			http->headers = list;
		else
			http->headers_body = list;
	}

	/* Do not leave the key lying around in palloc'd memory. */
	explicit_bzero(auth, strlen(auth));
	pfree(auth);

	if (ok)
		ok = vapi_http_ensure_easy(http);
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not allocate an HTTP handle")));
	return http;
}

/*
 * vapi_http_cleanup
 *		Memory context reset callback: free every curl object.
 */
static void
vapi_http_cleanup(void *arg)
{
	VapiHttp   *http = (VapiHttp *) arg;

	if (http->multi != NULL && http->easy != NULL && http->attached)
		curl_multi_remove_handle(http->multi, http->easy);
	http->attached = false;
	if (http->easy != NULL)
		curl_easy_cleanup(http->easy);
	http->easy = NULL;
	if (http->multi != NULL)
		curl_multi_cleanup(http->multi);
	http->multi = NULL;
	curl_slist_free_all(http->headers);
	http->headers = NULL;
	curl_slist_free_all(http->headers_body);
	http->headers_body = NULL;
}

/*
 * vapi_http_ensure_easy
 *		Make sure there is an easy handle; a transfer that was abandoned by
 *		an error or a cancel dropped it, and with it its connection, whose
 *		state was unknown.
 */
static bool
vapi_http_ensure_easy(VapiHttp *http)
{
	if (http->easy == NULL)
		http->easy = curl_easy_init();
	return http->easy != NULL;
}

/*
 * vapi_http_write_cb
 *		curl write callback: append to the sink, enforcing the size cap.
 *
 * Never raises an error: returning less than was offered makes curl abort
 * the transfer with CURLE_WRITE_ERROR and the flags say why.
 */
static size_t
vapi_http_write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	VapiSink   *sink = (VapiSink *) userdata;
	size_t		n = size * nmemb;

	if (n == 0)
		return 0;
	if (sink->len + n > sink->max)
	{
		sink->too_large = true;
		return 0;
	}
	if (sink->len + n + 1 > sink->cap)
	{
		size_t		newcap = Max(sink->cap * 2, Max(sink->hint, 16384));
		char	   *newdata;

		while (newcap < sink->len + n + 1)
			newcap *= 2;
		newdata = MemoryContextAllocExtended(sink->cxt, newcap,
											 MCXT_ALLOC_HUGE | MCXT_ALLOC_NO_OOM);
		if (newdata == NULL)
		{
			sink->oom = true;
			return 0;
		}
		if (sink->len > 0)
			memcpy(newdata, sink->data, sink->len);
		if (sink->data != NULL)
			pfree(sink->data);
		sink->data = newdata;
		sink->cap = newcap;
	}
	memcpy(sink->data + sink->len, ptr, n);
	sink->len += n;
	return n;
}

/*
 * vapi_http_start
 *		Start a request without waiting for it: it makes progress whenever
 *		vapi_http_pump or vapi_http_finish is called.  Strings of "req" are
 *		copied into "resp_cxt", where the answer will be.
 */
void
vapi_http_start(VapiHttp *http, const VapiHttpRequest *req,
				MemoryContext resp_cxt)
{
	if (http->pending)
		vapi_http_abort(http);
	http->req = *req;
	http->req.method = MemoryContextStrdup(resp_cxt, req->method);
	http->req.url = MemoryContextStrdup(resp_cxt, req->url);
	if (req->body != NULL)
	{
		char	   *body = MemoryContextAlloc(resp_cxt, req->body_len + 1);

		memcpy(body, req->body, req->body_len);
		body[req->body_len] = '\0';
		http->req.body = body;
	}
	http->resp_cxt = resp_cxt;
	vapi_http_begin(http);
	http->pending = true;
	vapi_http_pump(http);
}

/*
 * vapi_http_pending
 *		Is a request started and not yet finished?
 */
bool
vapi_http_pending(VapiHttp *http)
{
	return http->pending;
}

/*
 * vapi_http_pump
 *		Let a started request make progress without waiting (send it, read
 *		what has arrived).  Cheap enough to call between rows.
 */
void
vapi_http_pump(VapiHttp *http)
{
	int			running = 0;
	CURLMsg    *msg;
	int			left;

	if (!http->pending || http->transfer_done || !http->attached)
		return;
	if (curl_multi_perform(http->multi, &running) != CURLM_OK)
	{
		http->transfer_done = true;
		http->done_code = CURLE_FAILED_INIT;
		return;
	}
	while ((msg = curl_multi_info_read(http->multi, &left)) != NULL)
	{
		if (msg->msg == CURLMSG_DONE && msg->easy_handle == http->easy)
		{
			http->transfer_done = true;
			http->done_code = msg->data.result;
		}
	}
}

/*
 * vapi_http_abort
 *		Abandon a started request.  Its connection is in an unknown state,
 *		so it is closed.
 */
void
vapi_http_abort(VapiHttp *http)
{
	if (http->easy != NULL)
	{
		if (http->attached)
			curl_multi_remove_handle(http->multi, http->easy);
		http->attached = false;
		curl_easy_cleanup(http->easy);
		http->easy = NULL;
	}
	http->pending = false;
	http->transfer_done = false;
}

/*
 * vapi_http_finish
 *		Wait for a started request, retrying where that is safe and
 *		useful, and describe the final outcome in "resp" (allocated in the
 *		context given to vapi_http_start).
 *
 * Raises an ERROR only for interrupts (cancel, statement_timeout,
 * termination) and out-of-memory; every other failure is reported in
 * "resp" for the caller to translate.
 */
void
vapi_http_finish(VapiHttp *http, VapiHttpResponse *resp)
{
	const VapiHttpRequest *req = &http->req;
	int			attempt = 0;
	TimestampTz first = GetCurrentTimestamp();

	Assert(http->pending);
	memset(resp, 0, sizeof(VapiHttpResponse));
	resp->retry_after_ms = -1;

	for (;;)
	{
		long		delay;

		if (attempt > 0)
			vapi_http_begin(http);
		vapi_http_complete(http, resp);
		resp->attempts = ++attempt;

		if (attempt > req->max_retries || !vapi_http_should_retry(req, resp))
			break;

		delay = vapi_http_backoff_ms(attempt, resp->retry_after_ms);

		/*
		 * The retries of a request share one budget of time: its attempts
		 * and waits together never take longer than timeout_ms.
		 */
		if (TimestampDifferenceMilliseconds(first, GetCurrentTimestamp()) + delay >
			req->timeout_ms)
		{
			resp->gave_up_early = true;
			resp->gave_up_ms = delay;
			break;
		}

		/* Never sleep past the statement's deadline: fail now instead. */
		if (get_timeout_active(STATEMENT_TIMEOUT))
		{
			TimestampTz deadline = get_timeout_finish_time(STATEMENT_TIMEOUT);

			if (!TimestampDifferenceExceeds(GetCurrentTimestamp(), deadline,
											(int) delay))
			{
				resp->gave_up_early = true;
				resp->gave_up_ms = delay;
				break;
			}
		}
		vapi_http_sleep(delay);
	}
	http->pending = false;
}

/*
 * vapi_http_should_retry
 *		Is the outcome one that another attempt might fix, and is the
 *		request safe to send again?
 */
static bool
vapi_http_should_retry(const VapiHttpRequest *req,
					   const VapiHttpResponse *resp)
{
	switch (resp->result)
	{
		case VAPI_HTTP_OK:
			if (!req->retry_safe)
				return false;
			/* a 500 may be passing; only a read is sure to be harmless again */
			if (resp->status == 500)
				return strcmp(req->method, "GET") == 0;
			return resp->status == 429 || resp->status == 502 ||
				resp->status == 503 || resp->status == 504;
		case VAPI_HTTP_CONNECT_FAILED:
			/* Nothing reached the server: safe for every method. */
			return true;
		case VAPI_HTTP_TIMEOUT:
		case VAPI_HTTP_TRANSPORT_ERROR:
			return req->retry_safe;
		case VAPI_HTTP_TOO_LARGE:
			return false;
	}
	return false;
}

/*
 * vapi_http_backoff_ms
 *		How long to wait before retry number "attempt" (1-based).
 */
static long
vapi_http_backoff_ms(int attempt, long retry_after_ms)
{
	long		cap;
	double		r;

	if (retry_after_ms >= 0)
		return retry_after_ms;

	cap = VAPI_BACKOFF_BASE_MS;
	while (--attempt > 0 && cap < VAPI_BACKOFF_CAP_MS)
		cap *= 2;
	cap = Min(cap, VAPI_BACKOFF_CAP_MS);

	/* "Equal jitter": half fixed, half random. */
#if PG_VERSION_NUM >= 150000
	r = pg_prng_double(&pg_global_prng_state);
#else
	r = (double) random() / ((double) MAX_RANDOM_VALUE + 1);
#endif
	return cap / 2 + (long) (r * (cap / 2));
}

/*
 * vapi_http_sleep
 *		Wait "ms" milliseconds on the process latch, so that a cancel or
 *		statement_timeout ends the wait at once.
 */
static void
vapi_http_sleep(long ms)
{
	TimestampTz end = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), ms);

	for (;;)
	{
		long		left;

		CHECK_FOR_INTERRUPTS();
		left = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), end);
		if (left <= 0)
			break;
		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 left, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/*
 * vapi_http_begin
 *		Set up one attempt of the current request on the easy handle and
 *		hand it to the multi handle; nothing is waited for.
 */
static void
vapi_http_begin(VapiHttp *http)
{
	const VapiHttpRequest *req = &http->req;
	VapiSink   *sink = &http->sink;
	CURL	   *easy;

	if (!vapi_http_ensure_easy(http))
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not allocate an HTTP handle")));
	easy = http->easy;

	/* Forget the previous attempt (its memory belongs to its context). */
	memset(sink, 0, sizeof(VapiSink));
	sink->cxt = http->resp_cxt;
	sink->hint = Min(http->last_len + http->last_len / 8 + 1024,
					 (size_t) req->max_response_bytes + 1);
	sink->max = (size_t) req->max_response_bytes;
	http->transfer_done = false;
	http->done_code = CURLE_OK;

	/* Reset options but keep the live connection and DNS cache. */
	curl_easy_reset(easy);
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_URL, req->url);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS, CURLPROTO_HTTP | CURLPROTO_HTTPS);
#endif
	curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(easy, CURLOPT_USERAGENT, "vapi_fdw/" VAPI_FDW_VERSION);
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
					 (long) req->connect_timeout_ms);
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long) req->timeout_ms);
	curl_easy_setopt(easy, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);

	/*
	 * libcurl quietly sends a request again when a reused connection turns
	 * out to have been closed.  A request that must not be repeated (a
	 * POST) gets a connection of its own, so that it is sent exactly once.
	 */
	if (!req->retry_safe)
		curl_easy_setopt(easy, CURLOPT_FRESH_CONNECT, 1L);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, vapi_http_write_cb);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, sink);
	if (req->body != NULL)
	{
		curl_easy_setopt(easy, CURLOPT_HTTPHEADER, http->headers_body);
		curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE,
						 (curl_off_t) req->body_len);
		curl_easy_setopt(easy, CURLOPT_POSTFIELDS, req->body);
	}
	else
	{
		curl_easy_setopt(easy, CURLOPT_HTTPHEADER, http->headers);
		if (strcmp(req->method, "GET") == 0)
			curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
	}
	if (strcmp(req->method, "GET") != 0 &&
		!(strcmp(req->method, "POST") == 0 && req->body != NULL))
		curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, req->method);

	if (curl_multi_add_handle(http->multi, easy) != CURLM_OK)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("could not start an HTTP transfer")));
	http->attached = true;
}

/*
 * vapi_http_complete
 *		Drive the current attempt to its end and describe it in "resp".
 *
 * The transfer is driven from our own loop, waking on socket activity and
 * at least every VAPI_POLL_INTERVAL_MS to look for interrupts.  If an
 * interrupt raises an ERROR, the transfer is abandoned and the handle,
 * whose connection is then in an unknown state, is thrown away.
 */
static void
vapi_http_complete(VapiHttp *http, VapiHttpResponse *resp)
{
	VapiSink   *sink = &http->sink;
	CURL	   *easy = http->easy;
	MemoryContext resp_cxt = http->resp_cxt;
	CURLcode	code;
	long		status = 0;
	char	   *ctype = NULL;

	resp->body = NULL;
	resp->body_len = 0;
	resp->status = 0;
	resp->content_type = NULL;
	resp->transport_error = NULL;
	resp->retry_after_ms = -1;

	PG_TRY();
	{
		for (;;)
		{
			int			nfds = 0;

			vapi_http_pump(http);
			if (http->transfer_done)
				break;
			curl_multi_wait(http->multi, NULL, 0, VAPI_POLL_INTERVAL_MS, &nfds);
			CHECK_FOR_INTERRUPTS();
		}
	}
	PG_CATCH();
	{
		vapi_http_abort(http);
		PG_RE_THROW();
	}
	PG_END_TRY();

	code = http->done_code;
	curl_multi_remove_handle(http->multi, easy);
	http->attached = false;

	if (sink->oom)
	{
		/* Drop the half-read connection, then complain. */
		vapi_http_abort(http);
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory while reading a Vapi API response")));
	}

	if (sink->too_large)
	{
		curl_easy_cleanup(easy);
		http->easy = NULL;
		resp->result = VAPI_HTTP_TOO_LARGE;
		return;
	}

	if (code == CURLE_OK)
	{
		curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
		curl_easy_getinfo(easy, CURLINFO_CONTENT_TYPE, &ctype);
#if LIBCURL_VERSION_NUM >= 0x074200
		{
			curl_off_t	ra = -1;

			/* 0 means no header (or "0"): use our own back-off then. */
			if (curl_easy_getinfo(easy, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK &&
				ra > 0)
				resp->retry_after_ms = (long) Min(ra, (curl_off_t) 86400) * 1000;
		}
#endif
		resp->result = VAPI_HTTP_OK;
		resp->status = status;
		if (ctype != NULL)
			resp->content_type = MemoryContextStrdup(resp_cxt, ctype);
	}
	else
	{
		switch (code)
		{
			case CURLE_COULDNT_RESOLVE_HOST:
			case CURLE_COULDNT_RESOLVE_PROXY:
			case CURLE_COULDNT_CONNECT:
				resp->result = VAPI_HTTP_CONNECT_FAILED;
				break;
			case CURLE_OPERATION_TIMEDOUT:
				resp->result = VAPI_HTTP_TIMEOUT;
				break;
			default:
				resp->result = VAPI_HTTP_TRANSPORT_ERROR;
				break;
		}
		resp->transport_error = MemoryContextStrdup(resp_cxt,
													vapi_http_failure_text(code));
		/* The connection may be half-used: do not reuse it. */
		curl_easy_cleanup(easy);
		http->easy = NULL;
	}

	/* hand the body over to the response */
	if (sink->data == NULL)
		sink->data = MemoryContextAllocZero(resp_cxt, 1);
	sink->data[sink->len] = '\0';
	resp->body = sink->data;
	resp->body_len = sink->len;
	http->last_len = sink->len;
	sink->data = NULL;
	sink->len = 0;
	sink->cap = 0;
}

/*
 * vapi_http_failure_text
 *		What a failed transfer means, in vapi_fdw's own words: libcurl's
 *		sentences differ from release to release, and may name addresses.
 */
static const char *
vapi_http_failure_text(CURLcode code)
{
	switch (code)
	{
		case CURLE_COULDNT_RESOLVE_HOST:
		case CURLE_COULDNT_RESOLVE_PROXY:
			return "The host name could not be resolved.";
		case CURLE_COULDNT_CONNECT:
			return "The connection was refused or could not be made.";
		case CURLE_OPERATION_TIMEDOUT:
			return "The request timed out.";
		case CURLE_GOT_NOTHING:
			return "The server closed the connection without answering.";
		case CURLE_PARTIAL_FILE:
			return "The connection closed before the whole answer arrived.";
		case CURLE_RECV_ERROR:
			return "The connection failed while the answer was being received.";
		case CURLE_SEND_ERROR:
			return "The connection failed while the request was being sent.";
		case CURLE_BAD_CONTENT_ENCODING:
			return "The answer's compressed body could not be decompressed.";
		case CURLE_WEIRD_SERVER_REPLY:
			return "The server's answer is not HTTP.";
		case CURLE_SSL_CONNECT_ERROR:
		case CURLE_PEER_FAILED_VERIFICATION:
#if LIBCURL_VERSION_NUM < 0x073e00
		case CURLE_SSL_CACERT:
#endif
		case CURLE_SSL_CERTPROBLEM:
			return "The TLS connection could not be established (handshake or certificate).";
		case CURLE_TOO_MANY_REDIRECTS:
			return "Too many redirects.";
		case CURLE_OUT_OF_MEMORY:
			return "Out of memory in the HTTP library.";
		default:
			return psprintf("Transport failure (libcurl error %d).", (int) code);
	}
}

/*
 * vapi_http_url_parse
 *		Split a URL with curl's parser.  The strings curl allocates are
 *		freed even if copying them raises an ERROR.
 */
static void
vapi_http_url_parse(const char *url, VapiUrlParts *parts)
{
	static const CURLUPart which[] = {
		CURLUPART_SCHEME, CURLUPART_HOST, CURLUPART_PORT, CURLUPART_PATH,
		CURLUPART_USER, CURLUPART_QUERY, CURLUPART_FRAGMENT
	};
	char	   *raw[lengthof(which)];
	char	  **out[lengthof(which)];
	CURLU	   *u;
	int			i;

	memset(parts, 0, sizeof(VapiUrlParts));
	memset(raw, 0, sizeof(raw));
	out[0] = &parts->scheme;
	out[1] = &parts->host;
	out[2] = &parts->port;
	out[3] = &parts->path;
	out[4] = &parts->user;
	out[5] = &parts->query;
	out[6] = &parts->fragment;

	u = curl_url();
	if (u == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	/* No palloc or ereport until curl_url_cleanup below. */
	if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK)
	{
		parts->parsed = true;
		for (i = 0; i < lengthof(which); i++)
			curl_url_get(u, which[i], &raw[i], 0);
	}
	curl_url_cleanup(u);

	PG_TRY();
	{
		for (i = 0; i < lengthof(which); i++)
			*out[i] = raw[i] != NULL ? pstrdup(raw[i]) : NULL;
	}
	PG_FINALLY();
	{
		for (i = 0; i < lengthof(which); i++)
			curl_free(raw[i]);
	}
	PG_END_TRY();
}

/*
 * vapi_http_url_is_valid
 *		Check the syntax of a server "url" option: http or https, a host,
 *		no credentials, no query string or fragment.  On failure "why" gets
 *		a palloc'd explanation.
 */
bool
vapi_http_url_is_valid(const char *url, char **why)
{
	VapiUrlParts u;
	const char *problem = NULL;

	vapi_http_url_parse(url, &u);
	if (!u.parsed)
		problem = "it is not a valid absolute URL";
	else if (u.scheme == NULL ||
			 (strcmp(u.scheme, "http") != 0 && strcmp(u.scheme, "https") != 0))
		problem = "the scheme must be http or https";
	else if (u.host == NULL || u.host[0] == '\0')
		problem = "it has no host";
	else if (u.user != NULL)
		problem = "it must not contain a user name or password";
	else if (u.query != NULL)
		problem = "it must not contain a query string";
	else if (u.fragment != NULL)
		problem = "it must not contain a fragment";

	if (problem != NULL && why != NULL)
		*why = pstrdup(problem);
	return problem == NULL;
}

/*
 * vapi_http_url_is_vapi
 *		Is the URL one of the two Vapi API hosts (https, default port, no
 *		path)?  Only those may be used by a non-superuser.
 */
bool
vapi_http_url_is_vapi(const char *url)
{
	VapiUrlParts u;

	vapi_http_url_parse(url, &u);
	return u.parsed &&
		u.scheme != NULL && strcmp(u.scheme, "https") == 0 &&
		u.host != NULL &&
		(pg_strcasecmp(u.host, "api.vapi.ai") == 0 ||
		 pg_strcasecmp(u.host, "api.eu.vapi.ai") == 0) &&
		(u.port == NULL || strcmp(u.port, "443") == 0) &&
		(u.path == NULL || strcmp(u.path, "/") == 0 || u.path[0] == '\0') &&
		u.user == NULL && u.query == NULL && u.fragment == NULL;
}
