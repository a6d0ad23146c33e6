/*-------------------------------------------------------------------------
 *
 * deparse.c
 *		  Where a WHERE clause becomes a query parameter: which quals can be
 *		  pushed to the Vapi API, their values folded into bounds and ids,
 *		  the requests (path and query string) they make, and the API's
 *		  timestamp format in both directions.
 *
 * Strings only: nothing here touches the network.  Pushed quals are
 *   - created_at / updated_at compared (= < <= > >=) with a value that is
 *     fixed during the scan (a constant, a parameter, a stable expression):
 *     the createdAt* / updatedAt* query parameters;
 *   - id = value and id = ANY(array): GET /phone-number/{id};
 *   - name / number / sip_uri equality, LIKE and ILIKE with a literal
 *     fragment: the v2 "search" parameter, which matches a superset.
 * Every qual is still checked locally, so pushdown only makes a query
 * cheaper, never changes its answer.  Every query-string value is
 * percent-encoded, so no value can change the shape of a URL.
 *
 * src/deparse.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/nbtree.h"
#include "access/stratnum.h"
#include "catalog/pg_am.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "common/string.h"
#include "mb/pg_wchar.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/clauses.h"
#include "optimizer/optimizer.h"
#if PG_VERSION_NUM >= 160000
#include "nodes/miscnodes.h"
#endif
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "vapi_fdw.h"

/* The API accepts at most this many characters of search text. */
#define VAPI_MAX_SEARCH_CHARS	100

static const char *const vapi_time_params[VAPI_NFIELDS][VAPI_NOPS] = {
	{"createdAtGt", "createdAtGe", "createdAtLt", "createdAtLe"},
	{"updatedAtGt", "updatedAtGe", "updatedAtLt", "updatedAtLe"}
};

static Expr *vapi_strip_relabel(Expr *e);
static bool vapi_is_column(Expr *e, RelOptInfo *baserel, AttrNumber attno);
static bool vapi_is_btree_op(Oid opno, Oid type, int *strategy);
static bool vapi_is_id_equality(Oid opno, Oid inputcollid,
								const VapiRelColumns *cols);
static char *vapi_like_fragment(const char *pattern);
static void vapi_append_query_param(StringInfo buf, const char *name,
									const char *value);
static bool vapi_exact_time_typmod(int32 typmod);
static int64 vapi_ms_ceil(int64 ts);
static bool vapi_is_runtime_value(PlannerInfo *root, RelOptInfo *baserel,
								  Expr *expr, bool allow_outer);

/*
 * vapi_exact_time_typmod
 *		Does a timestamptz column of this typmod keep every microsecond?
 */
static bool
vapi_exact_time_typmod(int32 typmod)
{
	return typmod < 0 || typmod >= MAX_TIMESTAMP_PRECISION;
}

/*
 * vapi_rel_columns
 *		Find the columns of a foreign table that pushdown can use: the
 *		first timestamptz column reading createdAt (updatedAt), the first
 *		uuid/text/varchar column reading id, and the text columns reading
 *		name, number or sipUri.
 */
