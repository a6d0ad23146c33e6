/*-------------------------------------------------------------------------
 *
 * scan.c
 *		  The scan engine: what a planned ForeignScan (and ANALYZE) sends to
 *		  the API and how its answers become rows.
 *
 * A scan is one of three kinds:
 *   - a list scan pages through GET /v2/phone-number ordered by createdAt,
 *     with the time-range and search quals that could be pushed as query
 *     parameters.  Paging is by keyset on createdAt: after a page, the next
 *     request starts at the millisecond where it ended (createdAtLt one
 *     millisecond after it when descending, createdAtGe when ascending) and
 *     the rows of that millisecond that were already returned are dropped
 *     by id.  Unlike offset paging this returns every row that exists for
 *     the whole scan exactly once, even while other rows are created or
 *     deleted.  After its first page, a scan without a LIMIT splits the
 *     rest of its range into disjoint createdAt windows, each paged by
 *     keyset on its own and all at once (VapiWindow).
 *   - a lookup sends GET /phone-number/{id} for each id of an id = value,
 *     id = ANY(array) or (in a parameterized path) id = outer.column qual,
 *     several at once (VapiLookupSlot).
 *   - a count pushed down reads metadata.totalItems of one request.
 * Rows are returned as each answer arrives.  A window's next page is
 * requested as soon as its current answer is in (before it is parsed, from
 * a keyset bound read off the raw answer and checked afterwards), so the
 * network works while rows are returned; memory is bounded by two pages
 * per window.  Every qual is also checked locally, by the executor.
 *
 * Each list page is also checked for drift (VapiDrift): a column whose key
 * every phone number should carry but none of a whole page did means the
 * API renamed or removed the field, which would otherwise read as NULL
 * without a word; the table's option field_drift makes that a WARNING
 * (once per table and backend), an ERROR, or nothing.
 *
 * Its interface: vapi_scan_begin, vapi_scan_next, vapi_scan_rescan and
 * vapi_scan_end; what EXPLAIN shows (vapi_scan_explain_requests and the
 * accessors); vapi_sample_rows for ANALYZE; and the rows an UPDATE of the
 * same statement needs (vapi_scan_keep_keys, vapi_scan_kept_object).
 *
 * src/scan.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/sysattr.h"
#include "access/table.h"
#include "catalog/pg_am.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "commands/explain.h"
#if PG_VERSION_NUM >= 180000
#include "commands/explain_format.h"
#include "commands/explain_state.h"
#endif
#include "commands/vacuum.h"
#include "executor/executor.h"
#include "foreign/fdwapi.h"
#include "foreign/foreign.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "optimizer/paths.h"
#include "optimizer/planmain.h"
#include "optimizer/restrictinfo.h"
#include "parser/parsetree.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/ruleutils.h"
#include "utils/sampling.h"
#include "utils/timestamp.h"

#include "vapi_fdw.h"

/*
 * A list request, and which rows of its page were returned before (at the
 * keyset's millisecond, by id): when the next page is requested, that is
 * known; when it arrives, it becomes the current one in one assignment.
 */
typedef struct VapiPageRequest
{
	char	   *path;			/* path and query */
	int			limit;			/* its page size */
	int			page;			/* its page number, 1 = none sent */
	bool		drop_seen;		/* drop the rows returned before: */
	int64		seen_ms;		/* those at this millisecond */
	List	   *seen_ids;		/* with these ids */
} VapiPageRequest;

/* Where keyset paging stands (in bound_cxt). */
typedef struct VapiKeyset
{
	bool		done;			/* no further page */
	int			page_no;		/* within a run of equal timestamps */
	char	   *bound;			/* keyset bound of the next request */
	int64		bound_ts;		/* bound, as microseconds since epoch */
	List	   *seen_at_bound;	/* ids already returned at bound_ts */
	char	   *prev_first_id;	/* to detect paging without progress */
	char	   *prev_last_id;
} VapiKeyset;

/*
 * One createdAt window of a list scan: the rows with createdAt in [lo, hi)
 * (either end may be open), paged through by keyset on its own.  A scan
 * starts with one window over its whole range; once its first page tells
 * how many rows there are, it is split so that several windows page at
 * once (see vapi_split_windows).  Windows are disjoint and half-open, so
 * no phone number can be in two; each row is checked against its window.
 */
typedef struct VapiWindow
{
	bool		has_lo;			/* createdAtGe lo */
	int64		lo;				/* Unix microseconds, a millisecond */
	bool		has_hi;			/* createdAtLt hi */
	int64		hi;

	MemoryContext page_cxt;		/* the current page: body and parsed tree */
	MemoryContext next_cxt;		/* the next page, while it is fetched */
	MemoryContext bound_cxt;	/* keyset bound and the ids seen at it */

	/* the current page, and the request it answers */
	VapiPage   *page;
	VapiPageInfo info;
	int			next_item;		/* next item of the page to return */
	VapiPageRequest cur;

	/* the window's handle, and its next page's request under way */
	VapiHttp   *http;
	bool		prefetching;	/* requested in advance, not yet needed */
	VapiPageRequest pending;	/* path in next_cxt */

	VapiKeyset	keyset;

	/* the limit and page of the request built last */
	int			built_limit;
	int			built_page;
	bool		skip_bound_ms;	/* the next page starts before the bound's ms */

	int64		left;			/* rows after the current page, or -1 */
	bool		finished;		/* every row returned */
	bool		span_ok;		/* the page's span is known: */
	int64		span_first;		/* createdAt of its first row */
	int64		span_last;		/* and of its last */
} VapiWindow;

/*
 * The drift check of a scan: which columns' keys were seen, and in how
 * many phone numbers that should have carried them.
 */
typedef enum VapiDriftKind
{
	VAPI_DRIFT_SKIP,			/* an optional field, or attrs: not checked */
	VAPI_DRIFT_ALWAYS,			/* every phone number carries it */
	VAPI_DRIFT_PROVIDER,		/* those of some providers carry it */
	VAPI_DRIFT_UNKNOWN			/* a key vapi_fdw does not know: judged on
								 * a full page only (it may be optional) */
} VapiDriftKind;

typedef struct VapiDrift
{
	int			mode;			/* VAPI_DRIFT_WARNING, _ERROR or _OFF */
	bool		done;			/* nothing is left to check */
	int64		objects;		/* phone numbers examined */
	bool		full_page;		/* a page as long as asked was examined */
	VapiDriftKind *kind;		/* per column */
	bool	   *present;		/* per column: its key was seen */
	int64	   *expected;		/* per column: numbers that should carry it */
} VapiDrift;

/* Foreign tables this backend has warned about (their Oids). */
static List *drift_warned = NIL;

/* Concurrent lookups: one request per slot, consumed in id order. */
typedef struct VapiLookupSlot
{
	VapiHttp   *http;
	MemoryContext cxt;			/* its request and answer */
	char	   *path;
	bool		busy;			/* a request was started */
} VapiLookupSlot;

/*
 * Executor state of a scan.  Also used, without a ForeignScanState, by
 * ANALYZE.
 */
struct VapiScanState
{
	Relation	rel;
	char	   *relname;
	VapiConn   *conn;
	VapiColumn *columns;		/* the retrieved columns */
	int			ncolumns;

	VapiScanPlan plan;			/* the decoded plan */
	List	   *operands;		/* ExprStates of fdw_exprs */
	ExprContext *econtext;

	MemoryContext scan_cxt;		/* lives as long as the scan */
	MemoryContext runtime_cxt;	/* values computed when the scan starts */

	/* computed when the scan (re)starts */
	bool		started;
	bool		empty;			/* no request can return a row */
	const char *time[VAPI_NFIELDS][VAPI_NOPS];	/* bounds to send */
	List	   *ids;			/* lookups: the ids to get */
	int			next_id;
	char	   *first_request;	/* for EXPLAIN ANALYZE (in scan_cxt: it
								 * outlives rescans) */
	int64		returned;		/* rows returned so far */

	/* list scans: the windows, in the order of the scan */
	VapiWindow **windows;
	int			nwindows;
	int			maxwindows;		/* allocated */
	VapiWindow *w;				/* the one whose page is being returned */
	List	   *spare_http;		/* handles of finished windows */
	int			windows_made;	/* for EXPLAIN ANALYZE */
	int			max_concurrent;

	/* lookups: requests in flight, slot i serves ids i, i + n, ... */
	VapiLookupSlot *slots;
	int			nslots;
	int			next_sent;		/* index of the next id to request */

	/* a statement does not see the numbers it created itself */
	CommandId	curcid;			/* of the scan's snapshot */

	/* a count pushed down: done, and where the number came from */
	bool		counted;
	int			count_source;	/* 1: metadata.totalItems, 2: rows counted */

	bool		reordered;		/* the server's order was not the one asked */
	bool		warned_retention;
	bool		retention_cut;	/* the metadata said the window cuts it */
	VapiPageInfo retention_info;	/* what it said */
	int			explain_lacks;	/* for EXPLAIN without a connection */

	/* lookups: the ids returned already (an id is returned once) */
	List	   *returned_ids;

	/* for an UPDATE of this table: parts of each row returned */
	List	   *keep_keys;		/* top-level keys to keep, or NIL */
	HTAB	   *kept;			/* VapiKeptObject by id */

	VapiDrift	drift;
	VapiStats	stats;
};

/* What vapi_find_scan_walker looks for, and what it found. */
typedef struct VapiFindScan
{
	Index		scanrelid;
	ForeignScanState *found;
} VapiFindScan;

/* The kept part of a phone number returned by a scan. */
typedef struct VapiKeptObject
{
	char		id[VAPI_ID_LEN + 1];	/* hash key */
	Jsonb	   *object;
} VapiKeptObject;

static void vapi_scan_init(VapiScanState *st, Relation rel, Oid userid,
						   List *retrieved_attrs, MemoryContext parent);
static VapiWindow *vapi_window_add(VapiScanState *st, int pos);
static void vapi_window_release(VapiScanState *st, VapiWindow *w);
static void vapi_drop_windows(VapiScanState *st);
static void vapi_stop_lookups(VapiScanState *st);
static VapiWindow *vapi_next_window(VapiScanState *st);
static void vapi_split_windows(VapiScanState *st, VapiWindow *w);
static void vapi_rebalance(VapiScanState *st);
static void vapi_check_in_window(VapiWindow *w, VapiItem *item);
static void vapi_page_span(VapiWindow *w);
static VapiWindow *vapi_window_split(VapiScanState *st, VapiWindow *w,
									 int pos, int64 cut);
static bool vapi_window_cut(VapiScanState *st, VapiWindow *w, double rows,
							int64 *cut);
static void vapi_lookup_send(VapiScanState *st);
static VapiItem *vapi_scan_next_item(VapiScanState *st);
static bool vapi_count_matches(VapiScanState *st, VapiItem *item);
static void vapi_scan_start(VapiScanState *st, List *dpcontext,
							bool useprefix, List **display);
