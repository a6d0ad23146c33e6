/*-------------------------------------------------------------------------
 *
 * vapi_fdw.c
 *		  Foreign data wrapper for the phone numbers of a Vapi organisation:
 *		  module initialisation, the handler, planning, the scan and
 *		  EXPLAIN.
 *
 * A scan pages through GET /v2/phone-number newest first.  Paging is by
 * keyset on createdAt: after a page, the next request asks for
 * createdAtLe = the oldest createdAt seen, and rows at exactly that instant
 * that were already returned are dropped by id.  Unlike offset paging this
 * returns every row that exists for the whole scan exactly once, even
 * while other rows are created or deleted.  Rows are returned as each page
 * arrives; memory is bounded by one page.
 *
 * src/vapi_fdw.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "access/sysattr.h"
#include "access/table.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "commands/explain.h"
#include "executor/executor.h"
#include "foreign/fdwapi.h"
#include "foreign/foreign.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "optimizer/pathnode.h"
#include "optimizer/planmain.h"
#include "optimizer/restrictinfo.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "vapi_fdw.h"

PG_MODULE_MAGIC;

/* Row count assumed for a table that was never analyzed. */
#define VAPI_DEFAULT_ROWS		1000.0

/* Planner cost of one HTTP request, in seq_page_cost units. */
#define VAPI_REQUEST_COST		100.0

/* Planner cost of receiving and converting one row. */
#define VAPI_ROW_COST			0.02

/*
 * Indexes of the fdw_private list of a ForeignScan plan.
 */
enum VapiScanPrivateIndex
{
	VapiPrivateRequest,			/* first request, as text (for EXPLAIN) */
	VapiPrivateRetrievedAttrs,	/* Integer list of attnums to convert */
	VapiPrivatePageSize			/* Integer: page size */
};

/*
 * Planner state of a foreign relation.
 */
typedef struct VapiRelInfo
{
	VapiServerOptions opts;
	List	   *retrieved_attrs;	/* attnums the query needs */
	double		pages;			/* estimated list requests */
} VapiRelInfo;

/*
 * Executor state of a scan.
 */
typedef struct VapiScanState
{
	Relation	rel;
	char	   *relname;
	VapiConn   *conn;
	VapiColumn *columns;		/* the retrieved columns */
	int			ncolumns;
	int			page_size;
	char	   *first_request;	/* for EXPLAIN */

	MemoryContext scan_cxt;		/* lives as long as the scan */
	MemoryContext page_cxt;		/* one page: body and parsed tree */
	MemoryContext bound_cxt;	/* keyset bound and the ids seen at it */

	/* the current page */
	VapiPage   *page;
	VapiPageInfo info;
	int			next;			/* next item of the page to return */

	/* keyset paging */
	bool		done;			/* no further page */
	int			page_no;		/* within a run of equal timestamps */
	char	   *bound;			/* createdAtLe of the next request */
	int64		bound_ts;		/* bound, as microseconds since epoch */
	List	   *seen_at_bound;	/* ids already returned at bound_ts */
	char	   *prev_first_id;	/* to detect paging without progress */
	char	   *prev_last_id;

	VapiStats	stats;
} VapiScanState;

void		_PG_init(void);

PG_FUNCTION_INFO_V1(vapi_fdw_handler);

static void vapiGetForeignRelSize(PlannerInfo *root, RelOptInfo *baserel,
								  Oid foreigntableid);
static void vapiGetForeignPaths(PlannerInfo *root, RelOptInfo *baserel,
								Oid foreigntableid);
static ForeignScan *vapiGetForeignPlan(PlannerInfo *root, RelOptInfo *baserel,
									   Oid foreigntableid,
									   ForeignPath *best_path,
									   List *tlist, List *scan_clauses,
									   Plan *outer_plan);
static void vapiBeginForeignScan(ForeignScanState *node, int eflags);
static TupleTableSlot *vapiIterateForeignScan(ForeignScanState *node);
static void vapiReScanForeignScan(ForeignScanState *node);
static void vapiEndForeignScan(ForeignScanState *node);
static void vapiExplainForeignScan(ForeignScanState *node, ExplainState *es);

static List *vapi_retrieved_attrs(PlannerInfo *root, RelOptInfo *baserel,
								  Oid foreigntableid);