void
vapi_rel_columns(Relation rel, VapiRelColumns *cols)
{
	TupleDesc	tupdesc = RelationGetDescr(rel);
	int			i;

	memset(cols, 0, sizeof(VapiRelColumns));
	for (i = 1; i <= tupdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i - 1);
		bool		is_explicit;
		char	   *key;
		Oid			type = att->atttypid;
		bool		is_text = type == TEXTOID || type == VARCHAROID;

		if (att->attisdropped)
			continue;
		key = vapi_column_key(RelationGetRelid(rel), i,
							  NameStr(att->attname), &is_explicit);

		/*
		 * A time column is pushed only if it holds the API's value exactly:
		 * a timestamptz(p) column rounds it, and a bound sent for the
		 * rounded value would select other rows than the local filter.
		 */
		if (strcmp(key, "createdAt") == 0 && type == TIMESTAMPTZOID &&
			vapi_exact_time_typmod(att->atttypmod) &&
			cols->time_attno[VAPI_FIELD_CREATED] == InvalidAttrNumber)
			cols->time_attno[VAPI_FIELD_CREATED] = i;
		else if (strcmp(key, "updatedAt") == 0 && type == TIMESTAMPTZOID &&
				 vapi_exact_time_typmod(att->atttypmod) &&
				 cols->time_attno[VAPI_FIELD_UPDATED] == InvalidAttrNumber)
			cols->time_attno[VAPI_FIELD_UPDATED] = i;
		else if (strcmp(key, "id") == 0 && (type == UUIDOID || is_text) &&
				 cols->id_attno == InvalidAttrNumber)
		{
			cols->id_attno = i;
			cols->id_type = type;
		}
		else if (is_text && (strcmp(key, "name") == 0 ||
							 strcmp(key, "number") == 0 ||
							 strcmp(key, "sipUri") == 0))
			cols->search_attnos = bms_add_member(cols->search_attnos, i);
		pfree(key);
	}
}

/*
 * vapi_strip_relabel
 *		Look through binary-compatible casts (varchar to text).
 */
static Expr *
vapi_strip_relabel(Expr *e)
{
	while (e && IsA(e, RelabelType))
		e = ((RelabelType *) e)->arg;
	return e;
}

/*
 * vapi_is_column
 *		Is "e" a plain reference to column "attno" of the foreign table?
 */
static bool
vapi_is_column(Expr *e, RelOptInfo *baserel, AttrNumber attno)
{
	Var		   *var;

	e = vapi_strip_relabel(e);
	if (attno == InvalidAttrNumber || e == NULL || !IsA(e, Var))
		return false;
	var = (Var *) e;
	return var->varno == baserel->relid && var->varlevelsup == 0 &&
		var->varattno == attno;
}

/*
 * vapi_is_runtime_value
 *		Is "expr" a value that is fixed for the whole scan and can be
 *		computed when it starts: no column of the foreign table, nothing
 *		volatile, no subplan.  With "allow_outer", columns of other
 *		relations are allowed (they become parameters of a nested loop).
 */
static bool
vapi_is_runtime_value(PlannerInfo *root, RelOptInfo *baserel, Expr *expr,
					  bool allow_outer)
{
	Relids		varnos;

	if (contain_volatile_functions((Node *) expr) ||
		contain_subplans((Node *) expr))
		return false;
	varnos = pull_varnos(root, (Node *) expr);
	if (bms_overlap(varnos, baserel->relids))
		return false;
	if (!allow_outer && !bms_is_empty(varnos))
		return false;
	return true;
}

/*
 * vapi_is_btree_op
 *		Is "opno" an operator of the default btree operator family of
 *		"type"?  Returns its strategy.
 */
static bool
vapi_is_btree_op(Oid opno, Oid type, int *strategy)
{
	Oid			opclass = GetDefaultOpClass(type, BTREE_AM_OID);
	Oid			opfamily;

	if (!OidIsValid(opclass))
		return false;
	opfamily = get_opclass_family(opclass);
	*strategy = get_op_opfamily_strategy(opno, opfamily);
	return *strategy != 0;
}

/*
 * vapi_like_fragment
 *		The longest run of literal characters in a LIKE pattern, or NULL.
 *		Any string matching the pattern contains it.
 */
static char *
vapi_like_fragment(const char *pattern)
{
	StringInfoData cur;
	char	   *best = NULL;
	int			bestlen = 0;
	const char *p = pattern;

	initStringInfo(&cur);
	for (;;)
	{
		if (*p == '\0' || *p == '%' || *p == '_')
		{
			if (cur.len > bestlen)
			{
				best = pstrdup(cur.data);
				bestlen = cur.len;
			}
			resetStringInfo(&cur);
			if (*p == '\0')
				break;
			p++;
			continue;
		}
		if (*p == '\\')
		{
			p++;
			if (*p == '\0')
				break;
		}
		{
			int			len = pg_mblen(p);

			appendBinaryStringInfo(&cur, p, len);
			p += len;
		}
	}
	return best;
}

