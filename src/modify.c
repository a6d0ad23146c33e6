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
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/appendinfo.h"
#include "optimizer/clauses.h"
#include "optimizer/optimizer.h"
#include "parser/parsetree.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "vapi_fdw.h"

/* Longest name the API accepts, in characters. */
#define VAPI_MAX_NAME_CHARS		40

/* What each provider accepts on create, and requires. */
typedef struct VapiProvider
{
	const char *name;
	const char *const *fields;	/* provider-specific fields */
	const char *const *required;
} VapiProvider;

static const char *const vapi_byo_fields[] = {"number", "credentialId", "numberE164CheckEnabled", NULL};
static const char *const vapi_byo_required[] = {"credentialId", NULL};
static const char *const vapi_twilio_fields[] = {"number", "twilioAccountSid", "twilioAuthToken", "twilioApiKey", "twilioApiSecret", "smsEnabled", NULL};
static const char *const vapi_twilio_required[] = {"number", "twilioAccountSid", NULL};
static const char *const vapi_carrier_fields[] = {"number", "credentialId", NULL};
static const char *const vapi_carrier_required[] = {"number", "credentialId", NULL};
static const char *const vapi_vapi_fields[] = {"numberDesiredAreaCode", "sipUri", "authentication", NULL};
static const char *const vapi_none[] = {NULL};

static const VapiProvider vapi_providers[] = {
	{"byo-phone-number", vapi_byo_fields, vapi_byo_required},
	{"twilio", vapi_twilio_fields, vapi_twilio_required},
	{"vonage", vapi_carrier_fields, vapi_carrier_required},
	{"vapi", vapi_vapi_fields, vapi_none},
	{"telnyx", vapi_carrier_fields, vapi_carrier_required},
};

/* Fields every provider accepts. */
static const char *const vapi_common_fields[] = {
	"provider", "name", "assistantId", "workflowId", "squadId", "server",
	"fallbackDestination", "hooks", NULL
};

/* Fields the API assigns: never sent. */
static const char *const vapi_assigned_fields[] = {
	"id", "orgId", "status", "createdAt", "updatedAt", NULL
};

/* Secret fields: their values are redacted from remote messages. */
static const char *const vapi_secret_fields[] = {
	"twilioAuthToken", "twilioApiSecret", NULL
};

/*
 * Indexes of the fdw_private list of a ModifyTable's foreign part.
 */
enum VapiModifyPrivateIndex
{
	VapiModifyTargetAttrs,		/* Integer list: columns UPDATE sets */
	VapiModifyHasReturning		/* Integer: 1 with RETURNING */
};

/* Executor state of an INSERT, UPDATE or DELETE. */
typedef struct VapiModifyState
{
	Relation	rel;
	char	   *relname;
	VapiConn   *conn;
	CmdType		operation;
	VapiColumn *columns;		/* every column */
	int			ncolumns;
	List	   *target_attrs;
	bool		has_returning;
	AttrNumber	id_junk;		/* "vapi_id" in the subplan's output */
	AttrNumber	wholerow_junk;	/* "wholerow" (UPDATE) */
	int			rows_applied;	/* rows the API has done */
	int			row_no;			/* the row being sent, 1-based */
	MemoryContext temp_cxt;
	VapiStats	stats;
} VapiModifyState;

/* What the error context of a row says. */
typedef struct VapiRowContext
{
	VapiModifyState *st;
} VapiRowContext;

static bool vapi_in_list(const char *const *list, const char *key);
static const VapiProvider *vapi_find_provider(const char *name);
static VapiColumn *vapi_column_for_key(VapiModifyState *st, const char *key);
static const char *vapi_column_label(VapiModifyState *st, const char *key);
static AttrNumber vapi_find_key_attno(Relation rel, const char *key);
static void vapi_row_error_callback(void *arg);
static VapiConn *vapi_write_connection(ForeignServer *server, Oid userid,
									   const char *relname);
static MemoryContext vapi_row_begin(VapiModifyState *st,
									ErrorContextCallback *errcb,
									VapiRowContext *ctx);
static Datum vapi_old_value(VapiModifyState *st, TupleTableSlot *planSlot,
							const char *key, bool *isnull);
static void vapi_returning(VapiModifyState *st, TupleTableSlot *slot,
						   VapiHttpResponse *resp);
static List *vapi_collect_secrets(VapiModifyState *st, Datum *values,
								  bool *nulls, List *attnos);
static char *vapi_row_id(VapiModifyState *st, TupleTableSlot *planSlot);

/*
 * vapi_in_list
 *		Is "key" in the NULL-terminated list?
 */
