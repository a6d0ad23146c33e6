/*-------------------------------------------------------------------------
 *
 * columns.c
 *		  The column map: which key (a field, or a dotted path into objects)
 *		  each column of a foreign table reads, or whether it holds the whole
 *		  object ("attrs"), and lookups in it.
 *
 * Scans, writes and pushdown all learn what a column means here.
 *
 * src/columns.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/tupdesc.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "foreign/foreign.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "vapi_fdw.h"

static char *vapi_camel_case(const char *name);
static VapiColumn *vapi_column_for_key(VapiColumn *columns, int ncolumns,
									   const char *key);

/*
 * vapi_camel_case
 *		The JSON field name a column reads by default: created_at becomes
 *		createdAt, number_e164_check_enabled becomes numberE164CheckEnabled.
 */
static char *
vapi_camel_case(const char *name)
{
	StringInfoData buf;
	bool		upper_next = false;
	const char *p;

	initStringInfo(&buf);
	for (p = name; *p; p++)
	{
		if (*p == '_' && buf.len > 0)
		{
			upper_next = true;
			continue;
		}
		if (upper_next && *p >= 'a' && *p <= 'z')
			appendStringInfoChar(&buf, *p - 'a' + 'A');
		else
			appendStringInfoChar(&buf, *p);
		upper_next = false;
	}
	return buf.data;
}

/*
 * vapi_column_key
 *		The key (field name or dotted path) a column reads: its "key"
 *		option, else the camelCase form of its name.  "is_explicit" says
 *		which.
 */
char *
vapi_column_key(Oid relid, AttrNumber attnum, const char *attname,
				bool *is_explicit)
{
	List	   *options = GetForeignColumnOptions(relid, attnum);
	ListCell   *lc;

	foreach(lc, options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);

		if (strcmp(def->defname, "key") == 0)
		{
			*is_explicit = true;
			return pstrdup(defGetString(def));
		}
	}
	*is_explicit = false;
	return vapi_camel_case(attname);
}

/*
 * vapi_column_reads_attrs
 *		Does the column hold the whole object (secrets removed) rather than
 *		a key?  That is a jsonb or json column named "attrs" without a "key"
 *		option.
 */
bool
vapi_column_reads_attrs(Form_pg_attribute att, bool is_explicit)
{
	Oid			base = getBaseType(att->atttypid);

	return !is_explicit && strcmp(NameStr(att->attname), "attrs") == 0 &&
		(base == JSONBOID || base == JSONOID);
}

/*
 * vapi_build_columns
 *		How to fill each retrieved column: its key path and type input.
 *
 * A jsonb (or json) column named "attrs" without a "key" option holds the
 * whole object, secrets removed.
 */
VapiColumn *
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
		col->basetypid = getBaseType(att->atttypid);
		col->typmod = att->atttypmod;
		col->cxt = CurrentMemoryContext;
		getTypeInputInfo(att->atttypid, &typinput, &col->typioparam);
		fmgr_info(typinput, &col->typinput);

		col->key = vapi_column_key(RelationGetRelid(rel), attnum,
								   col->attname, &is_explicit);
		if (vapi_column_reads_attrs(att, is_explicit))
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
 * vapi_find_key_attno
 *		The first column of a foreign table reading a top-level key, or
 *		InvalidAttrNumber.
 */
AttrNumber
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
vapi_column_for_key(VapiColumn *columns, int ncolumns, const char *key)
{
	int			i;

	for (i = 0; i < ncolumns; i++)
		if (columns[i].kind == VAPI_COL_PATH &&
			strcmp(columns[i].key, key) == 0)
			return &columns[i];
	return NULL;
}

/*
 * vapi_column_for_attno
 *		The column map entry of an attribute, or NULL (a generated column).
 */
VapiColumn *
vapi_column_for_attno(VapiColumn *columns, int ncolumns, AttrNumber attno)
{
	int			i;

	for (i = 0; i < ncolumns; i++)
		if (columns[i].attnum == attno)
			return &columns[i];
	return NULL;
}

/*
 * vapi_column_label
 *		How errors name the column behind a key: the column's name, or the
 *		key in attrs when no column reads it.
 */
const char *
vapi_column_label(VapiColumn *columns, int ncolumns, const char *key)
{
	VapiColumn *col = vapi_column_for_key(columns, ncolumns, key);

	return col ? col->attname : psprintf("attrs.%s", key);
}