/*
 * vapi_is_id_equality
 *		Is the operator equality of the id column's type (uuid, or text for
 *		a text or varchar id), under a deterministic collation?  Only then
 *		do the API's exact lookups find the rows the operator does.
 */
static bool
vapi_is_id_equality(Oid opno, Oid inputcollid, const VapiRelColumns *cols)
{
	Oid			optype = cols->id_type == UUIDOID ? UUIDOID : TEXTOID;
	int			strategy;

	return vapi_is_btree_op(opno, optype, &strategy) &&
		strategy == BTEqualStrategyNumber &&
		(!OidIsValid(inputcollid) || get_collation_isdeterministic(inputcollid));
}

/*
 * vapi_classify_qual
 *		Can "clause" be pushed, and how?  Fills "q" and returns true if so.
 *		With "allow_outer" the value may come from other relations (a join
 *		clause used by a parameterized path).
 */
bool
vapi_classify_qual(PlannerInfo *root, RelOptInfo *baserel,
				   const VapiRelColumns *cols, Expr *clause,
				   bool allow_outer, VapiQual *q)
{
	memset(q, 0, sizeof(VapiQual));

	if (IsA(clause, OpExpr))
	{
		OpExpr	   *op = (OpExpr *) clause;
		Expr	   *left;
		Expr	   *right;
		int			field;
		int			strategy;

		if (list_length(op->args) != 2)
			return false;
		left = linitial(op->args);
		right = lsecond(op->args);

		/* created_at / updated_at <op> value (or value <op> column) */
		for (field = 0; field < VAPI_NFIELDS; field++)
		{
			bool		col_left = vapi_is_column(left, baserel, cols->time_attno[field]);
			bool		col_right = vapi_is_column(right, baserel, cols->time_attno[field]);
			Expr	   *value = col_left ? right : left;
			Oid			vtype;

			if (col_left == col_right)
				continue;
			vtype = exprType((Node *) value);
			if (vtype != TIMESTAMPTZOID && vtype != TIMESTAMPOID &&
				vtype != DATEOID)
				continue;
			if (!vapi_is_btree_op(op->opno, TIMESTAMPTZOID, &strategy))
				continue;
			if (!vapi_is_runtime_value(root, baserel, value, allow_outer))
				continue;
			if (col_right)
				strategy = BTCommuteStrategyNumber(strategy);
			q->kind = VAPI_QUAL_TIME;
			q->field = field;
			q->strategy = strategy;
			q->operand = value;
			return true;
		}

		/* id = value */
		if (cols->id_attno != InvalidAttrNumber)
		{
			bool		col_left = vapi_is_column(left, baserel, cols->id_attno);
			bool		col_right = vapi_is_column(right, baserel, cols->id_attno);
			Expr	   *value = col_left ? right : left;

			if (col_left != col_right &&
				vapi_is_id_equality(op->opno, op->inputcollid, cols) &&
				exprType((Node *) vapi_strip_relabel(value)) == exprType((Node *) vapi_strip_relabel(col_left ? left : right)) &&
				vapi_is_runtime_value(root, baserel, value, allow_outer))
			{
				q->kind = VAPI_QUAL_ID_EQ;
				q->operand = value;
				return true;
			}
		}

		/* name / number / sip_uri = const, LIKE const, ILIKE const */
		if (!allow_outer && !bms_is_empty(cols->search_attnos))
		{
			Expr	   *col = vapi_strip_relabel(left);
			Expr	   *val = right;
			char	   *textval;
			char	   *fragment = NULL;

			if (op->opno == TextEqualOperator && !IsA(col, Var))
			{
				col = vapi_strip_relabel(right);
				val = left;
			}
			val = vapi_strip_relabel(val);
			if (!IsA(col, Var) || ((Var *) col)->varno != baserel->relid ||
				((Var *) col)->varlevelsup != 0 ||
				!bms_is_member(((Var *) col)->varattno, cols->search_attnos) ||
				!IsA(val, Const) || ((Const *) val)->constisnull ||
				((Const *) val)->consttype != TEXTOID)
				return false;
			if (OidIsValid(op->inputcollid) &&
				!get_collation_isdeterministic(op->inputcollid))
				return false;

			textval = TextDatumGetCString(((Const *) val)->constvalue);
			if (op->opno == TextEqualOperator)
				fragment = textval;
			else if (op->opno == OID_TEXT_LIKE_OP || op->opno == OID_TEXT_ICLIKE_OP)
				fragment = vapi_like_fragment(textval);
			if (fragment == NULL || fragment[0] == '\0')
				return false;

			/*
			 * The API matches case-insensitively, folding case its own way;
			 * only for ASCII is that sure to find every value that contains
			 * the fragment (Unicode folding depends on context, as for the
			 * Greek final sigma, and on the implementation).
			 */
			if (!pg_is_ascii(fragment))
				return false;

			/* The API takes 100 characters; a part of a match still matches. */
			if (pg_mbstrlen(fragment) > VAPI_MAX_SEARCH_CHARS)
				fragment[pg_mbcharcliplen(fragment, strlen(fragment),
										  VAPI_MAX_SEARCH_CHARS)] = '\0';
			q->kind = VAPI_QUAL_SEARCH;
			q->search = fragment;
			return true;
		}
		return false;
	}

	/* id = ANY(array) and id IN (...) */
	if (IsA(clause, ScalarArrayOpExpr) && cols->id_attno != InvalidAttrNumber)
	{
		ScalarArrayOpExpr *saop = (ScalarArrayOpExpr *) clause;
		Expr	   *col = linitial(saop->args);
		Expr	   *arr = lsecond(saop->args);

		if (saop->useOr &&
			vapi_is_column(col, baserel, cols->id_attno) &&
			vapi_is_id_equality(saop->opno, saop->inputcollid, cols) &&
			vapi_is_runtime_value(root, baserel, arr, false))
		{
			q->kind = VAPI_QUAL_ID_ANY;
			q->operand = arr;
			return true;
		}
	}
	return false;
}