static bool vapi_scan_next_row(VapiScanState *st, Datum *values, bool *nulls);
static void vapi_scan_error_callback(void *arg);
static void vapi_scan_keep(VapiScanState *st, VapiItem *item, const char *id);
static bool vapi_find_scan_walker(PlanState *ps, void *context);
static char *vapi_next_list_request(VapiScanState *st, VapiWindow *w);
static void vapi_advance_keyset(VapiScanState *st, VapiWindow *w);
static void vapi_fetch_page(VapiScanState *st, VapiWindow *w);
static void vapi_receive_page(VapiScanState *st, VapiWindow *w,
							  VapiHttpResponse *resp);
static void vapi_check_progress(VapiScanState *st, VapiWindow *w, int n);
static bool vapi_page_has_more(VapiScanState *st, VapiWindow *w, int n);
static void vapi_request_after_page(VapiScanState *st, VapiWindow *w);
static int	vapi_lacking_param(const VapiHttpResponse *resp, const char *path);
static bool vapi_list_fallback(VapiScanState *st, const VapiHttpResponse *resp,
							   const char *path);
static void vapi_check_page_order(VapiScanState *st, VapiWindow *w);
static void vapi_check_retention(VapiScanState *st, VapiWindow *w, bool at_end);
static bool vapi_fetch_lookup(VapiScanState *st);
static void vapi_request_error_callback(void *arg);
static bool vapi_seen(VapiWindow *w, const char *id);
static bool vapi_in_id_list(List *ids, const char *id);
static void vapi_start_page_request(VapiScanState *st, VapiWindow *w);
static void vapi_start_guessed_request(VapiScanState *st, VapiWindow *w,
									   const char *guess);
static void vapi_set_next_filter(VapiWindow *w);
static bool vapi_raw_contains(const char *body, size_t len, const char *text);
static char *vapi_raw_last_string(const char *body, size_t len,
								  const char *key);
static bool vapi_contains_exec_param(Node *node, void *context);
static void vapi_count_received(VapiScanState *st, int n);
static void vapi_drift_init(VapiScanState *st);
static void vapi_drift_check(VapiScanState *st, VapiWindow *w);
static void vapi_drift_report(VapiScanState *st);
static bool vapi_drift_absent(VapiDrift *d, int c);

/*
 * vapi_scan_begin
 *		Set up the scan of a ForeignScanState from its decoded plan, in the
 *		current memory context.  Nothing is sent until the first row is
 *		asked for; with an invalid "userid" (plain EXPLAIN) there is no
 *		connection at all.
 */
VapiScanState *
vapi_scan_begin(ForeignScanState *node, const VapiScanPlan *plan, Oid userid)
{
	ForeignScan *fsplan = (ForeignScan *) node->ss.ps.plan;
	EState	   *estate = node->ss.ps.state;
	MemoryContext scan_cxt;
	VapiScanState *st;

	/* everything of the scan lives under one context of the query */
	scan_cxt = AllocSetContextCreate(estate->es_query_cxt, "vapi_fdw scan",
									 ALLOCSET_DEFAULT_SIZES);
	st = MemoryContextAllocZero(scan_cxt, sizeof(VapiScanState));
	/* a count pushed down scans no relation: its table is in fs_relids */
	st->rel = plan->mode == VAPI_MODE_COUNT ?
#if PG_VERSION_NUM >= 180000
		ExecGetRangeTableRelation(estate,
								  (Index) bms_next_member(fsplan->fs_relids, -1),
								  false) :
#else
		ExecGetRangeTableRelation(estate,
								  (Index) bms_next_member(fsplan->fs_relids, -1)) :
#endif
		node->ss.ss_currentRelation;
	st->relname = pstrdup(RelationGetRelationName(st->rel));
	st->plan = *plan;
	st->operands = ExecInitExprList(fsplan->fdw_exprs, (PlanState *) node);
	st->econtext = node->ss.ps.ps_ExprContext;
	st->curcid = estate->es_snapshot != NULL ?
		estate->es_snapshot->curcid : InvalidCommandId;
	st->scan_cxt = scan_cxt;
	st->runtime_cxt = AllocSetContextCreate(scan_cxt, "vapi_fdw runtime",
											ALLOCSET_SMALL_SIZES);
	if (OidIsValid(userid))
		vapi_scan_init(st, st->rel, userid, plan->retrieved_attrs, scan_cxt);
	return st;
}

/*
 * vapi_scan_end
 *		Finish a scan: abandon any request still under way and free the
 *		pages.  The contexts go with the query; the connection stays
 *		cached for the next query.
 */
void
vapi_scan_end(VapiScanState *st)
{
	if (st == NULL || st->conn == NULL)
		return;
	vapi_stop_lookups(st);
	vapi_drop_windows(st);
}

/*
 * vapi_scan_explain_requests
 *		The requests the scan sends, as EXPLAIN shows them: values only
 *		known while the plan runs are deparsed with "dpcontext".  Without a
 *		connection, what an open one found the deployment of "serverid"
 *		to lack (for "userid") decides their form.
 */
List *
vapi_scan_explain_requests(VapiScanState *st, Oid serverid, Oid userid,
						   List *dpcontext, bool useprefix)
{
	List	   *requests = NIL;

	if (st->conn == NULL)
		st->explain_lacks = vapi_cached_api_lacks(serverid, userid);
	vapi_scan_start(st, dpcontext, useprefix, &requests);
	return requests;
}

/*
 * vapi_scan_first_request
 *		The first request the scan sent (path and query), or NULL.
 */
const char *
vapi_scan_first_request(VapiScanState *st)
{
	return st->first_request;
}

/*
 * vapi_scan_reordered
 *		Did the server return pages in another order than the one asked
 *		for (and the scan followed it)?
 */
bool
vapi_scan_reordered(VapiScanState *st)
{
	return st->reordered;
}

/*
 * vapi_scan_windows
 *		How many createdAt windows the scan used (1: it was not split).
 */
int
vapi_scan_windows(VapiScanState *st)
{
	return Max(st->windows_made, 1);
}

/*
 * vapi_scan_count_source
 *		Where a count pushed down came from: 0 not counted yet, 1
 *		metadata.totalItems, 2 the rows, counted (no totalItems).
 */
int
vapi_scan_count_source(VapiScanState *st)
{
	return st->count_source;
}

/*
 * vapi_scan_relation
 *		The foreign table the scan reads.
 */
Relation
vapi_scan_relation(VapiScanState *st)
{
	return st->rel;
}

/*
 * vapi_scan_stats
 *		What the scan actually sent and received.
 */
const VapiStats *
vapi_scan_stats(VapiScanState *st)
{
	return &st->stats;
}

/*
 * vapi_scan_init
 *		Connect and set up what every scan needs: the column map, the
 *		memory contexts and the first window (over the whole range), all
 *		in or under "parent".
 */
static void
vapi_scan_init(VapiScanState *st, Relation rel, Oid userid,
			   List *retrieved_attrs, MemoryContext parent)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(parent);
	ForeignTable *table = GetForeignTable(RelationGetRelid(rel));
	ForeignServer *server = GetForeignServer(table->serverid);

	st->rel = rel;
	st->relname = pstrdup(RelationGetRelationName(rel));
	st->conn = vapi_get_connection(server, userid);
	if (st->plan.page_size <= 0)
		st->plan.page_size = vapi_connection_options(st->conn)->page_size;
	st->max_concurrent = vapi_connection_options(st->conn)->max_concurrent;
	st->columns = vapi_build_columns(rel, retrieved_attrs, &st->ncolumns);
	st->scan_cxt = parent;
	vapi_drift_init(st);
	if (st->runtime_cxt == NULL)
		st->runtime_cxt = AllocSetContextCreate(parent, "vapi_fdw runtime",
												ALLOCSET_SMALL_SIZES);
	MemoryContextSwitchTo(oldcxt);
	st->w = vapi_window_add(st, 0);
}

/*
 * vapi_window_add
 *		A new window at position "pos" of the scan's windows, over the
 *		whole range (the caller narrows it), with a handle of its own.
 */
static VapiWindow *
vapi_window_add(VapiScanState *st, int pos)
{
	MemoryContext oldcxt = MemoryContextSwitchTo(st->scan_cxt);
	VapiWindow *w = palloc0(sizeof(VapiWindow));
	int			i;

	w->page_cxt = AllocSetContextCreate(st->scan_cxt, "vapi_fdw page",
										ALLOCSET_DEFAULT_SIZES);
	w->next_cxt = AllocSetContextCreate(st->scan_cxt, "vapi_fdw next page",
										ALLOCSET_DEFAULT_SIZES);
	w->bound_cxt = AllocSetContextCreate(st->scan_cxt, "vapi_fdw keyset bound",
										 ALLOCSET_SMALL_SIZES);
	if (st->spare_http != NIL)
	{
		w->http = linitial(st->spare_http);
		st->spare_http = list_delete_first(st->spare_http);
	}
	else
		w->http = vapi_connection_acquire(st->conn, st->scan_cxt);
	w->keyset.page_no = 1;
	w->left = -1;

	if (st->nwindows == st->maxwindows)
	{
		st->maxwindows = Max(4, st->maxwindows * 2);
		st->windows = st->windows == NULL ?
			palloc(sizeof(VapiWindow *) * st->maxwindows) :
			repalloc(st->windows, sizeof(VapiWindow *) * st->maxwindows);
	}
	for (i = st->nwindows; i > pos; i--)
		st->windows[i] = st->windows[i - 1];
	st->windows[pos] = w;
	st->nwindows++;
	st->windows_made++;
	MemoryContextSwitchTo(oldcxt);
	return w;
}

/*
 * vapi_window_release
 *		A window is finished: free its pages and keep its handle for the
 *		next window.
 */
static void
vapi_window_release(VapiScanState *st, VapiWindow *w)
{
	MemoryContext oldcxt;

	if (w->http == NULL)
		return;
	if (w->prefetching)
		vapi_http_abort(w->http);
	w->prefetching = false;
	w->finished = true;
	w->page = NULL;
	MemoryContextReset(w->page_cxt);
	MemoryContextReset(w->next_cxt);
	oldcxt = MemoryContextSwitchTo(st->scan_cxt);
	st->spare_http = lappend(st->spare_http, w->http);
	MemoryContextSwitchTo(oldcxt);
	w->http = NULL;
}

/*
 * vapi_drop_windows
 *		Forget every window (their requests were stopped), keeping their
 *		handles.
 */
static void
vapi_drop_windows(VapiScanState *st)
{
	int			i;

	for (i = 0; i < st->nwindows; i++)
	{
		VapiWindow *w = st->windows[i];

		vapi_window_release(st, w);
		MemoryContextDelete(w->page_cxt);
		MemoryContextDelete(w->next_cxt);
		MemoryContextDelete(w->bound_cxt);
		pfree(w);
	}
	st->nwindows = 0;
	st->w = NULL;
}

/*
 * vapi_stop_lookups
 *		Abandon the lookups still under way (vapi_drop_windows does the
 *		same for the windows' requests).
 */
static void
vapi_stop_lookups(VapiScanState *st)
{
	int			i;

	for (i = 0; i < st->nslots; i++)
	{
		if (st->slots[i].busy)
			vapi_http_abort(st->slots[i].http);
		st->slots[i].busy = false;
	}
}

/*
 * vapi_contains_exec_param
 *		Does the expression use a PARAM_EXEC parameter (a value only known
 *		while the plan runs)?
 */
