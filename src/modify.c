/*-------------------------------------------------------------------------
 *
 * modify.c
 *		  INSERT, UPDATE and DELETE on a vapi_fdw foreign table.
 *
 * INSERT sends POST /phone-number with a body built from the row for its
 * provider; UPDATE sends PATCH /phone-number/{id} with only the columns
 * the statement sets (SQL NULL becomes JSON null); DELETE sends
 * DELETE /phone-number/{id}.  RETURNING is filled from the API's answer.
 * Input the API would refuse is caught before any request where it can
 * be, with an error naming the column.  The API has no transactions: a
 * statement that fails half-way says how many rows were already applied.
 * Every row, whichever the write, goes through vapi_modify_row; each kind
 * of write only builds its request (vapi_*_request).
 *
 * src/modify.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/sysattr.h"
#include "access/table.h"
#include "catalog/pg_type.h"
#include "commands/explain.h"
#if PG_VERSION_NUM >= 180000
#include "commands/explain_format.h"
#include "commands/explain_state.h"
#endif
#include "executor/executor.h"
#include "foreign/fdwapi.h"
#include "foreign/foreign.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/appendinfo.h"
#include "optimizer/clauses.h"
#include "optimizer/optimizer.h"
#if PG_VERSION_NUM >= 160000
#include "optimizer/inherit.h"
#include "optimizer/pathnode.h"
#endif
#include "parser/parsetree.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "vapi_fdw.h"


/* How far the row being written has got. */
typedef enum VapiRowPhase
{
	VAPI_ROW_PREPARING,			/* checked and built, nothing sent */
	VAPI_ROW_SENDING,			/* its request was started */
	VAPI_ROW_APPLIED			/* the API has done it */
} VapiRowPhase;

/* Executor state of an INSERT, UPDATE or DELETE. */
typedef struct VapiModifyState
{
	Relation	rel;
	char	   *relname;
	VapiConn   *conn;
	CmdType		operation;
	VapiColumn *columns;		/* every column but generated ones */
	int			ncolumns;
	List	   *generated;		/* attnums of stored generated columns */
	List	   *target_attrs;
	bool		has_returning;
	bool		fill_slot;		/* return the API's row (RETURNING, check
								 * options or AFTER ROW triggers) */
	ResultRelInfo *rinfo;
	EState	   *estate;
	CommandId	cid;			/* the statement's command id */
	AttrNumber	id_junk;		/* "vapi_id" in the subplan's output */
	ForeignScanState *scan;		/* the scan keeping the old rows (UPDATE) */
	List	   *old_keys;		/* the top-level keys an UPDATE needs of them */
	VapiPage   *answer;			/* the API's answer to this row, once parsed */
	HTAB	   *done_ids;		/* ids this statement changed (UPDATE/DELETE) */
	int			rows_applied;	/* rows the API has done, this one included */
	int			row_no;			/* the row being written, 1-based */
	VapiRowPhase row_phase;
	MemoryContext temp_cxt;
	VapiStats	stats;
} VapiModifyState;

/* The request of one row, as the builder of its operation made it. */
typedef struct VapiRowRequest
{
	char	   *id;				/* the phone number's id; NULL: create one */
	char	   *body;			/* JSON text, or NULL */
	List	   *attnos;			/* columns sent: their secrets are redacted */
} VapiRowRequest;

/* What the builder of a row found to do with it. */
typedef enum VapiRowAction
{
	VAPI_ACTION_SEND,			/* send the request */
	VAPI_ACTION_NONE,			/* nothing to change: the row is gone */
	VAPI_ACTION_REPEATED		/* a row a join brings again: not a row */
} VapiRowAction;

/*
 * Builds the request of a row, in the row's error context and memory,
 * checking what can be checked before anything is sent.
 */
typedef VapiRowAction (*VapiRowBuilder) (VapiModifyState *st,
									   TupleTableSlot *slot,
									   TupleTableSlot *planSlot,
									   VapiRowRequest *req);

static void vapi_row_error_callback(void *arg);
static VapiModifyState *vapi_modify_begin(EState *estate, ResultRelInfo *rinfo,
										  CmdType operation,
										  List *target_attrs,
										  bool has_returning, int eflags);
static List *vapi_modify_plan_encode(List *target_attrs, bool has_returning);
static void vapi_modify_plan_decode(List *fdw_private, List **target_attrs,
									bool *has_returning);
static List *vapi_direct_plan_encode(List *target_attrs);
static List *vapi_direct_plan_decode(List *fdw_private);
static TupleTableSlot *vapi_modify_row(VapiModifyState *st, CmdType operation,
									   VapiRowBuilder build,
									   TupleTableSlot *slot,
									   TupleTableSlot *planSlot);
static bool vapi_row_send(VapiModifyState *st, const char *method,
						  const char *path, const char *body, List *redact,
						  VapiHttpResponse *resp);
static bool vapi_first_change(VapiModifyState *st, const char *id);
static Jsonb *vapi_old_object(VapiModifyState *st, const char *id);
static void vapi_returning(VapiModifyState *st, TupleTableSlot *slot,
						   VapiHttpResponse *resp);
static void vapi_check_options(VapiModifyState *st, TupleTableSlot *slot);
static List *vapi_collect_secrets(VapiModifyState *st, Datum *values,
								  bool *nulls, List *attnos);
static char *vapi_row_id(VapiModifyState *st, TupleTableSlot *planSlot);

/*
 * vapiAddForeignUpdateTargets
 *		UPDATE and DELETE need the row's id.  UPDATE also uses the whole
 *		old row that PostgreSQL fetches for it (its provider, and the
 *		objects a dotted-key column writes into).
 */
