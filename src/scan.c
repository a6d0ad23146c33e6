/*-------------------------------------------------------------------------
 *
 * scan.c
 *		  The scan engine: what a planned ForeignScan (and ANALYZE) sends to
 *		  the API and how its answers become rows.
 *
 * A scan is one of two kinds:
 *   - a list scan pages through GET /v2/phone-number ordered by createdAt,
 *     with the time-range and search quals that could be pushed as query
 *     parameters.  Paging is by keyset on createdAt: after a page, the next
 *     request starts at the millisecond where it ended (createdAtLt one
 *     millisecond after it when descending, createdAtGe when ascending) and
 *     the rows of that millisecond that were already returned are dropped
 *     by id.  Unlike offset paging this returns every row that exists for
 *     the whole scan exactly once, even while other rows are created or
 *     deleted.
 *   - a lookup sends GET /phone-number/{id} for each id of an id = value,
 *     id = ANY(array) or (in a parameterized path) id = outer.column qual.
 * Rows are returned as each answer arrives.  The next list page is
 * requested as soon as the current answer is in (before it is parsed, from
 * a keyset bound read off the raw answer and checked afterwards), so the
 * network works while rows are returned; memory is bounded by two pages.
 * Every qual is also checked locally, by the executor.
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
	MemoryContext page_cxt;		/* the current page: body and parsed tree */
	MemoryContext next_cxt;		/* the next page, while it is fetched */
	MemoryContext bound_cxt;	/* keyset bound and the ids seen at it */

	/* computed when the scan (re)starts */
	bool		started;
	bool		empty;			/* no request can return a row */
	const char *time[VAPI_NFIELDS][VAPI_NOPS];	/* bounds to send */
	List	   *ids;			/* lookups: the ids to get */
	int			next_id;
	char	   *first_request;	/* for EXPLAIN ANALYZE (in scan_cxt: it
								 * outlives rescans) */

	/* the current page, and the request it answers */
	VapiPage   *page;
	VapiPageInfo info;
	int			next_item;		/* next item of the page to return */
	int64		returned;		/* rows returned so far */
	VapiPageRequest cur;

	/* the connection handle, and the next page's request under way */
	VapiHttp   *http;
	bool		prefetching;	/* requested in advance, not yet needed */
	VapiPageRequest pending;	/* path in next_cxt */

	VapiKeyset	keyset;

	/* a statement does not see the numbers it created itself */
	CommandId	curcid;			/* of the scan's snapshot */

	/* the limit and page of the request built last */
	int			built_limit;
	int			built_page;
	bool		reordered;		/* the server's order was not the one asked */
	bool		skip_bound_ms;	/* the next page starts before the bound's ms */
	bool		warned_retention;
	bool		retention_cut;	/* the metadata said the window cuts it */
	VapiPageInfo retention_info;	/* what it said */
	int			explain_lacks;	/* for EXPLAIN without a connection */

	/* lookups: the ids returned already (an id is returned once) */
	List	   *returned_ids;

	/* for an UPDATE of this table: parts of each row returned */
	List	   *keep_keys;		/* top-level keys to keep, or NIL */
	HTAB	   *kept;			/* VapiKeptObject by id */

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
static void vapi_scan_start(VapiScanState *st, List *dpcontext,
							bool useprefix, List **display);
static bool vapi_scan_next_row(VapiScanState *st, Datum *values, bool *nulls);
static void vapi_scan_error_callback(void *arg);
static void vapi_scan_keep(VapiScanState *st, VapiItem *item, const char *id);
static bool vapi_find_scan_walker(PlanState *ps, void *context);
static char *vapi_next_list_request(VapiScanState *st);
static void vapi_advance_keyset(VapiScanState *st);
static void vapi_fetch_page(VapiScanState *st);
static void vapi_receive_page(VapiScanState *st, VapiHttpResponse *resp);
static void vapi_check_progress(VapiScanState *st, int n);
static bool vapi_page_has_more(VapiScanState *st, int n);
static void vapi_request_after_page(VapiScanState *st);
static int	vapi_lacking_param(const VapiHttpResponse *resp, const char *path);
static bool vapi_list_fallback(VapiScanState *st, const VapiHttpResponse *resp,
							   const char *path);