static bool
vapi_contains_exec_param(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, Param) && ((Param *) node)->paramkind == PARAM_EXEC)
		return true;
	return expression_tree_walker(node, vapi_contains_exec_param, context);
}

/*
 * vapi_scan_start
 *		Compute what the scan sends, from the values of the pushed quals:
 *		the tightest time bounds per field, or the ids to look up.  A qual
 *		whose value is NULL admits no row, and then nothing is sent.
 *
 * For EXPLAIN (a "dpcontext" is given), values that are only known while
 * the plan runs are shown as the expression they come from, deparsed with
 * it; "display", if given, gets the requests as text.
 */
static void
vapi_scan_start(VapiScanState *st, List *dpcontext, bool useprefix,
				List **display)
{
	bool		explain_only = dpcontext != NIL;
	MemoryContext oldcxt;
	VapiTimeBounds bounds;
	ListCell   *lc;

	MemoryContextReset(st->runtime_cxt);
	oldcxt = MemoryContextSwitchTo(st->runtime_cxt);
	vapi_bounds_init(&bounds);
	st->ids = NIL;
	st->next_id = 0;
	st->empty = (st->plan.limit == 0);

	foreach(lc, st->plan.quals)
	{
		VapiPlanQual *q = (VapiPlanQual *) lfirst(lc);
		ExprState  *es = list_nth(st->operands, q->operand);
		Expr	   *expr = es->expr;
		Datum		value;
		bool		isnull;
		int64		ts;
		Oid			type = exprType((Node *) expr);
		MemoryContext evalcxt;

		if (explain_only && vapi_contains_exec_param((Node *) expr, NULL))
		{
			/* Known only at run time: show where it comes from. */
			char	   *name = strVal(list_nth(st->plan.operand_names, q->operand));
			char	   *text = psprintf("$(%s)", name[0] != '\0' ? name :
										deparse_expression((Node *) expr,
														   dpcontext, useprefix,
														   false));

			if (q->kind == VAPI_QUAL_TIME)
				vapi_bounds_add_placeholder(&bounds, q->field, q->strategy, text);
			else
				st->ids = lappend(st->ids, makeString(text));
			continue;
		}

		evalcxt = MemoryContextSwitchTo(st->econtext->ecxt_per_tuple_memory);
		value = ExecEvalExpr(es, st->econtext, &isnull);
		MemoryContextSwitchTo(evalcxt);

		if (isnull)
		{
			/* "x = NULL", "x > NULL", "x = ANY(NULL)": never true */
			st->empty = true;
			continue;
		}

		if (q->kind == VAPI_QUAL_TIME)
		{
			/* no useful bound (out of range, infinite): the filter decides */
			if (vapi_time_value(value, type, &ts))
				vapi_bounds_add(&bounds, q->field, q->strategy, ts);
			else if (TIMESTAMP_NOT_FINITE(ts) &&
					 (q->strategy == BTEqualStrategyNumber ||
					  ((q->strategy == BTLessStrategyNumber ||
						q->strategy == BTLessEqualStrategyNumber) &&
					   TIMESTAMP_IS_NOBEGIN(ts)) ||
					  ((q->strategy == BTGreaterStrategyNumber ||
						q->strategy == BTGreaterEqualStrategyNumber) &&
					   TIMESTAMP_IS_NOEND(ts))))
				st->empty = true;	/* "< -infinity": no time is */
		}
		else if (q->kind == VAPI_QUAL_ID_EQ || q->kind == VAPI_QUAL_ID_ANY)
		{
			List	   *values = NIL;
			ListCell   *vc;

			if (q->kind == VAPI_QUAL_ID_EQ)
				values = list_make1(DatumGetPointer(value));
			else
			{
				ArrayType  *arr = DatumGetArrayTypeP(value);
				int16		typlen;
				bool		typbyval;
				char		typalign;
				Datum	   *elems;
				bool	   *enulls;
				int			n;
				int			i;

				get_typlenbyvalalign(ARR_ELEMTYPE(arr), &typlen, &typbyval,
									 &typalign);
				deconstruct_array(arr, ARR_ELEMTYPE(arr), typlen, typbyval,
								  typalign, &elems, &enulls, &n);
				for (i = 0; i < n; i++)
					if (!enulls[i])
						values = lappend(values, DatumGetPointer(elems[i]));
				type = ARR_ELEMTYPE(arr);
			}

			foreach(vc, values)
			{
				char	   *id = vapi_datum_id(PointerGetDatum(lfirst(vc)), type, NULL);

				if (id != NULL && !list_member(st->ids, makeString(id)))
					st->ids = lappend(st->ids, makeString(id));
			}
		}
	}

	if (!vapi_bounds_params(&bounds, st->time))
		st->empty = true;		/* an empty range: nothing to send */

	/* A lookup of no valid id gets nothing. */
	if (st->plan.mode == VAPI_MODE_LOOKUP && st->ids == NIL)
		st->empty = true;

	if (display != NULL)
	{
		List	   *out = NIL;

		if (st->empty)
			out = lappend(out, pstrdup("none (the quals admit no row)"));
		else if (st->plan.mode != VAPI_MODE_LOOKUP)
			out = lappend(out, psprintf("GET %s", vapi_next_list_request(st, st->w)));
		else
		{
			foreach(lc, st->ids)
				out = lappend(out, psprintf("GET %s/%s", VAPI_PATH_ITEM,
											strVal(lfirst(lc))));
		}
		*display = out;
	}
	MemoryContextSwitchTo(oldcxt);
}

/*
 * vapi_tighten
 *		Replace the time parameter in "slot" by "ts" (Unix microseconds) if
 *		that is tighter: later for a lower bound, earlier for an upper one.
 *		A placeholder (EXPLAIN) is kept.
 */
static void
vapi_tighten(const char **slot, int64 ts, bool lower)
{
	int64		mine;

	if (*slot != NULL && (*slot)[0] == '$')
		return;
	if (*slot == NULL || !vapi_parse_timestamp(*slot, &mine) ||
		(lower ? ts > mine : ts < mine))
		*slot = vapi_format_unix_us(ts);
}

/*
 * vapi_next_list_request
 *		The path and query string of the next list page of window "w" (or,
 *		with no window, of the first page): the pushed quals, the window's
 *		range, the keyset bound folded into the createdAt bound on the
 *		paging side, and a limit no larger than the rows still needed.
 */
static char *
vapi_next_list_request(VapiScanState *st, VapiWindow *w)
{
	VapiListRequest req;
	int			slot = st->plan.ascending ? VAPI_OP_GE : VAPI_OP_LT;
	int			lacks = st->conn != NULL ? vapi_connection_api_lacks(st->conn) :
		st->explain_lacks;
	List	   *seen = w != NULL ? w->keyset.seen_at_bound : NIL;

	memset(&req, 0, sizeof(req));
	req.v1 = (lacks & VAPI_API_NO_V2) != 0;
	req.send_sort_order = (lacks & VAPI_API_NO_SORT_ORDER) == 0;
	req.limit = st->plan.page_size;
	if (st->plan.limit >= 0)
	{
		/* rows still needed, plus those the bound will repeat */
		int64		need = st->plan.limit - st->returned + list_length(seen);

		req.limit = (int) Min((int64) st->plan.page_size, Max(need, 1));
	}
	/* a count reads the metadata of one row, unless it lists the rows */
	if (st->plan.mode == VAPI_MODE_COUNT && st->count_source != 2)
		req.limit = 1;
	req.page = w != NULL ? w->keyset.page_no : 1;
	req.ascending = st->plan.ascending;
	req.search = (lacks & (VAPI_API_NO_SEARCH | VAPI_API_NO_V2)) ? NULL :
		st->plan.search;
	memcpy(req.time, st->time, sizeof(req.time));

	if (req.v1 && st->plan.ascending)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("this deployment of the Vapi API cannot list phone numbers oldest first"),
				 errdetail("It has no GET /v2/phone-number, and GET /phone-number lists newest first only."),
				 errhint("Leave out ORDER BY created_at ASC (or sort a subquery's rows).")));
	if (!req.v1 && !req.send_sort_order && st->plan.ascending)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("this deployment of the Vapi API cannot list phone numbers oldest first"),
				 errdetail("It refuses the \"sortOrder\" parameter."),
				 errhint("Leave out ORDER BY created_at ASC (or sort a subquery's rows).")));
	if (req.page > 1 && (lacks & (VAPI_API_NO_PAGE | VAPI_API_NO_V2)))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("more phone numbers were created in one millisecond than fit on a page, and this deployment of the Vapi API cannot page through them"),
				 errdetail("The deployment takes no \"page\" parameter."),
				 errhint("Raise page_size on the server (at most 1000).")));

	if (w == NULL)
		return vapi_deparse_list_request(&req);

	/* the window's range, where it is tighter than the quals' */
	if (w->has_lo)
		vapi_tighten(&req.time[VAPI_FIELD_CREATED][VAPI_OP_GE], w->lo, true);
	if (w->has_hi)
		vapi_tighten(&req.time[VAPI_FIELD_CREATED][VAPI_OP_LT], w->hi, false);

	/*
	 * The keyset bound: the millisecond where the previous page ended.
	 * Descending, "createdAtLt" the millisecond after it (numbers stored
	 * later within that millisecond are not lost); ascending,
	 * "createdAtGe" it.  The rows of that millisecond already returned are
	 * dropped by id.
	 */
	if (w->keyset.bound != NULL)
	{
		int64		key = st->plan.ascending ? w->keyset.bound_ts :
			w->skip_bound_ms ? w->keyset.bound_ts : w->keyset.bound_ts + 1000;

		vapi_tighten(&req.time[VAPI_FIELD_CREATED][slot], key,
					 st->plan.ascending);
	}
	w->built_limit = req.limit;
	w->built_page = req.page;
	return vapi_deparse_list_request(&req);
}

/*
 * vapi_request_error_callback
 *		Error context while an answer is parsed: the request it answers.
 */
static void
vapi_request_error_callback(void *arg)
{
	errcontext("Vapi request: GET %s", (const char *) arg);
}

/*
 * vapi_advance_keyset
 *		Work out the request after the current page: move the keyset bound
 *		to the millisecond of the page's last row and remember the ids in
 *		that millisecond, so that the next page (which starts at it again)
 *		does not return them twice.  Called once the page has been
 *		returned, before it is freed.
 */