void
vapiAddForeignUpdateTargets(PlannerInfo *root, Index rtindex,
							RangeTblEntry *target_rte,
							Relation target_relation)
{
	AttrNumber	id_attno = vapi_find_key_attno(target_relation, "id");
	Form_pg_attribute att;
	Var		   *var;

	if (id_attno == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("foreign table \"%s\" has no column reading \"id\"",
						RelationGetRelationName(target_relation)),
				 errhint("UPDATE and DELETE need a column such as: id uuid")));

	att = TupleDescAttr(RelationGetDescr(target_relation), id_attno - 1);
	var = makeVar(rtindex, id_attno, att->atttypid, att->atttypmod,
				  att->attcollation, 0);
	add_row_identity_var(root, var, rtindex, "vapi_id");

	/* For UPDATE, PostgreSQL itself adds the "wholerow" junk column. */
}

/*
 * vapiPlanForeignModify
 *		Record which columns an UPDATE sets, and refuse at once the ones
 *		the API never lets anyone change.
 */
List *
vapiPlanForeignModify(PlannerInfo *root, ModifyTable *plan,
					  Index resultRelation, int subplan_index)
{
	CmdType		operation = plan->operation;
	RangeTblEntry *rte = planner_rt_fetch(resultRelation, root);
	List	   *target_attrs = NIL;

	if (plan->onConflictAction != ONCONFLICT_NONE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("INSERT with ON CONFLICT is not supported on foreign table \"%s\"",
						get_rel_name(rte->relid)),
				 errdetail("The Vapi API cannot tell whether a phone number would conflict.")));

	if (operation == CMD_UPDATE)
	{
		Relation	rel = table_open(rte->relid, NoLock);
		TupleDesc	tupdesc = RelationGetDescr(rel);
		Bitmapset  *cols;
		int			col = -1;

#if PG_VERSION_NUM >= 160000
		cols = get_rel_all_updated_cols(root, find_base_rel(root, resultRelation));
#else
		cols = bms_union(rte->updatedCols, rte->extraUpdatedCols);
#endif
		while ((col = bms_next_member(cols, col)) >= 0)
		{
			AttrNumber	attno = col + FirstLowInvalidHeapAttributeNumber;
			Form_pg_attribute att;
			bool		is_explicit;
			char	   *key;
			char	   *top;
			const char *why;

			if (attno <= InvalidAttrNumber)
				continue;
			att = TupleDescAttr(tupdesc, attno - 1);
			/* computed locally: never sent */
			if (att->attgenerated)
				continue;
			key = vapi_column_key(rte->relid, attno, NameStr(att->attname),
								  &is_explicit);
			top = pstrdup(key);
			if (strchr(top, '.'))
				*strchr(top, '.') = '\0';

			if (vapi_column_reads_attrs(att, is_explicit))
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("column \"attrs\" of foreign table \"%s\" cannot be updated",
								RelationGetRelationName(rel)),
						 errhint("Set the columns of the fields to change; attrs is what the API returns.")));
			why = vapi_field_create_only(top);
			if (why != NULL)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("column \"%s\" of foreign table \"%s\" cannot be updated",
								NameStr(att->attname), RelationGetRelationName(rel)),
						 errdetail("%s", why)));
			target_attrs = lappend_int(target_attrs, attno);
		}
		table_close(rel, NoLock);
	}

	return vapi_modify_plan_encode(target_attrs, plan->returningLists != NIL);
}

/*
 * vapi_modify_plan_encode
 *		The fdw_private of a ModifyTable's foreign part: the columns an
 *		UPDATE sets, and whether there is a RETURNING list.  Only
 *		vapi_modify_plan_decode reads it.
 */
static List *
vapi_modify_plan_encode(List *target_attrs, bool has_returning)
{
	return list_make2(target_attrs, makeInteger(has_returning ? 1 : 0));
}

/*
 * vapi_modify_plan_decode
 *		Read back what vapi_modify_plan_encode wrote.
 */
static void
vapi_modify_plan_decode(List *fdw_private, List **target_attrs,
						bool *has_returning)
{
	*target_attrs = (List *) linitial(fdw_private);
	*has_returning = intVal(lsecond(fdw_private)) != 0;
}

/*
 * vapi_direct_plan_encode
 *		The fdw_private of a directly modifying ForeignScan: the columns an
 *		UPDATE sets.  Only vapi_direct_plan_decode reads it.
 */
static List *
vapi_direct_plan_encode(List *target_attrs)
{
	return list_make1(target_attrs);
}

/*
 * vapi_direct_plan_decode
 *		Read back what vapi_direct_plan_encode wrote.
 */
static List *
vapi_direct_plan_decode(List *fdw_private)
{
	return (List *) linitial(fdw_private);
}

/*
 * vapi_modify_begin
 *		Set up the state of a write, however PostgreSQL reached it (a
 *		ModifyTable, COPY FROM, rows routed to a partition, an UPDATE that
 *		moves a row to another partition): the connection (a user mapping
 *		of one's own, unless superuser), the column map without generated
 *		columns (PostgreSQL computes them; they are never sent), and the
 *		per-row memory.
 */
static VapiModifyState *
vapi_modify_begin(EState *estate, ResultRelInfo *rinfo, CmdType operation,
				  List *target_attrs, bool has_returning, int eflags)
{
	VapiModifyState *st;
	Relation	rel = rinfo->ri_RelationDesc;
	ForeignTable *table = GetForeignTable(RelationGetRelid(rel));
	ForeignServer *server = GetForeignServer(table->serverid);
	TupleDesc	tupdesc = RelationGetDescr(rel);
	TriggerDesc *trig = rinfo->ri_TrigDesc;
	List	   *all = NIL;
	int			i;

	st = palloc0(sizeof(VapiModifyState));
	rinfo->ri_FdwState = st;
	st->rel = rel;
	st->relname = pstrdup(RelationGetRelationName(rel));
	st->operation = operation;
	st->target_attrs = target_attrs;
	st->has_returning = has_returning;
	st->rinfo = rinfo;
	st->estate = estate;
	st->cid = estate->es_output_cid;

	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return st;

	st->conn = vapi_write_connection(server, vapi_modify_userid(rinfo, estate),
									 st->relname);
	vapi_connection_pin(st->conn, estate->es_query_cxt);

	for (i = 1; i <= tupdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i - 1);

		if (att->attisdropped)
			continue;
		if (att->attgenerated)
			st->generated = lappend_int(st->generated, i);
		else
			all = lappend_int(all, i);
	}
	st->columns = vapi_build_columns(rel, all, &st->ncolumns);

	/*
	 * The slot PostgreSQL goes on with (RETURNING, view check options,
	 * AFTER ROW triggers) gets the row as the API answered it.
	 */
	st->fill_slot = has_returning || rinfo->ri_WithCheckOptions != NIL ||
		(trig != NULL &&
		 ((operation == CMD_INSERT && trig->trig_insert_after_row) ||
		  (operation == CMD_UPDATE && trig->trig_update_after_row)));

	if (operation == CMD_UPDATE || operation == CMD_DELETE)
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = VAPI_ID_LEN + 1;
		ctl.entrysize = VAPI_ID_LEN + 1;
		ctl.hcxt = CurrentMemoryContext;
		st->done_ids = hash_create("vapi_fdw changed ids", 64, &ctl,
								   HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	}

	st->temp_cxt = AllocSetContextCreate(estate->es_query_cxt,
										 "vapi_fdw modify row",
										 ALLOCSET_DEFAULT_SIZES);
	return st;
}

