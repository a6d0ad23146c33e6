/*-------------------------------------------------------------------------
 *
 * budget.c
 *		  What vapi_fdw lets itself send: the rate budget of an
 *		  organisation and the request budget of a statement.
 *
 * The rate budget is a token bucket per API key and URL: the server
 * options max_requests_per_second (its rate) and max_request_burst (its
 * size).  With vapi_fdw in shared_preload_libraries the buckets are in
 * shared memory, so that every backend using the same key draws on the
 * same budget, which is what the API's rate limit counts; without it each
 * backend has buckets of its own.  A request takes a token at the moment
 * it is sent, or is told when to ask again: it never fails for want of a
 * token, it waits (see http.c: interruptibly, under its own wait event,
 * within statement_timeout).
 *
 * A 429 answer (or any Retry-After) holds the bucket until the retry
 * time and empties it: every backend using that key then waits too, with
 * or without a configured rate, and starts again at the rate, not in a
 * burst.
 *
 * The statement budget, vapi_fdw.max_requests_per_statement, stops a
 * statement before it sends one request more than allowed.
 *
 * src/budget.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "common/hashfn.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "access/xact.h"

#include "vapi_fdw.h"

/* Buckets in shared memory: distinct (API key, URL) pairs. */
#define VAPI_BUCKETS_MAX		256

/* Longest hold believed (Retry-After is capped at a day too). */
#define VAPI_MAX_HOLD			(USECS_PER_SEC * 86400)

struct VapiBucket
{
	uint64		key;			/* hash of the URL and the API key */
	double		tokens;			/* tokens in the bucket, up to the burst */
	TimestampTz refilled;		/* when tokens was last brought up to date */
	TimestampTz hold_until;		/* a 429's hold */
	bool		local;			/* in this backend's memory */
};

typedef struct VapiBudgetShared
{
	slock_t		mutex;			/* guards everything here */
	int			nused;
	VapiBucket	buckets[VAPI_BUCKETS_MAX];
} VapiBudgetShared;

static VapiBudgetShared *shared_budget = NULL;

/* Buckets of this backend: without shared memory, or when it is full. */
static List *local_buckets = NIL;

/* GUC vapi_fdw.max_requests_per_statement: 0 = no limit. */
int			vapi_max_requests_per_statement = 0;

/* The statement whose requests are being counted. */
static TimestampTz stmt_start = 0;
static LocalTransactionId stmt_lxid = InvalidLocalTransactionId;
static int64 stmt_requests = 0;

static uint64 vapi_budget_key(const char *url, const char *api_key);
static void vapi_bucket_lock(VapiBucket *b);
static void vapi_bucket_unlock(VapiBucket *b);

/*
 * vapi_budget_shmem_size
 *		The shared memory the buckets need.
 */
Size
vapi_budget_shmem_size(void)
{
	return MAXALIGN(sizeof(VapiBudgetShared));
}

/*
 * vapi_budget_shmem_init
 *		Create or attach the shared buckets (AddinShmemInitLock held).
 */
void
vapi_budget_shmem_init(void)
{
	bool		found;

	shared_budget = ShmemInitStruct("vapi_fdw rate budget",
									sizeof(VapiBudgetShared), &found);
	if (found)
		return;
	memset(shared_budget, 0, sizeof(VapiBudgetShared));
	SpinLockInit(&shared_budget->mutex);
}

/*
 * vapi_budget_key
 *		The key of a bucket: a 64-bit hash of the URL and the API key (the
 *		key itself is never kept).
 */
static uint64
vapi_budget_key(const char *url, const char *api_key)
{
	uint64		h;

	h = hash_bytes_extended((const unsigned char *) url, strlen(url), 0);
	h = hash_bytes_extended((const unsigned char *) api_key, strlen(api_key),
							h);
	return h;
}

/*
 * vapi_bucket_lock / vapi_bucket_unlock
 *		Guard a bucket (only shared ones need it).
 */
static void
vapi_bucket_lock(VapiBucket *b)
{
	if (!b->local)
		SpinLockAcquire(&shared_budget->mutex);
}

static void
vapi_bucket_unlock(VapiBucket *b)
{
	if (!b->local)
		SpinLockRelease(&shared_budget->mutex);
}

/*
 * vapi_budget_bucket
 *		The bucket of an API key at a URL: shared by every backend when
 *		vapi_fdw is preloaded (while there is room for it), else this
 *		backend's own.
 */