static void
vapi_advance_keyset(VapiScanState *st, VapiWindow *w)
{
	MemoryContext oldcxt;
	VapiItem   *last;
	const char *last_created;
	int64		last_ts;
	int			i;

	if (w->page == NULL || w->info.count == 0)
		return;
	last = vapi_json_page_item(w->page, w->info.count - 1);
	last_created = vapi_json_item_string(last, "createdAt");
	if (last_created == NULL || !vapi_parse_timestamp(last_created, &last_ts))
	{
		/* Cannot move the bound: step to the next page at the same one. */
		w->keyset.page_no++;
		return;
	}
	last_ts = vapi_ms_floor(last_ts);

	if (w->keyset.bound == NULL || last_ts != w->keyset.bound_ts)
	{
		const char *first_created;
		int64		first_ts;

		MemoryContextReset(w->bound_cxt);
		w->keyset.seen_at_bound = NIL;
		w->keyset.bound = MemoryContextStrdup(w->bound_cxt, last_created);
		w->keyset.bound_ts = last_ts;

		/*
		 * If the whole page is in the new bound's millisecond, the first
		 * page at it is this one again: start the run at its second page.
		 */
		first_created = vapi_json_item_string(vapi_json_page_item(w->page, 0),
											  "createdAt");
		w->keyset.page_no = 1;
		w->skip_bound_ms = false;
		if (first_created != NULL &&
			vapi_parse_timestamp(first_created, &first_ts) &&
			vapi_ms_floor(first_ts) == last_ts)
		{
			/*
			 * v1 cannot page within a millisecond; a short page there means
			 * the millisecond is exhausted, so the next page starts before
			 * it.
			 */
			if ((vapi_connection_api_lacks(st->conn) & VAPI_API_NO_V2) &&
				w->info.count < w->cur.limit)
				w->skip_bound_ms = true;
			else
				w->keyset.page_no = 2;
		}
	}
	else if ((vapi_connection_api_lacks(st->conn) & VAPI_API_NO_V2) &&
			 w->info.count < w->cur.limit)
	{
		/* v1: a short page in the same millisecond exhausts it */
		w->skip_bound_ms = true;
	}
	else
	{
		/* A run in one millisecond longer than a page: step through it. */
		w->keyset.page_no++;
	}

	/* The ids in the bound's millisecond, from the end of the page back. */
	oldcxt = MemoryContextSwitchTo(w->bound_cxt);
	for (i = w->info.count - 1; i >= 0; i--)
	{
		VapiItem   *item = vapi_json_page_item(w->page, i);
		const char *created = vapi_json_item_string(item, "createdAt");
		const char *id = vapi_json_item_id(item);
		int64		ts;

		if (created == NULL || !vapi_parse_timestamp(created, &ts) ||
			vapi_ms_floor(ts) != w->keyset.bound_ts)
			break;
		if (id != NULL && !vapi_seen(w, id))
			w->keyset.seen_at_bound = lappend(w->keyset.seen_at_bound, pstrdup(id));
	}
	MemoryContextSwitchTo(oldcxt);
}

/*
 * vapi_start_page_request
 *		Start the request for the next list page into next_cxt, recording
 *		which rows of it the keyset bound will repeat.  It makes progress
 *		while the current page is returned.
 */
static void
vapi_start_page_request(VapiScanState *st, VapiWindow *w)
{
	MemoryContext oldcxt;

	MemoryContextReset(w->next_cxt);
	oldcxt = MemoryContextSwitchTo(w->next_cxt);
	w->pending.path = vapi_next_list_request(st, w);
	w->pending.limit = w->built_limit;
	w->pending.page = w->built_page;
	vapi_set_next_filter(w);
	MemoryContextSwitchTo(oldcxt);

	if (st->first_request == NULL)
		st->first_request = MemoryContextStrdup(st->scan_cxt, w->pending.path);
	vapi_request_start(st->conn, w->http, "GET", w->pending.path, NULL, 0,
					   w->next_cxt, &st->stats);
	w->prefetching = true;
}

/*
 * vapi_lacking_param
 *		Does the answer (a 400) say the deployment does not know a
 *		parameter that the request sent and that the scan can do without?
 *		Returns its VAPI_API_NO_* flag, or 0.
 */
static int
vapi_lacking_param(const VapiHttpResponse *resp, const char *path)
{
	static const struct
	{
		const char *param;
		int			flag;
	}			optional[] = {
		{"sortOrder", VAPI_API_NO_SORT_ORDER},
		{"search", VAPI_API_NO_SEARCH},
		{"page", VAPI_API_NO_PAGE},
	};
	char	   *msg = vapi_json_error_message(resp->body, resp->body_len);
	int			i;

	if (msg == NULL)
		return 0;
	for (i = 0; i < lengthof(optional); i++)
	{
		char	   *said = psprintf("property %s should not exist", optional[i].param);
		char	   *sent = psprintf("%s=", optional[i].param);

		if (strstr(msg, said) != NULL &&
			(strstr(path, psprintf("?%s", sent)) != NULL ||
			 strstr(path, psprintf("&%s", sent)) != NULL))
			return optional[i].flag;
	}
	return 0;
}

/*
 * vapi_list_fallback
 *		A list request got a 400 or a 404: is it one this deployment gives
 *		because it lacks something the scan can do without?  Then remember
 *		that for the connection (later requests leave it out) and return
 *		true: the request is to be sent again.  v2 answering 404 (or a 400
 *		naming the path) means a deployment from before v2: list through
 *		v1.
 */
static bool
vapi_list_fallback(VapiScanState *st, const VapiHttpResponse *resp,
				   const char *path)
{
	int			lacks = vapi_connection_api_lacks(st->conn);
	int			flag = 0;

	if (lacks & VAPI_API_NO_V2)
		return false;
	if (resp->status == 404)
		flag = VAPI_API_NO_V2;
	else if (resp->status == 400)
	{
		char	   *msg = vapi_json_error_message(resp->body, resp->body_len);

		flag = vapi_lacking_param(resp, path);
		if (flag == 0 && msg != NULL && strstr(msg, VAPI_PATH_LIST) != NULL)
			flag = VAPI_API_NO_V2;
	}
	if (flag == 0 || (lacks & flag))
		return false;
	vapi_connection_note_lack(st->conn, flag);
	return true;
}

/*
 * vapi_check_page_order
 *		Are the page's rows in the order asked for, within the page and
 *		against the previous bound?  If not, and nothing relies on the order
 *		yet (the first page of a scan whose plan does not need it), the
 *		scan goes on in the order the server really uses; otherwise ERROR:
 *		rows in a wrong order would be lost or returned twice by the keyset.
 */
static void
vapi_check_page_order(VapiScanState *st, VapiWindow *w)
{
	int64		prev;
	bool		have_prev = false;
	const char *prev_id = NULL;
	int			i;

	if (w->keyset.bound != NULL)
	{
		/* descending: before the bound's millisecond ends; ascending: in it or after */
		prev = st->plan.ascending ? w->keyset.bound_ts : w->keyset.bound_ts + 999;
		have_prev = true;
	}
	for (i = 0; i < w->info.count; i++)
	{
		VapiItem   *item = vapi_json_page_item(w->page, i);
		const char *created = vapi_json_item_string(item, "createdAt");
		int64		ts;

		if (created == NULL || !vapi_parse_timestamp(created, &ts))
			continue;
		if (have_prev && (st->plan.ascending ? ts < prev : ts > prev))
		{
			const char *id = vapi_json_item_id(item);

			/* the first page of a scan free to take any order: follow it */
			if (w->keyset.bound == NULL && w->keyset.page_no == 1 && !st->plan.sorted &&
				!st->reordered && st->windows_made == 1 && i > 0)
			{
				st->plan.ascending = !st->plan.ascending;
				st->reordered = true;
				vapi_check_page_order(st, w);
				return;
			}
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
					 errmsg("Vapi API returned phone numbers out of the order asked for"),
					 errdetail("Asked for createdAt %s; phone number \"%s\" (createdAt %s) came after %s.",
							   st->plan.ascending ? "ascending" : "descending",
							   id ? id : "(no id)", created,
							   prev_id ? psprintf("phone number \"%s\"", prev_id) :
							   "the previous page"),
					 errhint("The server may ignore sortOrder; a query that needs no order by created_at can still be answered.")));
		}
		prev = ts;
		prev_id = vapi_json_item_id(item);
		have_prev = true;
	}
}

/*
 * vapi_check_retention
 *		Does the page's metadata say the answer is cut short by the
 *		organisation's data-retention window (itemsBeyondRetention, or a
 *		createdAtGe applied that is later than the one asked for)?  Then a
 *		WARNING, once per scan, or an ERROR with beyond_retention 'error'.
 */
static void
vapi_check_retention(VapiScanState *st, VapiWindow *w, bool at_end)
{
	const char *asked = st->time[VAPI_FIELD_CREATED][VAPI_OP_GE];
	int64		asked_ts;
	bool		narrower = false;

	if (st->warned_retention)
		return;
	if (!at_end)
	{
		if (w->info.has_applied_created_ge)
			narrower = asked == NULL || asked[0] == '$' ||
				!vapi_parse_timestamp(asked, &asked_ts) ||
				w->info.applied_created_ge > asked_ts;
		if (w->info.beyond_retention == 1 || narrower)
		{
			st->retention_cut = true;
			st->retention_info = w->info;
		}
		/*
		 * Newest first, the window only cuts what the scan reaches at its
		 * end (ORDER BY created_at DESC LIMIT 3 is not cut): wait for it.
		 */
		if (!st->retention_cut || !st->plan.ascending)
			return;
	}
	else if (!st->retention_cut)
		return;
	st->warned_retention = true;
	ereport(vapi_connection_options(st->conn)->beyond_retention_error ? ERROR : WARNING,
			(errcode(ERRCODE_WARNING),
			 errmsg("the answer of foreign table \"%s\" is limited by the organisation's data-retention window",
					st->relname),
			 st->retention_info.has_applied_created_ge ?
			 errdetail("The Vapi API left out phone numbers created before %s%s.",
					   vapi_format_unix_us(st->retention_info.applied_created_ge),
					   st->retention_info.beyond_retention == 1 ?
					   " (metadata.itemsBeyondRetention), and some exist" : "") :
			 errdetail("The Vapi API says some matching phone numbers are beyond the window (metadata.itemsBeyondRetention)."),
			 errhint("Set beyond_retention 'error' on server \"%s\" to make this an error.",
					 vapi_connection_server_name(st->conn))));
}

/*
 * vapi_receive_page
 *		The answer to the pending list request (sent now unless it was
 *		sent in advance).  A deployment that refuses a parameter or lacks
 *		v2 is remembered and asked again without it.
 */
static void
vapi_receive_page(VapiScanState *st, VapiWindow *w,
							  VapiHttpResponse *resp)
{
	for (;;)
	{
		if (!w->prefetching)
			vapi_start_page_request(st, w);
		w->prefetching = false;
		vapi_request_finish(st->conn, w->http, "GET", w->pending.path, NIL,
							VAPI_REQ_ALLOW_CLIENT_ERRORS, resp, &st->stats);
		if (resp->status != 400 && resp->status != 404)
			break;
		/* a deployment lacking what was sent: remember, and ask again */
		if (!vapi_list_fallback(st, resp, w->pending.path))
			vapi_raise_response(st->conn, "GET", w->pending.path, NIL, 0, resp);
	}
}

/*
 * vapi_check_progress
 *		Guard against an API that ignores the paging parameters: two pages
 *		in a row with the same first and last phone number.
 */