/*
 * vapiBeginForeignModify
 *		Set up an INSERT, UPDATE or DELETE of a ModifyTable plan: the common
 *		state, the junk column with the row's id, and, for UPDATE, the scan
 *		below keeping what each row needs (its provider, and the objects a
 *		dotted-key column writes into), whatever columns the table declares.
 */
void
vapiBeginForeignModify(ModifyTableState *mtstate, ResultRelInfo *rinfo,
					   List *fdw_private, int subplan_index, int eflags)
{
	VapiModifyState *st;
	List	   *target_attrs;
	bool		has_returning;

	vapi_modify_plan_decode(fdw_private, &target_attrs, &has_returning);
	st = vapi_modify_begin(mtstate->ps.state, rinfo, mtstate->operation,
						   target_attrs, has_returning, eflags);
	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;

	if (st->operation == CMD_UPDATE || st->operation == CMD_DELETE)
	{
		Plan	   *subplan = outerPlanState(mtstate)->plan;

		st->id_junk = ExecFindJunkAttributeInTlist(subplan->targetlist, "vapi_id");
		if (!AttributeNumberIsValid(st->id_junk))
			elog(ERROR, "vapi_fdw: could not find junk vapi_id column");
	}
	if (st->operation == CMD_UPDATE)
	{
		ListCell   *lc;

		/* the provider, and the objects the dotted keys write into */
		st->old_keys = list_make1(makeString("provider"));
		foreach(lc, st->target_attrs)
		{
			VapiColumn *col = vapi_column_for_attno(st->columns, st->ncolumns, lfirst_int(lc));

			if (col != NULL && col->kind == VAPI_COL_PATH && col->npath > 1)
				st->old_keys = lappend(st->old_keys, makeString(col->path[0]));
		}
		st->scan = vapi_scan_keep_keys(outerPlanState(mtstate),
									   rinfo->ri_RangeTableIndex, st->old_keys);
	}
}

/*
 * vapiBeginForeignInsert
 *		Set up inserting into the foreign table without a ModifyTable plan
 *		of its own: COPY FROM, rows routed to a foreign partition, and rows
 *		an UPDATE moves into one.
 */
void
vapiBeginForeignInsert(ModifyTableState *mtstate, ResultRelInfo *rinfo)
{
	Plan	   *plan = mtstate != NULL ? mtstate->ps.plan : NULL;

	if (plan != NULL && IsA(plan, ModifyTable) &&
		((ModifyTable *) plan)->onConflictAction != ONCONFLICT_NONE)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("INSERT with ON CONFLICT is not supported on foreign table \"%s\"",
						RelationGetRelationName(rinfo->ri_RelationDesc)),
				 errdetail("The Vapi API cannot tell whether a phone number would conflict.")));
	(void) vapi_modify_begin(mtstate->ps.state, rinfo, CMD_INSERT, NIL,
							 rinfo->ri_returningList != NIL, 0);
}

/*
 * vapiEndForeignInsert
 *		Nothing to release: the contexts go with the query.
 */
void
vapiEndForeignInsert(EState *estate, ResultRelInfo *rinfo)
{
}

/*
 * vapi_row_error_callback
 *		Error context of a row of a write: which row, whether it was
 *		applied at Vapi (or its outcome is unknown: its request may have
 *		been carried out), and what earlier rows the API has already done,
 *		since it has no transactions to roll back.
 */
static void
vapi_row_error_callback(void *arg)
{
	VapiModifyState *st = (VapiModifyState *) arg;
	const char *verb = st->operation == CMD_INSERT ? "INSERT" :
		st->operation == CMD_UPDATE ? "UPDATE" : "DELETE";
	const char *done = st->operation == CMD_INSERT ? "created" :
		st->operation == CMD_UPDATE ? "updated" : "deleted";
	VapiRowPhase phase = st->row_phase;
	const char *row_state = "";
	int			earlier = st->rows_applied;

	if (phase == VAPI_ROW_SENDING)
	{
		VapiRequestOutcome outcome = vapi_last_request_outcome();

		if (outcome == VAPI_OUTCOME_DONE)
			phase = VAPI_ROW_APPLIED;
		else if (outcome == VAPI_OUTCOME_SENDING ||
				 outcome == VAPI_OUTCOME_UNKNOWN)
			row_state = psprintf(" (its outcome is unknown: its request may have been applied at Vapi)");
	}
	if (phase == VAPI_ROW_APPLIED)
	{
		row_state = psprintf(" (already %s at Vapi)", done);
		if (st->row_phase == VAPI_ROW_APPLIED)
			earlier--;
	}

	/* If that is all the transaction changed at Vapi, it has been said. */
	{
		int64		applied;
		int64		unknown;
		bool		pending;

		vapi_xact_totals(&applied, &unknown, &pending);
		if (unknown == 0 &&
			applied == st->rows_applied &&
			(!pending || st->row_phase == VAPI_ROW_SENDING))
			vapi_xact_mark_reported();
	}

	if (earlier == 0)
		errcontext("%s on foreign table \"%s\", row %d%s; no earlier row of this statement was sent",
				   verb, st->relname, st->row_no, row_state);
	else
		errcontext("%s on foreign table \"%s\", row %d%s; %d earlier row%s of this statement %s already %s at Vapi and stay%s so (the API has no transactions)",
				   verb, st->relname, st->row_no, row_state, earlier,
				   earlier == 1 ? "" : "s",
				   earlier == 1 ? "was" : "were", done,
				   earlier == 1 ? "s" : "");
}

