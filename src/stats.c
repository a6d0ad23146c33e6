/*-------------------------------------------------------------------------
 *
 * stats.c
 *		  Cumulative statistics of what vapi_fdw sent to the API and what
 *		  came back, per foreign server and user: requests by method,
 *		  answers by class, transport failures, retries, time backing off
 *		  and waiting for the rate budget, bytes, rows, latency and the
 *		  last error.  Read with the view vapi_fdw_stats, emptied with
 *		  vapi_fdw_stats_reset().
 *
 * With vapi_fdw in shared_preload_libraries the entries live in shared
 * memory and count the requests of every backend since the last reset
 * (or server start); without it each backend counts its own, and the
 * view says so in its "scope" column.  Nothing is ever written to a
 * table, so the view answers in a read-only transaction and on a standby.
 *
 * An entry is found once, when a connection is built (connection.c), and
 * then updated under its own spinlock, once per attempt sent and once per
 * attempt answered; the table of entries is guarded by vapi_fdw's lock.
 *
 * src/stats.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "foreign/foreign.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "vapi_fdw.h"

/* Entries in shared memory: (database, server, user) triples. */
#define VAPI_STATS_MAX			256

/*
 * Latency histogram: bucket i counts answers of at most
 * 0.5 ms * 2^((i + 1) / 4), about 19% apart, up to ~32 s; the last one
 * counts everything slower.
 */
#define VAPI_LATENCY_BUCKETS	64
#define VAPI_LATENCY_BASE_MS	0.5

/* Longest last-error message kept (bytes, with the terminator). */
#define VAPI_ERROR_LEN			256

/* The numbers of an entry, zeroed by a reset. */
typedef struct VapiStatsCounters
{
	int64		requests;
	int64		requests_get;
	int64		requests_post;
	int64		requests_patch;
	int64		requests_delete;
	int64		responses_2xx;
	int64		responses_4xx;	/* 429 not included */
	int64		responses_429;
	int64		responses_5xx;
	int64		responses_other;	/* 1xx, 3xx */
	int64		transport_errors;
	int64		timeouts;
	int64		retries;
	double		backoff_ms;
	int64		rate_waits;
	double		rate_wait_ms;
	int64		bytes_received;
	int64		bytes_sent;
	int64		rows_received;
	int64		answers;		/* latencies counted */
	double		latency_sum_ms;
	double		latency_max_ms;
	int64		latency_hist[VAPI_LATENCY_BUCKETS];
	TimestampTz last_error_at;	/* 0: none */
	int			last_error_status;	/* 0: no HTTP answer */
	char		last_error[VAPI_ERROR_LEN];
} VapiStatsCounters;

struct VapiStatsEntry
{
	Oid			dbid;			/* InvalidOid: unused (or the overflow) */
	Oid			serverid;
	Oid			userid;			/* of the user mapping; 0 for PUBLIC */
	bool		overflow;		/* counts what found no entry of its own */
	slock_t		mutex;			/* guards what follows */
	TimestampTz stats_reset;
	VapiStatsCounters c;
};

typedef struct VapiStatsShared
{
	int			nused;
	VapiStatsEntry entries[VAPI_STATS_MAX + 1]; /* the last: overflow */
} VapiStatsShared;

static VapiStatsShared *shared_stats = NULL;

/* GUC vapi_fdw.track_stats: count requests at all. */
bool		vapi_track_stats = true;

/* Without shared memory: this backend's entries (VapiStatsEntry *). */
static List *local_stats = NIL;

static double vapi_latency_bound(int bucket);
static int	vapi_latency_bucket(double ms);
static double vapi_latency_quantile(const VapiStatsCounters *c, double q);
static VapiStatsEntry *vapi_stats_find(Oid serverid, Oid userid);
static void vapi_stats_lock(VapiStatsEntry *e);
static bool vapi_stats_may_read(const VapiStatsEntry *e);
static void vapi_stats_reset_entry(VapiStatsEntry *e, Oid serverid,
								   TimestampTz now);