static void
vapi_check_progress(VapiScanState *st, VapiWindow *w, int n)
{
	const char *first_id;
	const char *last_id;
	MemoryContext oldcxt;

	if (n == 0)
		return;
	first_id = vapi_json_item_id(vapi_json_page_item(w->page, 0));
	last_id = vapi_json_item_id(vapi_json_page_item(w->page, n - 1));
	if (first_id != NULL && last_id != NULL &&
		w->keyset.prev_first_id != NULL && w->keyset.prev_last_id != NULL &&
		strcmp(first_id, w->keyset.prev_first_id) == 0 &&
		strcmp(last_id, w->keyset.prev_last_id) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("Vapi API paging made no progress"),
				 errdetail("Two consecutive pages held the same phone numbers.")));
	oldcxt = MemoryContextSwitchTo(st->scan_cxt);
	if (w->keyset.prev_first_id)
		pfree(w->keyset.prev_first_id);
	if (w->keyset.prev_last_id)
		pfree(w->keyset.prev_last_id);
	w->keyset.prev_first_id = first_id ? pstrdup(first_id) : NULL;
	w->keyset.prev_last_id = last_id ? pstrdup(last_id) : NULL;
	MemoryContextSwitchTo(oldcxt);
}

/*
 * vapi_page_has_more
 *		Is there a further page after the current one (of "n" rows)?  A
 *		page shorter than asked is no proof of the end (a server may cap
 *		the page size): the end is an empty page, or metadata saying so
 *		(totalItems of the first page of a request, hasNextPage).  Without
 *		metadata (v1) the scan goes on until a page comes back empty.  A
 *		scan under a LIMIT that has its rows needs no more either.
 */
static bool
vapi_page_has_more(VapiScanState *st, VapiWindow *w, int n)
{
	bool		more;

	if (n == 0)
		more = false;
	else if (w->info.total_items >= 0 || w->info.has_next_page >= 0)
		more = (w->info.total_items >= 0 && w->cur.page == 1 &&
				w->info.total_items > n) ||
			w->info.has_next_page == 1 ||
			(w->info.total_items >= 0 && w->cur.page > 1 &&
			 w->info.has_next_page < 0);
	else
		more = true;
	/* the window cut the answer short where the scan ends without a LIMIT */
	if (!more)
		vapi_check_retention(st, w, true);
	if (st->plan.limit >= 0 &&
		st->returned + n >= st->plan.limit + list_length(w->cur.seen_ids))
		more = false;
	return more;
}

/*
 * vapi_request_after_page
 *		Move the keyset bound past the current page and ask for the next
 *		one now, keeping the guess sent in advance if it was right.  (A
 *		scan under a LIMIT asks only when it needs to: it may stop early,
 *		and how many rows it still needs depends on the rows of this page.)
 */
static void
vapi_request_after_page(VapiScanState *st, VapiWindow *w)
{
	char	   *real_path;

	if (w->keyset.done)
	{
		/* a guess sent in advance asked for a page after the last one */
		if (w->prefetching)
			vapi_http_abort(w->http);
		w->prefetching = false;
		return;
	}

	vapi_advance_keyset(st, w);
	real_path = vapi_next_list_request(st, w);
	if (w->prefetching && strcmp(real_path, w->pending.path) == 0)
	{
		/* The guess was right: its rows will need this filter. */
		MemoryContext oldcxt = MemoryContextSwitchTo(w->next_cxt);

		w->pending.limit = w->built_limit;
		w->pending.page = w->built_page;
		vapi_set_next_filter(w);
		MemoryContextSwitchTo(oldcxt);
	}
	else
	{
		if (w->prefetching)
			vapi_http_abort(w->http);
		w->prefetching = false;
		if (st->plan.prefetch && st->plan.limit < 0)
			vapi_start_page_request(st, w);
	}
	pfree(real_path);
}

/*
 * vapi_fetch_page
 *		Make the next list page the current one: wait for its request
 *		(started in advance, or now), parse and check it, decide whether
 *		another page follows, and if so start requesting it at once, so
 *		that the network works while this page's rows are returned.
 */
static void
vapi_fetch_page(VapiScanState *st, VapiWindow *w)
{
	VapiHttpResponse resp;
	ErrorContextCallback errcb;
	MemoryContext oldcxt;
	MemoryContext swap;
	char	   *guess;

	vapi_receive_page(st, w, &resp);

	/* The page just received becomes the current one. */
	MemoryContextReset(w->page_cxt);
	swap = w->page_cxt;
	w->page_cxt = w->next_cxt;
	w->next_cxt = swap;
	w->page = NULL;
	w->next_item = 0;
	w->cur = w->pending;

	/*
	 * Guess the next request from the raw answer, and send it before this
	 * page is parsed, so that parsing overlaps the network: the bound is
	 * the last createdAt on the page.  Once the page is parsed and checked,
	 * the request really needed is compared with the one sent, and a wrong
	 * one is abandoned for it.  (Not after the first page of a scan that
	 * may be split into windows: the next request depends on the split.)
	 */
	if (st->plan.prefetch && st->plan.limit < 0 &&
		!(st->windows_made == 1 && st->max_concurrent > 1 &&
		  w->keyset.bound == NULL) &&
		vapi_raw_contains(resp.body, resp.body_len, "\"hasNextPage\":true"))
	{
		guess = vapi_raw_last_string(resp.body, resp.body_len, "createdAt");
		if (guess != NULL && !(w->keyset.bound != NULL && strcmp(guess, w->keyset.bound) == 0))
			vapi_start_guessed_request(st, w, guess);
	}

	oldcxt = MemoryContextSwitchTo(w->page_cxt);
	errcb.callback = vapi_request_error_callback;
	errcb.arg = w->cur.path;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;

	w->page = vapi_json_parse_page(resp.body, resp.body_len, w->page_cxt,
									&w->info);
	st->stats.pages++;
	vapi_count_received(st, w->info.count);
	vapi_drift_check(st, w);

	/* What came back is checked, every page. */
	vapi_check_page_order(st, w);
	vapi_check_retention(st, w, false);
	vapi_check_progress(st, w, w->info.count);
	w->keyset.done = !vapi_page_has_more(st, w, w->info.count);

	/* how many rows the window still holds, as far as the API says */
	if (w->info.total_items >= 0 && w->cur.page == 1)
		w->left = Max(w->info.total_items - w->info.count, 0);
	else if (w->left >= 0)
		w->left = Max(w->left - w->info.count, 0);
	vapi_page_span(w);

	/* the first page of a scan tells its size: split it into windows */
	if (!w->keyset.done && st->windows_made == 1)
		vapi_split_windows(st, w);

	error_context_stack = errcb.previous;
	MemoryContextSwitchTo(oldcxt);

	vapi_request_after_page(st, w);
}

/*
 * vapi_page_span
 *		Note the createdAt of the first and last row of the window's page
 *		(Unix microseconds): how densely numbers were created there, which
 *		is what splitting a window goes by.
 */
static void
vapi_page_span(VapiWindow *w)
{
	const char *first;
	const char *last;

	w->span_ok = false;
	if (w->info.count < 2)
		return;
	first = vapi_json_item_string(vapi_json_page_item(w->page, 0), "createdAt");
	last = vapi_json_item_string(vapi_json_page_item(w->page, w->info.count - 1),
								 "createdAt");
	if (first != NULL && last != NULL &&
		vapi_parse_timestamp(first, &w->span_first) &&
		vapi_parse_timestamp(last, &w->span_last))
		w->span_ok = true;
}

/*
 * vapi_window_cut
 *		Where to cut the rest of window "w" so that the part beyond the cut
 *		holds about "rows" of its rows: from the keyset bound, as far as
 *		"rows" reach at the density of its last page, on a millisecond.
 *		False if that cannot be told or leaves no room.
 */
static bool
vapi_window_cut(VapiScanState *st, VapiWindow *w, double rows, int64 *cut)
{
	bool		asc = st->plan.ascending;
	double		per_row;
	int64		at;
	int64		from;

	if (!w->span_ok || w->info.count < 2)
		return false;
	/* microseconds per row, at least one millisecond per page */
	per_row = (double) Max(llabs(w->span_first - w->span_last), 1000) /
		(w->info.count - 1);
	from = vapi_ms_floor(w->span_last);
	at = asc ? from + (int64) (rows * per_row) : from - (int64) (rows * per_row);
	at = vapi_ms_floor(at);

	/* strictly beyond the bound's millisecond, strictly inside the window */
	if (asc)
	{
		at = Max(at, from + 1000);
		if (w->has_hi && at >= w->hi)
			return false;
	}
	else
	{
		at = Min(at, from);
		if (at >= from + 1000 || (w->has_lo && at <= w->lo))
			return false;
	}
	*cut = at;
	return true;
}

/*
 * vapi_window_split
 *		Give the part of window "w" beyond "cut" (in the scan's order) to a
 *		new window at position "pos", and return it: "w" keeps [.., cut)
 *		ascending, [cut, ..) descending.
 */
static VapiWindow *
vapi_window_split(VapiScanState *st, VapiWindow *w, int pos, int64 cut)
{
	VapiWindow *nw = vapi_window_add(st, pos);

	if (st->plan.ascending)
	{
		nw->has_lo = true;
		nw->lo = cut;
		nw->has_hi = w->has_hi;
		nw->hi = w->hi;
		w->has_hi = true;
		w->hi = cut;
	}
	else
	{
		nw->has_hi = true;
		nw->hi = cut;
		nw->has_lo = w->has_lo;
		nw->lo = w->lo;
		w->has_lo = true;
		w->lo = cut;
	}
	return nw;
}

/*
 * vapi_split_windows
 *		After the first page of window "w" (the whole scan so far), split
 *		what is left of it into windows that page at once: as many as
 *		max_concurrent_requests allows and the rows left need (two pages
 *		each at least).  The cuts follow the density of the first page;
 *		vapi_rebalance corrects a guess that was wrong.  Each new window
 *		sends its first request now; "w"'s own next request is built with
 *		its narrowed range.
 *
 * Not for a scan with a LIMIT (it may stop early), without prefetch
 * (requests are only sent when needed), or without totalItems (v1).
 */
static void
vapi_split_windows(VapiScanState *st, VapiWindow *w)
{
	double		page_rows = Max(w->info.count, 1);
	double		left = (double) w->left;
	int			nwin;
	int			k;
	int64	   *cuts;
	int			ncuts = 0;
	VapiWindow *last = w;
	int			pos = 0;

	if (st->max_concurrent < 2 || st->plan.limit >= 0 || !st->plan.prefetch ||
		w->left < 0 || left < 2 * page_rows)
		return;
	nwin = (int) Min((double) st->max_concurrent, floor(left / page_rows));
	if (nwin < 2)
		return;

	/*
	 * Cut k leaves k/nwin of the rows to the windows before it.  Window
	 * "w" keeps the first share, continuing its keyset; each new window
	 * takes the next share, the last one all the rest, to the scan's end.
	 * The cuts are all worked out on "w" as it is, before it is narrowed.
	 */
	cuts = palloc(sizeof(int64) * nwin);
	for (k = 1; k < nwin; k++)
	{
		if (!vapi_window_cut(st, w, left * k / nwin, &cuts[ncuts]) ||
			(ncuts > 0 && (st->plan.ascending ? cuts[ncuts] <= cuts[ncuts - 1] :
						   cuts[ncuts] >= cuts[ncuts - 1])))
			break;
		ncuts++;
	}
	for (k = 0; k < ncuts; k++)
		last = vapi_window_split(st, last, ++pos, cuts[k]);
	pfree(cuts);
	for (k = 1; k <= pos; k++)
		vapi_start_page_request(st, st->windows[k]);
}