static bool
vapi_in_list(const char *const *list, const char *key)
{
	for (; *list != NULL; list++)
		if (strcmp(*list, key) == 0)
			return true;
	return false;
}

/*
 * vapi_find_provider
 *		The description of a provider, or NULL for one the API does not
 *		take.
 */
static const VapiProvider *
vapi_find_provider(const char *name)
{
	int			i;

	for (i = 0; i < lengthof(vapi_providers); i++)
		if (strcmp(vapi_providers[i].name, name) == 0)
			return &vapi_providers[i];
	return NULL;
}

/*
 * vapi_find_key_attno
 *		The first column of a foreign table reading a top-level key, or
 *		InvalidAttrNumber.
 */
static AttrNumber
vapi_find_key_attno(Relation rel, const char *key)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);
	int			i;

	for (i = 1; i <= tupdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i - 1);
		bool		is_explicit;

		if (att->attisdropped)
			continue;
		if (strcmp(vapi_column_key(RelationGetRelid(rel), i,
								   NameStr(att->attname), &is_explicit),
				   key) == 0)
			return i;
	}
	return InvalidAttrNumber;
}

/*
 * vapi_column_for_key
 *		The column reading exactly this key, or NULL.
 */
static VapiColumn *
vapi_column_for_key(VapiModifyState *st, const char *key)
{
	int			i;

	for (i = 0; i < st->ncolumns; i++)
		if (st->columns[i].kind == VAPI_COL_PATH &&
			strcmp(st->columns[i].key, key) == 0)
			return &st->columns[i];
	return NULL;
}

/*
 * vapi_column_label
 *		How errors name the column behind a key: the column's name, or the
 *		key in attrs when no column reads it.
 */
static const char *
vapi_column_label(VapiModifyState *st, const char *key)
{
	VapiColumn *col = vapi_column_for_key(st, key);

	return col ? col->attname : psprintf("attrs.%s", key);
}

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

			if (attno <= InvalidAttrNumber)
				continue;
			att = TupleDescAttr(tupdesc, attno - 1);
			key = vapi_column_key(rte->relid, attno, NameStr(att->attname),
								  &is_explicit);
			top = pstrdup(key);
			if (strchr(top, '.'))
				*strchr(top, '.') = '\0';

			if (!is_explicit && strcmp(NameStr(att->attname), "attrs") == 0 &&
				(att->atttypid == JSONBOID || att->atttypid == JSONOID))
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("column \"attrs\" of foreign table \"%s\" cannot be updated",
								RelationGetRelationName(rel)),
						 errhint("Set the columns of the fields to change; attrs is what the API returns.")));
			if (vapi_in_list(vapi_assigned_fields, top) ||
				strcmp(top, "provider") == 0 ||
				strcmp(top, "numberDesiredAreaCode") == 0)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("column \"%s\" of foreign table \"%s\" cannot be updated",
								NameStr(att->attname), RelationGetRelationName(rel)),
						 errdetail("%s", strcmp(top, "provider") == 0 ?
								   "The provider of a phone number cannot change." :
								   strcmp(top, "numberDesiredAreaCode") == 0 ?
								   "The area code is only used to buy a number." :
								   "The API assigns it.")));
			target_attrs = lappend_int(target_attrs, attno);
		}
		table_close(rel, NoLock);
	}

	return list_make2(target_attrs,
					  makeInteger(plan->returningLists != NIL ? 1 : 0));
}

/*
 * vapi_write_connection
 *		The connection a write uses.  Writing needs a user mapping of one's
 *		own (a superuser excepted): a PUBLIC mapping only reads.
 */
static VapiConn *
vapi_write_connection(ForeignServer *server, Oid userid, const char *relname)
{
	if (!superuser_arg(userid) &&
		!vapi_has_own_user_mapping(userid, server->serverid))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("writing to foreign table \"%s\" needs a user mapping of your own",
						relname),
				 errdetail("Only a PUBLIC user mapping exists for role \"%s\" on server \"%s\".",
						   GetUserNameFromId(userid, false), server->servername),
				 errhint("Create one with: CREATE USER MAPPING FOR CURRENT_USER SERVER %s OPTIONS (api_key '...');",
						 quote_identifier(server->servername))));
	return vapi_get_connection(server, userid);
}

/*
 * vapiBeginForeignModify
 *		Set up an INSERT, UPDATE or DELETE: the connection (writes need a
 *		user mapping of one's own, not a PUBLIC one, unless superuser), the
 *		column map and the junk columns.
 */