static VapiColumn *vapi_build_columns(Relation rel, List *retrieved_attrs,
									  int *ncolumns);
static void vapi_advance_keyset(VapiScanState *st);
static void vapi_fetch_page(VapiScanState *st);
static void vapi_page_error_callback(void *arg);
static bool vapi_seen(VapiScanState *st, const char *id);

/*
 * _PG_init
 *		Module load: initialise libcurl.
 */
void
_PG_init(void)
{
	vapi_http_global_init();
}

/*
 * vapi_fdw_handler
 *		The FdwRoutine of vapi_fdw.
 */
Datum
vapi_fdw_handler(PG_FUNCTION_ARGS)
{
	FdwRoutine *routine = makeNode(FdwRoutine);

	routine->GetForeignRelSize = vapiGetForeignRelSize;
	routine->GetForeignPaths = vapiGetForeignPaths;
	routine->GetForeignPlan = vapiGetForeignPlan;
	routine->BeginForeignScan = vapiBeginForeignScan;
	routine->IterateForeignScan = vapiIterateForeignScan;
	routine->ReScanForeignScan = vapiReScanForeignScan;
	routine->EndForeignScan = vapiEndForeignScan;
	routine->ExplainForeignScan = vapiExplainForeignScan;
	routine->ImportForeignSchema = vapiImportForeignSchema;

	PG_RETURN_POINTER(routine);
}

/*
 * vapi_retrieved_attrs
 *		The attribute numbers a query needs from the foreign table: those
 *		in its target list and restrictions.  A whole-row reference needs
 *		every column.  Columns not listed are not converted at all.
 */
static List *
vapi_retrieved_attrs(PlannerInfo *root, RelOptInfo *baserel,
					 Oid foreigntableid)
{
	Bitmapset  *attrs_used = NULL;
	List	   *result = NIL;
	ListCell   *lc;
	Relation	rel;
	TupleDesc	tupdesc;
	bool		whole_row;
	int			i;

	pull_varattnos((Node *) baserel->reltarget->exprs, baserel->relid,
				   &attrs_used);
	foreach(lc, baserel->baserestrictinfo)
	{
		RestrictInfo *rinfo = lfirst_node(RestrictInfo, lc);

		pull_varattnos((Node *) rinfo->clause, baserel->relid, &attrs_used);
	}
	whole_row = bms_is_member(0 - FirstLowInvalidHeapAttributeNumber,
							  attrs_used);

	rel = table_open(foreigntableid, NoLock);
	tupdesc = RelationGetDescr(rel);
	for (i = 1; i <= tupdesc->natts; i++)
	{
		if (TupleDescAttr(tupdesc, i - 1)->attisdropped)
			continue;
		if (whole_row ||
			bms_is_member(i - FirstLowInvalidHeapAttributeNumber, attrs_used))
			result = lappend_int(result, i);
	}
	table_close(rel, NoLock);
	return result;
}

/*
 * vapiGetForeignRelSize
 *		Estimate the number of rows of a scan.  Planning never calls the
 *		API: the table size comes from ANALYZE or a default.
 */
static void
vapiGetForeignRelSize(PlannerInfo *root, RelOptInfo *baserel,
					  Oid foreigntableid)
{
	VapiRelInfo *fpinfo;
	ForeignTable *table = GetForeignTable(foreigntableid);
	double		ntuples;
	Selectivity sel;

	fpinfo = palloc0(sizeof(VapiRelInfo));
	baserel->fdw_private = fpinfo;
	vapi_get_server_options(GetForeignServer(table->serverid), &fpinfo->opts);
	fpinfo->retrieved_attrs = vapi_retrieved_attrs(root, baserel,
												   foreigntableid);

	ntuples = baserel->tuples > 0 ? baserel->tuples : VAPI_DEFAULT_ROWS;
	sel = clauselist_selectivity(root, baserel->baserestrictinfo, 0,
								 JOIN_INNER, NULL);
	baserel->tuples = ntuples;
	baserel->rows = clamp_row_est(ntuples * sel);
	fpinfo->pages = Max(1.0, ceil(ntuples / fpinfo->opts.page_size));
}

/*
 * vapiGetForeignPaths
 *		The one access path: a full (keyset-paged) scan of the list.
 */