/*
 * vapi_modify_row
 *		Write one row, the same way for every write: the row is counted,
 *		an error names it (vapi_row_error_callback) and its work is done in
 *		fresh per-row memory; "build" makes its request (for "operation":
 *		POST, PATCH or DELETE); a row the view would refuse is not sent;
 *		the request is sent, keeping the transaction's ledger and the
 *		count of applied rows; and the slot gets the row as the API
 *		answered it, checked again against the view.  Returns the slot, or
 *		NULL if the row changed nothing.
 */
static TupleTableSlot *
vapi_modify_row(VapiModifyState *st, CmdType operation, VapiRowBuilder build,
				TupleTableSlot *slot, TupleTableSlot *planSlot)
{
	ErrorContextCallback errcb;
	MemoryContext oldcxt;
	VapiRowRequest req = {0};
	VapiHttpResponse resp;
	VapiRowAction action;
	bool		applied = false;

	if (st == NULL || st->conn == NULL)
		elog(ERROR, "vapi_fdw: a write was not set up");
	st->row_no++;
	st->row_phase = VAPI_ROW_PREPARING;
	st->answer = NULL;
	errcb.callback = vapi_row_error_callback;
	errcb.arg = st;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;
	MemoryContextReset(st->temp_cxt);
	oldcxt = MemoryContextSwitchTo(st->temp_cxt);

	action = build(st, slot, planSlot, &req);
	if (action == VAPI_ACTION_SEND)
	{
		/* A row the view would refuse is not sent. */
		if (operation != CMD_DELETE)
			vapi_check_options(st, slot);
		applied = vapi_row_send(st,
								operation == CMD_INSERT ? "POST" :
								operation == CMD_UPDATE ? "PATCH" : "DELETE",
								req.id != NULL ?
								vapi_deparse_item_path(req.id) : VAPI_PATH_ITEM,
								req.body,
								vapi_collect_secrets(st, slot->tts_values,
													 slot->tts_isnull,
													 req.attnos),
								&resp);
	}

	/* A DELETE fills the slot for RETURNING only: it has no new row. */
	if (applied && (operation == CMD_DELETE ? st->has_returning : st->fill_slot))
	{
		if (resp.status == 404)
		{
			/* a retried DELETE's answer with the object was lost */
			ExecStoreAllNullTuple(slot);
		}
		else
			vapi_returning(st, slot, &resp);
		if (operation != CMD_DELETE)
			vapi_check_options(st, slot);
	}

	MemoryContextSwitchTo(oldcxt);
	error_context_stack = errcb.previous;
	if (action == VAPI_ACTION_REPEATED)
		st->row_no--;
	return applied ? slot : NULL;
}

/*
 * vapi_row_send
 *		Send the request of the current row, keeping the transaction's
 *		ledger and the row's phase.  An answer that the row no longer
 *		exists (404) is not an error: returns false, nothing was changed
 *		(but a DELETE retried into a 404 was done by an earlier attempt).
 *		True when the API applied the request.
 */
static bool
vapi_row_send(VapiModifyState *st, const char *method, const char *path,
			  const char *body, List *redact, VapiHttpResponse *resp)
{
	char	   *created_id = NULL;
	bool		applied;

	st->row_phase = VAPI_ROW_SENDING;
	vapi_xact_write_begin(st->operation, st->cid);
	vapi_request(st->conn, method, path, body, body ? strlen(body) : 0,
				 redact, st->operation == CMD_INSERT ? 0 : VAPI_REQ_ALLOW_404,
				 resp, st->temp_cxt, &st->stats);
	applied = resp->status != 404 ||
		(st->operation == CMD_DELETE && resp->attempts > 1);
	if (applied && st->operation == CMD_INSERT)
	{
		/* its id, so that a scan of this statement does not return it */
		const char *id;

		st->answer = vapi_json_parse_object(resp->body, resp->body_len,
											st->temp_cxt);
		id = vapi_json_item_id(vapi_json_page_item(st->answer, 0));

		if (id != NULL)
			created_id = vapi_id_lower(id);
	}
	vapi_xact_write_end(applied, created_id);
	if (applied)
	{
		st->row_phase = VAPI_ROW_APPLIED;
		st->rows_applied++;
	}
	else
		st->row_phase = VAPI_ROW_PREPARING;
	return applied;
}

/*
 * vapi_first_change
 *		Is this the first time this statement changes the phone number with
 *		this id?  A join can bring the same row to an UPDATE or DELETE more
 *		than once; like a local table's, it is changed (and counted) once.
 */
static bool
vapi_first_change(VapiModifyState *st, const char *id)
{
	bool		found;

	(void) hash_search(st->done_ids, id, HASH_ENTER, &found);
	return !found;
}

/*
 * vapi_collect_secrets
 *		The values of secret fields about to be sent, so that an echo of
 *		them in the API's answer is redacted.
 */