void
vapiBeginForeignModify(ModifyTableState *mtstate, ResultRelInfo *rinfo,
					   List *fdw_private, int subplan_index, int eflags)
{
	VapiModifyState *st;
	Relation	rel = rinfo->ri_RelationDesc;
	EState	   *estate = mtstate->ps.state;
	ForeignTable *table = GetForeignTable(RelationGetRelid(rel));
	ForeignServer *server = GetForeignServer(table->serverid);
	TupleDesc	tupdesc = RelationGetDescr(rel);
	List	   *all = NIL;
	Oid			userid;
	int			i;

	st = palloc0(sizeof(VapiModifyState));
	rinfo->ri_FdwState = st;
	st->rel = rel;
	st->relname = pstrdup(RelationGetRelationName(rel));
	st->operation = mtstate->operation;
	st->target_attrs = (List *) list_nth(fdw_private, VapiModifyTargetAttrs);
	st->has_returning = intVal(list_nth(fdw_private, VapiModifyHasReturning)) != 0;

	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;

#if PG_VERSION_NUM >= 160000
	userid = ExecGetResultRelCheckAsUser(rinfo, estate);
#else
	{
		RangeTblEntry *rte = exec_rt_fetch(rinfo->ri_RangeTableIndex, estate);

		userid = OidIsValid(rte->checkAsUser) ? rte->checkAsUser : GetUserId();
	}
#endif
	st->conn = vapi_write_connection(server, userid, st->relname);

	for (i = 1; i <= tupdesc->natts; i++)
		if (!TupleDescAttr(tupdesc, i - 1)->attisdropped)
			all = lappend_int(all, i);
	st->columns = vapi_build_columns(rel, all, &st->ncolumns);

	if (st->operation == CMD_UPDATE || st->operation == CMD_DELETE)
	{
		Plan	   *subplan = outerPlanState(mtstate)->plan;

		st->id_junk = ExecFindJunkAttributeInTlist(subplan->targetlist, "vapi_id");
		if (!AttributeNumberIsValid(st->id_junk))
			elog(ERROR, "vapi_fdw: could not find junk vapi_id column");
		if (st->operation == CMD_UPDATE)
		{
			st->wholerow_junk = ExecFindJunkAttributeInTlist(subplan->targetlist,
															 "wholerow");
			if (!AttributeNumberIsValid(st->wholerow_junk))
				elog(ERROR, "vapi_fdw: could not find junk wholerow column");
		}
	}

	st->temp_cxt = AllocSetContextCreate(estate->es_query_cxt,
										 "vapi_fdw modify row",
										 ALLOCSET_DEFAULT_SIZES);
}

/*
 * vapi_row_error_callback
 *		Error context of a row of a write: which row, and what the API has
 *		already done, since it has no transactions to roll back.
 */
static void
vapi_row_error_callback(void *arg)
{
	VapiModifyState *st = ((VapiRowContext *) arg)->st;
	const char *verb = st->operation == CMD_INSERT ? "INSERT" :
		st->operation == CMD_UPDATE ? "UPDATE" : "DELETE";
	const char *done = st->operation == CMD_INSERT ? "created" :
		st->operation == CMD_UPDATE ? "updated" : "deleted";

	if (st->rows_applied == 0)
		errcontext("%s on foreign table \"%s\", row %d; no earlier row of this statement was sent",
				   verb, st->relname, st->row_no);
	else
		errcontext("%s on foreign table \"%s\", row %d; %d earlier row%s of this statement %s already %s at Vapi and stay%s so (the API has no transactions)",
				   verb, st->relname, st->row_no, st->rows_applied,
				   st->rows_applied == 1 ? "" : "s",
				   st->rows_applied == 1 ? "was" : "were", done,
				   st->rows_applied == 1 ? "s" : "");
}

/*
 * vapi_row_begin
 *		Start work on the next row of a write: count it, push the error
 *		context that names it, and switch to a fresh per-row context.
 *		Returns the context to go back to.
 */
