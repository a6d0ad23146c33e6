/*-------------------------------------------------------------------------
 *
 * http.c
 *		  The HTTP transport of vapi_fdw: the only file that includes curl.
 *
 * A VapiHttpGroup is a curl multi handle: the handles of one connection
 * (one user mapping) all belong to its group, so that several requests can
 * be under way at once and one wait covers them all.  One VapiHttp wraps a
 * curl easy handle (which keeps its TCP/TLS connection alive between
 * requests) and the state of the request it carries.  Transfers are driven
 * from our own loop, so that query cancel, statement_timeout and backend
 * termination are noticed within a fraction of a second.  Everything curl
 * allocates is owned by a memory context through a reset callback, so an
 * ERROR that unwinds the context frees it.  Callbacks called by curl never
 * raise errors: they report failure through return codes and flags and the
 * caller raises the error once curl has returned.
 *
 * A request is started (vapi_http_start) and finished later
 * (vapi_http_finish); in between it makes progress whenever any handle of
 * its group is pumped or waited for (vapi_http_pump, vapi_http_wait_any),
 * so that a scan can keep several requests in flight while it returns rows.
 *
 * Retries (GETs and other idempotent requests) happen here, without
 * blocking the other requests of the group: on 429, 502, 503, 504 and
 * transport errors a request waits (honouring Retry-After, otherwise
 * exponential back-off with jitter) and is sent again, never waiting past
 * statement_timeout.  A 429, or any answer with Retry-After, holds every
 * request of the group until that time: the rate limit belongs to the
 * organisation, not to one request, so the wait is paid once.
 *
 * The owner of a group may hook into it (VapiHttpHooks): every attempt is
 * first admitted (the statement's request budget; a refused request ends
 * unsent, for its owner to report), then takes a token of the rate budget
 * (which may answer "not before T": the attempt then waits like a retry),
 * a hold set by other backends holds the group too, and every attempt
 * sent and answered is reported (the statistics).  A backend that waits
 * shows why in pg_stat_activity: for an answer, before a retry, or for the
 * rate budget (custom wait events from PostgreSQL 17 on, "Extension"
 * before).
 *
 * src/http.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <curl/curl.h>

#include "lib/ilist.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/memutils.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"
#if PG_VERSION_NUM >= 150000
#include "common/pg_prng.h"
#endif
#include "utils/wait_event.h"

#include "vapi_fdw.h"

/* How often a wait wakes up to look for interrupts. */
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

/* Where a handle's request stands. */
typedef enum VapiHttpState
{
	VAPI_HTTP_IDLE,				/* no request, or its outcome was taken */
	VAPI_HTTP_RUNNING,			/* an attempt is under way */
	VAPI_HTTP_WAITING,			/* waiting to send an attempt (a retry) */
	VAPI_HTTP_DONE				/* the final outcome is in "resp" */
} VapiHttpState;

struct VapiHttpGroup
{
	CURLM	   *multi;
	dlist_head	handles;		/* every VapiHttp of the group */
	TimestampTz hold_until;		/* no attempt starts before this */
	VapiHttpHooks hooks;		/* of the group's owner, or zeroes */
};

/* What a backend waits for, shown in pg_stat_activity. */
typedef enum VapiWaitKind
{
	VAPI_WAIT_REQUEST,			/* an answer of the API */
	VAPI_WAIT_BACKOFF,			/* the time of a retry, or a 429's hold */
	VAPI_WAIT_RATE_BUDGET		/* a token of the rate budget */
} VapiWaitKind;

struct VapiHttp
{
	VapiHttpGroup *group;		/* NULL once the group is gone */
	dlist_node	node;			/* in group->handles */
	CURL	   *easy;			/* NULL after a transfer was abandoned */
	struct curl_slist *headers; /* Authorization, Accept, Expect */
	struct curl_slist *headers_body;	/* the same plus Content-Type */
	bool		attached;		/* easy is inside the group's multi */