/*
 * vapi_append_query_param
 *		Append "name=value" to a query string being built in "buf", with a
 *		"?" or "&" separator as needed and the value percent-encoded
 *		(everything but RFC 3986 unreserved characters).  EXPLAIN's
 *		placeholder for a value known only at run time, "$(...)", is shown
 *		as it is; it is never sent.
 */
static void
vapi_append_query_param(StringInfo buf, const char *name, const char *value)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p;

	appendStringInfoChar(buf, strchr(buf->data, '?') ? '&' : '?');
	appendStringInfoString(buf, name);
	appendStringInfoChar(buf, '=');

	/* EXPLAIN's "$(expression)" for a value known only at run time */
	if (value[0] == '$' && value[1] == '(')
	{
		appendStringInfoString(buf, value);
		return;
	}
	for (p = (const unsigned char *) value; *p; p++)
	{
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
			(*p >= '0' && *p <= '9') ||
			*p == '-' || *p == '.' || *p == '_' || *p == '~')
			appendStringInfoChar(buf, (char) *p);
		else
		{
			appendStringInfoChar(buf, '%');
			appendStringInfoChar(buf, hex[*p >> 4]);
			appendStringInfoChar(buf, hex[*p & 0x0F]);
		}
	}
}

/*
 * vapi_deparse_list_request
 *		The path and query string of one page of the list endpoint.
 *
 * Scans page through GET /v2/phone-number ordered by createdAt (the
 * default sort key: sortBy is never sent, older deployments refuse it),
 * keyset-paged: each page after the first starts at the millisecond where
 * the one before ended (the executor folds that bound into "time"), and
 * "page" is only used to step through a run of more numbers in one
 * millisecond than fit on one page.  A deployment without v2 is listed
 * through GET /phone-number (v1), which takes only limit and the time
 * filters.
 */