static MemoryContext
vapi_row_begin(VapiModifyState *st, ErrorContextCallback *errcb,
			   VapiRowContext *ctx)
{
	st->row_no++;
	ctx->st = st;
	errcb->callback = vapi_row_error_callback;
	errcb->arg = ctx;
	errcb->previous = error_context_stack;
	error_context_stack = errcb;

	MemoryContextReset(st->temp_cxt);
	return MemoryContextSwitchTo(st->temp_cxt);
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

			if (col->attnum != attno || nulls[attno - 1] ||
				col->kind != VAPI_COL_PATH)
				continue;
			if (strcmp(col->key, "authentication") == 0 && col->typid == JSONBOID)
			{
				Jsonb	   *auth = DatumGetJsonbP(values[attno - 1]);
				JsonbValue	tmp;
				JsonbValue *v = JB_ROOT_IS_OBJECT(auth) ?
					getKeyJsonValueFromContainer(&auth->root, "password", 8, &tmp) :
					NULL;

				if (v != NULL && v->type == jbvString)
					secrets = lappend(secrets, pnstrdup(v->val.string.val,
														v->val.string.len));
			}
			else if (vapi_in_list(vapi_secret_fields, col->key) ||
					 strcmp(col->key, "authentication.password") == 0)
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
 *		Fill the slot from the phone number the API answered with.
 */
static void
vapi_returning(VapiModifyState *st, TupleTableSlot *slot,
			   VapiHttpResponse *resp)
{
	VapiPage   *page;

	page = vapi_json_parse_object(resp->body, resp->body_len,
								  CurrentMemoryContext);
	ExecClearTuple(slot);
	memset(slot->tts_isnull, true,
		   sizeof(bool) * slot->tts_tupleDescriptor->natts);
	vapi_json_item_to_datums(vapi_json_page_item(page, 0), st->columns,
							 st->ncolumns, st->relname, slot->tts_values,
							 slot->tts_isnull);
	ExecStoreVirtualTuple(slot);
}

/*
 * vapiExecForeignInsert
 *		POST one phone number.  The body holds the keys of "attrs" (minus
 *		those the API assigns), then every non-NULL column at its key path
 *		(explicit columns win), checked against what the row's provider
 *		accepts before anything is sent.
 */
TupleTableSlot *
vapiExecForeignInsert(EState *estate, ResultRelInfo *rinfo,
					  TupleTableSlot *slot, TupleTableSlot *planSlot)
{
	VapiModifyState *st = (VapiModifyState *) rinfo->ri_FdwState;
	MemoryContext oldcxt;
	ErrorContextCallback errcb;
	VapiRowContext ctx;
	Jsonb	   *attrs = NULL;
	List	   *fields = NIL;
	List	   *drop = NIL;
	List	   *attnos = NIL;
	const char *provider_name = NULL;
	const VapiProvider *provider;
	char	   *body;
	Jsonb	   *jbody;
	VapiHttpResponse resp;
	int			i;
	const char *const *p;

	oldcxt = vapi_row_begin(st, &errcb, &ctx);
	slot_getallattrs(slot);

	for (i = 0; i < st->ncolumns; i++)
	{
		VapiColumn *col = &st->columns[i];
		Datum		value = slot->tts_values[col->attnum - 1];
		VapiBodyField *f;
		char	   *top;

		if (slot->tts_isnull[col->attnum - 1])
			continue;
		attnos = lappend_int(attnos, col->attnum);
		if (col->kind == VAPI_COL_ATTRS)
		{
			attrs = col->typid == JSONBOID ? DatumGetJsonbP(value) :
				DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
												   CStringGetDatum(TextDatumGetCString(value))));
			if (!JB_ROOT_IS_OBJECT(attrs))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("column \"%s\" must hold a JSON object", col->attname)));
			continue;
		}

		top = pstrdup(col->path[0]);
		if (vapi_in_list(vapi_assigned_fields, top))
			ereport(ERROR,
					(errcode(ERRCODE_GENERATED_ALWAYS),
					 errmsg("cannot insert a non-NULL value into column \"%s\"",
							col->attname),
					 errdetail("Vapi assigns \"%s\" when it creates a phone number.",
							   col->key)));
		if (strcmp(col->key, "provider") == 0)
		{
			Oid			typout;
			bool		isvarlena;

			getTypeOutputInfo(col->typid, &typout, &isvarlena);
			provider_name = OidOutputFunctionCall(typout, value);
		}
		f = palloc(sizeof(VapiBodyField));
		f->path = col->path;
		f->npath = col->npath;
		f->json = vapi_json_value_text(value, col->typid, col->attname);
		fields = lappend(fields, f);
	}

	/* The provider: a column, or a key of attrs. */
	if (provider_name == NULL && attrs != NULL)
	{
		JsonbValue	tmp;
		JsonbValue *v = getKeyJsonValueFromContainer(&attrs->root, "provider",
													 8, &tmp);

		if (v != NULL && v->type == jbvString)
			provider_name = pnstrdup(v->val.string.val, v->val.string.len);
	}
	if (provider_name == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("column \"%s\" must be set to insert a phone number",
						vapi_column_label(st, "provider")),
				 errhint("Use one of: byo-phone-number, twilio, vonage, vapi, telnyx.")));
	provider = vapi_find_provider(provider_name);
	if (provider == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("invalid value for column \"%s\": \"%s\" is not a provider Vapi accepts",
						vapi_column_label(st, "provider"), provider_name),
				 errhint("Use one of: byo-phone-number, twilio, vonage, vapi, telnyx.")));

	/* Keys the API assigns, even from attrs, are not sent. */
	for (p = vapi_assigned_fields; *p; p++)
		drop = lappend(drop, (char *) *p);
	body = vapi_json_build_body(attrs, drop, fields);
	jbody = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(body)));

	/* Check every key of the body against the provider, then the values. */
	{
		JsonbIterator *it = JsonbIteratorInit(&jbody->root);
		JsonbValue	v;
		JsonbIteratorToken tok;
		int			level = 0;

		while ((tok = JsonbIteratorNext(&it, &v, false)) != WJB_DONE)
		{
			char	   *key;

			if (tok == WJB_BEGIN_OBJECT || tok == WJB_BEGIN_ARRAY)
				level++;
			else if (tok == WJB_END_OBJECT || tok == WJB_END_ARRAY)
				level--;
			if (tok != WJB_KEY || level != 1)
				continue;
			key = pnstrdup(v.val.string.val, v.val.string.len);
			if (!vapi_in_list(vapi_common_fields, key) &&
				!vapi_in_list(provider->fields, key))
				ereport(ERROR,
						(errcode(ERRCODE_CHECK_VIOLATION),
						 errmsg("column \"%s\" cannot be set for provider \"%s\"",
								vapi_column_label(st, key), provider->name),
						 errdetail("Vapi does not take \"%s\" when creating a %s number.",
								   key, provider->name)));
		}
	}
	for (p = provider->required; *p; p++)
	{
		JsonbValue	tmp;
		JsonbValue *v = getKeyJsonValueFromContainer(&jbody->root, *p,
													 strlen(*p), &tmp);

		if (v == NULL || v->type == jbvNull)
			ereport(ERROR,
					(errcode(ERRCODE_NOT_NULL_VIOLATION),
					 errmsg("column \"%s\" must be set for provider \"%s\"",
							vapi_column_label(st, *p), provider->name)));
	}
	{
		JsonbValue	tmp;
		JsonbValue *v;

		v = getKeyJsonValueFromContainer(&jbody->root, "name", 4, &tmp);
		if (v != NULL && v->type == jbvString &&
			pg_mbstrlen_with_len(v->val.string.val, v->val.string.len) > VAPI_MAX_NAME_CHARS)
			ereport(ERROR,
					(errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
					 errmsg("value of column \"%s\" is too long for Vapi",
							vapi_column_label(st, "name")),
					 errdetail("A name has at most %d characters; this one has %d.",
							   VAPI_MAX_NAME_CHARS,
							   pg_mbstrlen_with_len(v->val.string.val, v->val.string.len))));
		v = getKeyJsonValueFromContainer(&jbody->root, "numberDesiredAreaCode",
										 21, &tmp);
		if (v != NULL && (v->type != jbvString || v->val.string.len != 3 ||
						  strspn(pnstrdup(v->val.string.val, 3), "0123456789") != 3))
			ereport(ERROR,
					(errcode(ERRCODE_CHECK_VIOLATION),
					 errmsg("invalid value for column \"%s\": an area code is 3 digits",
							vapi_column_label(st, "numberDesiredAreaCode"))));
	}

	vapi_request(st->conn, "POST", VAPI_PATH_ITEM, body, strlen(body),
				 vapi_collect_secrets(st, slot->tts_values, slot->tts_isnull, attnos),
				 0, &resp, st->temp_cxt, &st->stats);
	st->rows_applied++;

	if (st->has_returning)
		vapi_returning(st, slot, &resp);

	MemoryContextSwitchTo(oldcxt);
	error_context_stack = errcb.previous;
	return slot;
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
	Oid			typout;
	bool		isvarlena;
	Oid			type;
	char	   *id;

	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("the phone number to change has no id")));
	type = TupleDescAttr(planSlot->tts_tupleDescriptor, st->id_junk - 1)->atttypid;
	getTypeOutputInfo(type, &typout, &isvarlena);
	id = OidOutputFunctionCall(typout, value);
	if (!vapi_valid_id(id))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("phone number id \"%s\" is not a UUID", id)));
	return id;
}