static void vapi_stats_unlock(VapiStatsEntry *e);

/*
 * vapi_stats_shmem_size
 *		The shared memory the statistics need.
 */
Size
vapi_stats_shmem_size(void)
{
	return MAXALIGN(sizeof(VapiStatsShared));
}

/*
 * vapi_stats_shmem_init
 *		Create or attach the shared statistics (AddinShmemInitLock held).
 */
void
vapi_stats_shmem_init(void)
{
	bool		found;
	int			i;

	shared_stats = ShmemInitStruct("vapi_fdw stats", sizeof(VapiStatsShared),
								   &found);
	if (found)
		return;
	memset(shared_stats, 0, sizeof(VapiStatsShared));
	for (i = 0; i <= VAPI_STATS_MAX; i++)
		SpinLockInit(&shared_stats->entries[i].mutex);
	shared_stats->entries[VAPI_STATS_MAX].overflow = true;
	shared_stats->entries[VAPI_STATS_MAX].stats_reset = GetCurrentTimestamp();
}

/*
 * vapi_stats_lock / vapi_stats_unlock
 *		Guard an entry's numbers (only shared entries need it).
 */
static void
vapi_stats_lock(VapiStatsEntry *e)
{
	if (shared_stats != NULL)
		SpinLockAcquire(&e->mutex);
}

static void
vapi_stats_unlock(VapiStatsEntry *e)
{
	if (shared_stats != NULL)
		SpinLockRelease(&e->mutex);
}

/*
 * vapi_stats_find
 *		The shared entry of (this database, server, user), or NULL; the
 *		caller holds vapi_fdw's lock.
 */
static VapiStatsEntry *
vapi_stats_find(Oid serverid, Oid userid)
{
	int			i;

	for (i = 0; i < shared_stats->nused; i++)
	{
		VapiStatsEntry *e = &shared_stats->entries[i];

		if (e->dbid == MyDatabaseId && e->serverid == serverid &&
			e->userid == userid)
			return e;
	}
	return NULL;
}

/*
 * vapi_stats_entry
 *		The entry of (this database, server, user), made if there is none.
 *		When the shared table is full, the overflow entry, which the view
 *		shows without a server name.
 */
VapiStatsEntry *
vapi_stats_entry(Oid serverid, Oid userid)
{
	VapiStatsEntry *e;
	ListCell   *lc;

	if (shared_stats == NULL)
	{
		MemoryContext oldcxt;

		foreach(lc, local_stats)
		{
			e = (VapiStatsEntry *) lfirst(lc);
			if (e->serverid == serverid && e->userid == userid)
				return e;
		}
		oldcxt = MemoryContextSwitchTo(TopMemoryContext);
		e = palloc0(sizeof(VapiStatsEntry));
		e->dbid = MyDatabaseId;
		e->serverid = serverid;
		e->userid = userid;
		e->stats_reset = GetCurrentTimestamp();
		local_stats = lappend(local_stats, e);
		MemoryContextSwitchTo(oldcxt);
		return e;
	}

	LWLockAcquire(vapi_shmem_lock(), LW_SHARED);
	e = vapi_stats_find(serverid, userid);
	LWLockRelease(vapi_shmem_lock());
	if (e != NULL)
		return e;

	LWLockAcquire(vapi_shmem_lock(), LW_EXCLUSIVE);
	/* made by another backend meanwhile? */
	e = vapi_stats_find(serverid, userid);
	if (e != NULL)
	{
		LWLockRelease(vapi_shmem_lock());
		return e;
	}
	if (shared_stats->nused < VAPI_STATS_MAX)
	{
		/* no one looks at it before nused counts it: no spinlock yet */
		e = &shared_stats->entries[shared_stats->nused];
		memset(&e->c, 0, sizeof(VapiStatsCounters));
		e->stats_reset = GetCurrentTimestamp();
		e->dbid = MyDatabaseId;
		e->serverid = serverid;
		e->userid = userid;
		/* readers look at nused entries: publish the entry first */
		pg_write_barrier();
		shared_stats->nused++;
	}
	else
		e = &shared_stats->entries[VAPI_STATS_MAX];
	LWLockRelease(vapi_shmem_lock());
	return e;
}

