/*-------------------------------------------------------------------------
 *
 * vapi_fdw.c
 *		  Foreign data wrapper for the phone numbers of a Vapi organisation:
 *		  module initialisation, the handler, planning (which quals are
 *		  sent, the paths and their costs, the plan and its fdw_private),
 *		  and EXPLAIN.  The scan engine is in scan.c, the writes in
 *		  modify.c.
 *
 * src/vapi_fdw.c
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
#if PG_VERSION_NUM >= 160000
#include "nodes/miscnodes.h"
#endif
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
#include "utils/date.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/ruleutils.h"
#include "utils/sampling.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "catalog/pg_aggregate.h"
#include "utils/fmgroids.h"
#include "optimizer/tlist.h"

#include "vapi_fdw.h"

PG_MODULE_MAGIC;

/* Row count assumed for a table that was never analyzed. */
#define VAPI_DEFAULT_ROWS		1000.0

/* Ids assumed in id = ANY(array) when the array is not a constant. */
#define VAPI_DEFAULT_IDS		10.0

/*
 * Planner costs, in seq_page_cost units: one HTTP request (the round trip
 * to the API dominates everything else) and receiving one row (its bytes
 * and their parsing).  A page of 1000 rows costs three requests.
 */
#define VAPI_REQUEST_COST		100.0
#define VAPI_ROW_COST			0.2

/*
 * Indexes of the fdw_private list of a ForeignPath.
 */
enum VapiPathPrivateIndex
{
	VapiPathMode,
	VapiPathAscending,
	VapiPathSorted,
	VapiPathLimit,
	VapiPathRequests			/* requests estimated, per loop */
};

/*
 * Planner state of a foreign relation.
 */
typedef struct VapiRelInfo
{
	VapiServerOptions opts;
	VapiRelColumns cols;
	List	   *retrieved_attrs;	/* attnums the query needs */
	List	   *pushed_clauses; /* restrictions sent to the API */
	bool		all_exact;		/* every restriction is sent exactly */
	VapiQual   *id_qual;		/* an id restriction: scan by lookups */
	double		ntuples;		/* rows in the table */
	bool		analyzed;		/* ntuples comes from ANALYZE */
	double		rows_received;	/* rows a list scan receives */
} VapiRelInfo;

void		_PG_init(void);

PG_FUNCTION_INFO_V1(vapi_fdw_handler);

static void vapiGetForeignRelSize(PlannerInfo *root, RelOptInfo *baserel,
								  Oid foreigntableid);
static void vapiGetForeignUpperPaths(PlannerInfo *root,
									 UpperRelationKind stage,
									 RelOptInfo *input_rel,
									 RelOptInfo *output_rel, void *extra);
static bool vapi_count_aggs(RelOptInfo *input_rel, VapiRelInfo *fpinfo,
							PathTarget *target, List **aggs);
static void vapi_plan_qual_add(PlannerInfo *root, RelOptInfo *baserel,
							   VapiQual *q, List **quals, List **exprs,
							   List **names);
static ForeignScan *vapi_count_plan(PlannerInfo *root, RelOptInfo *upper,
									ForeignPath *best_path, List *tlist,
									Plan *outer_plan);
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
static bool vapiAnalyzeForeignTable(Relation relation,
									AcquireSampleRowsFunc *func,
									BlockNumber *totalpages);

static List *vapi_retrieved_attrs(PlannerInfo *root, RelOptInfo *baserel,
								  Relation rel);
static int	vapi_useful_order(PlannerInfo *root, RelOptInfo *baserel,
							  VapiRelInfo *fpinfo);
static bool vapi_limit_is_safe(PlannerInfo *root, RelOptInfo *baserel,
							   VapiRelInfo *fpinfo);
static bool vapi_query_has_limit(PlannerInfo *root);
static double vapi_id_count(VapiQual *q);
static ForeignPath *vapi_foreignscan_path(PlannerInfo *root, RelOptInfo *rel,
										  double rows, Cost startup_cost,
										  Cost total_cost, List *pathkeys,
										  Relids required_outer,
										  List *fdw_private);
static List *vapi_path_private(int mode, int ascending, int sorted, int limit,
							   double requests);
static void vapi_add_list_path(PlannerInfo *root, RelOptInfo *baserel,
							   VapiRelInfo *fpinfo, bool ascending,
							   List *pathkeys, double limit);
static void vapi_add_param_paths(PlannerInfo *root, RelOptInfo *baserel,
								 VapiRelInfo *fpinfo);
static bool vapi_ec_member_is_id(PlannerInfo *root, RelOptInfo *rel,
								 EquivalenceClass *ec,
								 EquivalenceMember *em, void *arg);
static char *vapi_outer_column_name(PlannerInfo *root, RelOptInfo *baserel,
									Expr *expr);
static List *vapi_scan_plan_encode(const VapiScanPlan *plan);
static bool vapi_plan_per_loop(const VapiScanPlan *splan);

/*
 * _PG_init
 *		Module load: initialise libcurl, define the GUCs, and, when loaded
 *		by shared_preload_libraries, ask for the shared memory of the
 *		statistics and the rate budget.
 */