char *
vapi_deparse_list_request(const VapiListRequest *req)
{
	StringInfoData buf;
	char		num[32];
	int			field;
	int			op;

	initStringInfo(&buf);
	if (req->v1)
	{
		/* v1: newest first, limit and the time filters only */
		appendStringInfoString(&buf, VAPI_PATH_ITEM);
		snprintf(num, sizeof(num), "%d", req->limit);
		vapi_append_query_param(&buf, "limit", num);
	}
	else
	{
		appendStringInfoString(&buf, VAPI_PATH_LIST);
		if (req->send_sort_order)
			vapi_append_query_param(&buf, "sortOrder",
									req->ascending ? "ASC" : "DESC");
		snprintf(num, sizeof(num), "%d", req->limit);
		vapi_append_query_param(&buf, "limit", num);
		if (req->page > 1)
		{
			snprintf(num, sizeof(num), "%d", req->page);
			vapi_append_query_param(&buf, "page", num);
		}
		if (req->search != NULL)
			vapi_append_query_param(&buf, "search", req->search);
	}
	for (field = 0; field < VAPI_NFIELDS; field++)
		for (op = 0; op < VAPI_NOPS; op++)
			if (req->time[field][op] != NULL)
				vapi_append_query_param(&buf, vapi_time_params[field][op],
										req->time[field][op]);
	return buf.data;
}

/*
 * vapi_valid_id
 *		Is "id" a UUID in its canonical text form?  Only such a value may
 *		become part of a URL; phone-number ids are always UUIDs.
 */
bool
vapi_valid_id(const char *id)
{
	int			i;

	if (strlen(id) != 36)
		return false;
	for (i = 0; i < 36; i++)
	{
		if (i == 8 || i == 13 || i == 18 || i == 23)
		{
			if (id[i] != '-')
				return false;
		}
		else if (!isxdigit((unsigned char) id[i]))
			return false;
	}
	return true;
}

/*
 * vapi_id_lower
 *		A phone-number id in lower case, as the API writes ids (it finds
 *		one in either case).
 */
char *
vapi_id_lower(const char *id)
{
	char	   *out = pstrdup(id);
	char	   *p;

	for (p = out; *p; p++)
		*p = pg_ascii_tolower((unsigned char) *p);
	return out;
}

/*
 * vapi_deparse_item_path
 *		The path of one phone number.  The id must have passed
 *		vapi_valid_id().
 */
char *
vapi_deparse_item_path(const char *id)
{
	Assert(vapi_valid_id(id));
	return psprintf("%s/%s", VAPI_PATH_ITEM, id);
}

/*
 * vapi_ms_floor
 *		The start of the millisecond holding "ts" (microseconds).
 */
int64
vapi_ms_floor(int64 ts)
{
	int64		ms = ts / 1000;

	if (ts % 1000 != 0 && ts < 0)
		ms -= 1;
	return ms * 1000;
}

/*
 * vapi_ms_ceil
 *		The first millisecond boundary at or after "ts".
 */
static int64
vapi_ms_ceil(int64 ts)
{
	int64		f = vapi_ms_floor(ts);

	return f == ts ? f : f + 1000;
}

/*
 * vapi_format_timestamp
 *		A timestamptz as the API writes it, in UTC with milliseconds
 *		(2024-09-10T11:14:12.339Z).  The API keeps milliseconds, so a value
 *		with a finer fraction is rounded down, or up with "round_up", to the
 *		bound that selects exactly the same rows.  NULL for a value the
 *		API cannot take (outside years 1 to 9999).
 */
char *
vapi_format_timestamp(int64 ts, bool round_up)
{
	struct pg_tm tm;
	fsec_t		fsec;
	int64		ms;

	/* floor to the millisecond, or ceil */
	ms = ts / 1000;
	if (ts % 1000 != 0 && ts < 0)
		ms -= 1;
	if (round_up && ms * 1000 != ts)
		ms += 1;
	ts = ms * 1000;

	/* Years the API's format cannot express: push no bound. */
	if (timestamp2tm((TimestampTz) ts, NULL, &tm, &fsec, NULL, NULL) != 0 ||
		tm.tm_year < 1 || tm.tm_year > 9999)
		return NULL;
	return psprintf("%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
					tm.tm_year, tm.tm_mon, tm.tm_mday,
					tm.tm_hour, tm.tm_min, tm.tm_sec, (int) (fsec / 1000));
}