static void vapi_check_page_order(VapiScanState *st);
static void vapi_check_retention(VapiScanState *st, bool at_end);
static bool vapi_fetch_lookup(VapiScanState *st);
static void vapi_request_error_callback(void *arg);
static bool vapi_seen(VapiScanState *st, const char *id);
static bool vapi_in_id_list(List *ids, const char *id);
static void vapi_start_page_request(VapiScanState *st);
static void vapi_start_guessed_request(VapiScanState *st, const char *guess);
static void vapi_set_next_filter(VapiScanState *st);
static bool vapi_raw_contains(const char *body, size_t len, const char *text);
static char *vapi_raw_last_string(const char *body, size_t len,
								  const char *key);
static bool vapi_contains_exec_param(Node *node, void *context);

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
	st->rel = node->ss.ss_currentRelation;
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
 *		Finish a scan.  The contexts go with the query; the connection
 *		stays cached for the next query.
 */
void
vapi_scan_end(VapiScanState *st)
{
	if (st != NULL && st->page_cxt != NULL)
		MemoryContextReset(st->page_cxt);
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
 *		Connect and set up what every scan needs: the column map and the
 *		memory contexts, all in or under "parent".
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
	st->columns = vapi_build_columns(rel, retrieved_attrs, &st->ncolumns);
	st->scan_cxt = parent;
	if (st->runtime_cxt == NULL)
		st->runtime_cxt = AllocSetContextCreate(parent, "vapi_fdw runtime",
												ALLOCSET_SMALL_SIZES);
	st->page_cxt = AllocSetContextCreate(parent, "vapi_fdw page",
										 ALLOCSET_DEFAULT_SIZES);
	st->next_cxt = AllocSetContextCreate(parent, "vapi_fdw next page",
										 ALLOCSET_DEFAULT_SIZES);
	st->http = vapi_connection_acquire(st->conn, parent);
	st->bound_cxt = AllocSetContextCreate(parent, "vapi_fdw keyset bound",
										  ALLOCSET_SMALL_SIZES);
	st->keyset.page_no = 1;
	MemoryContextSwitchTo(oldcxt);
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
		else if (st->plan.mode == VAPI_MODE_LIST)
			out = lappend(out, psprintf("GET %s", vapi_next_list_request(st)));
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
 * vapi_next_list_request
 *		The path and query string of the next list page: the pushed quals,
 *		the keyset bound folded into the createdAt bound on the paging
 *		side, and a limit no larger than the rows still needed.
 */
static char *
vapi_next_list_request(VapiScanState *st)
{
	VapiListRequest req;
	int			slot = st->plan.ascending ? VAPI_OP_GE : VAPI_OP_LT;
	int			lacks = st->conn != NULL ? vapi_connection_api_lacks(st->conn) :
		st->explain_lacks;

	memset(&req, 0, sizeof(req));
	req.v1 = (lacks & VAPI_API_NO_V2) != 0;
	req.send_sort_order = (lacks & VAPI_API_NO_SORT_ORDER) == 0;
	req.limit = st->plan.page_size;
	if (st->plan.limit >= 0)
	{
		/* rows still needed, plus those the bound will repeat */
		int64		need = st->plan.limit - st->returned +
			list_length(st->keyset.seen_at_bound);

		req.limit = (int) Min((int64) st->plan.page_size, Max(need, 1));
	}
	req.page = st->keyset.page_no;
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

	/*
	 * The keyset bound: the millisecond where the previous page ended.
	 * Descending, "createdAtLt" the millisecond after it (numbers stored
	 * later within that millisecond are not lost); ascending,
	 * "createdAtGe" it.  The rows of that millisecond already returned are
	 * dropped by id.
	 */
	if (st->keyset.bound != NULL)
	{
		const char *mine = req.time[VAPI_FIELD_CREATED][slot];
		int64		key = st->plan.ascending ? st->keyset.bound_ts :
			st->skip_bound_ms ? st->keyset.bound_ts : st->keyset.bound_ts + 1000;
		int64		ts;

		if (mine == NULL || mine[0] == '$' ||
			!vapi_parse_timestamp(mine, &ts) ||
			(st->plan.ascending ? key > ts : key < ts))
			req.time[VAPI_FIELD_CREATED][slot] = vapi_format_unix_us(key);
	}
	st->built_limit = req.limit;
	st->built_page = req.page;
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
vapi_advance_keyset(VapiScanState *st)
{
	MemoryContext oldcxt;
	VapiItem   *last;
	const char *last_created;
	int64		last_ts;
	int			i;

	if (st->page == NULL || st->info.count == 0)
		return;
	last = vapi_json_page_item(st->page, st->info.count - 1);
	last_created = vapi_json_item_string(last, "createdAt");
	if (last_created == NULL || !vapi_parse_timestamp(last_created, &last_ts))
	{
		/* Cannot move the bound: step to the next page at the same one. */
		st->keyset.page_no++;
		return;
	}
	last_ts = vapi_ms_floor(last_ts);

	if (st->keyset.bound == NULL || last_ts != st->keyset.bound_ts)
	{
		const char *first_created;
		int64		first_ts;

		MemoryContextReset(st->bound_cxt);
		st->keyset.seen_at_bound = NIL;
		st->keyset.bound = MemoryContextStrdup(st->bound_cxt, last_created);
		st->keyset.bound_ts = last_ts;

		/*
		 * If the whole page is in the new bound's millisecond, the first
		 * page at it is this one again: start the run at its second page.
		 */
		first_created = vapi_json_item_string(vapi_json_page_item(st->page, 0),
											  "createdAt");
		st->keyset.page_no = 1;
		st->skip_bound_ms = false;
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
				st->info.count < st->cur.limit)
				st->skip_bound_ms = true;
			else
				st->keyset.page_no = 2;
		}
	}
	else if ((vapi_connection_api_lacks(st->conn) & VAPI_API_NO_V2) &&
			 st->info.count < st->cur.limit)
	{
		/* v1: a short page in the same millisecond exhausts it */
		st->skip_bound_ms = true;
	}
	else
	{
		/* A run in one millisecond longer than a page: step through it. */
		st->keyset.page_no++;
	}

	/* The ids in the bound's millisecond, from the end of the page back. */
	oldcxt = MemoryContextSwitchTo(st->bound_cxt);
	for (i = st->info.count - 1; i >= 0; i--)
	{
		VapiItem   *item = vapi_json_page_item(st->page, i);
		const char *created = vapi_json_item_string(item, "createdAt");
		const char *id = vapi_json_item_id(item);
		int64		ts;

		if (created == NULL || !vapi_parse_timestamp(created, &ts) ||
			vapi_ms_floor(ts) != st->keyset.bound_ts)
			break;
		if (id != NULL && !vapi_seen(st, id))
			st->keyset.seen_at_bound = lappend(st->keyset.seen_at_bound, pstrdup(id));
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
vapi_start_page_request(VapiScanState *st)
{
	MemoryContext oldcxt;

	MemoryContextReset(st->next_cxt);
	oldcxt = MemoryContextSwitchTo(st->next_cxt);
	st->pending.path = vapi_next_list_request(st);
	st->pending.limit = st->built_limit;
	st->pending.page = st->built_page;
	vapi_set_next_filter(st);
	MemoryContextSwitchTo(oldcxt);

	if (st->first_request == NULL)
		st->first_request = MemoryContextStrdup(st->scan_cxt, st->pending.path);
	vapi_request_start(st->conn, st->http, "GET", st->pending.path, NULL, 0,
					   st->next_cxt, &st->stats);
	st->prefetching = true;
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
vapi_check_page_order(VapiScanState *st)
{
	int64		prev;
	bool		have_prev = false;
	const char *prev_id = NULL;
	int			i;

	if (st->keyset.bound != NULL)
	{
		/* descending: before the bound's millisecond ends; ascending: in it or after */
		prev = st->plan.ascending ? st->keyset.bound_ts : st->keyset.bound_ts + 999;
		have_prev = true;
	}
	for (i = 0; i < st->info.count; i++)
	{
		VapiItem   *item = vapi_json_page_item(st->page, i);
		const char *created = vapi_json_item_string(item, "createdAt");
		int64		ts;

		if (created == NULL || !vapi_parse_timestamp(created, &ts))
			continue;
		if (have_prev && (st->plan.ascending ? ts < prev : ts > prev))
		{
			const char *id = vapi_json_item_id(item);

			/* the first page of a scan free to take any order: follow it */
			if (st->keyset.bound == NULL && st->keyset.page_no == 1 && !st->plan.sorted &&
				!st->reordered && i > 0)
			{
				st->plan.ascending = !st->plan.ascending;
				st->reordered = true;
				vapi_check_page_order(st);
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
vapi_check_retention(VapiScanState *st, bool at_end)
{
	const char *asked = st->time[VAPI_FIELD_CREATED][VAPI_OP_GE];
	int64		asked_ts;
	bool		narrower = false;

	if (st->warned_retention)
		return;
	if (!at_end)
	{
		if (st->info.has_applied_created_ge)
			narrower = asked == NULL || asked[0] == '$' ||
				!vapi_parse_timestamp(asked, &asked_ts) ||
				st->info.applied_created_ge > asked_ts;
		if (st->info.beyond_retention == 1 || narrower)
		{
			st->retention_cut = true;
			st->retention_info = st->info;
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
vapi_receive_page(VapiScanState *st, VapiHttpResponse *resp)
{
	for (;;)
	{
		if (!st->prefetching)
			vapi_start_page_request(st);
		st->prefetching = false;
		vapi_request_finish(st->conn, st->http, "GET", st->pending.path, NIL,
							VAPI_REQ_ALLOW_CLIENT_ERRORS, resp, &st->stats);
		if (resp->status != 400 && resp->status != 404)
			break;
		/* a deployment lacking what was sent: remember, and ask again */
		if (!vapi_list_fallback(st, resp, st->pending.path))
			vapi_raise_response(st->conn, "GET", st->pending.path, NIL, 0, resp);
	}
}

/*
 * vapi_check_progress
 *		Guard against an API that ignores the paging parameters: two pages
 *		in a row with the same first and last phone number.
 */
static void
vapi_check_progress(VapiScanState *st, int n)
{
	const char *first_id;
	const char *last_id;
	MemoryContext oldcxt;

	if (n == 0)
		return;
	first_id = vapi_json_item_id(vapi_json_page_item(st->page, 0));
	last_id = vapi_json_item_id(vapi_json_page_item(st->page, n - 1));
	if (first_id != NULL && last_id != NULL &&
		st->keyset.prev_first_id != NULL && st->keyset.prev_last_id != NULL &&
		strcmp(first_id, st->keyset.prev_first_id) == 0 &&
		strcmp(last_id, st->keyset.prev_last_id) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("Vapi API paging made no progress"),
				 errdetail("Two consecutive pages held the same phone numbers.")));
	oldcxt = MemoryContextSwitchTo(st->scan_cxt);
	if (st->keyset.prev_first_id)
		pfree(st->keyset.prev_first_id);
	if (st->keyset.prev_last_id)
		pfree(st->keyset.prev_last_id);
	st->keyset.prev_first_id = first_id ? pstrdup(first_id) : NULL;
	st->keyset.prev_last_id = last_id ? pstrdup(last_id) : NULL;
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
vapi_page_has_more(VapiScanState *st, int n)
{
	bool		more;

	if (n == 0)
		more = false;
	else if (st->info.total_items >= 0 || st->info.has_next_page >= 0)
		more = (st->info.total_items >= 0 && st->cur.page == 1 &&
				st->info.total_items > n) ||
			st->info.has_next_page == 1 ||
			(st->info.total_items >= 0 && st->cur.page > 1 &&
			 st->info.has_next_page < 0);
	else
		more = true;
	/* the window cut the answer short where the scan ends without a LIMIT */
	if (!more)
		vapi_check_retention(st, true);
	if (st->plan.limit >= 0 &&
		st->returned + n >= st->plan.limit + list_length(st->cur.seen_ids))
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
vapi_request_after_page(VapiScanState *st)
{
	char	   *real_path;

	if (st->keyset.done)
	{
		/* a guess sent in advance asked for a page after the last one */
		if (st->prefetching)
			vapi_http_abort(st->http);
		st->prefetching = false;
		return;
	}

	vapi_advance_keyset(st);
	real_path = vapi_next_list_request(st);
	if (st->prefetching && strcmp(real_path, st->pending.path) == 0)
	{
		/* The guess was right: its rows will need this filter. */
		MemoryContext oldcxt = MemoryContextSwitchTo(st->next_cxt);

		st->pending.limit = st->built_limit;
		st->pending.page = st->built_page;
		vapi_set_next_filter(st);
		MemoryContextSwitchTo(oldcxt);
	}
	else
	{
		if (st->prefetching)
			vapi_http_abort(st->http);
		st->prefetching = false;
		if (st->plan.prefetch && st->plan.limit < 0)
			vapi_start_page_request(st);
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
vapi_fetch_page(VapiScanState *st)
{
	VapiHttpResponse resp;
	ErrorContextCallback errcb;
	MemoryContext oldcxt;
	MemoryContext swap;
	char	   *guess;

	vapi_receive_page(st, &resp);

	/* The page just received becomes the current one. */
	MemoryContextReset(st->page_cxt);
	swap = st->page_cxt;
	st->page_cxt = st->next_cxt;
	st->next_cxt = swap;
	st->page = NULL;
	st->next_item = 0;
	st->cur = st->pending;

	/*
	 * Guess the next request from the raw answer, and send it before this
	 * page is parsed, so that parsing overlaps the network: the bound is
	 * the last createdAt on the page.  Once the page is parsed and checked,
	 * the request really needed is compared with the one sent, and a wrong
	 * one is abandoned for it.
	 */
	if (st->plan.prefetch && st->plan.limit < 0 &&
		vapi_raw_contains(resp.body, resp.body_len, "\"hasNextPage\":true"))
	{
		guess = vapi_raw_last_string(resp.body, resp.body_len, "createdAt");
		if (guess != NULL && !(st->keyset.bound != NULL && strcmp(guess, st->keyset.bound) == 0))
			vapi_start_guessed_request(st, guess);
	}

	oldcxt = MemoryContextSwitchTo(st->page_cxt);
	errcb.callback = vapi_request_error_callback;
	errcb.arg = st->cur.path;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;

	st->page = vapi_json_parse_page(resp.body, resp.body_len, st->page_cxt,
									&st->info);
	st->stats.pages++;
	st->stats.rows += st->info.count;

	/* What came back is checked, every page. */
	vapi_check_page_order(st);
	vapi_check_retention(st, false);
	vapi_check_progress(st, st->info.count);
	st->keyset.done = !vapi_page_has_more(st, st->info.count);

	error_context_stack = errcb.previous;
	MemoryContextSwitchTo(oldcxt);

	vapi_request_after_page(st);
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
vapi_set_next_filter(VapiScanState *st)
{
	ListCell   *lc;

	st->pending.drop_seen = st->keyset.bound != NULL && st->keyset.seen_at_bound != NIL;
	st->pending.seen_ms = st->keyset.bound_ts;
	st->pending.seen_ids = NIL;
	foreach(lc, st->keyset.seen_at_bound)
		st->pending.seen_ids = lappend(st->pending.seen_ids,
									  pstrdup((char *) lfirst(lc)));
}

/*
 * vapi_start_guessed_request
 *		Start the request for the page after the current one, assuming its
 *		keyset bound is "guess" (checked later by vapi_fetch_page).  Nothing
 *		is started if the guess is not a timestamp.
 */
static void
vapi_start_guessed_request(VapiScanState *st, const char *guess)
{
	MemoryContext oldcxt;
	char	   *saved_bound = st->keyset.bound;
	int64		saved_bound_ts = st->keyset.bound_ts;
	int			saved_page = st->keyset.page_no;
	List	   *saved_seen = st->keyset.seen_at_bound;
	int64		guess_ts;

	if (!vapi_parse_timestamp(guess, &guess_ts))
		return;
	guess_ts = vapi_ms_floor(guess_ts);

	MemoryContextReset(st->next_cxt);
	oldcxt = MemoryContextSwitchTo(st->next_cxt);
	st->keyset.bound = pstrdup(guess);
	st->keyset.bound_ts = guess_ts;
	st->keyset.page_no = 1;
	st->keyset.seen_at_bound = NIL;
	st->pending.path = vapi_next_list_request(st);
	st->keyset.bound = saved_bound;
	st->keyset.bound_ts = saved_bound_ts;
	st->keyset.page_no = saved_page;
	st->keyset.seen_at_bound = saved_seen;
	MemoryContextSwitchTo(oldcxt);

	vapi_request_start(st->conn, st->http, "GET", st->pending.path, NULL, 0,
					   st->next_cxt, &st->stats);
	st->prefetching = true;
}

/*
 * vapi_fetch_lookup
 *		Get the next phone number of a lookup scan into the page context.
 *		An id the API does not know is skipped.  False when all are done.
 */
static bool
vapi_fetch_lookup(VapiScanState *st)
{
	while (st->next_id < list_length(st->ids))
	{
		const char *id = strVal(list_nth(st->ids, st->next_id++));
		VapiHttpResponse resp;
		ErrorContextCallback errcb;
		MemoryContext oldcxt;
		char	   *path;

		MemoryContextReset(st->page_cxt);
		st->page = NULL;
		st->next_item = 0;
		oldcxt = MemoryContextSwitchTo(st->page_cxt);

		path = vapi_deparse_item_path(id);
		if (st->first_request == NULL)
			st->first_request = MemoryContextStrdup(st->scan_cxt, path);
		vapi_request_start(st->conn, st->http, "GET", path, NULL, 0,
						   st->page_cxt, &st->stats);
		vapi_request_finish(st->conn, st->http, "GET", path, NIL,
							VAPI_REQ_ALLOW_404, &resp, &st->stats);
		if (resp.status == 404)
		{
			MemoryContextSwitchTo(oldcxt);
			continue;
		}

		errcb.callback = vapi_request_error_callback;
		errcb.arg = path;
		errcb.previous = error_context_stack;
		error_context_stack = &errcb;
			st->page = vapi_json_parse_object(resp.body, resp.body_len,
										  st->page_cxt);
		memset(&st->info, 0, sizeof(st->info));
		st->info.count = 1;
		st->stats.rows++;
		error_context_stack = errcb.previous;
		MemoryContextSwitchTo(oldcxt);
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
vapi_seen(VapiScanState *st, const char *id)
{
	return vapi_in_id_list(st->keyset.seen_at_bound, id);
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
	if (!st->started)
	{
		vapi_scan_start(st, NIL, false, NULL);
		st->started = true;
	}
	if (st->empty)
		return false;

	for (;;)
	{
		if (st->plan.limit >= 0 && st->returned >= st->plan.limit)
			return false;

		if (st->page != NULL && st->next_item < st->info.count)
		{
			VapiItem   *item = vapi_json_page_item(st->page, st->next_item++);
			const char *item_id = vapi_json_item_id(item);

			/* Keep the transfer of the next page moving. */
			if (st->prefetching && (st->next_item & 63) == 0)
				vapi_http_pump(st->http);

			/* A row at the bound that the previous page returned already. */
			if (st->cur.drop_seen)
			{
				const char *created = vapi_json_item_string(item, "createdAt");
				const char *id = vapi_json_item_id(item);
				int64		ts;

				if (id != NULL && created != NULL &&
					vapi_in_id_list(st->cur.seen_ids, id) &&
					vapi_parse_timestamp(created, &ts) &&
					vapi_ms_floor(ts) == st->cur.seen_ms)
					continue;
			}

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
				oldcxt = MemoryContextSwitchTo(st->bound_cxt);
				st->returned_ids = lappend(st->returned_ids, pstrdup(item_id));
				MemoryContextSwitchTo(oldcxt);
			}

			if (st->keep_keys != NIL && item_id != NULL)
				vapi_scan_keep(st, item, item_id);

			vapi_json_item_to_datums(item, st->columns, st->ncolumns,
									 st->relname, values, nulls);
			st->returned++;
			return true;
		}

		if (st->plan.mode == VAPI_MODE_LOOKUP)
		{
			if (!vapi_fetch_lookup(st))
				return false;
			continue;
		}
		if (st->keyset.done)
			return false;
		CHECK_FOR_INTERRUPTS();
		vapi_fetch_page(st);
	}
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
	if (st->prefetching)
		vapi_http_abort(st->http);
	st->prefetching = false;
	MemoryContextReset(st->page_cxt);
	MemoryContextReset(st->next_cxt);
	MemoryContextReset(st->bound_cxt);
	memset(&st->cur, 0, sizeof(st->cur));
	st->started = false;
	st->page = NULL;
	st->next_item = 0;
	st->returned = 0;
	memset(&st->keyset, 0, sizeof(st->keyset));
	st->keyset.page_no = 1;
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