static void
vapiGetForeignPaths(PlannerInfo *root, RelOptInfo *baserel,
					Oid foreigntableid)
{
	VapiRelInfo *fpinfo = (VapiRelInfo *) baserel->fdw_private;
	Cost		startup_cost;
	Cost		total_cost;

	startup_cost = VAPI_REQUEST_COST;
	total_cost = startup_cost +
		(fpinfo->pages - 1) * VAPI_REQUEST_COST +
		baserel->tuples * (VAPI_ROW_COST + cpu_tuple_cost) +
		baserel->tuples * baserel->baserestrictcost.per_tuple;

	add_path(baserel, (Path *)
			 create_foreignscan_path(root, baserel,
									 NULL,	/* default pathtarget */
									 baserel->rows,
									 startup_cost,
									 total_cost,
									 NIL,	/* no pathkeys */
									 baserel->lateral_relids,
									 NULL,	/* no extra plan */
									 NIL));
}

/*
 * vapiGetForeignPlan
 *		Build the ForeignScan.  Every restriction is evaluated locally.
 */
static ForeignScan *
vapiGetForeignPlan(PlannerInfo *root, RelOptInfo *baserel,
				   Oid foreigntableid, ForeignPath *best_path,
				   List *tlist, List *scan_clauses, Plan *outer_plan)
{
	VapiRelInfo *fpinfo = (VapiRelInfo *) baserel->fdw_private;
	VapiListRequest req;
	List	   *fdw_private;

	scan_clauses = extract_actual_clauses(scan_clauses, false);

	req.limit = fpinfo->opts.page_size;
	req.page = 1;
	req.created_le = NULL;

	fdw_private = list_make3(makeString(vapi_deparse_list_request(&req)),
							 fpinfo->retrieved_attrs,
							 makeInteger(fpinfo->opts.page_size));

	return make_foreignscan(tlist,
							scan_clauses,
							baserel->relid,
							NIL,	/* no expressions to evaluate */
							fdw_private,
							NIL,	/* no custom tlist */
							NIL,	/* no remote quals */
							outer_plan);
}

/*
 * vapi_build_columns
 *		How to fill each retrieved column: its key path and type input.
 *
 * A jsonb (or json) column named "attrs" without a "key" option holds the
 * whole object, secrets removed.
 */
static VapiColumn *
vapi_build_columns(Relation rel, List *retrieved_attrs, int *ncolumns)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);
	VapiColumn *columns;
	ListCell   *lc;
	int			n = 0;

	columns = palloc0(sizeof(VapiColumn) * Max(1, list_length(retrieved_attrs)));
	foreach(lc, retrieved_attrs)
	{
		int			attnum = lfirst_int(lc);
		Form_pg_attribute att = TupleDescAttr(tupdesc, attnum - 1);
		VapiColumn *col = &columns[n++];
		bool		is_explicit;
		Oid			typinput;
		char	   *p;
		char	   *seg;

		col->attnum = attnum;
		col->attname = pstrdup(NameStr(att->attname));
		col->typid = att->atttypid;
		col->typmod = att->atttypmod;
		getTypeInputInfo(att->atttypid, &typinput, &col->typioparam);
		fmgr_info(typinput, &col->typinput);

		col->key = vapi_column_key(RelationGetRelid(rel), attnum,
								   col->attname, &is_explicit);
		if (!is_explicit && strcmp(col->attname, "attrs") == 0 &&
			(col->typid == JSONBOID || col->typid == JSONOID))
		{
			col->kind = VAPI_COL_ATTRS;
			continue;
		}

		col->kind = VAPI_COL_PATH;
		col->npath = 1;
		for (p = col->key; *p; p++)
			if (*p == '.')
				col->npath++;
		col->path = palloc(sizeof(char *) * col->npath);
		p = pstrdup(col->key);
		col->npath = 0;
		while ((seg = strsep(&p, ".")) != NULL)
			col->path[col->npath++] = seg;
	}
	*ncolumns = n;
	return columns;
}

/*
 * vapiBeginForeignScan
 *		Set up a scan: the connection and the column map.  Nothing is sent
 *		until the first row is asked for.
 */