/*
 * vapi_old_value
 *		The value a top-level key had in the old row of an UPDATE (from
 *		the column reading it), as a jsonb, or *isnull.
 */
static Datum
vapi_old_value(VapiModifyState *st, TupleTableSlot *planSlot,
			   const char *key, bool *isnull)
{
	bool		wnull;
	Datum		whole = ExecGetJunkAttribute(planSlot, st->wholerow_junk, &wnull);
	HeapTupleHeader td;
	HeapTupleData tuple;
	TupleDesc	tupdesc = RelationGetDescr(st->rel);
	Datum	   *values;
	bool	   *nulls;
	int			i;

	*isnull = true;
	if (wnull)
		return (Datum) 0;
	td = DatumGetHeapTupleHeader(whole);
	tuple.t_len = HeapTupleHeaderGetDatumLength(td);
	ItemPointerSetInvalid(&tuple.t_self);
	tuple.t_tableOid = InvalidOid;
	tuple.t_data = td;
	values = palloc(sizeof(Datum) * tupdesc->natts);
	nulls = palloc(sizeof(bool) * tupdesc->natts);
	heap_deform_tuple(&tuple, tupdesc, values, nulls);

	for (i = 0; i < st->ncolumns; i++)
	{
		VapiColumn *col = &st->columns[i];

		if (nulls[col->attnum - 1])
			continue;
		if (col->kind == VAPI_COL_PATH && strcmp(col->key, key) == 0)
		{
			*isnull = false;
			if (col->typid == JSONBOID)
				return values[col->attnum - 1];
			return DirectFunctionCall1(jsonb_in,
									   CStringGetDatum(vapi_json_value_text(values[col->attnum - 1],
																			col->typid,
																			col->attname)));
		}
	}
	/* not a column of its own: look in attrs */
	for (i = 0; i < st->ncolumns; i++)
	{
		VapiColumn *col = &st->columns[i];

		if (col->kind == VAPI_COL_ATTRS && !nulls[col->attnum - 1] &&
			col->typid == JSONBOID)
		{
			Jsonb	   *attrs = DatumGetJsonbP(values[col->attnum - 1]);
			JsonbValue	tmp;
			JsonbValue *v = getKeyJsonValueFromContainer(&attrs->root, key,
														 strlen(key), &tmp);

			if (v != NULL && v->type != jbvNull)
			{
				*isnull = false;
				return JsonbPGetDatum(JsonbValueToJsonb(v));
			}
		}
	}
	return (Datum) 0;
}