static List *
vapi_collect_secrets(VapiModifyState *st, Datum *values, bool *nulls,
					 List *attnos)
{
	List	   *secrets = NIL;
	ListCell   *lc;

	foreach(lc, attnos)
	{
		int			attno = lfirst_int(lc);
		int			i;

		for (i = 0; i < st->ncolumns; i++)
		{
			VapiColumn *col = &st->columns[i];
			const char *sub;

			if (col->attnum != attno || nulls[attno - 1] ||
				col->kind != VAPI_COL_PATH)
				continue;
			sub = vapi_secret_in_object(col->key);
			if (sub != NULL && col->basetypid == JSONBOID)
			{
				Jsonb	   *obj = DatumGetJsonbP(values[attno - 1]);
				JsonbValue	tmp;
				JsonbValue *v = JB_ROOT_IS_OBJECT(obj) ?
					getKeyJsonValueFromContainer(&obj->root, sub, strlen(sub), &tmp) :
					NULL;

				if (v != NULL && v->type == jbvString)
					secrets = lappend(secrets, pnstrdup(v->val.string.val,
														v->val.string.len));
			}
			else if (vapi_secret_key(col->key))
			{
				Oid			typout;
				bool		isvarlena;

				getTypeOutputInfo(col->typid, &typout, &isvarlena);
				secrets = lappend(secrets,
								  OidOutputFunctionCall(typout, values[attno - 1]));
			}
		}
	}
	return secrets;
}

/*
 * vapi_returning
 *		Fill the slot from the phone number the API answered with.  Stored
 *		generated columns keep the values PostgreSQL computed.
 */
static void
vapi_returning(VapiModifyState *st, TupleTableSlot *slot,
			   VapiHttpResponse *resp)
{
	VapiPage   *page;
	int			ngen = list_length(st->generated);
	Datum	   *gen_values = palloc(sizeof(Datum) * Max(ngen, 1));
	bool	   *gen_nulls = palloc(sizeof(bool) * Max(ngen, 1));
	int			i;

	/* a DELETE's slot holds no row yet */
	if (TTS_EMPTY(slot))
		ngen = 0;
	else
		slot_getallattrs(slot);
	for (i = 0; i < ngen; i++)
	{
		int			attno = list_nth_int(st->generated, i);
		Form_pg_attribute att = TupleDescAttr(slot->tts_tupleDescriptor,
											  attno - 1);

		gen_nulls[i] = slot->tts_isnull[attno - 1];
		gen_values[i] = gen_nulls[i] ? (Datum) 0 :
			datumCopy(slot->tts_values[attno - 1], att->attbyval, att->attlen);
	}
	/* an INSERT's answer was parsed already, for its id */
	page = st->answer != NULL ? st->answer :
		vapi_json_parse_object(resp->body, resp->body_len, CurrentMemoryContext);
	ExecClearTuple(slot);
	memset(slot->tts_isnull, true,
		   sizeof(bool) * slot->tts_tupleDescriptor->natts);
	vapi_json_item_to_datums(vapi_json_page_item(page, 0), st->columns,
							 st->ncolumns, st->relname, slot->tts_values,
							 slot->tts_isnull);
	for (i = 0; i < ngen; i++)
	{
		int			attno = list_nth_int(st->generated, i);

		slot->tts_isnull[attno - 1] = gen_nulls[i];
		slot->tts_values[attno - 1] = gen_values[i];
	}
	ExecStoreVirtualTuple(slot);
}

/*
 * vapi_check_options
 *		The check options of a view the write goes through (WITH CHECK
 *		OPTION), on the row in the slot.  Called before the request, so
 *		that a row the view would refuse is never sent, and again on the
 *		row as the API answered, inside the row's error context (which
 *		then says the row was already applied).
 */
static void
vapi_check_options(VapiModifyState *st, TupleTableSlot *slot)
{
	/* none for a direct modification: never chosen under a check option */
	if (st->rinfo != NULL && st->rinfo->ri_WithCheckOptions != NIL)
		ExecWithCheckOptions(WCO_VIEW_CHECK, st->rinfo, slot, st->estate);
}

/*
 * vapi_insert_request
 *		The request of a row to INSERT: the body holds the keys of "attrs"
 *		(minus those the API assigns), then every non-NULL column at its
 *		key path (explicit columns win), checked against what the row's
 *		provider accepts.
 */
static VapiRowAction
vapi_insert_request(VapiModifyState *st, TupleTableSlot *slot,
					TupleTableSlot *planSlot, VapiRowRequest *req)
{
	Jsonb	   *attrs = NULL;
	List	   *fields = NIL;
	const char *provider_name = NULL;
	const VapiProvider *provider;
	int			i;

	slot_getallattrs(slot);

	for (i = 0; i < st->ncolumns; i++)
	{
		VapiColumn *col = &st->columns[i];
		Datum		value = slot->tts_values[col->attnum - 1];

		if (slot->tts_isnull[col->attnum - 1])
			continue;
		req->attnos = lappend_int(req->attnos, col->attnum);
		if (col->kind == VAPI_COL_ATTRS)
		{
			attrs = vapi_body_attrs(col, value);
			continue;
		}

		vapi_body_check_create_column(col);
		if (strcmp(col->key, "provider") == 0)
		{
			Oid			typout;
			bool		isvarlena;

			getTypeOutputInfo(col->typid, &typout, &isvarlena);
			provider_name = OidOutputFunctionCall(typout, value);
		}
		fields = lappend(fields, vapi_body_column(col, value, false));
	}

	/* The provider: a column, or a key of attrs. */
	provider = vapi_body_provider(provider_name, attrs, st->columns,
								  st->ncolumns);

	/* Keys the API assigns, even from attrs, are not sent. */
	req->body = vapi_body_build(attrs, vapi_field_assigned_list(), fields);
	vapi_body_check_create(req->body, provider, st->columns, st->ncolumns);
	return VAPI_ACTION_SEND;
}

/*
 * vapi_row_id
 *		The id of the row an UPDATE or DELETE is about, checked to be a
 *		UUID before it goes into a URL.
 */
static char *
vapi_row_id(VapiModifyState *st, TupleTableSlot *planSlot)
{
	bool		isnull;
	Datum		value = ExecGetJunkAttribute(planSlot, st->id_junk, &isnull);
	Oid			type;
	char	   *text;
	char	   *id;

	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("the phone number to change has no id")));
	type = TupleDescAttr(planSlot->tts_tupleDescriptor, st->id_junk - 1)->atttypid;
	id = vapi_datum_id(value, type, &text);
	if (id == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("phone number id \"%s\" is not a UUID", text)));
	return id;
}

