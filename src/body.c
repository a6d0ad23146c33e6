/*-------------------------------------------------------------------------
 *
 * body.c
 *		  Request bodies of INSERT and UPDATE: column values as JSON, the
 *		  fields merged at their key paths into one JSON object, and the
 *		  checks of a body against the phone-number contract (rules.c)
 *		  before it is sent.
 *
 * Bodies are built with PostgreSQL's own jsonb, not json-c (json.c, which
 * reads the API's answers, is the only file that includes json-c): the text
 * sent is jsonb's output of the object built.  The checks name the column
 * a field comes from, so that input the API would refuse is caught with a
 * message the user can act on.
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

static char *vapi_body_value(Datum value, Oid typid, const char *colname);

/*
 * vapi_body_value
 *		A column value as JSON text for a request body: booleans and numbers
 *		as themselves, json and jsonb as their JSON, anything else as a
 *		string of its text form.  A number JSON cannot hold (NaN, Infinity)
 *		is an error naming the column.
 */
static char *
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

/*
 * vapi_body_field
 *		A field of a request body: the value "json" (JSON text, NULL for
 *		JSON null) at the first "npath" keys of "path".
 */
VapiBodyField *
vapi_body_field(char **path, int npath, const char *json)
{
	VapiBodyField *f = palloc(sizeof(VapiBodyField));

	f->path = path;
	f->npath = npath;
	f->json = json;
	return f;
}

/*
 * vapi_body_column
 *		The field of a request body that a column's value sets: the value
 *		at the column's key path (SQL NULL becomes JSON null).
 */
VapiBodyField *
vapi_body_column(VapiColumn *col, Datum value, bool isnull)
{
	return vapi_body_field(col->path, col->npath,
						   isnull ? NULL :
						   vapi_body_value(value, col->typid, col->attname));
}

/*
 * vapi_body_string
 *		The string a jsonb object ("attrs", or the fields of a phone number
 *		to change) holds at top-level key "key", or NULL if it has none or
 *		something else there.
 */
char *
vapi_body_string(Jsonb *object, const char *key)
{
	JsonbValue	tmp;
	JsonbValue *v = getKeyJsonValueFromContainer(&object->root, key,
												 strlen(key), &tmp);

	if (v != NULL && v->type == jbvString)
		return pnstrdup(v->val.string.val, v->val.string.len);
	return NULL;
}

/*
 * vapi_body_attrs
 *		The value of an "attrs" column (jsonb, or a type whose text is
 *		JSON) as the object the body of a phone number to create starts
 *		from.  ERROR if it is not a JSON object.
 */
Jsonb *
vapi_body_attrs(VapiColumn *col, Datum value)
{
	Jsonb	   *attrs;

	attrs = col->basetypid == JSONBOID ? DatumGetJsonbP(value) :
		DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
										   CStringGetDatum(TextDatumGetCString(value))));
	if (!JB_ROOT_IS_OBJECT(attrs))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("column \"%s\" must hold a JSON object", col->attname)));
	return attrs;
}

/*
 * vapi_body_check_create_column
 *		ERROR if a non-NULL column of a phone number to create (not "attrs")
 *		is one the API assigns.
 */
void
vapi_body_check_create_column(VapiColumn *col)
{
	if (vapi_field_assigned(col->path[0]))
		ereport(ERROR,
				(errcode(ERRCODE_GENERATED_ALWAYS),
				 errmsg("cannot insert a non-NULL value into column \"%s\"",
						col->attname),
				 errdetail("Vapi assigns \"%s\" when it creates a phone number.",
						   col->key)));
}

/*
 * vapi_body_provider
 *		The provider of a phone number to create: "provider_name" (the
 *		value of the column reading "provider", or NULL), else the
 *		"provider" string of "attrs" (or NULL).  ERROR if there is none, or
 *		if it is not one the API takes.
 */