void
_PG_init(void)
{
	DefineCustomIntVariable("vapi_fdw.max_requests_per_statement",
							"Most requests to the Vapi API one statement may send.",
							"0 means no limit.  Retries count.",
							&vapi_max_requests_per_statement,
							0, 0, INT_MAX,
							PGC_USERSET, 0,
							NULL, NULL, NULL);
	DefineCustomBoolVariable("vapi_fdw.track_stats",
							 "Counts the requests sent to the Vapi API in vapi_fdw_stats.",
							 NULL,
							 &vapi_track_stats,
							 true,
							 PGC_SUSET, 0,
							 NULL, NULL, NULL);
	MarkGUCPrefixReserved("vapi_fdw");
	vapi_shmem_install();
	vapi_http_global_init();
	vapi_xact_init();
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
	routine->GetForeignUpperPaths = vapiGetForeignUpperPaths;
	routine->BeginForeignScan = vapiBeginForeignScan;
	routine->IterateForeignScan = vapiIterateForeignScan;
	routine->ReScanForeignScan = vapiReScanForeignScan;
	routine->EndForeignScan = vapiEndForeignScan;
	routine->ExplainForeignScan = vapiExplainForeignScan;
	routine->AddForeignUpdateTargets = vapiAddForeignUpdateTargets;
	routine->PlanForeignModify = vapiPlanForeignModify;
	routine->BeginForeignModify = vapiBeginForeignModify;
	routine->ExecForeignInsert = vapiExecForeignInsert;
	routine->ExecForeignUpdate = vapiExecForeignUpdate;
	routine->ExecForeignDelete = vapiExecForeignDelete;
	routine->EndForeignModify = vapiEndForeignModify;
	routine->BeginForeignInsert = vapiBeginForeignInsert;
	routine->EndForeignInsert = vapiEndForeignInsert;
	routine->IsForeignRelUpdatable = vapiIsForeignRelUpdatable;
	routine->ExplainForeignModify = vapiExplainForeignModify;
	routine->PlanDirectModify = vapiPlanDirectModify;
	routine->BeginDirectModify = vapiBeginDirectModify;
	routine->IterateDirectModify = vapiIterateDirectModify;
	routine->EndDirectModify = vapiEndDirectModify;
	routine->ExplainDirectModify = vapiExplainDirectModify;
	routine->AnalyzeForeignTable = vapiAnalyzeForeignTable;
	routine->ImportForeignSchema = vapiImportForeignSchema;

	PG_RETURN_POINTER(routine);
}

/* ----------------------------------------------------------------
 * Planning
 * ----------------------------------------------------------------
 */

/*
 * vapi_retrieved_attrs
 *		The attribute numbers a query needs from the foreign table: those
 *		in its target list and restrictions.  A whole-row reference needs
 *		every column.  Columns not listed are not converted at all.
 */
static List *
vapi_retrieved_attrs(PlannerInfo *root, RelOptInfo *baserel, Relation rel)
{
	Bitmapset  *attrs_used = NULL;
	List	   *result = NIL;
	ListCell   *lc;
	TupleDesc	tupdesc = RelationGetDescr(rel);
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

	for (i = 1; i <= tupdesc->natts; i++)
	{
		if (TupleDescAttr(tupdesc, i - 1)->attisdropped)
			continue;
		if (whole_row ||
			bms_is_member(i - FirstLowInvalidHeapAttributeNumber, attrs_used))
			result = lappend_int(result, i);
	}
	return result;
}

/*
 * vapiGetForeignRelSize
 *		Sort the restrictions into those sent to the API and those only
 *		checked locally, and estimate the rows.  Planning never calls the
 *		API: the table size comes from ANALYZE or a default.
 */
static void
vapiGetForeignRelSize(PlannerInfo *root, RelOptInfo *baserel,
					  Oid foreigntableid)
{
	VapiRelInfo *fpinfo;
	ForeignTable *table = GetForeignTable(foreigntableid);
	Relation	rel;
	ListCell   *lc;
	List	   *time_clauses = NIL;

	fpinfo = palloc0(sizeof(VapiRelInfo));
	baserel->fdw_private = fpinfo;
	vapi_get_server_options(GetForeignServer(table->serverid), &fpinfo->opts);

	rel = table_open(foreigntableid, NoLock);
	fpinfo->retrieved_attrs = vapi_retrieved_attrs(root, baserel, rel);
	vapi_rel_columns(rel, &fpinfo->cols);
	table_close(rel, NoLock);

	fpinfo->all_exact = true;
	foreach(lc, baserel->baserestrictinfo)
	{
		RestrictInfo *rinfo = lfirst_node(RestrictInfo, lc);
		VapiQual	q;

		if (rinfo->pseudoconstant)
			continue;
		if (!vapi_classify_qual(root, baserel, &fpinfo->cols, rinfo->clause,
								false, &q))
		{
			fpinfo->all_exact = false;
			continue;
		}
		fpinfo->pushed_clauses = lappend(fpinfo->pushed_clauses, rinfo);
		if (q.kind == VAPI_QUAL_SEARCH)
			fpinfo->all_exact = false;
		else if (q.kind == VAPI_QUAL_TIME)
			time_clauses = lappend(time_clauses, rinfo);
		else if (fpinfo->id_qual == NULL)
		{
			fpinfo->id_qual = palloc(sizeof(VapiQual));
			*fpinfo->id_qual = q;
		}
	}

	fpinfo->analyzed = baserel->tuples > 0;
	fpinfo->ntuples = baserel->tuples > 0 ? baserel->tuples : VAPI_DEFAULT_ROWS;
	baserel->tuples = fpinfo->ntuples;
	baserel->rows = clamp_row_est(fpinfo->ntuples *
								  clauselist_selectivity(root,
														 baserel->baserestrictinfo,
														 0, JOIN_INNER, NULL));
	fpinfo->rows_received =
		clamp_row_est(fpinfo->ntuples *
					  clauselist_selectivity(root, time_clauses, 0,
											 JOIN_INNER, NULL));

	/* Ids are unique: a lookup returns at most one row per id. */
	if (fpinfo->id_qual != NULL)
		baserel->rows = clamp_row_est(Min(baserel->rows,
										  vapi_id_count(fpinfo->id_qual)));
}

/*
 * vapi_id_count
 *		How many ids a lookup qual will get: 1 for id = value, the length
 *		of a constant array, or a guess.
 */
static double
vapi_id_count(VapiQual *q)
{
	if (q->kind == VAPI_QUAL_ID_ANY)
	{
		if (IsA(q->operand, Const) && !((Const *) q->operand)->constisnull)
		{
			ArrayType  *arr = DatumGetArrayTypeP(((Const *) q->operand)->constvalue);

			return Max(1, ArrayGetNItems(ARR_NDIM(arr), ARR_DIMS(arr)));
		}
		return VAPI_DEFAULT_IDS;
	}
	return 1;
}