/*
 * vapi_format_unix_us
 *		A time parsed from the API (microseconds since the Unix epoch, as
 *		vapi_parse_timestamp gives) in the API's format.
 */
char *
vapi_format_unix_us(int64 us)
{
	return vapi_format_timestamp(us - (int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) *
								 USECS_PER_DAY, false);
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

#define D(i) (s[i] >= '0' && s[i] <= '9')
#define N2(i) ((s[i] - '0') * 10 + (s[i + 1] - '0'))
	if (strlen(s) < 19 ||
		!(D(0) && D(1) && D(2) && D(3) && D(5) && D(6) && D(8) && D(9) &&
		  D(11) && D(12) && D(14) && D(15) && D(17) && D(18)) ||
		s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
		s[13] != ':' || s[16] != ':')
		return false;
	y = N2(0) * 100 + N2(2);
	mo = N2(5);
	d = N2(8);
	h = N2(11);
	mi = N2(14);
	sec = N2(17);
#undef D
#undef N2
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

/*
 * vapi_strategy_sides
 *		Which sides of a range a btree strategy bounds (column on the
 *		left): = bounds both.
 */
static void
vapi_strategy_sides(int strategy, bool *lower, bool *upper)
{
	*lower = strategy == BTGreaterStrategyNumber ||
		strategy == BTGreaterEqualStrategyNumber ||
		strategy == BTEqualStrategyNumber;
	*upper = strategy == BTLessStrategyNumber ||
		strategy == BTLessEqualStrategyNumber ||
		strategy == BTEqualStrategyNumber;
}

/*
 * vapi_bounds_init
 *		No bound yet on any time field.
 */
void
vapi_bounds_init(VapiTimeBounds *b)
{
	int			field;

	memset(b, 0, sizeof(VapiTimeBounds));
	for (field = 0; field < VAPI_NFIELDS; field++)
		b->lower_op[field] = b->upper_op[field] = -1;
}

/*
 * vapi_bounds_add
 *		Fold "field <strategy> ts" into the bounds: the tightest lower and
 *		upper bound of each field are kept.
 */
void
vapi_bounds_add(VapiTimeBounds *b, int field, int strategy, int64 ts)
{
	bool		lower;
	bool		upper;

	vapi_strategy_sides(strategy, &lower, &upper);
	if (lower)
	{
		int			op = strategy == BTGreaterStrategyNumber ? VAPI_OP_GT : VAPI_OP_GE;

		if (b->lower_op[field] < 0 || ts > b->lower_ts[field] ||
			(ts == b->lower_ts[field] && op == VAPI_OP_GT))
		{
			b->lower_ts[field] = ts;
			b->lower_op[field] = op;
		}
	}
	if (upper)
	{
		int			op = strategy == BTLessStrategyNumber ? VAPI_OP_LT : VAPI_OP_LE;

		if (b->upper_op[field] < 0 || ts < b->upper_ts[field] ||
			(ts == b->upper_ts[field] && op == VAPI_OP_LT))
		{
			b->upper_ts[field] = ts;
			b->upper_op[field] = op;
		}
	}
}

/*
 * vapi_bounds_add_placeholder
 *		A bound whose value is only known while the plan runs, for EXPLAIN:
 *		"text" shows where it comes from, in the parameter it will fill.
 */
void
vapi_bounds_add_placeholder(VapiTimeBounds *b, int field, int strategy,
							const char *text)
{
	bool		lower;
	bool		upper;

	/* every bound is sent as createdAtGe / createdAtLt */
	vapi_strategy_sides(strategy, &lower, &upper);
	if (upper)
		b->placeholder[field][VAPI_OP_LT] = text;
	if (lower)
		b->placeholder[field][VAPI_OP_GE] = text;
}

/*
 * vapi_bounds_params
 *		The time parameters to send for the bounds (NULL where none), into
 *		"time".  False if the bounds admit no instant.
 *
 * The API prints milliseconds, but may store and compare finer values.  A
 * number the table shows at millisecond m was stored in [m, m + 1 ms), so
 * every bound becomes a millisecond boundary sent as createdAtGe (lower)
 * or createdAtLt (upper): "> x" is ">= the next millisecond after x's",
 * "<= x" is "< the millisecond after x's", ">= x" and "< x" round up.
 * That selects exactly the rows the local filter keeps, at any stored
 * precision.
 */
bool
vapi_bounds_params(const VapiTimeBounds *b,
				   const char *time[VAPI_NFIELDS][VAPI_NOPS])
{
	bool		admits = true;
	int			field;

	for (field = 0; field < VAPI_NFIELDS; field++)
	{
		int64		ge = 0;
		int64		lt = 0;
		int			op;

		for (op = 0; op < VAPI_NOPS; op++)
			time[field][op] = NULL;
		if (b->lower_op[field] >= 0)
		{
			ge = b->lower_op[field] == VAPI_OP_GT ?
				vapi_ms_floor(b->lower_ts[field]) + 1000 :
				vapi_ms_ceil(b->lower_ts[field]);
			time[field][VAPI_OP_GE] = vapi_format_timestamp(ge, false);
		}
		if (b->upper_op[field] >= 0)
		{
			lt = b->upper_op[field] == VAPI_OP_LT ?
				vapi_ms_ceil(b->upper_ts[field]) :
				vapi_ms_floor(b->upper_ts[field]) + 1000;
			time[field][VAPI_OP_LT] = vapi_format_timestamp(lt, false);
		}
		if (b->lower_op[field] >= 0 && b->upper_op[field] >= 0 && ge >= lt)
			admits = false;
		for (op = 0; op < VAPI_NOPS; op++)
			if (time[field][op] == NULL && b->placeholder[field][op] != NULL)
				time[field][op] = b->placeholder[field][op];
	}
	return admits;
}

/*
 * vapi_time_value
 *		The instant a time qual's value (timestamptz, timestamp or date)
 *		stands for, into "ts".  False if it gives no useful bound (out of
 *		range, or infinite): the local filter then decides alone.
 */
bool
vapi_time_value(Datum value, Oid type, int64 *ts)
{
	int			overflow = 0;

#if PG_VERSION_NUM >= 190000
	ErrorSaveContext escontext = {T_ErrorSaveContext};

	if (type == TIMESTAMPOID)
		*ts = timestamp2timestamptz_safe(DatumGetTimestamp(value),
										 (Node *) &escontext);
	else if (type == DATEOID)
		*ts = date2timestamptz_safe(DatumGetDateADT(value),
									(Node *) &escontext);
	else
		*ts = DatumGetTimestampTz(value);
	overflow = escontext.error_occurred ? 1 : 0;
#else
	if (type == TIMESTAMPOID)
		*ts = timestamp2timestamptz_opt_overflow(DatumGetTimestamp(value),
												 &overflow);
	else if (type == DATEOID)
		*ts = date2timestamptz_opt_overflow(DatumGetDateADT(value),
											&overflow);
	else
		*ts = DatumGetTimestampTz(value);
#endif
	return overflow == 0 && !TIMESTAMP_NOT_FINITE(*ts);
}

/*
 * vapi_datum_id
 *		The phone-number id a value of type "type" (uuid, text, varchar)
 *		names, lower-cased as the API writes ids (it finds either case), or
 *		NULL if it is not a UUID: no phone number has it, and it never
 *		reaches a URL.  "text", if given, gets the value as text.
 */
char *
vapi_datum_id(Datum value, Oid type, char **text)
{
	Oid			typout;
	bool		isvarlena;
	char	   *id;

	getTypeOutputInfo(type, &typout, &isvarlena);
	id = OidOutputFunctionCall(typout, value);
	if (text != NULL)
		*text = id;
	return vapi_valid_id(id) ? vapi_id_lower(id) : NULL;
}