	/* the request under way (vapi_http_start .. vapi_http_finish) */
	VapiHttpState state;
	bool		transfer_done;	/* its current attempt has completed */
	CURLcode	done_code;		/* and how */
	VapiHttpRequest req;		/* copy, strings in resp_cxt */
	MemoryContext resp_cxt;
	VapiSink	sink;
	VapiHttpResponse resp;		/* outcome of the last attempt */
	TimestampTz first;			/* when the request was started (its first
								 * attempt sent) */
	TimestampTz retry_at;		/* WAITING: when to send the next attempt */
	TimestampTz last_end;		/* when the last attempt was answered */
	TimestampTz sent_at;		/* when the current attempt was sent */
	TimestampTz ready_at;		/* when the attempt was admitted */
	bool		admitted;		/* the attempt passed the admit hook */
	bool		budget_waited;	/* the attempt waited (or waits, while
								 * admitted and WAITING) for the rate
								 * budget */
	bool		held;			/* the attempt waited for a group's hold */
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

static void vapi_http_group_cleanup(void *arg);
static void vapi_http_cleanup(void *arg);
static void vapi_http_drop_easy(VapiHttp *http);
static bool vapi_http_ensure_easy(VapiHttp *http);
static size_t vapi_http_write_cb(char *ptr, size_t size, size_t nmemb,
								 void *userdata);
static void vapi_http_begin(VapiHttp *http);
static void vapi_http_send_or_hold(VapiHttp *http);
static void vapi_http_group_pump(VapiHttpGroup *group);
static void vapi_http_attempt_done(VapiHttp *http);
static bool vapi_http_schedule_retry(VapiHttp *http);
static void vapi_http_collect(VapiHttp *http, VapiHttpResponse *resp);
static bool vapi_http_should_retry(const VapiHttpRequest *req,
								   const VapiHttpResponse *resp);
static long vapi_http_backoff_ms(int attempt, long retry_after_ms);
static void vapi_http_group_wait(VapiHttpGroup *group);
static const char *vapi_http_failure_text(CURLcode code);
static void vapi_http_url_parse(const char *url, VapiUrlParts *parts);
static uint32 vapi_wait_event(VapiWaitKind kind);
static void vapi_http_report_answer(VapiHttp *http, bool will_retry);

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
 * vapi_http_group_create
 *		Make a group (a curl multi handle) that lives as long as "cxt".
 *		Handles of the group made later in the same context are freed
 *		before it (reset callbacks run last registered first).
 */
VapiHttpGroup *
vapi_http_group_create(MemoryContext cxt)
{
	VapiHttpGroup *group = MemoryContextAllocZero(cxt, sizeof(VapiHttpGroup));
	MemoryContextCallback *cb = MemoryContextAlloc(cxt,
												   sizeof(MemoryContextCallback));

	dlist_init(&group->handles);
	cb->func = vapi_http_group_cleanup;
	cb->arg = group;
	MemoryContextRegisterResetCallback(cxt, cb);
	group->multi = curl_multi_init();
	if (group->multi == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not allocate an HTTP handle")));
	return group;
}

/*
 * vapi_http_group_set_hooks
 *		Hook the group's owner into every attempt of the group (see
 *		VapiHttpHooks).
 */
void
vapi_http_group_set_hooks(VapiHttpGroup *group, const VapiHttpHooks *hooks)
{
	group->hooks = *hooks;
}

/*
 * vapi_http_group_cleanup
 *		Memory context reset callback: free the multi handle, first
 *		letting go of any handle still in the group.
 */
static void
vapi_http_group_cleanup(void *arg)
{
	VapiHttpGroup *group = (VapiHttpGroup *) arg;
	dlist_mutable_iter iter;

	dlist_foreach_modify(iter, &group->handles)
	{
		VapiHttp   *http = dlist_container(VapiHttp, node, iter.cur);

		vapi_http_drop_easy(http);
		dlist_delete(&http->node);
		http->group = NULL;
	}
	if (group->multi != NULL)
		curl_multi_cleanup(group->multi);
	group->multi = NULL;
}

/*
 * vapi_http_create
 *		Make a handle of "group" whose curl objects live as long as "cxt".
 *
 * The bearer header is built here once; the key is kept nowhere else in
 * this file.
 */
VapiHttp *
vapi_http_create(MemoryContext cxt, VapiHttpGroup *group, const char *api_key)
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
	http->group = group;
	dlist_push_tail(&group->handles, &http->node);
	cb->func = vapi_http_cleanup;
	cb->arg = http;
	MemoryContextRegisterResetCallback(cxt, cb);

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
 *		Memory context reset callback: free the handle's curl objects and
 *		leave its group.
 */
static void
vapi_http_cleanup(void *arg)
{
	VapiHttp   *http = (VapiHttp *) arg;

	vapi_http_drop_easy(http);
	if (http->group != NULL)
		dlist_delete(&http->node);
	http->group = NULL;
	curl_slist_free_all(http->headers);
	http->headers = NULL;
	curl_slist_free_all(http->headers_body);
	http->headers_body = NULL;
}

/*
 * vapi_http_drop_easy
 *		Take the easy handle out of the multi handle and free it, with its
 *		connection.
 */
static void
vapi_http_drop_easy(VapiHttp *http)
{
	if (http->easy != NULL && http->attached && http->group != NULL &&
		http->group->multi != NULL)
		curl_multi_remove_handle(http->group->multi, http->easy);
	http->attached = false;
	if (http->easy != NULL)
		curl_easy_cleanup(http->easy);
	http->easy = NULL;
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
 *		a handle of its group is pumped or waited for.  Strings of "req"
 *		are copied into "resp_cxt", where the answer will be.
 */
void
vapi_http_start(VapiHttp *http, const VapiHttpRequest *req,
				MemoryContext resp_cxt)
{
	if (http->state != VAPI_HTTP_IDLE)
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
	memset(&http->resp, 0, sizeof(VapiHttpResponse));
	http->resp.retry_after_ms = -1;
	http->first = GetCurrentTimestamp();
	http->retry_at = http->first;
	http->last_end = http->first;
	http->admitted = false;
	http->held = false;
	http->state = VAPI_HTTP_WAITING;

	/* settle what has arrived first: a 429 there holds this request too */
	vapi_http_pump(http);
	vapi_http_send_or_hold(http);
	vapi_http_pump(http);
}

/*
 * vapi_http_pending
 *		Is a request started and its outcome not yet taken?
 */
bool
vapi_http_pending(VapiHttp *http)
{
	return http->state != VAPI_HTTP_IDLE;
}

/*
 * vapi_http_done
 *		Has the started request reached its final outcome (so that
 *		vapi_http_finish will not wait)?
 */
bool
vapi_http_done(VapiHttp *http)
{
	return http->state == VAPI_HTTP_DONE;
}

/*
 * vapi_http_pump
 *		Let the requests of the handle's group make progress without
 *		waiting (send them, read what has arrived, send retries that are
 *		due).  Cheap enough to call between rows.
 */
void
vapi_http_pump(VapiHttp *http)
{
	if (http->group != NULL)
		vapi_http_group_pump(http->group);
}

/*
 * vapi_http_send_or_hold
 *		A WAITING handle whose time has come sends its attempt, unless the
 *		group is held (after a 429).  An attempt is first admitted by the
 *		group's owner (the statement's request budget: a refused attempt
 *		ends the request, not sent, for its owner to report), then takes a
 *		token of the rate budget, or waits for one.
 */
static void
vapi_http_send_or_hold(VapiHttp *http)
{
	VapiHttpGroup *group = http->group;
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz at;

	if (http->state != VAPI_HTTP_WAITING || http->retry_at > now)
		return;
	if (group != NULL && group->hold_until > now)
	{
		http->held = true;
		return;
	}
	if (!http->admitted)
	{
		http->ready_at = now;
		http->budget_waited = false;
		if (group != NULL && group->hooks.admit != NULL &&
			!group->hooks.admit(group->hooks.arg))
		{
			http->resp.result = VAPI_HTTP_REFUSED;
			http->state = VAPI_HTTP_DONE;
			return;
		}
		http->admitted = true;
	}

	/* a token is taken only when the attempt really goes */
	if (group != NULL && group->hooks.take != NULL &&
		(at = group->hooks.take(group->hooks.arg)) != 0)
	{
		http->retry_at = at;
		http->budget_waited = true;
		return;
	}
	vapi_http_begin(http);
	http->state = VAPI_HTTP_RUNNING;
	http->sent_at = GetCurrentTimestamp();
	if (http->resp.attempts == 0)
		http->first = http->sent_at;	/* time budgets start here */
	if (group != NULL && group->hooks.event != NULL)
	{
		VapiHttpEvent ev;

		memset(&ev, 0, sizeof(ev));
		ev.answered = false;
		ev.method = http->req.method;
		ev.attempt = http->resp.attempts + 1;
		ev.bytes_sent = http->req.body != NULL ? http->req.body_len : 0;
		ev.backoff_ms = (http->resp.attempts > 0 || http->held) &&
			http->ready_at > http->last_end ?
			(double) (http->ready_at - http->last_end) / 1000.0 : 0;
		ev.budget_ms = http->budget_waited ?
			(double) (http->sent_at - http->ready_at) / 1000.0 : 0;
		group->hooks.event(group->hooks.arg, &ev);
	}
	http->admitted = false;
	http->held = false;
}

/*
 * vapi_http_group_pump
 *		Drive every transfer of the group, settle the attempts that have
 *		completed and send the attempts that are due.
 */
static void
vapi_http_group_pump(VapiHttpGroup *group)
{
	int			round;

	if (group->multi == NULL)
		return;

	/* a hold that another backend set (after a 429 of its own) */
	if (group->hooks.held_until != NULL)
	{
		TimestampTz held = group->hooks.held_until(group->hooks.arg);

		if (held > group->hold_until)
			group->hold_until = held;
	}

	/* twice: attempts sent in the first round get their first push */
	for (round = 0; round < 2; round++)
	{
		int			running = 0;
		CURLMsg    *msg;
		int			left;
		dlist_mutable_iter iter;
		bool		sent = false;

		if (curl_multi_perform(group->multi, &running) != CURLM_OK)
		{
			/* the multi handle is broken: fail what runs on it */
			dlist_foreach_modify(iter, &group->handles)
			{
				VapiHttp   *h = dlist_container(VapiHttp, node, iter.cur);

				if (h->state == VAPI_HTTP_RUNNING && h->attached)
				{
					h->transfer_done = true;
					h->done_code = CURLE_FAILED_INIT;
				}
			}
		}
		while ((msg = curl_multi_info_read(group->multi, &left)) != NULL)
		{
			char	   *priv = NULL;
			VapiHttp   *h;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
			h = (VapiHttp *) priv;
			if (h != NULL && h->easy == msg->easy_handle && h->attached)
			{
				h->transfer_done = true;
				h->done_code = msg->data.result;
			}
		}

		/* settle what has completed, then send what is due */
		dlist_foreach_modify(iter, &group->handles)
		{
			VapiHttp   *h = dlist_container(VapiHttp, node, iter.cur);

			if (h->state == VAPI_HTTP_RUNNING && h->transfer_done)
				vapi_http_attempt_done(h);
		}
		dlist_foreach_modify(iter, &group->handles)
		{
			VapiHttp   *h = dlist_container(VapiHttp, node, iter.cur);

			if (h->state == VAPI_HTTP_WAITING)
			{
				vapi_http_send_or_hold(h);
				sent |= h->state == VAPI_HTTP_RUNNING;
			}
		}
		if (!sent)
			break;
	}
}

/*
 * vapi_http_attempt_done
 *		An attempt has completed: describe it in http->resp, then either
 *		settle the request (DONE) or schedule another attempt (WAITING),
 *		and report it to the group's owner.
 */
static void
vapi_http_attempt_done(VapiHttp *http)
{
	vapi_http_collect(http, &http->resp);
	http->resp.attempts++;
	http->state = VAPI_HTTP_DONE;
	http->last_end = GetCurrentTimestamp();
	vapi_http_report_answer(http, vapi_http_schedule_retry(http));
}

/*
 * vapi_http_schedule_retry
 *		After an attempt (http->state DONE): schedule another one if the
 *		outcome calls for it and the time allows it (WAITING, true), else
 *		leave the request settled (false).
 *
 * The retries of a request share one budget of time: its attempts and
 * waits together never take longer than timeout_ms, and no wait passes
 * statement_timeout (the request then fails now, saying why).  A 429 or a
 * Retry-After holds the whole group until the retry time.
 */
static bool
vapi_http_schedule_retry(VapiHttp *http)
{
	VapiHttpResponse *resp = &http->resp;
	const VapiHttpRequest *req = &http->req;
	TimestampTz now = http->last_end;
	long		delay;
	long		held = 0;

	if (resp->attempts > req->max_retries || !vapi_http_should_retry(req, resp))
		return false;

	delay = vapi_http_backoff_ms(resp->attempts, resp->retry_after_ms);
	if (http->group != NULL && http->group->hold_until > now)
		held = TimestampDifferenceMilliseconds(now, http->group->hold_until);
	delay = Max(delay, held);

	if (TimestampDifferenceMilliseconds(http->first, now) + delay > req->timeout_ms ||
		(get_timeout_active(STATEMENT_TIMEOUT) &&
		 !TimestampDifferenceExceeds(now, get_timeout_finish_time(STATEMENT_TIMEOUT),
									 (int) delay)))
	{
		resp->gave_up_early = true;
		resp->gave_up_ms = delay;
		return false;
	}

	http->retry_at = TimestampTzPlusMilliseconds(now, delay);
	http->state = VAPI_HTTP_WAITING;

	/*
	 * The organisation's rate limit: every request of the group waits, and
	 * the other backends using the same key are told.
	 */
	if (http->group != NULL &&
		(resp->status == 429 || resp->retry_after_ms >= 0) &&
		http->retry_at > http->group->hold_until)
	{
		http->group->hold_until = http->retry_at;
		if (http->group->hooks.hold != NULL)
			http->group->hooks.hold(http->group->hooks.arg, http->retry_at);
	}
	return true;
}

/*
 * vapi_http_report_answer
 *		Tell the group's owner of the attempt just answered (its outcome is
 *		in http->resp).
 */
static void
vapi_http_report_answer(VapiHttp *http, bool will_retry)
{
	VapiHttpGroup *group = http->group;
	VapiHttpEvent ev;

	if (group == NULL || group->hooks.event == NULL)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.answered = true;
	ev.method = http->req.method;
	ev.attempt = http->resp.attempts;
	ev.resp = &http->resp;
	ev.latency_ms = (double) (http->last_end - http->sent_at) / 1000.0;
	ev.will_retry = will_retry;
	group->hooks.event(group->hooks.arg, &ev);
}

/*
 * vapi_http_wait_any
 *		Wait until one of "handles" (NULL entries are skipped; all of one
 *		group) has the final outcome of its request, and return its index;
 *		-1 if none has a request.  Interrupts are honoured while waiting;
 *		on an ERROR the requests stay as they are (their owners abandon
 *		them).
 */
int
vapi_http_wait_any(VapiHttp *const *handles, int n)
{
	VapiHttpGroup *group = NULL;
	int			i;

	for (i = 0; i < n && group == NULL; i++)
		if (handles[i] != NULL)
			group = handles[i]->group;

	for (;;)
	{
		bool		any = false;

		if (group != NULL)
			vapi_http_group_pump(group);
		for (i = 0; i < n; i++)
		{
			if (handles[i] == NULL || handles[i]->state == VAPI_HTTP_IDLE)
				continue;
			if (handles[i]->state == VAPI_HTTP_DONE)
				return i;
			any = true;
		}
		if (!any || group == NULL)
			return -1;
		vapi_http_group_wait(group);
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
	if (http->state == VAPI_HTTP_RUNNING)
		vapi_http_drop_easy(http);
	http->state = VAPI_HTTP_IDLE;
	http->transfer_done = false;
}

/*
 * vapi_http_finish
 *		Wait for a started request to reach its final outcome (retries
 *		included) and describe it in "resp" (allocated in the context given
 *		to vapi_http_start).  The other requests of the group make progress
 *		meanwhile.
 *
 * Raises an ERROR only for interrupts (cancel, statement_timeout,
 * termination) and out-of-memory, and then abandons the request; every
 * other failure is reported in "resp" for the caller to translate.
 */
void
vapi_http_finish(VapiHttp *http, VapiHttpResponse *resp)
{
	Assert(http->state != VAPI_HTTP_IDLE);

	PG_TRY();
	{
		VapiHttp   *one[1];

		one[0] = http;
		(void) vapi_http_wait_any(one, 1);
	}
	PG_CATCH();
	{
		vapi_http_abort(http);
		PG_RE_THROW();
	}
	PG_END_TRY();

	*resp = http->resp;
	http->state = VAPI_HTTP_IDLE;
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
		case VAPI_HTTP_REFUSED:
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
 * vapi_http_group_wait
 *		Wait for socket activity of the group's transfers, for the next
 *		attempt that is due, or VAPI_POLL_INTERVAL_MS, whichever comes
 *		first; then look for interrupts (cancel, statement_timeout).
 */
static void
vapi_http_group_wait(VapiHttpGroup *group)
{
	TimestampTz now = GetCurrentTimestamp();
	long		ms = VAPI_POLL_INTERVAL_MS;
	bool		transfers = false;
	bool		budget = false;
	dlist_iter	iter;

	dlist_foreach(iter, &group->handles)
	{
		VapiHttp   *h = dlist_container(VapiHttp, node, iter.cur);

		if (h->state == VAPI_HTTP_RUNNING)
			transfers = true;
		else if (h->state == VAPI_HTTP_WAITING)
		{
			TimestampTz due = Max(h->retry_at, group->hold_until);

			ms = Min(ms, Max(TimestampDifferenceMilliseconds(now, due), 1));
			if (h->admitted && h->budget_waited &&
				h->retry_at >= group->hold_until)
				budget = true;
		}
	}

	if (transfers)
	{
		int			nfds = 0;

		pgstat_report_wait_start(vapi_wait_event(VAPI_WAIT_REQUEST));
		curl_multi_wait(group->multi, NULL, 0, (int) ms, &nfds);
		pgstat_report_wait_end();
	}
	else
	{
		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 ms, vapi_wait_event(budget ? VAPI_WAIT_RATE_BUDGET :
											 VAPI_WAIT_BACKOFF));
		ResetLatch(MyLatch);
	}
	CHECK_FOR_INTERRUPTS();
}

/*
 * vapi_wait_event
 *		The wait event a backend shows while it waits for "kind": vapi_fdw's
 *		own (VapiFdwRequest, VapiFdwBackoff, VapiFdwRateBudget) where the
 *		PostgreSQL version has custom wait events, "Extension" before.
 */
static uint32
vapi_wait_event(VapiWaitKind kind)
{
#if PG_VERSION_NUM >= 170000
	static uint32 events[3];
	static const char *const names[3] = {
		"VapiFdwRequest", "VapiFdwBackoff", "VapiFdwRateBudget"
	};

	if (events[kind] == 0)
		events[kind] = WaitEventExtensionNew(names[kind]);
	return events[kind];
#else
	return PG_WAIT_EXTENSION;
#endif
}

/*
 * vapi_http_begin
 *		Set up one attempt of the current request on the easy handle and
 *		hand it to the group's multi handle; nothing is waited for.
 */
static void
vapi_http_begin(VapiHttp *http)
{
	const VapiHttpRequest *req = &http->req;
	VapiSink   *sink = &http->sink;
	CURL	   *easy;

	if (http->group == NULL || http->group->multi == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("could not start an HTTP transfer")));
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
	curl_easy_setopt(easy, CURLOPT_PRIVATE, (void *) http);
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

	if (curl_multi_add_handle(http->group->multi, easy) != CURLM_OK)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("could not start an HTTP transfer")));
	http->attached = true;
}

/*
 * vapi_http_collect
 *		Describe the attempt that has just completed in "resp" and take the
 *		easy handle out of the multi handle.
 */
static void
vapi_http_collect(VapiHttp *http, VapiHttpResponse *resp)
{
	VapiSink   *sink = &http->sink;
	CURL	   *easy = http->easy;
	MemoryContext resp_cxt = http->resp_cxt;
	CURLcode	code = http->done_code;
	long		status = 0;
	char	   *ctype = NULL;

	resp->body = NULL;
	resp->body_len = 0;
	resp->status = 0;
	resp->content_type = NULL;
	resp->transport_error = NULL;
	resp->retry_after_ms = -1;

	curl_multi_remove_handle(http->group->multi, easy);
	http->attached = false;
	http->transfer_done = false;

	if (sink->oom)
	{
		/* Drop the half-read connection, then complain. */
		vapi_http_drop_easy(http);
		http->state = VAPI_HTTP_IDLE;
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory while reading a Vapi API response")));
	}

	if (sink->too_large)
	{
		vapi_http_drop_easy(http);
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
		vapi_http_drop_easy(http);
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