/*
 * vapi_rebalance
 *		A window has finished: if another one still holds more than two
 *		pages, split it (between its keyset bound and its far end, half of
 *		its rows each, by its own density) so that the freed request slot
 *		is used.  The split window's request under way was built with its
 *		old range: it is sent again with the new one.
 */
static void
vapi_rebalance(VapiScanState *st)
{
	VapiWindow *big = NULL;
	int			pos = -1;
	int			active = 0;
	int			i;
	int64		cut;
	VapiWindow *nw;

	for (i = 0; i < st->nwindows; i++)
	{
		VapiWindow *v = st->windows[i];

		if (v->finished)
			continue;
		active++;
		if (!v->keyset.done && v->keyset.bound != NULL &&
			v->left > 2 * (int64) Max(v->info.count, 1) &&
			(big == NULL || v->left > big->left))
		{
			big = v;
			pos = i;
		}
	}
	if (big == NULL || active >= st->max_concurrent || st->plan.limit >= 0 ||
		!st->plan.prefetch ||
		!vapi_window_cut(st, big, (double) big->left / 2, &cut))
		return;

	nw = vapi_window_split(st, big, pos + 1, cut);
	big->left = big->left / 2;
	if (big->prefetching)
	{
		vapi_http_abort(big->http);
		big->prefetching = false;
		vapi_start_page_request(st, big);
	}
	vapi_start_page_request(st, nw);
}

/*
 * vapi_next_window
 *		The window whose next page is returned now, or NULL when every
 *		window is finished.  The page just returned is freed first, and a
 *		window with nothing more to fetch is finished (its request slot
 *		then goes to a split of the biggest window left).  A scan whose
 *		plan relies on the order takes the windows in order; any other
 *		takes the first page to arrive.
 */
static VapiWindow *
vapi_next_window(VapiScanState *st)
{
	VapiWindow *cur = st->w;
	VapiHttp  **handles;
	int			n = 0;
	int			i;

	if (cur != NULL && !cur->finished)
	{
		cur->page = NULL;
		MemoryContextReset(cur->page_cxt);
		if (cur->keyset.done && !cur->prefetching)
		{
			vapi_window_release(st, cur);
			vapi_rebalance(st);
		}
	}

	/* in order: the first window not finished; else one that has a page */
	for (i = 0; i < st->nwindows; i++)
	{
		VapiWindow *v = st->windows[i];

		if (v->finished)
			continue;
		if (st->plan.sorted || !v->prefetching || vapi_http_done(v->http))
			return v;
	}

	/* every window has a request under way: wait for the first answer */
	handles = palloc(sizeof(VapiHttp *) * Max(st->nwindows, 1));
	for (i = 0; i < st->nwindows; i++)
		handles[n++] = st->windows[i]->finished ? NULL : st->windows[i]->http;
	i = vapi_http_wait_any(handles, n);
	pfree(handles);
	return i >= 0 ? st->windows[i] : NULL;
}

/*
 * vapi_check_in_window
 *		A row must be in the createdAt range of the window whose request
 *		returned it: windows are disjoint, so a row outside would be
 *		returned twice (or out of order).  An API that does not apply the
 *		createdAt filters is an ERROR, not a wrong answer.
 */
static void
vapi_check_in_window(VapiWindow *w, VapiItem *item)
{
	const char *created;
	int64		ts;

	if (!w->has_lo && !w->has_hi)
		return;
	created = vapi_json_item_string(item, "createdAt");
	if (created == NULL || !vapi_parse_timestamp(created, &ts))
		return;
	if ((w->has_lo && ts < w->lo) || (w->has_hi && ts >= w->hi))
	{
		const char *id = vapi_json_item_id(item);

		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
				 errmsg("Vapi API returned a phone number outside the createdAt range asked for"),
				 errdetail("Phone number \"%s\" has createdAt %s; the request asked for createdAt from %s to before %s.",
						   id ? id : "(no id)", created,
						   w->has_lo ? vapi_format_unix_us(w->lo) : "the start",
						   w->has_hi ? vapi_format_unix_us(w->hi) : "the end"),
				 errhint("Set max_concurrent_requests to 1 on the server to scan in one window.")));
	}
}

/*
 * vapi_raw_contains
 *		Does the raw answer contain the text?
 */
static bool
vapi_raw_contains(const char *body, size_t len, const char *text)
{
	/* the metadata comes last: look at the end of the answer only */
	size_t		tail = Min(len, 2048);

	return memmem(body + len - tail, tail, text, strlen(text)) != NULL;
}

/*
 * vapi_raw_last_string
 *		The value of the last "key":"..." string near the end of the raw
 *		answer, or NULL if there is none or it holds an escape.  Only a
 *		guess: the caller checks it against the parsed answer.
 */
static char *
vapi_raw_last_string(const char *body, size_t len, const char *key)
{
	char	   *needle = psprintf("\"%s\":\"", key);
	size_t		nlen = strlen(needle);
	const char *found = NULL;
	const char *end = body + len;
	const char *p = body + len - Min(len, 16384);	/* the last object */
	const char *q;

	while (p < end)
	{
		const char *hit = memmem(p, end - p, needle, nlen);

		if (hit == NULL)
			break;
		found = hit;
		p = hit + nlen;
	}
	pfree(needle);
	if (found == NULL)
		return NULL;
	found += nlen;
	for (q = found; q < end && *q != '"'; q++)
		if (*q == '\\')
			return NULL;
	if (q >= end)
		return NULL;
	return pnstrdup(found, q - found);
}

/*
 * vapi_set_next_filter
 *		Record, for the page requested next, which rows at the keyset bound
 *		were already returned (in the current memory context).
 */
static void
vapi_set_next_filter(VapiWindow *w)
{
	ListCell   *lc;

	w->pending.drop_seen = w->keyset.bound != NULL && w->keyset.seen_at_bound != NIL;
	w->pending.seen_ms = w->keyset.bound_ts;
	w->pending.seen_ids = NIL;
	foreach(lc, w->keyset.seen_at_bound)
		w->pending.seen_ids = lappend(w->pending.seen_ids,
									  pstrdup((char *) lfirst(lc)));
}

/*
 * vapi_start_guessed_request
 *		Start the request for the page after the current one, assuming its
 *		keyset bound is "guess" (checked later by vapi_fetch_page).  Nothing
 *		is started if the guess is not a timestamp.
 */
static void
vapi_start_guessed_request(VapiScanState *st, VapiWindow *w,
									   const char *guess)
{
	MemoryContext oldcxt;
	char	   *saved_bound = w->keyset.bound;
	int64		saved_bound_ts = w->keyset.bound_ts;
	int			saved_page = w->keyset.page_no;
	List	   *saved_seen = w->keyset.seen_at_bound;
	int64		guess_ts;

	if (!vapi_parse_timestamp(guess, &guess_ts))
		return;
	guess_ts = vapi_ms_floor(guess_ts);

	MemoryContextReset(w->next_cxt);
	oldcxt = MemoryContextSwitchTo(w->next_cxt);
	w->keyset.bound = pstrdup(guess);
	w->keyset.bound_ts = guess_ts;
	w->keyset.page_no = 1;
	w->keyset.seen_at_bound = NIL;
	w->pending.path = vapi_next_list_request(st, w);
	w->keyset.bound = saved_bound;
	w->keyset.bound_ts = saved_bound_ts;
	w->keyset.page_no = saved_page;
	w->keyset.seen_at_bound = saved_seen;
	MemoryContextSwitchTo(oldcxt);

	vapi_request_start(st->conn, w->http, "GET", w->pending.path, NULL, 0,
					   w->next_cxt, &st->stats);
	w->prefetching = true;
}

/*
 * vapi_lookup_send
 *		Keep up to max_concurrent_requests lookups in flight: start the
 *		request of every id whose slot is free.  Slot i serves the ids i,
 *		i + nslots, ..., so the answers are consumed in the order of the
 *		ids while later ones are under way.
 */
static void
vapi_lookup_send(VapiScanState *st)
{
	if (st->slots == NULL)
	{
		int			n = Max(1, Min(st->max_concurrent, list_length(st->ids)));
		int			i;

		st->slots = MemoryContextAllocZero(st->scan_cxt,
										   sizeof(VapiLookupSlot) * n);
		st->nslots = n;
		for (i = 0; i < n; i++)
		{
			st->slots[i].http = vapi_connection_acquire(st->conn, st->scan_cxt);
			st->slots[i].cxt = AllocSetContextCreate(st->scan_cxt,
													 "vapi_fdw lookup",
													 ALLOCSET_SMALL_SIZES);
		}
	}

	while (st->next_sent < list_length(st->ids) &&
		   st->next_sent < st->next_id + st->nslots)
	{
		VapiLookupSlot *slot = &st->slots[st->next_sent % st->nslots];
		const char *id = strVal(list_nth(st->ids, st->next_sent));

		if (slot->busy)
			break;
		MemoryContextReset(slot->cxt);
		slot->path = MemoryContextStrdup(slot->cxt, vapi_deparse_item_path(id));
		if (st->first_request == NULL)
			st->first_request = MemoryContextStrdup(st->scan_cxt, slot->path);
		vapi_request_start(st->conn, slot->http, "GET", slot->path, NULL, 0,
						   slot->cxt, &st->stats);
		slot->busy = true;
		st->next_sent++;
	}
}

/*
 * vapi_fetch_lookup
 *		Get the next phone number of a lookup scan into the page context,
 *		the requests of the following ids running meanwhile.  An id the API
 *		does not know is skipped.  False when all are done.
 */
static bool
vapi_fetch_lookup(VapiScanState *st)
{
	VapiWindow *w = st->w;

	while (st->next_id < list_length(st->ids))
	{
		VapiLookupSlot *slot;
		VapiHttpResponse resp;
		ErrorContextCallback errcb;
		MemoryContext oldcxt;

		vapi_lookup_send(st);
		slot = &st->slots[st->next_id % st->nslots];
		st->next_id++;

		MemoryContextReset(w->page_cxt);
		w->page = NULL;
		w->next_item = 0;

		slot->busy = false;
		vapi_request_finish(st->conn, slot->http, "GET", slot->path, NIL,
							VAPI_REQ_ALLOW_404, &resp, &st->stats);
		if (resp.status == 404)
			continue;

		oldcxt = MemoryContextSwitchTo(w->page_cxt);
		errcb.callback = vapi_request_error_callback;
		errcb.arg = slot->path;
		errcb.previous = error_context_stack;
		error_context_stack = &errcb;
		w->page = vapi_json_parse_object(resp.body, resp.body_len,
										 w->page_cxt);
		memset(&w->info, 0, sizeof(w->info));
		w->info.count = 1;
		vapi_count_received(st, 1);
		error_context_stack = errcb.previous;
		MemoryContextSwitchTo(oldcxt);

		/* the slot is free again: the next id's request can go */
		vapi_lookup_send(st);
		return true;
	}
	return false;
}

/*
 * vapi_seen
 *		Was the phone number with this id already returned at the current
 *		keyset bound?
 */
static bool
vapi_seen(VapiWindow *w, const char *id)
{
	return vapi_in_id_list(w->keyset.seen_at_bound, id);
}