static void
vapiBeginForeignScan(ForeignScanState *node, int eflags)
{
	ForeignScan *fsplan = (ForeignScan *) node->ss.ps.plan;
	EState	   *estate = node->ss.ps.state;
	VapiScanState *st;
	ForeignTable *table;
	ForeignServer *server;
	Oid			userid;

	st = palloc0(sizeof(VapiScanState));
	node->fdw_state = st;
	st->rel = node->ss.ss_currentRelation;
	st->relname = pstrdup(RelationGetRelationName(st->rel));
	st->first_request = strVal(list_nth(fsplan->fdw_private,
										VapiPrivateRequest));
	st->page_size = intVal(list_nth(fsplan->fdw_private,
									VapiPrivatePageSize));

	/* Plain EXPLAIN needs no connection. */
	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;

#if PG_VERSION_NUM >= 160000
	userid = OidIsValid(fsplan->checkAsUser) ? fsplan->checkAsUser : GetUserId();
#else
	{
		RangeTblEntry *rte = exec_rt_fetch(fsplan->scan.scanrelid, estate);

		userid = OidIsValid(rte->checkAsUser) ? rte->checkAsUser : GetUserId();
	}
#endif
	table = GetForeignTable(RelationGetRelid(st->rel));
	server = GetForeignServer(table->serverid);
	st->conn = vapi_get_connection(server, userid);

	st->columns = vapi_build_columns(st->rel,
									 (List *) list_nth(fsplan->fdw_private,
													   VapiPrivateRetrievedAttrs),
									 &st->ncolumns);

	st->scan_cxt = CurrentMemoryContext;
	st->page_cxt = AllocSetContextCreate(estate->es_query_cxt,
										 "vapi_fdw page",
										 ALLOCSET_DEFAULT_SIZES);
	st->bound_cxt = AllocSetContextCreate(estate->es_query_cxt,
										  "vapi_fdw keyset bound",
										  ALLOCSET_SMALL_SIZES);
	st->page_no = 1;
}

/*
 * vapi_page_error_callback
 *		Error context while a page is parsed: the request it answers.
 */
static void
vapi_page_error_callback(void *arg)
{
	errcontext("Vapi request: GET %s", (const char *) arg);
}

/*
 * vapi_advance_keyset
 *		Work out the request after the current page: move the keyset bound
 *		to the oldest createdAt on the page and remember the ids at that
 *		instant, so that the next page (which starts at it again) does not
 *		return them twice.  Called once the page has been returned, before
 *		it is freed.
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
		st->page_no++;
		return;
	}

	if (st->bound == NULL || last_ts != st->bound_ts)
	{
		MemoryContextReset(st->bound_cxt);
		st->seen_at_bound = NIL;
		st->bound = MemoryContextStrdup(st->bound_cxt, last_created);
		st->bound_ts = last_ts;
		st->page_no = 1;
	}
	else
	{
		/* A run of equal timestamps longer than a page: step through it. */
		st->page_no++;
	}

	/* The ids at the bound, from the end of the page backwards. */
	oldcxt = MemoryContextSwitchTo(st->bound_cxt);
	for (i = st->info.count - 1; i >= 0; i--)
	{
		VapiItem   *item = vapi_json_page_item(st->page, i);
		const char *created = vapi_json_item_string(item, "createdAt");
		const char *id = vapi_json_item_id(item);
		int64		ts;

		if (created == NULL || !vapi_parse_timestamp(created, &ts) ||
			ts != st->bound_ts)
			break;
		if (id != NULL && !vapi_seen(st, id))
			st->seen_at_bound = lappend(st->seen_at_bound, pstrdup(id));
	}
	MemoryContextSwitchTo(oldcxt);
}

/*
 * vapi_fetch_page
 *		Fetch the next list page into the page context, and decide whether
 *		another page follows it.
 */