/*
 * vapi_latency_bound
 *		The upper bound of a latency bucket, in milliseconds.
 */
static double
vapi_latency_bound(int bucket)
{
	return VAPI_LATENCY_BASE_MS * pow(2.0, (bucket + 1) / 4.0);
}

/*
 * vapi_latency_bucket
 *		The bucket a latency falls in.
 */
static int
vapi_latency_bucket(double ms)
{
	int			b;

	if (ms <= VAPI_LATENCY_BASE_MS)
		return 0;
	b = (int) ceil(4.0 * log2(ms / VAPI_LATENCY_BASE_MS)) - 1;
	return Max(0, Min(b, VAPI_LATENCY_BUCKETS - 1));
}

/*
 * vapi_latency_quantile
 *		The latency below which a fraction "q" of the answers fell: the
 *		upper bound of its bucket (never more than the largest seen), or
 *		NaN when there were none.
 */
static double
vapi_latency_quantile(const VapiStatsCounters *c, double q)
{
	int64		rank;
	int64		seen = 0;
	int			i;

	if (c->answers == 0)
		return get_float8_nan();
	rank = (int64) ceil(q * c->answers);
	rank = Max(rank, 1);
	for (i = 0; i < VAPI_LATENCY_BUCKETS - 1; i++)
	{
		seen += c->latency_hist[i];
		if (seen >= rank)
			return Min(vapi_latency_bound(i), c->latency_max_ms);
	}
	return c->latency_max_ms;	/* the last bucket has no upper bound */
}

/*
 * vapi_stats_count_event
 *		Count an attempt sent or answered (see VapiHttpEvent).
 *		"error_message" (redacted already) describes an answer that was not
 *		a success, or a transport failure; NULL otherwise.
 */
void
vapi_stats_count_event(VapiStatsEntry *e, const VapiHttpEvent *ev,
					   const char *error_message)
{
	VapiStatsCounters *c = &e->c;
	TimestampTz now = 0;
	int			error_len = 0;

	if (error_message != NULL)
	{
		now = GetCurrentTimestamp();
		/* whole characters only */
		error_len = pg_mbcliplen(error_message, strlen(error_message),
								 VAPI_ERROR_LEN - 1);
	}

	vapi_stats_lock(e);
	if (!ev->answered)
	{
		c->requests++;
		if (strcmp(ev->method, "GET") == 0)
			c->requests_get++;
		else if (strcmp(ev->method, "POST") == 0)
			c->requests_post++;
		else if (strcmp(ev->method, "PATCH") == 0)
			c->requests_patch++;
		else if (strcmp(ev->method, "DELETE") == 0)
			c->requests_delete++;
		if (ev->attempt > 1)
			c->retries++;
		c->backoff_ms += ev->backoff_ms;
		if (ev->budget_ms > 0)
		{
			c->rate_waits++;
			c->rate_wait_ms += ev->budget_ms;
		}
		c->bytes_sent += ev->bytes_sent;
	}
	else
	{
		const VapiHttpResponse *resp = ev->resp;

		switch (resp->result)
		{
			case VAPI_HTTP_OK:
				if (resp->status >= 200 && resp->status < 300)
					c->responses_2xx++;
				else if (resp->status == 429)
					c->responses_429++;
				else if (resp->status >= 400 && resp->status < 500)
					c->responses_4xx++;
				else if (resp->status >= 500)
					c->responses_5xx++;
				else
					c->responses_other++;
				c->answers++;
				c->latency_sum_ms += ev->latency_ms;
				c->latency_max_ms = Max(c->latency_max_ms, ev->latency_ms);
				c->latency_hist[vapi_latency_bucket(ev->latency_ms)]++;
				break;
			case VAPI_HTTP_TIMEOUT:
				c->timeouts++;
				break;
			case VAPI_HTTP_CONNECT_FAILED:
			case VAPI_HTTP_TOO_LARGE:
			case VAPI_HTTP_TRANSPORT_ERROR:
				c->transport_errors++;
				break;
			case VAPI_HTTP_REFUSED:
				break;			/* never sent: not reported */
		}
		c->bytes_received += resp->body_len;
		if (error_message != NULL)
		{
			c->last_error_at = now;
			c->last_error_status = resp->result == VAPI_HTTP_OK ?
				(int) resp->status : 0;
			memcpy(c->last_error, error_message, error_len);
			c->last_error[error_len] = '\0';
		}
	}
	vapi_stats_unlock(e);
}