/*
 * vapi_in_id_list
 *		Is the id in the list of (char *) ids?
 */
static bool
vapi_in_id_list(List *ids, const char *id)
{
	ListCell   *lc;

	foreach(lc, ids)
		if (strcmp((const char *) lfirst(lc), id) == 0)
			return true;
	return false;
}

/*
 * vapi_scan_error_callback
 *		Error context of a scan: if its statement has already changed phone
 *		numbers at Vapi (a DELETE or an INSERT ... SELECT whose scan fails
 *		half-way), say so, since the API cannot roll them back.
 */
static void
vapi_scan_error_callback(void *arg)
{
	VapiScanState *st = (VapiScanState *) arg;
	char	   *what = vapi_xact_statement_writes(st->curcid);

	if (what == NULL)
		return;
	errcontext("this statement had already applied changes at Vapi, which stay applied: %s",
			   what);
	/* if the statement did all the transaction did, that has been said */
	if (vapi_xact_only_command(st->curcid))
		vapi_xact_mark_reported();
}

/*
 * vapi_scan_keep
 *		Keep, by id, the parts of a phone number an UPDATE of the same
 *		statement will need (see vapi_scan_keep_keys).
 */
static void
vapi_scan_keep(VapiScanState *st, VapiItem *item, const char *id)
{
	VapiKeptObject *e;
	bool		found;
	MemoryContext oldcxt;

	if (strlen(id) != VAPI_ID_LEN)
		return;
	e = hash_search(st->kept, id, HASH_ENTER, &found);
	if (found)
		return;
	oldcxt = MemoryContextSwitchTo(st->scan_cxt);
	e->object = vapi_json_item_subset(item, st->keep_keys);
	MemoryContextSwitchTo(oldcxt);
}

/*
 * vapi_find_scan_walker
 *		planstate_tree_walker callback of vapi_find_scan.
 */
static bool
vapi_find_scan_walker(PlanState *ps, void *context)
{
	VapiFindScan *f = (VapiFindScan *) context;

	if (ps == NULL)
		return false;
	if (IsA(ps, ForeignScanState) &&
		vapi_is_own_scan((ForeignScanState *) ps) &&
		((Scan *) ps->plan)->scanrelid == f->scanrelid &&
		((ForeignScanState *) ps)->fdw_state != NULL)
	{
		f->found = (ForeignScanState *) ps;
		return true;
	}
	return planstate_tree_walker(ps, vapi_find_scan_walker, context);
}

/*
 * vapi_scan_keep_keys
 *		An UPDATE of a foreign table asks the scan below it (the one that
 *		reads range table entry "scanrelid") to keep, for each row it
 *		returns, the top-level fields "keys" of the phone number as
 *		received: the UPDATE needs them whatever columns the table
 *		declares (the provider, the objects a dotted key writes into).
 *		Returns the scan, or NULL if there is none of ours.
 */
ForeignScanState *
vapi_scan_keep_keys(PlanState *planstate, Index scanrelid, List *keys)
{
	VapiFindScan f;
	VapiScanState *st;
	HASHCTL		ctl;
	MemoryContext oldcxt;

	f.scanrelid = scanrelid;
	f.found = NULL;
	if (!vapi_find_scan_walker(planstate, &f))
		return NULL;
	st = (VapiScanState *) f.found->fdw_state;
	if (st->scan_cxt == NULL)
		return NULL;
	oldcxt = MemoryContextSwitchTo(st->scan_cxt);
	st->keep_keys = list_copy_deep(keys);
	MemoryContextSwitchTo(oldcxt);
	if (st->kept == NULL)
	{
		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = VAPI_ID_LEN + 1;
		ctl.entrysize = sizeof(VapiKeptObject);
		ctl.hcxt = st->scan_cxt;
		st->kept = hash_create("vapi_fdw kept objects", 256, &ctl,
							   HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	}
	return f.found;
}

/*
 * vapi_scan_kept_object
 *		The kept fields of the phone number with this id, as a jsonb
 *		object, or NULL if the scan did not return it.
 */
Jsonb *
vapi_scan_kept_object(ForeignScanState *node, const char *id)
{
	VapiScanState *st = (VapiScanState *) node->fdw_state;
	VapiKeptObject *e;

	if (st->kept == NULL || strlen(id) != VAPI_ID_LEN)
		return NULL;
	e = hash_search(st->kept, id, HASH_FIND, NULL);
	return e != NULL ? e->object : NULL;
}

/*
 * vapi_scan_next
 *		Fill values[]/nulls[] with the next row; false at the end.
 *		Columns not retrieved are left as they are.
 */
bool
vapi_scan_next(VapiScanState *st, Datum *values, bool *nulls)
{
	ErrorContextCallback errcb;
	bool		found;

	errcb.callback = vapi_scan_error_callback;
	errcb.arg = st;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;
	found = vapi_scan_next_row(st, values, nulls);
	error_context_stack = errcb.previous;
	return found;
}

/*
 * vapi_scan_next_row
 *		The work of vapi_scan_next.
 */
static bool
vapi_scan_next_row(VapiScanState *st, Datum *values, bool *nulls)
{
	VapiItem   *item = vapi_scan_next_item(st);
	const char *item_id;

	if (item == NULL)
		return false;
	item_id = vapi_json_item_id(item);
	if (st->keep_keys != NIL && item_id != NULL)
		vapi_scan_keep(st, item, item_id);
	vapi_json_item_to_datums(item, st->columns, st->ncolumns,
							 st->relname, values, nulls);
	return true;
}

/*
 * vapi_scan_next_item
 *		The next phone number the scan returns, or NULL at the end.
 */
static VapiItem *
vapi_scan_next_item(VapiScanState *st)
{
	if (!st->started)
	{
		vapi_scan_start(st, NIL, false, NULL);
		st->started = true;
	}
	if (st->empty)
		return NULL;

	for (;;)
	{
		VapiWindow *w = st->w;

		if (st->plan.limit >= 0 && st->returned >= st->plan.limit)
			return NULL;

		if (w != NULL && w->page != NULL && w->next_item < w->info.count)
		{
			VapiItem   *item = vapi_json_page_item(w->page, w->next_item++);
			const char *item_id = vapi_json_item_id(item);

			/* Keep the transfer of the next page moving. */
			if (w->prefetching && (w->next_item & 63) == 0)
				vapi_http_pump(w->http);

			/* A row at the bound that the previous page returned already. */
			if (w->cur.drop_seen)
			{
				const char *created = vapi_json_item_string(item, "createdAt");
				const char *id = vapi_json_item_id(item);
				int64		ts;

				if (id != NULL && created != NULL &&
					vapi_in_id_list(w->cur.seen_ids, id) &&
					vapi_parse_timestamp(created, &ts) &&
					vapi_ms_floor(ts) == w->cur.seen_ms)
					continue;
			}
			vapi_check_in_window(w, item);

			/* The plan relies on the order: a row without one breaks it. */
			if (st->plan.sorted)
			{
				const char *created = vapi_json_item_string(item, "createdAt");
				int64		ts;

				if (created == NULL || !vapi_parse_timestamp(created, &ts))
				{
					const char *id = vapi_json_item_id(item);

					ereport(ERROR,
							(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
							 errmsg("phone number \"%s\" has no valid createdAt, so rows cannot be returned in createdAt order",
									id ? id : "(no id)")));
				}
			}

			/* Created by this statement: it did not exist when it began. */
			if (item_id != NULL &&
				vapi_xact_created_by_command(item_id, st->curcid))
				continue;

			/* A lookup returns each phone number once. */
			if (st->plan.mode == VAPI_MODE_LOOKUP && item_id != NULL)
			{
				MemoryContext oldcxt;

				if (vapi_in_id_list(st->returned_ids, item_id))
					continue;
				oldcxt = MemoryContextSwitchTo(w->bound_cxt);
				st->returned_ids = lappend(st->returned_ids, pstrdup(item_id));
				MemoryContextSwitchTo(oldcxt);
			}

			st->returned++;
			return item;
		}

		if (st->plan.mode == VAPI_MODE_LOOKUP)
		{
			if (!vapi_fetch_lookup(st))
				return NULL;
			continue;
		}

		/* the window's page is returned: on to the next page, any window */
		st->w = vapi_next_window(st);
		if (st->w == NULL)
			return NULL;
		CHECK_FOR_INTERRUPTS();
		vapi_fetch_page(st, st->w);
	}
}

/*
 * vapi_scan_count
 *		The count of a count pushed down, once (false afterwards, and after
 *		a rescan once again): metadata.totalItems of one list request of
 *		one row, with the table's time bounds.  They select exactly the
 *		rows the quals keep (see vapi_bounds_params), so the number is
 *		exact.  Without totalItems (a deployment without v2), and when the
 *		statement itself created numbers (which it must not see), the rows
 *		are listed and counted instead, each checked against the bounds.
 */
bool
vapi_scan_count(VapiScanState *st, int64 *count)
{
	VapiWindow *w;
	VapiHttpResponse resp;
	ErrorContextCallback errcb;
	MemoryContext oldcxt;
	VapiItem   *item;
	int64		n = 0;

	if (st->counted)
		return false;
	st->counted = true;
	if (!st->started)
	{
		vapi_scan_start(st, NIL, false, NULL);
		st->started = true;
	}
	*count = 0;
	if (st->empty)
	{
		st->count_source = 1;
		return true;
	}

	w = st->w;
	if (!vapi_xact_created_since(st->curcid))
	{
		/* one row is enough: only the metadata is read */
		vapi_receive_page(st, w, &resp);
		w->cur = w->pending;
		oldcxt = MemoryContextSwitchTo(w->next_cxt);
		errcb.callback = vapi_request_error_callback;
		errcb.arg = w->cur.path;
		errcb.previous = error_context_stack;
		error_context_stack = &errcb;
		(void) vapi_json_parse_page(resp.body, resp.body_len, w->next_cxt,
									&w->info);
		st->stats.pages++;
		vapi_count_received(st, w->info.count);
		if (w->info.total_items >= 0)
		{
			vapi_check_retention(st, w, false);
			vapi_check_retention(st, w, true);
			*count = w->info.total_items;
		}
		error_context_stack = errcb.previous;
		MemoryContextSwitchTo(oldcxt);
		MemoryContextReset(w->next_cxt);
		if (w->info.total_items >= 0)
		{
			st->count_source = 1;
			return true;
		}
	}

	/* list the rows and count them (pages of page_size from now on) */
	st->count_source = 2;
	vapi_drop_windows(st);
	st->w = vapi_window_add(st, 0);
	while ((item = vapi_scan_next_item(st)) != NULL)
		if (vapi_count_matches(st, item))
			n++;
	*count = n;
	return true;
}

/*
 * vapi_count_matches
 *		Does a listed phone number satisfy the time bounds of a count?  The
 *		API applied them already; this makes a count by rows as exact as
 *		the executor's own filter would.
 */
static bool
vapi_count_matches(VapiScanState *st, VapiItem *item)
{
	static const char *const keys[VAPI_NFIELDS] = {"createdAt", "updatedAt"};
	int			field;

	for (field = 0; field < VAPI_NFIELDS; field++)
	{
		const char *ge = st->time[field][VAPI_OP_GE];
		const char *lt = st->time[field][VAPI_OP_LT];
		const char *value;
		int64		ts;
		int64		bound;

		if (ge == NULL && lt == NULL)
			continue;
		value = vapi_json_item_string(item, keys[field]);
		if (value == NULL || !vapi_parse_timestamp(value, &ts))
			return false;
		if (ge != NULL && vapi_parse_timestamp(ge, &bound) && ts < bound)
			return false;
		if (lt != NULL && vapi_parse_timestamp(lt, &bound) && ts >= bound)
			return false;
	}
	return true;
}

/*
 * vapi_scan_rescan
 *		Forget the progress of a scan, so that it starts again (for a
 *		parameterized lookup, with the new outer values; the quals' values
 *		are evaluated again).  The counters are kept.
 */
void
vapi_scan_rescan(VapiScanState *st)
{
	if (st->conn == NULL)
		return;
	vapi_stop_lookups(st);
	vapi_drop_windows(st);
	st->w = vapi_window_add(st, 0);
	st->started = false;
	st->counted = false;
	st->count_source = 0;
	st->returned = 0;
	st->next_id = 0;
	st->next_sent = 0;
	st->returned_ids = NIL;
}

/*
 * vapi_sample_rows
 *		Scan every phone number (as the table's owner) and keep a random
 *		sample of "targrows" rows (reservoir sampling, as file_fdw does).
 */
int
vapi_sample_rows(Relation relation, int elevel, HeapTuple *rows,
				 int targrows, double *totalrows, double *totaldeadrows)
{
	VapiScanState st;
	TupleDesc	tupdesc = RelationGetDescr(relation);
	List	   *attrs = NIL;
	MemoryContext rowcxt;
	MemoryContext oldcxt;
	ReservoirStateData rstate;
	double		rowstoskip = -1;
	Datum	   *values;
	bool	   *nulls;
	int			numrows = 0;
	int			i;

	for (i = 1; i <= tupdesc->natts; i++)
		if (!TupleDescAttr(tupdesc, i - 1)->attisdropped)
			attrs = lappend_int(attrs, i);

	memset(&st, 0, sizeof(st));
	st.plan.mode = VAPI_MODE_LIST;
	st.plan.prefetch = true;		/* set from the server below */
	st.plan.limit = -1;
	st.curcid = InvalidCommandId;
	vapi_scan_init(&st, relation, relation->rd_rel->relowner, attrs,
				   AllocSetContextCreate(CurrentMemoryContext, "vapi_fdw scan",
										 ALLOCSET_DEFAULT_SIZES));
	st.plan.prefetch = vapi_connection_options(st.conn)->prefetch;

	values = palloc(sizeof(Datum) * tupdesc->natts);
	nulls = palloc(sizeof(bool) * tupdesc->natts);
	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "vapi_fdw analyze row",
								   ALLOCSET_DEFAULT_SIZES);
	reservoir_init_selection_state(&rstate, targrows);
	*totalrows = 0;
	*totaldeadrows = 0;

	for (;;)
	{
		bool		more;

#if PG_VERSION_NUM >= 180000
		vacuum_delay_point(true);
#else
		vacuum_delay_point();
#endif
		MemoryContextReset(rowcxt);
		oldcxt = MemoryContextSwitchTo(rowcxt);
		memset(nulls, true, sizeof(bool) * tupdesc->natts);
		more = vapi_scan_next(&st, values, nulls);
		MemoryContextSwitchTo(oldcxt);
		if (!more)
			break;

		if (numrows < targrows)
			rows[numrows++] = heap_form_tuple(tupdesc, values, nulls);
		else
		{
			if (rowstoskip < 0)
				rowstoskip = reservoir_get_next_S(&rstate, *totalrows, targrows);
			if (rowstoskip <= 0)
			{
				int			k = (int) (targrows * sampler_random_fract(&rstate.randstate));

				heap_freetuple(rows[k]);
				rows[k] = heap_form_tuple(tupdesc, values, nulls);
			}
			rowstoskip -= 1;
		}
		*totalrows += 1;
	}

	MemoryContextDelete(rowcxt);
	MemoryContextDelete(st.scan_cxt);

	ereport(elevel,
			(errmsg("\"%s\": %.0f phone numbers received in %lld requests, %d rows in sample",
					RelationGetRelationName(relation), *totalrows,
					(long long) st.stats.requests, numrows)));
	return numrows;
}