const VapiProvider *
vapi_body_provider(const char *provider_name, Jsonb *attrs,
				   VapiColumn *columns, int ncolumns)
{
	const VapiProvider *provider;

	if (provider_name == NULL && attrs != NULL)
		provider_name = vapi_body_string(attrs, "provider");
	if (provider_name == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_NOT_NULL_VIOLATION),
				 errmsg("column \"%s\" must be set to insert a phone number",
						vapi_column_label(columns, ncolumns, "provider")),
				 errhint("Use one of: %s.", vapi_provider_names())));
	provider = vapi_provider_find(provider_name);
	if (provider == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("invalid value for column \"%s\": \"%s\" is not a provider Vapi accepts",
						vapi_column_label(columns, ncolumns, "provider"), provider_name),
				 errhint("Use one of: %s.", vapi_provider_names())));
	return provider;
}

/*
 * vapi_body_check_create
 *		Check the body of a phone number to create (JSON text of an object)
 *		against what its provider takes and requires, and the values the
 *		API limits (name, area code), before anything is sent.  Messages
 *		name the column of each field, from "columns".
 */
void
vapi_body_check_create(const char *body, const VapiProvider *provider,
					   VapiColumn *columns, int ncolumns)
{
	Jsonb	   *jbody = DatumGetJsonbP(DirectFunctionCall1(jsonb_in,
														   CStringGetDatum(body)));
	JsonbIterator *it = JsonbIteratorInit(&jbody->root);
	JsonbValue	v;
	JsonbValue	tmp;
	JsonbValue *found;
	JsonbIteratorToken tok;
	int			level = 0;
	const char *const *p;

	/* Every top-level key against the provider. */
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
		/* a field vapi_fdw does not know goes to the API to judge */
		if (!vapi_provider_takes(provider, key))
			ereport(ERROR,
					(errcode(ERRCODE_CHECK_VIOLATION),
					 errmsg("column \"%s\" cannot be set for provider \"%s\"",
							vapi_column_label(columns, ncolumns, key), provider->name),
					 errdetail("Vapi does not take \"%s\" when creating a %s number.",
							   key, provider->name)));
	}

	/* Then the fields it requires, and the values. */
	for (p = provider->required; *p; p++)
	{
		found = getKeyJsonValueFromContainer(&jbody->root, *p, strlen(*p), &tmp);
		if (found == NULL || found->type == jbvNull)
			ereport(ERROR,
					(errcode(ERRCODE_NOT_NULL_VIOLATION),
					 errmsg("column \"%s\" must be set for provider \"%s\"",
							vapi_column_label(columns, ncolumns, *p), provider->name)));
	}
	found = getKeyJsonValueFromContainer(&jbody->root, "name", 4, &tmp);
	if (found != NULL && found->type == jbvString)
		vapi_check_name(found->val.string.val, found->val.string.len,
						vapi_column_label(columns, ncolumns, "name"));
	found = getKeyJsonValueFromContainer(&jbody->root, "numberDesiredAreaCode",
										 21, &tmp);
	if (found != NULL && (found->type != jbvString || found->val.string.len != 3 ||
						  strspn(pnstrdup(found->val.string.val, 3), "0123456789") != 3))
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("invalid value for column \"%s\": an area code is 3 digits",
						vapi_column_label(columns, ncolumns, "numberDesiredAreaCode"))));
}

/*
 * vapi_body_check_update_column
 *		Check a column an UPDATE sets, with its new value, before anything
 *		is sent: against what the row's provider takes, when it is known
 *		("provider" is NULL otherwise), and the values the API limits.
 */
void
vapi_body_check_update_column(const VapiProvider *provider, VapiColumn *col,
							  Datum value, bool isnull)
{
	if (provider != NULL &&
		(!vapi_provider_takes(provider, col->path[0]) ||
		 (!vapi_field_common(col->path[0]) &&
		  vapi_field_create_only(col->path[0]) != NULL)))
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
	if (strcmp(col->key, "name") == 0 && !isnull)
	{
		char	   *name = TextDatumGetCString(value);

		vapi_check_name(name, strlen(name), col->attname);
	}
}