/*
 * vapi_useful_order
 *		Does the query want the rows ordered by created_at alone, which the
 *		API can do?  1 for ascending (NULLS LAST), -1 for descending (NULLS
 *		FIRST), 0 otherwise.
 */
static int
vapi_useful_order(PlannerInfo *root, RelOptInfo *baserel, VapiRelInfo *fpinfo)
{
	PathKey    *pk;
	ListCell   *lc;
	AttrNumber	attno = fpinfo->cols.time_attno[VAPI_FIELD_CREATED];

	if (attno == InvalidAttrNumber || list_length(root->query_pathkeys) != 1)
		return 0;
	pk = linitial(root->query_pathkeys);
	if (pk->pk_eclass->ec_has_volatile)
		return 0;
	if (pk->pk_opfamily !=
		get_opclass_family(GetDefaultOpClass(TIMESTAMPTZOID, BTREE_AM_OID)))
		return 0;

	foreach(lc, pk->pk_eclass->ec_members)
	{
		EquivalenceMember *em = lfirst(lc);
		Var		   *var = (Var *) em->em_expr;

		if (IsA(var, Var) && var->varno == baserel->relid &&
			var->varlevelsup == 0 && var->varattno == attno)
		{
#if PG_VERSION_NUM >= 180000
			bool		asc = pk->pk_cmptype == COMPARE_LT;
			bool		desc = pk->pk_cmptype == COMPARE_GT;
#else
			bool		asc = pk->pk_strategy == BTLessStrategyNumber;
			bool		desc = pk->pk_strategy == BTGreaterStrategyNumber;
#endif

			if (asc && !pk->pk_nulls_first)
				return 1;
			if (desc && pk->pk_nulls_first)
				return -1;
		}
	}
	return 0;
}

/*
 * vapi_limit_is_safe
 *		May a LIMIT be sent to the API?  Only when it is provably the
 *		number of rows the scan must return: the query reads this one
 *		relation, every restriction is sent exactly by a list scan (an id
 *		list is not: a list scan only checks it locally), the LIMIT and
 *		OFFSET are constants (not WITH TIES), and there is no grouping,
 *		aggregation, DISTINCT, window function, set-returning function in
 *		the target list or row locking (the planner clears limit_tuples for
 *		most of those).  The caller also requires that the scan delivers
 *		the ORDER BY, if any.
 */
static bool
vapi_limit_is_safe(PlannerInfo *root, RelOptInfo *baserel, VapiRelInfo *fpinfo)
{
	Query	   *parse = root->parse;

	return root->limit_tuples > 0 &&
		root->limit_tuples < (double) PG_INT32_MAX &&
		baserel->reloptkind == RELOPT_BASEREL &&
		bms_membership(root->all_baserels) == BMS_SINGLETON &&
		bms_is_empty(baserel->lateral_relids) &&
		fpinfo->all_exact && fpinfo->id_qual == NULL &&
		parse->limitCount != NULL && IsA(parse->limitCount, Const) &&
		(parse->limitOffset == NULL || IsA(parse->limitOffset, Const)) &&
		parse->limitOption != LIMIT_OPTION_WITH_TIES &&
		parse->rowMarks == NIL &&
		!parse->hasAggs && !parse->hasWindowFuncs &&
		!parse->hasTargetSRFs && parse->groupClause == NIL &&
		parse->groupingSets == NIL && parse->distinctClause == NIL &&
		!root->hasHavingQual;
}

/*
 * vapi_foreignscan_path
 *		create_foreignscan_path across PostgreSQL versions (17 added the
 *		restriction list, 18 the count of disabled nodes).
 */
static ForeignPath *
vapi_foreignscan_path(PlannerInfo *root, RelOptInfo *rel, double rows,
					  Cost startup_cost, Cost total_cost, List *pathkeys,
					  Relids required_outer, List *fdw_private)
{
#if PG_VERSION_NUM >= 180000
	return create_foreignscan_path(root, rel, NULL, rows, 0, startup_cost,
								   total_cost, pathkeys, required_outer,
								   NULL, NIL, fdw_private);
#elif PG_VERSION_NUM >= 170000
	return create_foreignscan_path(root, rel, NULL, rows, startup_cost,
								   total_cost, pathkeys, required_outer,
								   NULL, NIL, fdw_private);
#else
	return create_foreignscan_path(root, rel, NULL, rows, startup_cost,
								   total_cost, pathkeys, required_outer,
								   NULL, fdw_private);
#endif
}

/*
 * vapi_path_private
 *		The fdw_private list of a ForeignPath (see VapiPathPrivateIndex).
 */
static List *
vapi_path_private(int mode, int ascending, int sorted, int limit,
				  double requests)
{
	return list_make5(makeInteger(mode), makeInteger(ascending),
					  makeInteger(sorted), makeInteger(limit),
					  makeInteger((int) Min(requests, (double) INT_MAX)));
}

/*
 * vapi_add_list_path
 *		Add a list-scan path: in the given order, receiving at most "limit"
 *		rows (or all, if limit < 0).
 */
static void
vapi_add_list_path(PlannerInfo *root, RelOptInfo *baserel,
				   VapiRelInfo *fpinfo, bool ascending, List *pathkeys,
				   double limit)
{
	double		received = fpinfo->rows_received;
	double		rows = baserel->rows;
	double		pages;
	double		requests;
	Cost		total_cost;

	if (limit >= 0)
	{
		received = Min(received, Max(limit, 1));
		rows = Min(rows, Max(limit, 1));
	}
	pages = Max(1.0, ceil(received / fpinfo->opts.page_size));
	requests = pages;

	/*
	 * Round trips, not requests, are what a scan waits for: after its
	 * first page, a scan without a LIMIT pages through up to
	 * max_concurrent_requests time windows at once.
	 */
	if (limit < 0 && fpinfo->opts.prefetch && pages > 1)
		pages = 1 + ceil((pages - 1) / fpinfo->opts.max_concurrent);
	total_cost = pages * VAPI_REQUEST_COST +
		received * (VAPI_ROW_COST + cpu_tuple_cost +
					baserel->baserestrictcost.per_tuple);

	add_path(baserel, (Path *)
			 vapi_foreignscan_path(root, baserel, rows,
								   VAPI_REQUEST_COST, total_cost,
								   pathkeys, baserel->lateral_relids,
								   vapi_path_private(VAPI_MODE_LIST, ascending ? 1 : 0,
													 pathkeys != NIL ? 1 : 0,
													 limit >= 0 ? (int) limit : -1,
													 requests)));
}

