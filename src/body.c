/*-------------------------------------------------------------------------
 *
 * body.c
 *		  Request bodies of INSERT and UPDATE: column values as JSON, and
 *		  the fields merged at their key paths into one JSON object.
 *
 * Bodies are built with PostgreSQL's own jsonb, not json-c (json.c, which
 * reads the API's answers, is the only file that includes json-c): the text
 * sent is jsonb's output of the object built.
 *
 * src/body.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"

#include "vapi_fdw.h"

/*
 * vapi_body_value
 *		A column value as JSON text for a request body: booleans and numbers
 *		as themselves, json and jsonb as their JSON, anything else as a
 *		string of its text form.  A number JSON cannot hold (NaN, Infinity)
 *		is an error naming the column.
 */
char *
vapi_body_value(Datum value, Oid typid, const char *colname)
{
	Oid			typout;
	bool		isvarlena;
	char	   *out;
	StringInfoData buf;

	/* a domain is sent as its base type */
	typid = getBaseType(typid);
	switch (typid)
	{
		case BOOLOID:
			return pstrdup(DatumGetBool(value) ? "true" : "false");
		case JSONBOID:
			return DatumGetCString(DirectFunctionCall1(jsonb_out, value));
		default:
			break;
	}

	getTypeOutputInfo(typid, &typout, &isvarlena);
	out = OidOutputFunctionCall(typout, value);

	switch (typid)
	{
		case JSONOID:
			return out;
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case FLOAT4OID:
		case FLOAT8OID:
		case NUMERICOID:
			if (strspn(out, "0123456789+-.eE") != strlen(out) || out[0] == '\0')
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("value \"%s\" of column \"%s\" cannot be sent as a JSON number",
								out, colname)));
			return out;
		default:
			initStringInfo(&buf);
			escape_json(&buf, out);
			return buf.data;
	}
}

/*
 * vapi_body_build
 *		The JSON text of a request body: "base" (a jsonb object, or NULL)
 *		without the keys in "drop", then each field of "fields" set at its
 *		key path (creating the objects on the way, keeping what they
 *		already hold), the later ones winning.
 */
char *
vapi_body_build(Jsonb *base, List *drop, List *fields)
{
	Datum		body;
	ListCell   *lc;

	if (base == NULL)
		body = DirectFunctionCall1(jsonb_in, CStringGetDatum("{}"));
	else
		body = JsonbPGetDatum(base);

	foreach(lc, drop)
		body = DirectFunctionCall2(jsonb_delete, body,
								   CStringGetTextDatum((char *) lfirst(lc)));

	foreach(lc, fields)
	{
		VapiBodyField *f = (VapiBodyField *) lfirst(lc);
		Datum		value;
		Datum	   *keys;
		int			i;

		value = DirectFunctionCall1(jsonb_in,
									CStringGetDatum(f->json ? f->json : "null"));

		/*
		 * For a path a.b.c, start from the object at a.b (or {}), set c,
		 * and put the result back level by level.
		 */
		keys = palloc(sizeof(Datum) * f->npath);
		for (i = 0; i < f->npath; i++)
			keys[i] = CStringGetTextDatum(f->path[i]);
		for (i = f->npath - 1; i >= 0; i--)
		{
			Jsonb	   *parent = DatumGetJsonbP(body);
			int			j;
			Datum		container;
			ArrayType  *path;

			/* find the object holding level i */
			for (j = 0; j < i && parent != NULL; j++)
			{
				JsonbValue *v;
				JsonbValue	tmp;

				if (!JB_ROOT_IS_OBJECT(parent))
				{
					parent = NULL;
					break;
				}
				v = getKeyJsonValueFromContainer(&parent->root, f->path[j],
												 strlen(f->path[j]), &tmp);
				if (v == NULL || v->type != jbvBinary ||
					!JsonContainerIsObject(v->val.binary.data))
					parent = NULL;
				else
					parent = JsonbValueToJsonb(v);
			}
			container = parent != NULL && JB_ROOT_IS_OBJECT(parent) ?
				JsonbPGetDatum(parent) :
				DirectFunctionCall1(jsonb_in, CStringGetDatum("{}"));
			path = construct_array(&keys[i], 1, TEXTOID, -1, false, TYPALIGN_INT);
			value = DirectFunctionCall4(jsonb_set, container,
										PointerGetDatum(path), value,
										BoolGetDatum(true));
		}
		body = value;
	}
	return DatumGetCString(DirectFunctionCall1(jsonb_out, body));
}