/*
 * vapi_old_object
 *		The fields of the phone number an UPDATE changes that the UPDATE
 *		needs (its provider, the objects its dotted keys write into), as
 *		the scan below received them, whatever columns the table declares.
 *		Where the scan did not keep them (a plan vapi_fdw did not expect),
 *		they are read again: GET /phone-number/{id}.  NULL if the phone
 *		number no longer exists.
 */
static Jsonb *
vapi_old_object(VapiModifyState *st, const char *id)
{
	Jsonb	   *old = st->scan != NULL ? vapi_scan_kept_object(st->scan, id) : NULL;
	VapiHttpResponse resp;
	VapiPage   *page;

	if (old != NULL)
		return old;
	vapi_request(st->conn, "GET", vapi_deparse_item_path(id), NULL, 0, NIL,
				 VAPI_REQ_ALLOW_404, &resp, st->temp_cxt, &st->stats);
	if (resp.status == 404)
		return NULL;
	page = vapi_json_parse_object(resp.body, resp.body_len, st->temp_cxt);
	return vapi_json_item_subset(vapi_json_page_item(page, 0), st->old_keys);
}

/*
 * vapi_old_field_json
 *		The JSON text of a top-level field of an old phone number, or NULL
 *		if it has none, without the stale fields of older API versions that
 *		the API now refuses (server.secret).
 */
static char *
vapi_old_field_json(Jsonb *old, const char *key)
{
	JsonbValue	tmp;
	JsonbValue *v;
	Datum		value;
	const char *stale = vapi_secret_stale(key);

	if (old == NULL || !JB_ROOT_IS_OBJECT(old))
		return NULL;
	v = getKeyJsonValueFromContainer(&old->root, key, strlen(key), &tmp);
	if (v == NULL)
		return NULL;
	value = JsonbPGetDatum(JsonbValueToJsonb(v));
	if (stale != NULL && JB_ROOT_IS_OBJECT(DatumGetJsonbP(value)))
		value = DirectFunctionCall2(jsonb_delete, value,
									CStringGetTextDatum(stale));
	return DatumGetCString(DirectFunctionCall1(jsonb_out, value));
}

/*
 * vapi_update_request
 *		The request of a row to UPDATE: a PATCH with only the columns the
 *		statement sets (NULL becomes JSON null), checked against the row's
 *		provider.  A column whose key is a dotted path writes into the
 *		object the phone number already has, as the scan received it, so
 *		its other fields are kept whatever columns the table declares.
 */
static VapiRowAction
vapi_update_request(VapiModifyState *st, TupleTableSlot *slot,
					TupleTableSlot *planSlot, VapiRowRequest *req)
{
	List	   *parents = NIL;
	List	   *whole = NIL;
	List	   *dotted = NIL;
	List	   *set_keys = NIL;
	char	   *provider_name;
	const VapiProvider *provider;
	ListCell   *lc;
	Jsonb	   *old;

	slot_getallattrs(slot);
	req->id = vapi_row_id(st, planSlot);
	if (!vapi_first_change(st, req->id))
		return VAPI_ACTION_REPEATED;

	old = vapi_old_object(st, req->id);
	if (old == NULL)
	{
		/* deleted meanwhile: nothing updated */
		return VAPI_ACTION_NONE;
	}
	provider_name = vapi_body_string(old, "provider");
	provider = provider_name ? vapi_provider_find(provider_name) : NULL;

	/* the keys the statement sets whole */
	foreach(lc, st->target_attrs)
	{
		VapiColumn *col = vapi_column_for_attno(st->columns, st->ncolumns, lfirst_int(lc));

		if (col != NULL && col->kind == VAPI_COL_PATH && col->npath == 1)
			set_keys = lappend(set_keys, makeString(col->path[0]));
	}

	foreach(lc, st->target_attrs)
	{
		int			attno = lfirst_int(lc);
		VapiColumn *col = vapi_column_for_attno(st->columns, st->ncolumns, attno);
		VapiBodyField *f;

		if (col == NULL)
			continue;

		/* Provider-specific rules, when the row's provider is known. */
		vapi_body_check_update_column(provider, col,
									  slot->tts_values[attno - 1],
									  slot->tts_isnull[attno - 1]);

		/*
		 * A dotted path writes into the object the phone number already
		 * has (unless the statement sets that object whole too).
		 */
		if (col->npath > 1 &&
			!list_member(set_keys, makeString(col->path[0])) &&
			!list_member(parents, makeString(col->path[0])))
		{
			char	   *json = vapi_old_field_json(old, col->path[0]);

			parents = lappend(parents,
							  vapi_body_field(col->path, 1,
											  json != NULL ? json : "{}"));
			set_keys = lappend(set_keys, makeString(col->path[0]));
		}

		f = vapi_body_column(col, slot->tts_values[attno - 1],
							 slot->tts_isnull[attno - 1]);
		if (col->npath > 1)
			dotted = lappend(dotted, f);
		else
			whole = lappend(whole, f);
	}

	/* the old objects first, then whole fields, then paths into them */
	req->body = vapi_body_build(NULL, NIL,
								list_concat(list_concat(parents, whole), dotted));
	req->attnos = st->target_attrs;
	return VAPI_ACTION_SEND;
}

/*
 * vapi_delete_request
 *		The request of a row to DELETE: its id.
 */
static VapiRowAction
vapi_delete_request(VapiModifyState *st, TupleTableSlot *slot,
					TupleTableSlot *planSlot, VapiRowRequest *req)
{
	req->id = vapi_row_id(st, planSlot);
	if (!vapi_first_change(st, req->id))
		return VAPI_ACTION_REPEATED;
	return VAPI_ACTION_SEND;
}

/*
 * vapiExecForeignInsert
 *		POST one phone number (vapi_insert_request makes its body), checked
 *		against what the row's provider accepts before anything is sent.
 */