/*
 * vapi_count_received
 *		Count phone numbers received: for EXPLAIN ANALYZE and in the
 *		statistics of the server.
 */
static void
vapi_count_received(VapiScanState *st, int n)
{
	st->stats.rows += n;
	vapi_connection_count_rows(st->conn, n);
}

/*
 * vapi_drift_init
 *		Set up the drift check of the scan's columns (once the column map
 *		is built): which keys a phone number should carry.
 */
static void
vapi_drift_init(VapiScanState *st)
{
	VapiDrift  *d = &st->drift;
	Oid			relid = RelationGetRelid(st->rel);
	bool		any = false;
	int			i;

	memset(d, 0, sizeof(VapiDrift));
	d->mode = vapi_table_field_drift(relid);
	if (d->mode == VAPI_DRIFT_OFF || st->ncolumns == 0 ||
		(d->mode == VAPI_DRIFT_WARNING && list_member_oid(drift_warned, relid)))
	{
		d->done = true;
		return;
	}
	d->kind = MemoryContextAllocZero(st->scan_cxt,
									 sizeof(VapiDriftKind) * st->ncolumns);
	d->present = MemoryContextAllocZero(st->scan_cxt,
										sizeof(bool) * st->ncolumns);
	d->expected = MemoryContextAllocZero(st->scan_cxt,
										 sizeof(int64) * st->ncolumns);
	for (i = 0; i < st->ncolumns; i++)
	{
		VapiColumn *col = &st->columns[i];
		const char *top;

		d->kind[i] = VAPI_DRIFT_SKIP;
		/* a generated column is computed here, not read from the API */
		if (col->kind != VAPI_COL_PATH || col->npath < 1 ||
			TupleDescAttr(RelationGetDescr(st->rel),
						  col->attnum - 1)->attgenerated != '\0')
			continue;
		top = col->path[0];
		if (!vapi_field_known(top))
			d->kind[i] = VAPI_DRIFT_UNKNOWN;
		else if (vapi_field_expected(NULL, top))
			d->kind[i] = VAPI_DRIFT_ALWAYS;
		else if (vapi_field_required_by_a_provider(top))
			d->kind[i] = VAPI_DRIFT_PROVIDER;
		any |= d->kind[i] != VAPI_DRIFT_SKIP;
	}
	d->done = !any;
}

/*
 * vapi_drift_check
 *		Examine the page just parsed: note the keys of the checked columns
 *		that its phone numbers carry, then report the columns whose key none
 *		of the numbers read so far (a whole page at least) carried.
 */
static void
vapi_drift_check(VapiScanState *st, VapiWindow *w)
{
	VapiDrift  *d = &st->drift;
	int			n;
	int			c;
	bool		open = false;

	if (d->done || w->page == NULL || w->info.count <= 0)
		return;
	for (n = 0; n < w->info.count; n++)
	{
		VapiItem   *item = vapi_json_page_item(w->page, n);
		const char *provider = NULL;
		bool		provider_read = false;

		for (c = 0; c < st->ncolumns; c++)
		{
			VapiColumn *col = &st->columns[c];

			if (d->kind[c] == VAPI_DRIFT_SKIP || d->present[c])
				continue;
			if (d->kind[c] == VAPI_DRIFT_PROVIDER)
			{
				if (!provider_read)
				{
					provider = vapi_json_item_string(item, "provider");
					provider_read = true;
				}
				if (provider == NULL || !vapi_field_expected(provider, col->path[0]))
					continue;
			}
			d->expected[c]++;
			if (vapi_json_item_has_path(item, col->path, col->npath))
				d->present[c] = true;
		}
	}
	d->objects += w->info.count;
	if (w->info.count >= st->plan.page_size)
		d->full_page = true;

	for (c = 0; c < st->ncolumns; c++)
	{
		if (d->kind[c] == VAPI_DRIFT_SKIP || d->present[c])
			continue;
		if (vapi_drift_absent(d, c))
		{
			vapi_drift_report(st);
			return;
		}
		open = true;
	}
	d->done = !open;
}

/*
 * vapi_drift_absent
 *		Is column c's key absent from every phone number read that should
 *		carry it, on enough evidence: at least one such number for a field
 *		every number (or its provider's) has, a full page for a key
 *		vapi_fdw does not know?
 */
static bool
vapi_drift_absent(VapiDrift *d, int c)
{
	/* a column not checked never counts a number that should carry it */
	if (d->present[c] || d->expected[c] == 0)
		return false;
	return d->kind[c] != VAPI_DRIFT_UNKNOWN || d->full_page;
}

/*
 * vapi_drift_report
 *		Say which columns' keys were absent from every phone number read
 *		that should have carried them: a WARNING once per table and backend
 *		(field_drift 'warning'), or an ERROR (field_drift 'error').
 */
static void
vapi_drift_report(VapiScanState *st)
{
	VapiDrift  *d = &st->drift;
	StringInfoData keys;
	int			nkeys = 0;
	const char *key1 = NULL;
	const char *col1 = NULL;
	int64		n1 = 0;
	int			c;

	initStringInfo(&keys);
	for (c = 0; c < st->ncolumns; c++)
	{
		VapiColumn *col = &st->columns[c];

		if (!vapi_drift_absent(d, c))
			continue;
		if (nkeys++ == 0)
		{
			key1 = col->key;
			col1 = col->attname;
			n1 = d->expected[c];
		}
		appendStringInfo(&keys, "%s\"%s\" (column \"%s\")",
						 keys.len > 0 ? ", " : "", col->key, col->attname);
	}
	d->done = true;
	if (d->mode == VAPI_DRIFT_WARNING)
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(TopMemoryContext);

		drift_warned = lappend_oid(drift_warned, RelationGetRelid(st->rel));
		MemoryContextSwitchTo(oldcxt);
	}
	ereport(d->mode == VAPI_DRIFT_ERROR ? ERROR : WARNING,
			(errcode(ERRCODE_FDW_COLUMN_NAME_NOT_FOUND),
			 nkeys == 1 ?
			 errmsg_plural("key \"%s\" of column \"%s\" was absent from the " INT64_FORMAT " phone number read from foreign table \"%s\" that should carry it",
						   "key \"%s\" of column \"%s\" was absent from every one of the " INT64_FORMAT " phone numbers read from foreign table \"%s\" that should carry it",
						   (unsigned long) n1,
						   key1, col1, n1, st->relname) :
			 errmsg_plural("keys %s were absent from the " INT64_FORMAT " phone number read from foreign table \"%s\"",
						   "keys %s were absent from every one of the " INT64_FORMAT " phone numbers read from foreign table \"%s\"",
						   (unsigned long) d->objects,
						   keys.data, d->objects, st->relname),
			 errdetail("The API may have renamed or removed this field: the column reads as NULL."),
			 errhint("Check the column's key option.  The foreign table's option field_drift set to 'off' turns this check off, set to 'error' makes it an error.")));
}