/*
 * vapi_stats_count_rows
 *		Count phone numbers received (in list pages and lookups).
 */
void
vapi_stats_count_rows(VapiStatsEntry *e, int64 rows)
{
	vapi_stats_lock(e);
	e->c.rows_received += rows;
	vapi_stats_unlock(e);
}

/* Columns of vapi_fdw_stats(), in order. */
enum
{
	VAPI_SC_SERVER,
	VAPI_SC_USER,
	VAPI_SC_SCOPE,
	VAPI_SC_REQUESTS,
	VAPI_SC_GET,
	VAPI_SC_POST,
	VAPI_SC_PATCH,
	VAPI_SC_DELETE,
	VAPI_SC_2XX,
	VAPI_SC_4XX,
	VAPI_SC_429,
	VAPI_SC_5XX,
	VAPI_SC_OTHER,
	VAPI_SC_TRANSPORT,
	VAPI_SC_TIMEOUTS,
	VAPI_SC_RETRIES,
	VAPI_SC_BACKOFF,
	VAPI_SC_RATE_WAITS,
	VAPI_SC_RATE_WAIT_MS,
	VAPI_SC_BYTES_RECEIVED,
	VAPI_SC_BYTES_SENT,
	VAPI_SC_ROWS,
	VAPI_SC_P50,
	VAPI_SC_P95,
	VAPI_SC_MAX,
	VAPI_SC_MEAN,
	VAPI_SC_ERROR_AT,
	VAPI_SC_ERROR_STATUS,
	VAPI_SC_ERROR,
	VAPI_SC_RESET,
	VAPI_SC_NCOLS
};

/*
 * vapi_stats_may_read
 *		May the current user read the last error of the entry: its own
 *		role's (or a PUBLIC mapping's), or any with pg_read_all_stats?
 */
static bool
vapi_stats_may_read(const VapiStatsEntry *e)
{
	Oid			me = GetUserId();

	if (!e->overflow &&
		(!OidIsValid(e->userid) || has_privs_of_role(me, e->userid)))
		return true;
	return has_privs_of_role(me, ROLE_PG_READ_ALL_STATS);
}

/*
 * vapi_stats_row
 *		Put one entry's row into the result of vapi_fdw_stats(); "e" is a
 *		copy of a shared entry, or a backend's own.
 */