TupleTableSlot *
vapiExecForeignInsert(EState *estate, ResultRelInfo *rinfo,
					  TupleTableSlot *slot, TupleTableSlot *planSlot)
{
	return vapi_modify_row((VapiModifyState *) rinfo->ri_FdwState, CMD_INSERT,
						   vapi_insert_request, slot, planSlot);
}

/*
 * vapiExecForeignUpdate
 *		PATCH one phone number (vapi_update_request makes its body).  A row
 *		that no longer exists is not updated; a row a join brings again is
 *		not changed again.
 */
TupleTableSlot *
vapiExecForeignUpdate(EState *estate, ResultRelInfo *rinfo,
					  TupleTableSlot *slot, TupleTableSlot *planSlot)
{
	return vapi_modify_row((VapiModifyState *) rinfo->ri_FdwState, CMD_UPDATE,
						   vapi_update_request, slot, planSlot);
}

/*
 * vapiExecForeignDelete
 *		DELETE one phone number.  A 404 on a retried DELETE means an
 *		earlier attempt succeeded; on a first attempt, that someone else
 *		deleted it (then no row is counted).  A row a join brings again is
 *		not deleted again.
 */
TupleTableSlot *
vapiExecForeignDelete(EState *estate, ResultRelInfo *rinfo,
					  TupleTableSlot *slot, TupleTableSlot *planSlot)
{
	return vapi_modify_row((VapiModifyState *) rinfo->ri_FdwState, CMD_DELETE,
						   vapi_delete_request, slot, planSlot);
}

/*
 * vapiEndForeignModify
 *		Nothing to release: the contexts go with the query.
 */
void
vapiEndForeignModify(EState *estate, ResultRelInfo *rinfo)
{
}

/*
 * vapiIsForeignRelUpdatable
 *		Phone numbers can be inserted, updated and deleted.
 */
int
vapiIsForeignRelUpdatable(Relation rel)
{
	return (1 << CMD_INSERT) | (1 << CMD_UPDATE) | (1 << CMD_DELETE);
}

/*
 * vapiExplainForeignModify
 *		EXPLAIN VERBOSE shows the request each row sends; ANALYZE counts.
 */
void
vapiExplainForeignModify(ModifyTableState *mtstate, ResultRelInfo *rinfo,
						 List *fdw_private, int subplan_index,
						 ExplainState *es)
{
	VapiModifyState *st = (VapiModifyState *) rinfo->ri_FdwState;

	if (es->verbose)
		ExplainPropertyText("Vapi Request",
							st->operation == CMD_INSERT ? "POST /phone-number" :
							st->operation == CMD_UPDATE ? "PATCH /phone-number/{id}" :
							"DELETE /phone-number/{id}", es);
	if (es->analyze && st != NULL)
		ExplainPropertyInteger("Vapi Write Requests", NULL, st->stats.requests, es);
}

/* ----------------------------------------------------------------
 * Direct modification: UPDATE or DELETE of one id, with no read first
 * ----------------------------------------------------------------
 */

/*
 * A directly modifying ForeignScan keeps the columns UPDATE sets in its
 * fdw_private (vapi_direct_plan_encode/decode); fdw_exprs holds the id,
 * then the value of each column set.
 */

/* Executor state of a direct modification. */
typedef struct VapiDirectState
{
	VapiModifyState m;			/* the same as a row-by-row write (first:
								 * vapi_direct_request casts it back) */
	List	   *exprs;			/* ExprStates: the id, then the values */
	ExprContext *econtext;		/* where they are evaluated */
	bool		done;
} VapiDirectState;

/*
 * vapiPlanDirectModify
 *		Send an UPDATE or DELETE of exactly one id straight to the API,
 *		without reading the row first, when nothing needs the row: the
 *		WHERE clause is only "id = value", there is no RETURNING, and an
 *		UPDATE sets only fields every provider takes (name, assistant_id,
 *		squad_id, workflow_id, server, fallback_destination, hooks) to
 *		values that do not depend on the row.  Anything else goes row by
 *		row, where the row's provider is checked first.
 */
bool
vapiPlanDirectModify(PlannerInfo *root, ModifyTable *plan,
					 Index resultRelation, int subplan_index)
{
	Plan	   *subplan = outerPlan(plan);
	ForeignScan *fscan;
	VapiScanPlan splan;
	VapiPlanQual *q;
	RangeTblEntry *rte = planner_rt_fetch(resultRelation, root);
	List	   *target_attrs = NIL;
	List	   *values = NIL;

	if (plan->operation != CMD_UPDATE && plan->operation != CMD_DELETE)
		return false;
	if (plan->returningLists != NIL)
		return false;
	if (subplan == NULL || !IsA(subplan, ForeignScan))
		return false;
	fscan = (ForeignScan *) subplan;
	if (fscan->scan.scanrelid != resultRelation)
		return false;

	/* a lookup of one id, driven by the only qual */
	vapi_scan_plan_decode(fscan->fdw_private, &splan);
	if (splan.mode != VAPI_MODE_LOOKUP)
		return false;
	if (list_length(splan.quals) != 1 ||
		list_length(fscan->scan.plan.qual) != 1 ||
		list_length(splan.local_only) != 1 ||
		linitial_int(splan.local_only) != 0)
		return false;
	q = (VapiPlanQual *) linitial(splan.quals);
	if (q->kind != VAPI_QUAL_ID_EQ)
		return false;

	if (plan->operation == CMD_UPDATE)
	{
		Relation	rel = table_open(rte->relid, NoLock);
		TupleDesc	tupdesc = RelationGetDescr(rel);
		List	   *processed_tlist = NIL;
		List	   *attnos = NIL;
		ListCell   *lc;
		ListCell   *ac;
		bool		ok = true;

		get_translated_update_targetlist(root, resultRelation,
										 &processed_tlist, &attnos);
		forboth(lc, processed_tlist, ac, attnos)
		{
			TargetEntry *tle = lfirst_node(TargetEntry, lc);
			AttrNumber	attno = lfirst_int(ac);
			Form_pg_attribute att = TupleDescAttr(tupdesc, attno - 1);
			bool		is_explicit;
			char	   *key = vapi_column_key(rte->relid, attno,
											  NameStr(att->attname),
											  &is_explicit);

			if (strchr(key, '.') != NULL || strcmp(key, "provider") == 0 ||
				!vapi_field_common(key) ||
				vapi_column_reads_attrs(att, is_explicit) ||
				contain_var_clause((Node *) tle->expr) ||
				contain_subplans((Node *) tle->expr))
			{
				ok = false;
				break;
			}
			target_attrs = lappend_int(target_attrs, attno);
			values = lappend(values, tle->expr);
		}
		table_close(rel, NoLock);
		if (!ok)
			return false;
	}

	fscan->operation = plan->operation;
	fscan->resultRelation = resultRelation;
	fscan->fdw_exprs = lcons(list_nth(fscan->fdw_exprs, q->operand),
							 values);
	fscan->fdw_private = vapi_direct_plan_encode(target_attrs);
	fscan->scan.plan.qual = NIL;	/* the id is the whole WHERE clause */
	return true;
}