VapiBucket *
vapi_budget_bucket(const char *url, const char *api_key)
{
	uint64		key = vapi_budget_key(url, api_key);
	VapiBucket *b = NULL;
	ListCell   *lc;
	MemoryContext oldcxt;
	int			i;

	if (shared_budget != NULL)
	{
		SpinLockAcquire(&shared_budget->mutex);
		for (i = 0; i < shared_budget->nused && b == NULL; i++)
			if (shared_budget->buckets[i].key == key)
				b = &shared_budget->buckets[i];
		if (b == NULL && shared_budget->nused < VAPI_BUCKETS_MAX)
		{
			/* refilled 0: the bucket is filled on first use */
			b = &shared_budget->buckets[shared_budget->nused++];
			memset(b, 0, sizeof(VapiBucket));
			b->key = key;
		}
		SpinLockRelease(&shared_budget->mutex);
		if (b != NULL)
			return b;
		ereport(WARNING,
				(errmsg("vapi_fdw's shared rate budgets are all in use (%d API keys): the budget of this key is this backend's own",
						VAPI_BUCKETS_MAX)));
	}

	foreach(lc, local_buckets)
	{
		b = (VapiBucket *) lfirst(lc);
		if (b->key == key)
			return b;
	}
	oldcxt = MemoryContextSwitchTo(TopMemoryContext);
	b = palloc0(sizeof(VapiBucket));
	b->key = key;
	b->local = true;
	local_buckets = lappend(local_buckets, b);
	MemoryContextSwitchTo(oldcxt);
	return b;
}

/*
 * vapi_budget_take
 *		Take a token of the bucket for a request about to be sent: 0 when
 *		one was taken (send now), else when to ask again (when a token will
 *		have been refilled at "rate" per second, or a 429's hold ends).
 *		"rate" 0: no limit but the hold.  The bucket holds at most "burst"
 *		tokens and is full at first.  Tokens are taken only by requests
 *		that go, so a request given up while waiting costs nothing, and in
 *		any T seconds at most burst + rate * T requests go.
 */
TimestampTz
vapi_budget_take(VapiBucket *b, double rate, int burst)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz at = 0;
	double		cap = Max(burst, 1);

	vapi_bucket_lock(b);

	/* a clock stepped back must not hold anyone for long */
	if (b->hold_until > now + VAPI_MAX_HOLD)
		b->hold_until = now;
	if (b->refilled > now + VAPI_MAX_HOLD)
		b->refilled = now;

	if (b->hold_until > now)
		at = b->hold_until;
	else if (rate > 0)
	{
		if (b->refilled == 0)
		{
			b->tokens = cap;
			b->refilled = now;
		}
		else if (now > b->refilled)
		{
			b->tokens += rate * (double) (now - b->refilled) / USECS_PER_SEC;
			b->refilled = now;
		}
		b->tokens = Min(b->tokens, cap);
		if (b->tokens >= 1.0)
			b->tokens -= 1.0;
		else
			at = Max(b->refilled, now) +
				(TimestampTz) ceil((1.0 - b->tokens) / rate * USECS_PER_SEC);
	}
	vapi_bucket_unlock(b);
	return at;
}

/*
 * vapi_budget_held_until
 *		Until when a 429 holds every request of the bucket (0: never held).
 */
TimestampTz
vapi_budget_held_until(VapiBucket *b)
{
	TimestampTz until;

	vapi_bucket_lock(b);
	until = b->hold_until;
	vapi_bucket_unlock(b);
	return until;
}

/*
 * vapi_budget_hold
 *		A 429 (or a Retry-After): hold every request of the bucket until
 *		"until" and empty it, so that other backends back off too and
 *		start again at the rate.
 */
void
vapi_budget_hold(VapiBucket *b, TimestampTz until)
{
	vapi_bucket_lock(b);
	if (until > b->hold_until)
		b->hold_until = until;
	if (b->refilled != 0)
	{
		/* what accrues during the hold is not a burst after it */
		b->tokens = Min(b->tokens, 0);
		b->refilled = Max(b->refilled, until);
	}
	vapi_bucket_unlock(b);
}

/*
 * vapi_budget_statement_allows
 *		May the current statement send one more request under
 *		vapi_fdw.max_requests_per_statement?  If so, it is counted.
 *		Retries count: each is a request the API counts.
 */
bool
vapi_budget_statement_allows(void)
{
	TimestampTz start = GetCurrentStatementStartTimestamp();
#if PG_VERSION_NUM >= 170000
	LocalTransactionId lxid = MyProc->vxid.lxid;
#else
	LocalTransactionId lxid = MyProc->lxid;
#endif

	if (start != stmt_start || lxid != stmt_lxid)
	{
		stmt_start = start;
		stmt_lxid = lxid;
		stmt_requests = 0;
	}
	if (vapi_max_requests_per_statement > 0 &&
		stmt_requests >= vapi_max_requests_per_statement)
		return false;
	stmt_requests++;
	return true;
}

/*
 * vapi_budget_statement_refuse
 *		Stop the statement: the request it was about to send would pass
 *		vapi_fdw.max_requests_per_statement.
 */
void
vapi_budget_statement_refuse(void)
{
	ereport(ERROR,
			(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
			 errmsg("statement stopped before sending request " INT64_FORMAT " to the Vapi API",
					stmt_requests + 1),
			 errdetail("vapi_fdw.max_requests_per_statement is %d, and the statement has sent " INT64_FORMAT " requests (retries included).",
					   vapi_max_requests_per_statement, stmt_requests),
			 errhint("Narrow the query (a created_at range, a LIMIT, an id list) or raise vapi_fdw.max_requests_per_statement; EXPLAIN shows the requests each scan is estimated to send.")));
}