static void
vapi_stats_row(ReturnSetInfo *rsinfo, VapiStatsEntry *e)
{
	Datum		values[VAPI_SC_NCOLS];
	bool		nulls[VAPI_SC_NCOLS];
	VapiStatsCounters c;
	TimestampTz reset;
	ForeignServer *server = NULL;
	double		q;

	c = e->c;
	reset = e->stats_reset;

	if (!e->overflow)
	{
		/* a dropped server's numbers are not shown */
		server = GetForeignServerExtended(e->serverid, FSV_MISSING_OK);
		if (server == NULL)
			return;
	}
	else if (c.requests == 0)
		return;

	memset(nulls, false, sizeof(nulls));
	if (server != NULL)
	{
		char	   *user = OidIsValid(e->userid) ?
			GetUserNameFromId(e->userid, true) : "public";

		values[VAPI_SC_SERVER] = CStringGetTextDatum(server->servername);
		if (user != NULL)
			values[VAPI_SC_USER] = CStringGetTextDatum(user);
		else
			nulls[VAPI_SC_USER] = true;
	}
	else
	{
		nulls[VAPI_SC_SERVER] = true;
		nulls[VAPI_SC_USER] = true;
	}
	values[VAPI_SC_SCOPE] = CStringGetTextDatum(shared_stats != NULL ?
												"cluster" : "backend");
	values[VAPI_SC_REQUESTS] = Int64GetDatum(c.requests);
	values[VAPI_SC_GET] = Int64GetDatum(c.requests_get);
	values[VAPI_SC_POST] = Int64GetDatum(c.requests_post);
	values[VAPI_SC_PATCH] = Int64GetDatum(c.requests_patch);
	values[VAPI_SC_DELETE] = Int64GetDatum(c.requests_delete);
	values[VAPI_SC_2XX] = Int64GetDatum(c.responses_2xx);
	values[VAPI_SC_4XX] = Int64GetDatum(c.responses_4xx);
	values[VAPI_SC_429] = Int64GetDatum(c.responses_429);
	values[VAPI_SC_5XX] = Int64GetDatum(c.responses_5xx);
	values[VAPI_SC_OTHER] = Int64GetDatum(c.responses_other);
	values[VAPI_SC_TRANSPORT] = Int64GetDatum(c.transport_errors);
	values[VAPI_SC_TIMEOUTS] = Int64GetDatum(c.timeouts);
	values[VAPI_SC_RETRIES] = Int64GetDatum(c.retries);
	values[VAPI_SC_BACKOFF] = Float8GetDatum(c.backoff_ms);
	values[VAPI_SC_RATE_WAITS] = Int64GetDatum(c.rate_waits);
	values[VAPI_SC_RATE_WAIT_MS] = Float8GetDatum(c.rate_wait_ms);
	values[VAPI_SC_BYTES_RECEIVED] = Int64GetDatum(c.bytes_received);
	values[VAPI_SC_BYTES_SENT] = Int64GetDatum(c.bytes_sent);
	values[VAPI_SC_ROWS] = Int64GetDatum(c.rows_received);
	q = vapi_latency_quantile(&c, 0.5);
	if (isnan(q))
	{
		nulls[VAPI_SC_P50] = nulls[VAPI_SC_P95] = true;
		nulls[VAPI_SC_MAX] = nulls[VAPI_SC_MEAN] = true;
	}
	else
	{
		values[VAPI_SC_P50] = Float8GetDatum(q);
		values[VAPI_SC_P95] = Float8GetDatum(vapi_latency_quantile(&c, 0.95));
		values[VAPI_SC_MAX] = Float8GetDatum(c.latency_max_ms);
		values[VAPI_SC_MEAN] = Float8GetDatum(c.latency_sum_ms / c.answers);
	}
	if (c.last_error_at != 0)
	{
		values[VAPI_SC_ERROR_AT] = TimestampTzGetDatum(c.last_error_at);
		if (c.last_error_status != 0)
			values[VAPI_SC_ERROR_STATUS] = Int32GetDatum(c.last_error_status);
		else
			nulls[VAPI_SC_ERROR_STATUS] = true;
		/* remote text about another role's requests, as pg_stat_activity */
		if (vapi_stats_may_read(e))
			values[VAPI_SC_ERROR] = CStringGetTextDatum(c.last_error);
		else
			values[VAPI_SC_ERROR] = CStringGetTextDatum("<insufficient privilege>");
	}
	else
		nulls[VAPI_SC_ERROR_AT] = nulls[VAPI_SC_ERROR_STATUS] =
			nulls[VAPI_SC_ERROR] = true;
	values[VAPI_SC_RESET] = TimestampTzGetDatum(reset);

	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

PG_FUNCTION_INFO_V1(vapi_fdw_stats);

/*
 * vapi_fdw_stats
 *		SQL function: one row per foreign server and user of this database
 *		(the view vapi_fdw_stats).
 */
Datum
vapi_fdw_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	VapiStatsEntry *copies;
	ListCell   *lc;
	int			i;
	int			n = 0;

	InitMaterializedSRF(fcinfo, 0);
	if (rsinfo->setDesc->natts != VAPI_SC_NCOLS)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the SQL definition of vapi_fdw_stats() does not match the library"),
				 errhint("Run ALTER EXTENSION vapi_fdw UPDATE.")));

	if (shared_stats == NULL)
	{
		foreach(lc, local_stats)
			vapi_stats_row(rsinfo, (VapiStatsEntry *) lfirst(lc));
		return (Datum) 0;
	}

	/* copy the entries, then look names up without holding the lock */
	copies = palloc(sizeof(VapiStatsEntry) * (VAPI_STATS_MAX + 1));
	LWLockAcquire(vapi_shmem_lock(), LW_SHARED);
	for (i = 0; i <= VAPI_STATS_MAX; i++)
	{
		VapiStatsEntry *e = &shared_stats->entries[i];

		if (i < VAPI_STATS_MAX &&
			(i >= shared_stats->nused || e->dbid != MyDatabaseId))
			continue;
		SpinLockAcquire(&e->mutex);
		memcpy(&copies[n++], e, sizeof(VapiStatsEntry));
		SpinLockRelease(&e->mutex);
	}
	LWLockRelease(vapi_shmem_lock());
	for (i = 0; i < n; i++)
		vapi_stats_row(rsinfo, &copies[i]);
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(vapi_fdw_stats_reset);