static void
vapi_fetch_page(VapiScanState *st)
{
	VapiListRequest req;
	VapiHttpResponse resp;
	ErrorContextCallback errcb;
	MemoryContext oldcxt;
	char	   *path;
	int			n;
	int			per_page;
	const char *first_id;
	const char *last_id;

	vapi_advance_keyset(st);
	MemoryContextReset(st->page_cxt);
	st->page = NULL;
	st->next = 0;
	oldcxt = MemoryContextSwitchTo(st->page_cxt);

	req.limit = st->page_size;
	req.page = st->page_no;
	req.created_le = st->bound;
	path = vapi_deparse_list_request(&req);

	vapi_request(st->conn, "GET", path, NULL, 0, 0, &resp, st->page_cxt,
				 &st->stats);

	errcb.callback = vapi_page_error_callback;
	errcb.arg = path;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;

	if (resp.content_type != NULL &&
		strncmp(resp.content_type, "application/json", 16) != 0 &&
		strstr(resp.content_type, "+json") == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
				 errmsg("Vapi API returned a response that is not JSON"),
				 errdetail("Content-Type is \"%s\".",
						   vapi_redact(st->conn, resp.content_type))));

	st->page = vapi_json_parse_page(resp.body, resp.body_len, st->page_cxt,
									&st->info);
	st->stats.pages++;
	st->stats.rows += st->info.count;

	/* Is there a further page? */
	n = st->info.count;
	per_page = st->info.items_per_page > 0 ? st->info.items_per_page :
		st->page_size;
	if (n == 0 || st->info.has_next_page == 0 ||
		(st->info.has_next_page < 0 && n < per_page))
		st->done = true;
	else
	{
		/* Guard against an API that ignores the paging parameters. */
		first_id = vapi_json_item_id(vapi_json_page_item(st->page, 0));
		last_id = vapi_json_item_id(vapi_json_page_item(st->page, n - 1));
		if (first_id != NULL && last_id != NULL &&
			st->prev_first_id != NULL && st->prev_last_id != NULL &&
			strcmp(first_id, st->prev_first_id) == 0 &&
			strcmp(last_id, st->prev_last_id) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_ERROR),
					 errmsg("Vapi API paging made no progress"),
					 errdetail("Two consecutive pages held the same phone numbers.")));

		MemoryContextSwitchTo(st->scan_cxt);
		if (st->prev_first_id)
			pfree(st->prev_first_id);
		if (st->prev_last_id)
			pfree(st->prev_last_id);
		st->prev_first_id = first_id ? pstrdup(first_id) : NULL;
		st->prev_last_id = last_id ? pstrdup(last_id) : NULL;
	}

	error_context_stack = errcb.previous;
	MemoryContextSwitchTo(oldcxt);
}

/*
 * vapi_seen
 *		Was the phone number with this id already returned at the current
 *		keyset bound?
 */
static bool
vapi_seen(VapiScanState *st, const char *id)
{
	ListCell   *lc;

	foreach(lc, st->seen_at_bound)
		if (strcmp((const char *) lfirst(lc), id) == 0)
			return true;
	return false;
}

/*
 * vapiIterateForeignScan
 *		Return the next row, fetching the next page when the current one is
 *		used up.
 */
static TupleTableSlot *
vapiIterateForeignScan(ForeignScanState *node)
{
	VapiScanState *st = (VapiScanState *) node->fdw_state;
	TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;

	for (;;)
	{
		if (st->page != NULL && st->next < st->info.count)
		{
			VapiItem   *item = vapi_json_page_item(st->page, st->next++);
			TupleDesc	tupdesc = slot->tts_tupleDescriptor;

			/* A row at the bound that the previous page returned already. */
			if (st->seen_at_bound != NIL)
			{
				const char *created = vapi_json_item_string(item, "createdAt");
				const char *id = vapi_json_item_id(item);
				int64		ts;

				if (created != NULL && id != NULL &&
					vapi_parse_timestamp(created, &ts) &&
					ts == st->bound_ts && vapi_seen(st, id))
					continue;
			}

			ExecClearTuple(slot);
			memset(slot->tts_isnull, true, sizeof(bool) * tupdesc->natts);
			vapi_json_item_to_datums(item, st->columns, st->ncolumns,
									 st->relname, slot->tts_values,
									 slot->tts_isnull);
			ExecStoreVirtualTuple(slot);
			return slot;
		}

		if (st->done)
			return ExecClearTuple(slot);

		CHECK_FOR_INTERRUPTS();
		vapi_fetch_page(st);
	}
}

/*
 * vapiReScanForeignScan
 *		Restart the scan from the first page.
 */