/*
 * vapi_ec_member_is_id
 *		generate_implied_equalities_for_column callback: is this member of
 *		an equivalence class our id column?
 */
static bool
vapi_ec_member_is_id(PlannerInfo *root, RelOptInfo *rel,
					 EquivalenceClass *ec, EquivalenceMember *em, void *arg)
{
	VapiRelInfo *fpinfo = (VapiRelInfo *) arg;
	Expr	   *e = em->em_expr;

	while (e && IsA(e, RelabelType))
		e = ((RelabelType *) e)->arg;
	return e && IsA(e, Var) && ((Var *) e)->varno == rel->relid &&
		((Var *) e)->varlevelsup == 0 &&
		((Var *) e)->varattno == fpinfo->cols.id_attno;
}

/*
 * vapi_add_param_paths
 *		For a join on id (crm.vapi_id = phone_numbers.id), add paths
 *		parameterized by the other relation: one lookup per outer row.
 *		Their cost lets the planner prefer them for a small outer side and
 *		a hash join over one list scan for a large one.
 */
static void
vapi_add_param_paths(PlannerInfo *root, RelOptInfo *baserel,
					 VapiRelInfo *fpinfo)
{
	List	   *clauses = NIL;
	List	   *ppi_list = NIL;
	ListCell   *lc;

	if (fpinfo->cols.id_attno == InvalidAttrNumber)
		return;

	if (baserel->has_eclass_joins)
		clauses = generate_implied_equalities_for_column(root, baserel,
														 vapi_ec_member_is_id,
														 fpinfo,
														 baserel->lateral_referencers);
	clauses = list_concat_copy(clauses, baserel->joininfo);

	foreach(lc, clauses)
	{
		RestrictInfo *rinfo = lfirst_node(RestrictInfo, lc);
		VapiQual	q;
		Relids		required_outer;

		if (!join_clause_is_movable_to(rinfo, baserel))
			continue;
		if (!vapi_classify_qual(root, baserel, &fpinfo->cols, rinfo->clause,
								true, &q) ||
			q.kind != VAPI_QUAL_ID_EQ)
			continue;
		required_outer = bms_union(rinfo->clause_relids,
								   baserel->lateral_relids);
		required_outer = bms_del_member(required_outer, baserel->relid);
		if (bms_is_empty(required_outer))
			continue;
		ppi_list = list_append_unique_ptr(ppi_list,
										  get_baserel_parampathinfo(root, baserel,
																	required_outer));
	}

	foreach(lc, ppi_list)
	{
		ParamPathInfo *ppi = lfirst(lc);
		Cost		cost = VAPI_REQUEST_COST + VAPI_ROW_COST + cpu_tuple_cost +
			baserel->baserestrictcost.per_tuple;

		/* one lookup per outer row, at most one row each */
		ppi->ppi_rows = Min(ppi->ppi_rows, 1.0);
		add_path(baserel, (Path *)
				 vapi_foreignscan_path(root, baserel, ppi->ppi_rows,
									   VAPI_REQUEST_COST, cost, NIL,
									   ppi->ppi_req_outer,
									   vapi_path_private(VAPI_MODE_LOOKUP, 0, 0, -1, 1)));
	}
}

/*
 * vapiGetForeignPaths
 *		The access paths: lookups by id when the query names ids; else a
 *		list scan, in the order the query wants when that is created_at,
 *		receiving only the rows a safe LIMIT needs; and lookups
 *		parameterized by a join on id.
 */
static void
vapiGetForeignPaths(PlannerInfo *root, RelOptInfo *baserel,
					Oid foreigntableid)
{
	VapiRelInfo *fpinfo = (VapiRelInfo *) baserel->fdw_private;
	int			order;

	if (fpinfo->id_qual != NULL)
	{
		double		n = vapi_id_count(fpinfo->id_qual);

		/* max_concurrent_requests lookups at a time: n / that round trips */
		add_path(baserel, (Path *)
				 vapi_foreignscan_path(root, baserel, baserel->rows,
									   VAPI_REQUEST_COST,
									   ceil(n / fpinfo->opts.max_concurrent) *
									   VAPI_REQUEST_COST +
									   n * (VAPI_ROW_COST + cpu_tuple_cost +
											baserel->baserestrictcost.per_tuple),
									   NIL, baserel->lateral_relids,
									   vapi_path_private(VAPI_MODE_LOOKUP, 0, 0, -1, n)));

		/*
		 * Without ANALYZE the table's size is a guess, and without a
		 * constant array the number of ids is one: stay with the lookups.
		 * With both known, one list scan may cost fewer round trips than a
		 * long list of ids; the cheaper path wins.
		 */
		if (!fpinfo->analyzed || fpinfo->id_qual->kind != VAPI_QUAL_ID_ANY ||
			!IsA(fpinfo->id_qual->operand, Const))
			return;
	}

	/* The list comes newest first unless asked otherwise. */
	order = vapi_useful_order(root, baserel, fpinfo);
	vapi_add_list_path(root, baserel, fpinfo, false,
					   order < 0 ? root->query_pathkeys : NIL, -1);
	if (order > 0)
		vapi_add_list_path(root, baserel, fpinfo, true, root->query_pathkeys, -1);

	/* The same, receiving no more rows than a safe LIMIT needs. */
	if (vapi_limit_is_safe(root, baserel, fpinfo) &&
		(order != 0 || root->query_pathkeys == NIL))
		vapi_add_list_path(root, baserel, fpinfo, order > 0,
						   order != 0 ? root->query_pathkeys : NIL,
						   root->limit_tuples);

	vapi_add_param_paths(root, baserel, fpinfo);
}