/*
 * vapi_fdw_stats_reset
 *		SQL function: zero the statistics of one foreign server of this
 *		database (by name), or of all of them (NULL); the overflow entry
 *		goes with "all".
 */
Datum
vapi_fdw_stats_reset(PG_FUNCTION_ARGS)
{
	Oid			serverid = InvalidOid;
	TimestampTz now = GetCurrentTimestamp();
	ListCell   *lc;
	int			i;

	if (!PG_ARGISNULL(0))
		serverid = GetForeignServerByName(text_to_cstring(PG_GETARG_TEXT_PP(0)),
										  false)->serverid;

	if (shared_stats == NULL)
	{
		foreach(lc, local_stats)
			vapi_stats_reset_entry((VapiStatsEntry *) lfirst(lc), serverid, now);
		PG_RETURN_VOID();
	}

	LWLockAcquire(vapi_shmem_lock(), LW_SHARED);
	for (i = 0; i < shared_stats->nused; i++)
		if (shared_stats->entries[i].dbid == MyDatabaseId)
			vapi_stats_reset_entry(&shared_stats->entries[i], serverid, now);
	vapi_stats_reset_entry(&shared_stats->entries[VAPI_STATS_MAX], serverid, now);
	LWLockRelease(vapi_shmem_lock());
	PG_RETURN_VOID();
}

/*
 * vapi_stats_reset_entry
 *		Zero an entry of this database if it is of the server given
 *		(InvalidOid: of any server; the overflow entry goes with "any").
 */
static void
vapi_stats_reset_entry(VapiStatsEntry *e, Oid serverid, TimestampTz now)
{
	if (OidIsValid(serverid) && (e->overflow || e->serverid != serverid))
		return;
	vapi_stats_lock(e);
	memset(&e->c, 0, sizeof(VapiStatsCounters));
	e->stats_reset = now;
	vapi_stats_unlock(e);
}