static void
vapiReScanForeignScan(ForeignScanState *node)
{
	VapiScanState *st = (VapiScanState *) node->fdw_state;

	MemoryContextReset(st->page_cxt);
	MemoryContextReset(st->bound_cxt);
	st->page = NULL;
	st->next = 0;
	st->done = false;
	st->page_no = 1;
	st->bound = NULL;
	st->seen_at_bound = NIL;
	st->prev_first_id = NULL;
	st->prev_last_id = NULL;
}

/*
 * vapiEndForeignScan
 *		Finish a scan.  The contexts go with the query; the connection
 *		stays cached for the next query.
 */
static void
vapiEndForeignScan(ForeignScanState *node)
{
	VapiScanState *st = (VapiScanState *) node->fdw_state;

	if (st != NULL && st->page_cxt != NULL)
		MemoryContextReset(st->page_cxt);
}

/*
 * vapiExplainForeignScan
 *		EXPLAIN VERBOSE shows the request the scan starts with (never the
 *		key); EXPLAIN ANALYZE adds what was actually sent and received.
 */
static void
vapiExplainForeignScan(ForeignScanState *node, ExplainState *es)
{
	VapiScanState *st = (VapiScanState *) node->fdw_state;

	if (es->verbose)
	{
		ExplainPropertyText("Vapi Request",
							psprintf("GET %s", st->first_request), es);
		ExplainPropertyText("Vapi Paging", "keyset on createdAt", es);
	}
	if (es->analyze)
	{
		ExplainPropertyInteger("Vapi Requests", NULL, st->stats.requests, es);
		ExplainPropertyInteger("Vapi Retries", NULL, st->stats.retries, es);
		ExplainPropertyInteger("Vapi Pages", NULL, st->stats.pages, es);
		ExplainPropertyInteger("Vapi Rows Received", NULL, st->stats.rows, es);
		ExplainPropertyInteger("Vapi Bytes Received", "bytes",
							   st->stats.bytes, es);
	}
}

/*
 * vapi_parse_timestamp
 *		Parse an ISO 8601 date-time as the API writes it
 *		(YYYY-MM-DDTHH:MM:SS, optional fraction, Z or an offset) into
 *		microseconds since the Unix epoch.  Used for keyset paging only;
 *		column values go through the type's own input function.
 */
bool
vapi_parse_timestamp(const char *s, int64 *usecs)
{
	int			y,
				mo,
				d,
				h,
				mi,
				sec;
	int64		frac = 0;
	int			fdigits = 0;
	int64		days;
	int			era;
	unsigned	yoe,
				doy,
				doe;
	int			off = 0;
	const char *p;

	if (strlen(s) < 19 ||
		sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d", &y, &mo, &d, &h, &mi, &sec) != 6 ||
		s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
		s[13] != ':' || s[16] != ':')
		return false;
	if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return false;

	p = s + 19;
	if (*p == '.')
	{
		p++;
		while (*p >= '0' && *p <= '9')
		{
			if (fdigits < 6)
			{
				frac = frac * 10 + (*p - '0');
				fdigits++;
			}
			p++;
		}
		while (fdigits < 6)
		{
			frac *= 10;
			fdigits++;
		}
	}
	if (*p == 'Z' || *p == 'z')
		p++;
	else if (*p == '+' || *p == '-')
	{
		int			oh,
					om = 0;
		int			sign = *p == '-' ? -1 : 1;

		if (!(p[1] >= '0' && p[1] <= '9' && p[2] >= '0' && p[2] <= '9'))
			return false;
		oh = (p[1] - '0') * 10 + (p[2] - '0');
		p += 3;
		if (*p == ':')
			p++;
		if (p[0] >= '0' && p[0] <= '9' && p[1] >= '0' && p[1] <= '9')
		{
			om = (p[0] - '0') * 10 + (p[1] - '0');
			p += 2;
		}
		off = sign * (oh * 60 + om);
	}
	else
		return false;
	if (*p != '\0')
		return false;

	/* days from civil (proleptic Gregorian) */
	y -= mo <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned) (y - era * 400);
	doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	days = (int64) era * 146097 + (int64) doe - 719468;

	*usecs = ((days * 86400 + h * 3600 + mi * 60 + sec) - (int64) off * 60) *
		INT64CONST(1000000) + frac;
	return true;
}