/*
 * vapiExecForeignUpdate
 *		PATCH one phone number with only the columns the statement sets
 *		(NULL becomes JSON null).  A column whose key is a dotted path
 *		writes into the object the row already has, so its other fields
 *		are kept.
 */
TupleTableSlot *
vapiExecForeignUpdate(EState *estate, ResultRelInfo *rinfo,
					  TupleTableSlot *slot, TupleTableSlot *planSlot)
{
	VapiModifyState *st = (VapiModifyState *) rinfo->ri_FdwState;
	MemoryContext oldcxt;
	ErrorContextCallback errcb;
	VapiRowContext ctx;
	List	   *fields = NIL;
	List	   *parents = NIL;
	char	   *id;
	char	   *provider_name = NULL;
	const VapiProvider *provider;
	char	   *body;
	VapiHttpResponse resp;
	ListCell   *lc;
	Datum		old;
	bool		oldnull;

	oldcxt = vapi_row_begin(st, &errcb, &ctx);
	slot_getallattrs(slot);
	id = vapi_row_id(st, planSlot);

	old = vapi_old_value(st, planSlot, "provider", &oldnull);
	if (!oldnull)
	{
		Jsonb	   *pj = DatumGetJsonbP(old);
		JsonbValue	sv;

		if (JB_ROOT_IS_SCALAR(pj) && JsonbExtractScalar(&pj->root, &sv) &&
			sv.type == jbvString)
			provider_name = pnstrdup(sv.val.string.val, sv.val.string.len);
	}
	provider = provider_name ? vapi_find_provider(provider_name) : NULL;

	foreach(lc, st->target_attrs)
	{
		int			attno = lfirst_int(lc);
		VapiColumn *col = NULL;
		VapiBodyField *f;
		int			i;

		for (i = 0; i < st->ncolumns; i++)
			if (st->columns[i].attnum == attno)
				col = &st->columns[i];
		if (col == NULL)
			continue;

		/* Provider-specific rules, when the row's provider is known. */
		if (provider != NULL &&
			!vapi_in_list(vapi_common_fields, col->path[0]) &&
			(!vapi_in_list(provider->fields, col->path[0]) ||
			 strcmp(col->path[0], "numberDesiredAreaCode") == 0))
			ereport(ERROR,
					(errcode(ERRCODE_CHECK_VIOLATION),
					 errmsg("column \"%s\" cannot be set for provider \"%s\"",
							col->attname, provider->name),
					 errdetail("Vapi does not take \"%s\" for a %s number.",
							   col->path[0], provider->name)));
		if (provider != NULL && strcmp(provider->name, "vapi") == 0 &&
			strcmp(col->path[0], "number") == 0)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("column \"%s\" cannot be updated for provider \"vapi\"",
							col->attname),
					 errdetail("Vapi assigns the number of a number it sells.")));
		if (strcmp(col->key, "name") == 0 && !slot->tts_isnull[attno - 1])
		{
			char	   *name = TextDatumGetCString(slot->tts_values[attno - 1]);

			if (pg_mbstrlen(name) > VAPI_MAX_NAME_CHARS)
				ereport(ERROR,
						(errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
						 errmsg("value of column \"%s\" is too long for Vapi",
								col->attname),
						 errdetail("A name has at most %d characters; this one has %d.",
								   VAPI_MAX_NAME_CHARS, pg_mbstrlen(name))));
		}

		/* A dotted path writes into the object the row already has. */
		if (col->npath > 1 && !list_member(parents, makeString(col->path[0])))
		{
			Datum		parent = vapi_old_value(st, planSlot, col->path[0], &oldnull);
			VapiBodyField *pf = palloc(sizeof(VapiBodyField));

			pf->path = col->path;
			pf->npath = 1;
			pf->json = oldnull ? "{}" :
				DatumGetCString(DirectFunctionCall1(jsonb_out, parent));
			fields = lappend(fields, pf);
			parents = lappend(parents, makeString(col->path[0]));
		}

		f = palloc(sizeof(VapiBodyField));
		f->path = col->path;
		f->npath = col->npath;
		f->json = slot->tts_isnull[attno - 1] ? NULL :
			vapi_json_value_text(slot->tts_values[attno - 1], col->typid,
								 col->attname);
		fields = lappend(fields, f);
	}

	body = vapi_json_build_body(NULL, NIL, fields);
	vapi_request(st->conn, "PATCH", vapi_deparse_item_path(id), body,
				 strlen(body),
				 vapi_collect_secrets(st, slot->tts_values, slot->tts_isnull,
									  st->target_attrs),
				 VAPI_REQ_ALLOW_404, &resp, st->temp_cxt, &st->stats);
	if (resp.status == 404)
	{
		/* deleted meanwhile: nothing updated */
		MemoryContextSwitchTo(oldcxt);
		error_context_stack = errcb.previous;
		return NULL;
	}
	st->rows_applied++;

	if (st->has_returning)
		vapi_returning(st, slot, &resp);

	MemoryContextSwitchTo(oldcxt);
	error_context_stack = errcb.previous;
	return slot;
}