/*
 * vapiBeginDirectModify
 *		Set up a direct UPDATE or DELETE: the connection (a user mapping of
 *		one's own, as for any write) and the expressions.
 */
void
vapiBeginDirectModify(ForeignScanState *node, int eflags)
{
	ForeignScan *fsplan = (ForeignScan *) node->ss.ps.plan;
	EState	   *estate = node->ss.ps.state;
	Relation	rel = node->ss.ss_currentRelation;
	VapiDirectState *ds = palloc0(sizeof(VapiDirectState));
	VapiModifyState *st = &ds->m;
	ForeignTable *table = GetForeignTable(RelationGetRelid(rel));
	ForeignServer *server = GetForeignServer(table->serverid);
	Oid			userid;

	node->fdw_state = ds;
	st->rel = rel;
	st->relname = pstrdup(RelationGetRelationName(rel));
	st->operation = fsplan->operation;
	st->estate = estate;
	st->cid = estate->es_output_cid;
	st->target_attrs = vapi_direct_plan_decode(fsplan->fdw_private);
	ds->exprs = ExecInitExprList(fsplan->fdw_exprs, (PlanState *) node);
	ds->econtext = node->ss.ps.ps_ExprContext;
	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;

	userid = vapi_scan_userid(fsplan, estate);
	st->conn = vapi_write_connection(server, userid, st->relname);
	vapi_connection_pin(st->conn, estate->es_query_cxt);
	st->columns = vapi_build_columns(rel, st->target_attrs, &st->ncolumns);
	st->temp_cxt = AllocSetContextCreate(estate->es_query_cxt,
										 "vapi_fdw direct modify",
										 ALLOCSET_DEFAULT_SIZES);
}

/*
 * vapi_direct_request
 *		The request of a direct UPDATE or DELETE: the id and the values
 *		the plan computes.  An id that is NULL or not a UUID names no phone
 *		number: nothing to change.
 */
static VapiRowAction
vapi_direct_request(VapiModifyState *st, TupleTableSlot *slot,
					TupleTableSlot *planSlot, VapiRowRequest *req)
{
	VapiDirectState *ds = (VapiDirectState *) st;
	ExprState  *idstate = linitial(ds->exprs);
	Datum		value;
	bool		isnull;
	char	   *id;

	value = ExecEvalExpr(idstate, ds->econtext, &isnull);
	if (isnull)
		return VAPI_ACTION_NONE;
	id = vapi_datum_id(value, exprType((Node *) idstate->expr), NULL);
	if (id == NULL)
		return VAPI_ACTION_NONE;

	if (st->operation == CMD_UPDATE)
	{
		List	   *fields = NIL;
		ListCell   *lc;
		int			i = 0;

		for_each_from(lc, ds->exprs, 1)
		{
			VapiColumn *col = &st->columns[i++];
			ExprState  *es = lfirst(lc);
			Datum		v = ExecEvalExpr(es, ds->econtext, &isnull);

			/* the provider is not known: only the values are checked */
			vapi_body_check_update_column(NULL, col, v, isnull);
			fields = lappend(fields, vapi_body_column(col, v, isnull));
		}
		req->body = vapi_body_build(NULL, NIL, fields);
	}
	req->id = id;
	return VAPI_ACTION_SEND;
}

/*
 * vapiIterateDirectModify
 *		Send the one PATCH or DELETE (vapi_direct_request makes it).  An id
 *		that does not exist (or is not a UUID, or NULL) changes nothing.
 *		Returns no rows (there is no RETURNING); the row count goes to
 *		es_processed.
 */
TupleTableSlot *
vapiIterateDirectModify(ForeignScanState *node)
{
	VapiDirectState *ds = (VapiDirectState *) node->fdw_state;
	TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;

	if (ds->done)
		return ExecClearTuple(slot);
	ds->done = true;

	if (vapi_modify_row(&ds->m, ds->m.operation, vapi_direct_request,
						slot, NULL) != NULL)
		node->ss.ps.state->es_processed++;
	return ExecClearTuple(slot);
}

/*
 * vapiEndDirectModify
 *		Nothing to release: the contexts go with the query.
 */
void
vapiEndDirectModify(ForeignScanState *node)
{
}

/*
 * vapiExplainDirectModify
 *		EXPLAIN VERBOSE shows the one request sent, and that the row is not
 *		read first.
 */
void
vapiExplainDirectModify(ForeignScanState *node, ExplainState *es)
{
	VapiDirectState *ds = (VapiDirectState *) node->fdw_state;

	if (es->verbose)
		ExplainPropertyText("Vapi Request",
							ds->m.operation == CMD_UPDATE ?
							"PATCH /phone-number/{id} (direct: the row is not read first)" :
							"DELETE /phone-number/{id} (direct: the row is not read first)",
							es);
	if (es->analyze)
		ExplainPropertyInteger("Vapi Write Requests", NULL,
							   ds->m.stats.requests, es);
}