/*
 * vapiGetForeignUpperPaths
 *		count(*) over the table (or count of its id column: every phone
 *		number has an id), with every restriction sent to the API exactly,
 *		is answered by one small request: metadata.totalItems of its first
 *		page.  Not with GROUP BY, HAVING, DISTINCT or FILTER in the
 *		aggregate, a gating qual, any restriction checked locally (search,
 *		ids, anything not pushed), or a time bound whose value could fall
 *		outside what timestamptz holds.
 */
static void
vapiGetForeignUpperPaths(PlannerInfo *root, UpperRelationKind stage,
						 RelOptInfo *input_rel, RelOptInfo *output_rel,
						 void *extra)
{
	VapiRelInfo *fpinfo = (VapiRelInfo *) input_rel->fdw_private;
	Query	   *parse = root->parse;
	List	   *aggs = NIL;
	ListCell   *lc;

	if (stage != UPPERREL_GROUP_AGG || output_rel->fdw_private != NULL ||
		input_rel->reloptkind != RELOPT_BASEREL || fpinfo == NULL ||
		!fpinfo->opts.count_pushdown)
		return;
	if (parse->groupClause != NIL || parse->groupingSets != NIL ||
		parse->havingQual != NULL || root->hasPseudoConstantQuals ||
		!fpinfo->all_exact || fpinfo->id_qual != NULL ||
		!bms_is_empty(input_rel->lateral_relids))
		return;

	/* every restriction is a time bound sent exactly, its value in range */
	foreach(lc, fpinfo->pushed_clauses)
	{
		RestrictInfo *rinfo = lfirst_node(RestrictInfo, lc);
		VapiQual	q;
		int64		ts;

		if (!vapi_classify_qual(root, input_rel, &fpinfo->cols, rinfo->clause,
								false, &q) || q.kind != VAPI_QUAL_TIME)
			return;
		if (IsA(q.operand, Const))
		{
			Const	   *c = (Const *) q.operand;

			if (!c->constisnull &&
				!vapi_time_value(c->constvalue, c->consttype, &ts) &&
				!TIMESTAMP_NOT_FINITE(ts))
				return;
		}
		else if (exprType((Node *) q.operand) != TIMESTAMPTZOID)
			return;
	}
	if (!vapi_count_aggs(input_rel, fpinfo, output_rel->reltarget, &aggs))
		return;

	/* GetForeignPlan finds the table's restrictions through this */
	output_rel->fdw_private = input_rel;
	add_path(output_rel, (Path *)
#if PG_VERSION_NUM >= 180000
			 create_foreign_upper_path(root, output_rel, output_rel->reltarget,
									   1, 0, VAPI_REQUEST_COST,
									   VAPI_REQUEST_COST + cpu_tuple_cost,
									   NIL, NULL, NIL,
#elif PG_VERSION_NUM >= 170000
			 create_foreign_upper_path(root, output_rel, output_rel->reltarget,
									   1, VAPI_REQUEST_COST,
									   VAPI_REQUEST_COST + cpu_tuple_cost,
									   NIL, NULL, NIL,
#else
			 create_foreign_upper_path(root, output_rel, output_rel->reltarget,
									   1, VAPI_REQUEST_COST,
									   VAPI_REQUEST_COST + cpu_tuple_cost,
									   NIL, NULL,
#endif
									   vapi_path_private(VAPI_MODE_COUNT, 0, 0, -1, 1)));
}

/*
 * vapi_count_aggs
 *		Is every aggregate of the target count(*) or count(id), plain (no
 *		DISTINCT, FILTER, ORDER BY), and is there one at least?  They go to
 *		"aggs", each once.  Expressions around them (count(*) * 2) are
 *		computed above the scan.
 */
static bool
vapi_count_aggs(RelOptInfo *input_rel, VapiRelInfo *fpinfo,
				PathTarget *target, List **aggs)
{
	ListCell   *lc;

	*aggs = NIL;
	foreach(lc, target->exprs)
	{
		List	   *found = pull_var_clause((Node *) lfirst(lc),
											PVC_INCLUDE_AGGREGATES |
											PVC_INCLUDE_PLACEHOLDERS);
		ListCell   *fc;

		foreach(fc, found)
		{
			Aggref	   *agg = (Aggref *) lfirst(fc);

			if (!IsA(agg, Aggref) || agg->aggfilter != NULL ||
				agg->aggdistinct != NIL || agg->aggorder != NIL ||
				agg->aggkind != AGGKIND_NORMAL || agg->agglevelsup != 0 ||
				agg->aggsplit != AGGSPLIT_SIMPLE)
				return false;
			if (agg->aggfnoid == F_COUNT_ && agg->aggstar)
				;
			else if (agg->aggfnoid == F_COUNT_ANY && list_length(agg->args) == 1 &&
					 fpinfo->cols.id_attno != InvalidAttrNumber)
			{
				Expr	   *e = ((TargetEntry *) linitial(agg->args))->expr;

				while (e && IsA(e, RelabelType))
					e = ((RelabelType *) e)->arg;
				if (!IsA(e, Var) || ((Var *) e)->varno != input_rel->relid ||
					((Var *) e)->varlevelsup != 0 ||
					((Var *) e)->varattno != fpinfo->cols.id_attno)
					return false;
			}
			else
				return false;
			*aggs = list_append_unique(*aggs, agg);
		}
	}
	return *aggs != NIL;
}

/*
 * vapi_plan_qual_add
 *		Record a qual the scan sends: its VapiPlanQual, its value's
 *		expression (evaluated when the scan starts) and, for EXPLAIN, the
 *		outer column it comes from.
 */
static void
vapi_plan_qual_add(PlannerInfo *root, RelOptInfo *baserel, VapiQual *q,
				   List **quals, List **exprs, List **names)
{
	VapiPlanQual *pq = palloc(sizeof(VapiPlanQual));

	pq->kind = q->kind;
	pq->field = q->field;
	pq->strategy = q->strategy;
	pq->operand = list_length(*exprs);
	*quals = lappend(*quals, pq);
	*exprs = lappend(*exprs, q->operand);
	*names = lappend(*names,
					 makeString(vapi_outer_column_name(root, baserel, q->operand)));
}

/*
 * vapi_count_plan
 *		The ForeignScan of a count pushed down: no scan relation, one row
 *		of the counts (fdw_scan_tlist), and the table's time bounds as the
 *		quals sent.
 */
static ForeignScan *
vapi_count_plan(PlannerInfo *root, RelOptInfo *upper, ForeignPath *best_path,
				List *tlist, Plan *outer_plan)
{
	RelOptInfo *input = (RelOptInfo *) upper->fdw_private;
	VapiRelInfo *fpinfo = (VapiRelInfo *) input->fdw_private;
	List	   *quals = NIL;
	List	   *exprs = NIL;
	List	   *names = NIL;
	List	   *aggs;
	VapiScanPlan splan;
	ListCell   *lc;

	foreach(lc, input->baserestrictinfo)
	{
		RestrictInfo *rinfo = lfirst_node(RestrictInfo, lc);
		VapiQual	q;

		if (rinfo->pseudoconstant)
			continue;
		if (!vapi_classify_qual(root, input, &fpinfo->cols, rinfo->clause,
								false, &q) || q.kind != VAPI_QUAL_TIME)
			elog(ERROR, "vapi_fdw: count pushed down with a qual it cannot send");
		vapi_plan_qual_add(root, input, &q, &quals, &exprs, &names);
	}
	if (!vapi_count_aggs(input, fpinfo, best_path->path.pathtarget, &aggs))
		elog(ERROR, "vapi_fdw: count pushed down without its aggregates");

	memset(&splan, 0, sizeof(splan));
	splan.page_size = fpinfo->opts.page_size;
	splan.mode = VAPI_MODE_COUNT;
	splan.limit = -1;
	splan.quals = quals;
	splan.operand_names = names;
	splan.prefetch = fpinfo->opts.prefetch;
	splan.est_requests = 1;

	return make_foreignscan(tlist, NIL, 0, exprs,
							vapi_scan_plan_encode(&splan),
							add_to_flat_tlist(NIL, aggs),
							NIL, outer_plan);
}

/*
 * vapi_outer_column_name
 *		"alias.column" when a pushed value is a column of another relation
 *		(it becomes a nested-loop parameter, which EXPLAIN could otherwise
 *		only show as $n), else "".
 */
static char *
vapi_outer_column_name(PlannerInfo *root, RelOptInfo *baserel, Expr *expr)
{
	Var		   *var;
	RangeTblEntry *rte;

	while (expr && IsA(expr, RelabelType))
		expr = ((RelabelType *) expr)->arg;
	if (expr == NULL || !IsA(expr, Var))
		return pstrdup("");
	var = (Var *) expr;
	if (var->varno == baserel->relid || var->varlevelsup != 0 ||
		var->varattno <= 0)
		return pstrdup("");
	rte = planner_rt_fetch(var->varno, root);
	return psprintf("%s.%s", quote_identifier(rte->eref->aliasname),
					quote_identifier(get_rte_attribute_name(rte, var->varattno)));
}

/*
 * vapi_query_has_limit
 *		Does the query level of the scan have a LIMIT (other than LIMIT
 *		ALL)?
 */
static bool
vapi_query_has_limit(PlannerInfo *root)
{
	Node	   *count = root->parse->limitCount;

	if (count == NULL)
		return false;
	if (IsA(count, Const) && ((Const *) count)->constisnull)
		return false;
	return true;
}

/*
 * vapiGetForeignPlan
 *		Build the ForeignScan: work out which quals are sent and how, and
 *		keep every qual as a local filter.
 */
static ForeignScan *
vapiGetForeignPlan(PlannerInfo *root, RelOptInfo *baserel,
				   Oid foreigntableid, ForeignPath *best_path,
				   List *tlist, List *scan_clauses, Plan *outer_plan)
{
	VapiRelInfo *fpinfo;
	List	   *path_private = best_path->fdw_private;
	int			mode = intVal(list_nth(path_private, VapiPathMode));
	bool		allow_outer = best_path->path.param_info != NULL;
	bool		have_driver = false;
	List	   *quals = NIL;
	List	   *exprs = NIL;
	List	   *local_only = NIL;
	List	   *local_clauses = NIL;
	List	   *names = NIL;
	VapiScanPlan splan;
	char	   *search = NULL;
	ListCell   *lc;

	if (mode == VAPI_MODE_COUNT)
		return vapi_count_plan(root, baserel, best_path, tlist, outer_plan);
	fpinfo = (VapiRelInfo *) baserel->fdw_private;

	foreach(lc, scan_clauses)
	{
		RestrictInfo *rinfo = lfirst_node(RestrictInfo, lc);
		VapiQual	q;
		bool		sent = false;

		if (rinfo->pseudoconstant)
			continue;
		local_clauses = lappend(local_clauses, rinfo->clause);

		if (vapi_classify_qual(root, baserel, &fpinfo->cols, rinfo->clause,
							   allow_outer, &q))
		{
			if (mode == VAPI_MODE_LOOKUP &&
				(q.kind == VAPI_QUAL_ID_EQ || q.kind == VAPI_QUAL_ID_ANY) &&
				!have_driver)
			{
				/* the first id qual drives the lookups */
				have_driver = true;
				sent = true;
			}
			else if (mode == VAPI_MODE_LIST && q.kind == VAPI_QUAL_TIME)
				sent = true;
			else if (mode == VAPI_MODE_LIST && q.kind == VAPI_QUAL_SEARCH)
			{
				/* one search parameter: the longest fragment */
				if (search == NULL || strlen(q.search) > strlen(search))
					search = q.search;
				sent = true;
			}
			if (sent && q.kind != VAPI_QUAL_SEARCH)
				vapi_plan_qual_add(root, baserel, &q, &quals, &exprs, &names);
		}
		local_only = lappend_int(local_only, sent ? 0 : 1);
	}

	if (mode == VAPI_MODE_LOOKUP && !have_driver)
		elog(ERROR, "vapi_fdw: lookup path without an id qual");

	splan.retrieved_attrs = fpinfo->retrieved_attrs;
	splan.page_size = fpinfo->opts.page_size;
	splan.mode = mode;
	splan.ascending = intVal(list_nth(path_private, VapiPathAscending)) != 0;
	splan.sorted = intVal(list_nth(path_private, VapiPathSorted)) != 0;
	splan.limit = intVal(list_nth(path_private, VapiPathLimit));
	splan.search = search;
	splan.quals = quals;
	splan.local_only = local_only;
	splan.operand_names = names;
	splan.est_requests = intVal(list_nth(path_private, VapiPathRequests));

	/*
	 * Ask for the next page while the current one is returned, unless the
	 * query has a LIMIT, constant or not (it may stop early, and the
	 * request would be wasted).
	 */
	splan.prefetch = fpinfo->opts.prefetch && !vapi_query_has_limit(root);

	return make_foreignscan(tlist,
							local_clauses,
							baserel->relid,
							exprs,
							vapi_scan_plan_encode(&splan),
							NIL,	/* no custom tlist */
							NIL,	/* no remote quals */
							outer_plan);
}

/*
 * vapi_scan_plan_encode
 *		The fdw_private list of a ForeignScan holding "plan" (copyable
 *		nodes only, as a plan must be).  vapi_scan_plan_decode reads it
 *		back; nothing else knows the list's layout.
 */
static List *
vapi_scan_plan_encode(const VapiScanPlan *plan)
{
	List	   *quals = NIL;
	ListCell   *lc;

	foreach(lc, plan->quals)
	{
		VapiPlanQual *q = (VapiPlanQual *) lfirst(lc);

		quals = lappend(quals, list_make4(makeInteger(q->kind),
										  makeInteger(q->field),
										  makeInteger(q->strategy),
										  makeInteger(q->operand)));
	}
	return list_make5(plan->retrieved_attrs,
					  lappend(list_make5(makeInteger(plan->page_size),
										 makeInteger(plan->mode),
										 makeInteger(plan->ascending ? 1 : 0),
										 makeInteger(plan->sorted ? 1 : 0),
										 makeInteger((int) plan->limit)),
							  makeInteger(plan->est_requests)),
					  list_make2(makeString(pstrdup(plan->search ? plan->search : "")),
								 makeInteger(plan->prefetch ? 1 : 0)),
					  quals,
					  list_make2(plan->local_only, plan->operand_names));
}

/*
 * vapi_scan_plan_decode
 *		Read back what vapi_scan_plan_encode wrote.
 */
void
vapi_scan_plan_decode(List *fdw_private, VapiScanPlan *plan)
{
	List	   *scalars = (List *) lsecond(fdw_private);
	List	   *texts = (List *) lthird(fdw_private);
	List	   *lists = (List *) list_nth(fdw_private, 4);
	char	   *search = strVal(linitial(texts));
	ListCell   *lc;

	plan->retrieved_attrs = (List *) linitial(fdw_private);
	plan->page_size = intVal(linitial(scalars));
	plan->mode = intVal(lsecond(scalars));
	plan->ascending = intVal(lthird(scalars)) != 0;
	plan->sorted = intVal(lfourth(scalars)) != 0;
	plan->limit = intVal(list_nth(scalars, 4));
	plan->est_requests = intVal(list_nth(scalars, 5));
	plan->search = search[0] != '\0' ? search : NULL;
	plan->prefetch = intVal(lsecond(texts)) != 0;
	plan->quals = NIL;
	foreach(lc, (List *) lfourth(fdw_private))
	{
		List	   *q = (List *) lfirst(lc);
		VapiPlanQual *pq = palloc(sizeof(VapiPlanQual));

		pq->kind = intVal(linitial(q));
		pq->field = intVal(lsecond(q));
		pq->strategy = intVal(lthird(q));
		pq->operand = intVal(lfourth(q));
		plan->quals = lappend(plan->quals, pq);
	}
	plan->local_only = (List *) linitial(lists);
	plan->operand_names = (List *) lsecond(lists);
}

/* ----------------------------------------------------------------
 * Execution
 * ----------------------------------------------------------------
 */

/*
 * vapiBeginForeignScan
 *		Set up a scan from its plan.  Nothing is sent until the first row
 *		is asked for, and plain EXPLAIN needs no connection.
 */
static void
vapiBeginForeignScan(ForeignScanState *node, int eflags)
{
	ForeignScan *fsplan = (ForeignScan *) node->ss.ps.plan;
	VapiScanPlan plan;
	Oid			userid = InvalidOid;

	vapi_scan_plan_decode(fsplan->fdw_private, &plan);
	if (!(eflags & EXEC_FLAG_EXPLAIN_ONLY))
		userid = vapi_scan_userid(fsplan, node->ss.ps.state);
	node->fdw_state = vapi_scan_begin(node, &plan, userid);
}

/*
 * vapiIterateForeignScan
 *		Return the next row.
 */
static TupleTableSlot *
vapiIterateForeignScan(ForeignScanState *node)
{
	TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;

	ExecClearTuple(slot);
	if (((ForeignScan *) node->ss.ps.plan)->scan.scanrelid == 0)
	{
		/* a count pushed down: one row, every column a count */
		int64		count;
		int			i;

		if (!vapi_scan_count((VapiScanState *) node->fdw_state, &count))
			return slot;
		for (i = 0; i < slot->tts_tupleDescriptor->natts; i++)
		{
			slot->tts_values[i] = Int64GetDatum(count);
			slot->tts_isnull[i] = false;
		}
		ExecStoreVirtualTuple(slot);
		return slot;
	}
	memset(slot->tts_isnull, true,
		   sizeof(bool) * slot->tts_tupleDescriptor->natts);
	if (!vapi_scan_next((VapiScanState *) node->fdw_state,
						slot->tts_values, slot->tts_isnull))
		return slot;
	ExecStoreVirtualTuple(slot);
	return slot;
}

/*
 * vapi_is_own_scan
 *		Is this ForeignScanState a started scan of vapi_fdw?
 */
bool
vapi_is_own_scan(ForeignScanState *node)
{
	return node->fdwroutine != NULL &&
		node->fdwroutine->IterateForeignScan == vapiIterateForeignScan &&
		node->fdw_state != NULL;
}

/*
 * vapiReScanForeignScan
 *		Restart the scan: for a parameterized lookup, with the new outer
 *		values.
 */
static void
vapiReScanForeignScan(ForeignScanState *node)
{
	vapi_scan_rescan((VapiScanState *) node->fdw_state);
}

/*
 * vapiEndForeignScan
 *		Finish a scan.
 */
static void
vapiEndForeignScan(ForeignScanState *node)
{
	vapi_scan_end((VapiScanState *) node->fdw_state);
}

/*
 * vapi_plan_per_loop
 *		Does the scan take its ids from an outer relation (a parameterized
 *		lookup, run once per outer row)?
 */
static bool
vapi_plan_per_loop(const VapiScanPlan *splan)
{
	ListCell   *lc;

	if (splan->mode != VAPI_MODE_LOOKUP)
		return false;
	foreach(lc, splan->operand_names)
		if (strVal(lfirst(lc))[0] != '\0')
			return true;
	return false;
}

/*
 * vapiExplainForeignScan
 *		EXPLAIN VERBOSE shows the request(s) the scan sends (never the key)
 *		and the quals that are only checked locally; EXPLAIN ANALYZE adds
 *		what was actually sent and received.
 */
static void
vapiExplainForeignScan(ForeignScanState *node, ExplainState *es)
{
	VapiScanState *st = (VapiScanState *) node->fdw_state;
	Plan	   *plan = node->ss.ps.plan;
	const VapiStats *stats = vapi_scan_stats(st);
	VapiScanPlan splan;

	vapi_scan_plan_decode(((ForeignScan *) plan)->fdw_private, &splan);

	/*
	 * What the scan is estimated to send, with the other estimates (so that
	 * a user sees it before running a query, and tests with COSTS OFF do
	 * not depend on it).  A parameterized scan sends its requests per loop.
	 */
	if (es->costs)
		ExplainPropertyInteger(vapi_plan_per_loop(&splan) ?
							   "Vapi Estimated Requests per Loop" :
							   "Vapi Estimated Requests", NULL,
							   splan.est_requests, es);
	if (es->verbose)
	{
		List	   *dpcontext = set_deparse_context_plan(es->deparse_cxt, plan, NIL);
		bool		useprefix = list_length(es->rtable) > 1;
		List	   *local = NIL;
		ListCell   *lc;
		ListCell   *fc;

		if (es->analyze && vapi_scan_first_request(st) != NULL)
			ExplainPropertyList("Vapi Request",
								list_make1(psprintf("GET %s",
													vapi_scan_first_request(st))),
								es);
		else
		{
			Oid			serverid;
			List	   *requests;

			serverid = GetForeignTable(RelationGetRelid(vapi_scan_relation(st)))->serverid;
			requests = vapi_scan_explain_requests(st, serverid,
												  vapi_scan_userid((ForeignScan *) plan,
																   node->ss.ps.state),
												  dpcontext, useprefix);
			if (list_length(requests) > 10)
			{
				int			more = list_length(requests) - 10;

				requests = list_truncate(requests, 10);
				requests = lappend(requests, psprintf("... (%d more)", more));
			}
			ExplainPropertyList("Vapi Request", requests, es);
		}
		if (splan.mode == VAPI_MODE_COUNT)
		{
			ExplainPropertyText("Relations",
								psprintf("Aggregate on (%s)",
										 quote_identifier(RelationGetRelationName(vapi_scan_relation(st)))),
								es);
			ExplainPropertyText("Vapi Count",
								vapi_scan_count_source(st) == 2 ?
								"rows listed and counted (the answer had no metadata.totalItems)" :
								"metadata.totalItems of the request", es);
		}
		if (splan.mode == VAPI_MODE_LIST)
			ExplainPropertyText("Vapi Paging",
								psprintf("keyset on createdAt, %s%s",
										 splan.ascending ? "ascending" : "descending",
										 vapi_scan_reordered(st) ?
										 " (the order the server used: it ignored the one asked for)" :
										 ""), es);

		forboth(lc, plan->qual, fc, splan.local_only)
		{
			if (lfirst_int(fc))
				local = lappend(local, deparse_expression(lfirst(lc), dpcontext,
														  useprefix, false));
		}
		if (local != NIL)
			ExplainPropertyList("Vapi Local Only", local, es);
	}
	if (es->analyze)
	{
		ExplainPropertyInteger("Vapi Requests", NULL, stats->requests, es);
		ExplainPropertyInteger("Vapi Retries", NULL, stats->retries, es);
		if (splan.mode == VAPI_MODE_LIST)
			ExplainPropertyInteger("Vapi Pages", NULL, stats->pages, es);
		if (splan.mode == VAPI_MODE_LIST && vapi_scan_windows(st) > 1)
			ExplainPropertyInteger("Vapi Windows", NULL, vapi_scan_windows(st), es);
		ExplainPropertyInteger("Vapi Rows Received", NULL, stats->rows, es);
		ExplainPropertyInteger("Vapi Bytes Received", "bytes",
							   stats->bytes, es);
	}
}

/* ----------------------------------------------------------------
 * ANALYZE
 * ----------------------------------------------------------------
 */

/*
 * vapiAnalyzeForeignTable
 *		ANALYZE reads the whole table through the API and samples it, so
 *		that the planner knows its size and value distributions.
 */
static bool
vapiAnalyzeForeignTable(Relation relation, AcquireSampleRowsFunc *func,
						BlockNumber *totalpages)
{
	*func = vapi_sample_rows;
	*totalpages = 1;
	return true;
}