/*
 * vapiExecForeignDelete
 *		DELETE one phone number.  A 404 on a retried DELETE means an
 *		earlier attempt succeeded; on a first attempt, that someone else
 *		deleted it (then no row is counted).
 */
TupleTableSlot *
vapiExecForeignDelete(EState *estate, ResultRelInfo *rinfo,
					  TupleTableSlot *slot, TupleTableSlot *planSlot)
{
	VapiModifyState *st = (VapiModifyState *) rinfo->ri_FdwState;
	MemoryContext oldcxt;
	ErrorContextCallback errcb;
	VapiRowContext ctx;
	VapiHttpResponse resp;
	char	   *id;

	oldcxt = vapi_row_begin(st, &errcb, &ctx);
	id = vapi_row_id(st, planSlot);
	vapi_request(st->conn, "DELETE", vapi_deparse_item_path(id), NULL, 0, NIL,
				 VAPI_REQ_ALLOW_404, &resp, st->temp_cxt, &st->stats);

	MemoryContextSwitchTo(oldcxt);
	error_context_stack = errcb.previous;

	if (resp.status == 404 && resp.attempts <= 1)
		return NULL;
	st->rows_applied++;
	if (st->has_returning)
	{
		if (resp.status == 404)
		{
			/* the answer with the object was lost: nothing to return */
			ExecStoreAllNullTuple(slot);
		}
		else
		{
			oldcxt = MemoryContextSwitchTo(st->temp_cxt);
			vapi_returning(st, slot, &resp);
			MemoryContextSwitchTo(oldcxt);
		}
	}
	return slot;
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
 * Indexes of the fdw_private list of a directly modifying ForeignScan.
 * fdw_exprs holds the id, then the value of each column set.
 */
enum VapiDirectPrivateIndex
{
	VapiDirectTargetAttrs		/* Integer list: columns UPDATE sets */
};

/* Executor state of a direct modification. */
typedef struct VapiDirectState
{
	VapiModifyState m;			/* the same as a row-by-row write */
	List	   *exprs;			/* ExprStates: the id, then the values */
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
	List	   *priv;
	List	   *quals;
	List	   *q;
	List	   *local_only;
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
	priv = fscan->fdw_private;
	if (intVal(list_nth(priv, VapiPrivateMode)) != VAPI_MODE_LOOKUP)
		return false;
	quals = (List *) list_nth(priv, VapiPrivateQuals);
	local_only = (List *) list_nth(priv, VapiPrivateLocalOnly);
	if (list_length(quals) != 1 || list_length(fscan->scan.plan.qual) != 1 ||
		list_length(local_only) != 1 || linitial_int(local_only) != 0)
		return false;
	q = (List *) linitial(quals);
	if (intVal(linitial(q)) != VAPI_QUAL_ID_EQ)
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
				!vapi_in_list(vapi_common_fields, key) ||
				(!is_explicit && strcmp(NameStr(att->attname), "attrs") == 0) ||
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
	fscan->fdw_exprs = lcons(list_nth(fscan->fdw_exprs, intVal(lfourth(q))),
							 values);
	fscan->fdw_private = list_make1(target_attrs);
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
	st->target_attrs = (List *) list_nth(fsplan->fdw_private,
										 VapiDirectTargetAttrs);
	ds->exprs = ExecInitExprList(fsplan->fdw_exprs, (PlanState *) node);
	if (eflags & EXEC_FLAG_EXPLAIN_ONLY)
		return;

	userid = vapi_scan_userid(fsplan, estate);
	st->conn = vapi_write_connection(server, userid, st->relname);
	st->columns = vapi_build_columns(rel, st->target_attrs, &st->ncolumns);
	st->temp_cxt = AllocSetContextCreate(estate->es_query_cxt,
										 "vapi_fdw direct modify",
										 ALLOCSET_DEFAULT_SIZES);
}

/*
 * vapiIterateDirectModify
 *		Send the one PATCH or DELETE.  An id that does not exist (or is not
 *		a UUID, or NULL) changes nothing.  Returns no rows (there is no
 *		RETURNING); the row count goes to es_processed.
 */
TupleTableSlot *
vapiIterateDirectModify(ForeignScanState *node)
{
	VapiDirectState *ds = (VapiDirectState *) node->fdw_state;
	VapiModifyState *st = &ds->m;
	EState	   *estate = node->ss.ps.state;
	ExprContext *econtext = node->ss.ps.ps_ExprContext;
	TupleTableSlot *slot = node->ss.ss_ScanTupleSlot;
	ErrorContextCallback errcb;
	VapiRowContext ctx;
	MemoryContext oldcxt;
	ExprState  *idstate;
	Datum		value;
	bool		isnull;
	char	   *id;
	char	   *body = NULL;
	VapiHttpResponse resp;
	Oid			typout;
	bool		isvarlena;

	if (ds->done)
		return ExecClearTuple(slot);
	ds->done = true;

	oldcxt = vapi_row_begin(st, &errcb, &ctx);
	idstate = linitial(ds->exprs);
	value = ExecEvalExpr(idstate, econtext, &isnull);
	if (isnull)
		goto done;
	getTypeOutputInfo(exprType((Node *) idstate->expr), &typout, &isvarlena);
	id = OidOutputFunctionCall(typout, value);
	if (!vapi_valid_id(id))
		goto done;

	if (st->operation == CMD_UPDATE)
	{
		List	   *fields = NIL;
		ListCell   *lc;
		int			i = 0;

		for_each_from(lc, ds->exprs, 1)
		{
			VapiColumn *col = &st->columns[i++];
			ExprState  *es = lfirst(lc);
			VapiBodyField *f = palloc(sizeof(VapiBodyField));
			Datum		v = ExecEvalExpr(es, econtext, &isnull);

			if (strcmp(col->key, "name") == 0 && !isnull &&
				pg_mbstrlen(TextDatumGetCString(v)) > VAPI_MAX_NAME_CHARS)
				ereport(ERROR,
						(errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
						 errmsg("value of column \"%s\" is too long for Vapi",
								col->attname),
						 errdetail("A name has at most %d characters; this one has %d.",
								   VAPI_MAX_NAME_CHARS,
								   pg_mbstrlen(TextDatumGetCString(v)))));
			f->path = col->path;
			f->npath = col->npath;
			f->json = isnull ? NULL :
				vapi_json_value_text(v, col->typid, col->attname);
			fields = lappend(fields, f);
		}
		body = vapi_json_build_body(NULL, NIL, fields);
	}

	vapi_request(st->conn, st->operation == CMD_UPDATE ? "PATCH" : "DELETE",
				 vapi_deparse_item_path(id), body, body ? strlen(body) : 0,
				 NIL, VAPI_REQ_ALLOW_404, &resp, st->temp_cxt, &st->stats);
	if (resp.status != 404 || (st->operation == CMD_DELETE && resp.attempts > 1))
	{
		st->rows_applied++;
		estate->es_processed++;
	}

done:
	MemoryContextSwitchTo(oldcxt);
	error_context_stack = errcb.previous;
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
