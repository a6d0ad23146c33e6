/*-------------------------------------------------------------------------
 *
 * json.c
 *		  JSON handling of vapi_fdw: the only file that includes json-c.
 *
 * Parses list pages and error bodies, and turns a phone-number object into
 * the Datums of a row, converting each value with the column's declared
 * type.  json-c allocates with malloc; every parsed tree is tied to a
 * memory context by a reset callback, so an ERROR (or the reset of a
 * per-page context) frees it.
 *
 * src/json.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

/*
 * PostgreSQL's fmgrprotos.h declares the SQL function json_object(), which
 * clashes with json-c's type of the same name: rename ours out of the way
 * while the PostgreSQL headers are read.
 */
#define json_object pg_sql_json_object
#include "catalog/pg_type.h"
#include "common/jsonapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/typcache.h"

#include "vapi_fdw.h"
#undef json_object

#include <json-c/json.h>

/*
 * Building a jsonb value: PostgreSQL 19 replaced the parse-state pointer
 * of pushJsonbValue with a JsonbInState that holds the finished value.
 */
#if PG_VERSION_NUM >= 190000
typedef JsonbInState VapiJsonbBuild;
#define VAPI_JSONB_BUILD_INIT	{0}
#else
typedef JsonbParseState *VapiJsonbBuild;
#define VAPI_JSONB_BUILD_INIT	NULL
#endif

/*
 * vapi_jsonb_push
 *		pushJsonbValue, returning the value it built (the finished value
 *		once the top level is closed), on every major.
 */
static inline JsonbValue *
vapi_jsonb_push(VapiJsonbBuild *build, JsonbIteratorToken token,
				JsonbValue *value)
{
#if PG_VERSION_NUM >= 190000
	pushJsonbValue(build, token, value);
	return build->result;
#else
	return pushJsonbValue(build, token, value);
#endif
}

struct VapiPage
{
	json_object *root;
	json_object *results;		/* the array of phone numbers, or NULL */
	json_object *lookup_object; /* the one phone number of a lookup */
	int			count;
};

/* Context of a row conversion, for error messages. */
typedef struct VapiConvContext
{
	const char *relname;
	const char *rowid;
	VapiColumn *column;
} VapiConvContext;

/*
 * Deepest nesting of arrays and objects accepted in an answer.  PostgreSQL's
 * own jsonb input takes about as much with the default max_stack_depth.
 */
#define VAPI_JSON_MAX_DEPTH		10000

/* An integer with this many digits may not fit json-c's 64-bit integers. */
#define VAPI_JSON_BIG_DIGITS	19

static char *vapi_json_prescan(const char *buf, size_t len, int *depth,
							   List **bignums);
static char *vapi_json_validate(const char *buf, size_t len);
static json_object *vapi_json_parse_owned(const char *buf, size_t len,
										  MemoryContext cxt,
										  char **errdesc);
static void vapi_json_free_cb(void *arg);
static json_object *vapi_json_parse_answer(const char *buf, size_t len,
										  MemoryContext cxt);
static VapiPage *vapi_json_new_page(MemoryContext cxt, json_object *root,
									json_object *results,
									json_object *lookup_object);
static const char *vapi_json_type_name(json_type t);
static void vapi_json_check_no_nul(const char *s, size_t len);
static char *vapi_json_server_string(json_object *v, int *lenp);
static char *vapi_json_number_text(json_object *v);
static JsonbValue *vapi_push_jsonb(VapiJsonbBuild *state, json_object *v,
								   JsonbIteratorToken token, int depth,
								   const char *parent_key, bool own_column);
static Datum vapi_json_to_jsonb(json_object *v, bool filter_secrets,
								const char *column_key);
static Datum vapi_json_domain_check(VapiColumn *col, Datum value);
static bool vapi_has_secret_below(json_object *v, const char *key);
static Datum vapi_json_to_datum(json_object *v, VapiColumn *col);
static void vapi_conv_error_callback(void *arg);

/*
 * vapi_json_free_cb
 *		Memory context reset callback: drop a parsed json-c tree.
 */
static void
vapi_json_free_cb(void *arg)
{
	json_object_put((json_object *) arg);
}

/*
 * vapi_json_prescan
 *		Check what json-c would silently get wrong, in one pass over the
 *		text: a lone UTF-16 surrogate escape (json-c makes it U+FFFD,
 *		PostgreSQL rejects it), nesting deeper than VAPI_JSON_MAX_DEPTH, and
 *		integers too long for json-c's 64-bit integers (which it clamps):
 *		their end offsets are appended to "bignums".  Sets "depth" to the
 *		deepest nesting.  Returns NULL, or what is wrong (palloc'd).  Syntax
 *		errors are left to the parser.
 */
static char *
vapi_json_prescan(const char *buf, size_t len, int *depth, List **bignums)
{
	const char *p = buf;
	const char *end = buf + len;
	int			level = 0;
	int			maxlevel = 0;

	while (p < end)
	{
		char		c = *p;

		if (c == '"')
		{
			/* a string: only its escapes matter here */
			bool		want_low = false;
			bool		saw_nul = false;

			for (p++; p < end && *p != '"'; p++)
			{
				unsigned int cp = 0;
				int			i;

				if (*p != '\\')
				{
					if (want_low)
						return psprintf("Unicode low surrogate must follow a high surrogate, at byte %zu.",
										(size_t) (p - buf));
					continue;
				}
				p++;
				if (p >= end)
					break;
				if (*p != 'u')
				{
					if (want_low)
						return psprintf("Unicode low surrogate must follow a high surrogate, at byte %zu.",
										(size_t) (p - buf));
					continue;
				}
				for (i = 1; i <= 4 && p + i < end; i++)
				{
					char		h = p[i];

					cp <<= 4;
					if (h >= '0' && h <= '9')
						cp |= h - '0';
					else if (h >= 'a' && h <= 'f')
						cp |= h - 'a' + 10;
					else if (h >= 'A' && h <= 'F')
						cp |= h - 'A' + 10;
					else
						break;
				}
				if (i <= 4)
					break;		/* malformed: the parser reports it */
				p += 4;
				if (cp == 0)
					saw_nul = true;
				if (cp >= 0xD800 && cp <= 0xDBFF)
				{
					if (want_low)
						return psprintf("Unicode high surrogate must not follow a high surrogate, at byte %zu.",
										(size_t) (p - buf));
					want_low = true;
				}
				else if (cp >= 0xDC00 && cp <= 0xDFFF)
				{
					if (!want_low)
						return psprintf("Unicode low surrogate must follow a high surrogate, at byte %zu.",
										(size_t) (p - buf));
					want_low = false;
				}
				else if (want_low)
					return psprintf("Unicode low surrogate must follow a high surrogate, at byte %zu.",
									(size_t) (p - buf));
			}
			if (want_low)
				return psprintf("Unicode low surrogate must follow a high surrogate, at byte %zu.",
								(size_t) (p - buf));
			p++;
			if (saw_nul)
			{
				/* json-c would cut an object key at it */
				const char *q = p;

				while (q < end && (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r'))
					q++;
				if (q < end && *q == ':')
					return psprintf("An object key holds \\u0000, at byte %zu.",
									(size_t) (p - buf));
			}
		}
		else if (c == '[' || c == '{')
		{
			if (++level > maxlevel)
			{
				maxlevel = level;
				if (level > VAPI_JSON_MAX_DEPTH)
					return psprintf("The JSON text is nested more than %d levels deep.",
									VAPI_JSON_MAX_DEPTH);
			}
			p++;
		}
		else if (c == ']' || c == '}')
		{
			level--;
			p++;
		}
		else if (c == '-' || (c >= '0' && c <= '9'))
		{
			int			digits = 0;
			bool		integral = true;

			for (; p < end; p++)
			{
				if (*p >= '0' && *p <= '9')
					digits++;
				else if (*p == '.' || *p == 'e' || *p == 'E')
					integral = false;
				else if (*p != '-' && *p != '+')
					break;
			}
			if (integral && digits >= VAPI_JSON_BIG_DIGITS)
				*bignums = lappend_int(*bignums, (int) (p - buf));
		}
		else
			p++;
	}
	*depth = maxlevel;
	return NULL;
}

/*
 * vapi_json_validate
 *		Is the text one complete JSON value (RFC 8259) in valid UTF-8?
 *		Checked with PostgreSQL's own JSON lexer, so that what is accepted
 *		and the messages do not depend on the json-c release (whose strict
 *		mode changed meaning: 0.18 refuses every non-ASCII byte in it).
 *		Returns NULL, or what is wrong (palloc'd).
 */
static char *
vapi_json_validate(const char *buf, size_t len)
{
	JsonLexContext *lex;
	JsonParseErrorType r;
	int			valid;
	char	   *problem = NULL;

	valid = pg_encoding_verifymbstr(PG_UTF8, buf, (int) len);
	if (valid < (int) len)
		return psprintf("The text is not valid UTF-8 at byte %d.", valid);

#if PG_VERSION_NUM >= 170000
	lex = makeJsonLexContextCstringLen(NULL, buf, len, PG_UTF8, false);
#else
	lex = makeJsonLexContextCstringLen((char *) buf, (int) len, PG_UTF8, false);
#endif
	r = pg_parse_json(lex, &nullSemAction);
	if (r != JSON_SUCCESS)
	{
		if (lex->token_type == JSON_TOKEN_END ||
			lex->token_start >= buf + len)
			problem = psprintf("The JSON text ends early, after %zu bytes.", len);
		else
			problem = psprintf("JSON parse error: %s (at byte %zu)",
							   json_errdetail(r, lex),
							   (size_t) (lex->token_start - buf));
	}
#if PG_VERSION_NUM >= 170000
	freeJsonLexContext(lex);
#else
	pfree(lex);
#endif
	return problem;
}

/*
 * vapi_json_parse_owned
 *		Parse a complete JSON text strictly (RFC 8259, valid UTF-8, nothing
 *		after the value) into a tree owned by "cxt".  Returns NULL and sets
 *		"errdesc" (palloc'd) if the text is not valid JSON.
 *
 * json-c clamps integers beyond 64 bits; to keep them exact, such an
 * integer is handed to json-c with an exponent of zero appended, which
 * makes it a json-c double that keeps its text (numbers are converted from
 * their text, so the value is the same).
 */
static json_object *
vapi_json_parse_owned(const char *buf, size_t len, MemoryContext cxt,
					  char **errdesc)
{
	json_tokener *tok;
	json_object *root;
	enum json_tokener_error jerr;
	size_t		offset;
	MemoryContextCallback *cb;
	int			depth = 0;
	List	   *bignums = NIL;
	char	   *problem;

	/* Allocate the callback first: no palloc while a tree is unowned. */
	cb = MemoryContextAlloc(cxt, sizeof(MemoryContextCallback));

	if (len > (size_t) PG_INT32_MAX / 2)
	{
		*errdesc = pstrdup("The response is too large to parse.");
		return NULL;
	}

	problem = vapi_json_validate(buf, len);
	if (problem == NULL)
		problem = vapi_json_prescan(buf, len, &depth, &bignums);
	if (problem != NULL)
	{
		*errdesc = problem;
		pfree(cb);
		return NULL;
	}
	if (bignums != NIL)
	{
		StringInfoData copy;
		size_t		from = 0;
		ListCell   *lc;

		initStringInfo(&copy);
		foreach(lc, bignums)
		{
			size_t		at = (size_t) lfirst_int(lc);

			appendBinaryStringInfo(&copy, buf + from, at - from);
			appendStringInfoString(&copy, "e0");
			from = at;
		}
		appendBinaryStringInfo(&copy, buf + from, len - from);
		buf = copy.data;
		len = copy.len;
	}

	tok = json_tokener_new_ex(Max(depth + 1, JSON_TOKENER_DEFAULT_DEPTH));
	if (tok == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	/* validated above: json-c's own strictness differs between releases */
	json_tokener_set_flags(tok, 0);
	root = json_tokener_parse_ex(tok, buf, (int) len);
	jerr = json_tokener_get_error(tok);
	offset = tok->char_offset;
	json_tokener_free(tok);

	if (jerr != json_tokener_success || root == NULL)
	{
		if (root != NULL)
			json_object_put(root);
		if (jerr == json_tokener_continue || jerr == json_tokener_success)
			*errdesc = psprintf("The JSON text ends early, after %zu bytes.", len);
		else
			*errdesc = psprintf("JSON parse error: %s at byte %zu.",
								json_tokener_error_desc(jerr), offset);
		pfree(cb);
		return NULL;
	}

	cb->func = vapi_json_free_cb;
	cb->arg = root;
	MemoryContextRegisterResetCallback(cxt, cb);
	return root;
}

/*
 * vapi_json_type_name
 *		How messages name a JSON type.
 */
static const char *
vapi_json_type_name(json_type t)
{
	switch (t)
	{
		case json_type_null:
			return "null";
		case json_type_boolean:
			return "boolean";
		case json_type_double:
		case json_type_int:
			return "number";
		case json_type_object:
			return "object";
		case json_type_array:
			return "array";
		case json_type_string:
			return "string";
	}
	return "unknown";
}

/*
 * vapi_json_type_article
 *		A JSON type name with its article, for messages ("an array").
 */
static const char *
vapi_json_type_article(json_type t)
{
	switch (t)
	{
		case json_type_object:
			return "an object";
		case json_type_array:
			return "an array";
		case json_type_int:
		case json_type_double:
			return "a number";
		case json_type_boolean:
			return "a boolean";
		case json_type_string:
			return "a string";
		case json_type_null:
			return "null";
	}
	return "an unknown value";
}

/*
 * vapi_json_parse_answer
 *		Parse an answer of the API whose tree lives until "cxt" is reset,
 *		or raise the ERROR of a body that is not JSON.
 */
static json_object *
vapi_json_parse_answer(const char *buf, size_t len, MemoryContext cxt)
{
	char	   *errdesc = NULL;
	json_object *root = vapi_json_parse_owned(buf, len, cxt, &errdesc);

	if (root == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
				 errmsg("Vapi API returned invalid JSON"),
				 errdetail_internal("%s", errdesc)));
	return root;
}

/*
 * vapi_json_new_page
 *		A page (in "cxt") over a parsed answer: the array "results" of a
 *		list, or the one object "lookup_object" of a lookup.
 */
static VapiPage *
vapi_json_new_page(MemoryContext cxt, json_object *root, json_object *results,
				   json_object *lookup_object)
{
	VapiPage   *page = MemoryContextAlloc(cxt, sizeof(VapiPage));

	page->root = root;
	page->results = results;
	page->lookup_object = lookup_object;
	page->count = results != NULL ? (int) json_object_array_length(results) : 1;
	return page;
}

/*
 * vapi_json_parse_page
 *		Parse one page of the list endpoint: a v2 object {results,
 *		metadata} or a bare array.  The tree lives until "cxt" is reset.
 */
VapiPage *
vapi_json_parse_page(const char *buf, size_t len, MemoryContext cxt,
					 VapiPageInfo *info)
{
	VapiPage   *page;
	json_object *root = vapi_json_parse_answer(buf, len, cxt);
	json_object *results = NULL;
	json_object *meta = NULL;
	json_object *v;
	int			i;

	info->items_per_page = -1;
	info->has_next_page = -1;
	info->total_items = -1;
	info->current_page = -1;
	info->beyond_retention = -1;
	info->has_applied_created_ge = false;
	info->applied_created_ge = 0;

	if (json_object_is_type(root, json_type_array))
		results = root;
	else if (json_object_is_type(root, json_type_object))
	{
		if (!json_object_object_get_ex(root, "results", &results) ||
			!json_object_is_type(results, json_type_array))
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
					 errmsg("Vapi API returned an unexpected list page"),
					 errdetail("Expected an object with a \"results\" array, got %s.",
							   results == NULL ? "an object without \"results\"" :
							   psprintf("\"results\" of type %s",
										vapi_json_type_name(json_object_get_type(results))))));
		if (json_object_object_get_ex(root, "metadata", &meta) &&
			json_object_is_type(meta, json_type_object))
		{
			if (json_object_object_get_ex(meta, "itemsPerPage", &v) &&
				json_object_is_type(v, json_type_int))
				info->items_per_page = (int) Min(json_object_get_int64(v), PG_INT32_MAX);
			if (json_object_object_get_ex(meta, "hasNextPage", &v) &&
				json_object_is_type(v, json_type_boolean))
				info->has_next_page = json_object_get_boolean(v) ? 1 : 0;
			if (json_object_object_get_ex(meta, "totalItems", &v) &&
				json_object_is_type(v, json_type_int))
				info->total_items = json_object_get_int64(v);
			if (json_object_object_get_ex(meta, "currentPage", &v) &&
				json_object_is_type(v, json_type_int))
				info->current_page = json_object_get_int64(v);
			if (json_object_object_get_ex(meta, "itemsBeyondRetention", &v) &&
				json_object_is_type(v, json_type_boolean))
				info->beyond_retention = json_object_get_boolean(v) ? 1 : 0;
			if (json_object_object_get_ex(meta, "createdAtGe", &v) &&
				json_object_is_type(v, json_type_string) &&
				vapi_parse_timestamp(json_object_get_string(v),
									 &info->applied_created_ge))
				info->has_applied_created_ge = true;
		}
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
				 errmsg("Vapi API returned an unexpected list page"),
				 errdetail("Expected a JSON object or array, got %s.",
						   vapi_json_type_article(json_object_get_type(root)))));

	page = vapi_json_new_page(cxt, root, results, NULL);
	info->count = page->count;

	/* Every element must be an object. */
	for (i = 0; i < page->count; i++)
	{
		json_object *item = json_object_array_get_idx(results, i);

		if (!json_object_is_type(item, json_type_object))
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
					 errmsg("Vapi API returned an unexpected list page"),
					 errdetail("Element %d of the list is %s, not an object.",
							   i, vapi_json_type_article(json_object_get_type(item)))));
	}
	return page;
}

/*
 * vapi_json_parse_object
 *		Parse the answer of GET /phone-number/{id}: one phone-number object,
 *		returned as a page of one.  The tree lives until "cxt" is reset.
 */
VapiPage *
vapi_json_parse_object(const char *buf, size_t len, MemoryContext cxt)
{
	json_object *root = vapi_json_parse_answer(buf, len, cxt);

	if (!json_object_is_type(root, json_type_object))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
				 errmsg("Vapi API returned an unexpected phone number"),
				 errdetail("Expected a JSON object, got %s.",
						   vapi_json_type_article(json_object_get_type(root)))));

	return vapi_json_new_page(cxt, root, NULL, root);
}

/*
 * vapi_json_page_item
 *		The i-th phone number of a page.
 */
VapiItem *
vapi_json_page_item(VapiPage *page, int i)
{
	Assert(i >= 0 && i < page->count);
	if (page->lookup_object != NULL)
		return (VapiItem *) page->lookup_object;
	return (VapiItem *) json_object_array_get_idx(page->results, i);
}

/*
 * vapi_json_item_string
 *		A top-level string field of a phone number, or NULL if it is absent
 *		or not a string.  The result points into the tree.
 */
const char *
vapi_json_item_string(VapiItem *item, const char *key)
{
	json_object *v;

	if (json_object_object_get_ex((json_object *) item, key, &v) &&
		json_object_is_type(v, json_type_string))
		return json_object_get_string(v);
	return NULL;
}

/*
 * vapi_json_item_id
 *		The "id" of a phone number, or NULL.
 */
const char *
vapi_json_item_id(VapiItem *item)
{
	return vapi_json_item_string(item, "id");
}

/*
 * vapi_json_check_no_nul
 *		Refuse a string holding U+0000 (written \u0000 in JSON), as
 *		PostgreSQL's own json and jsonb functions do: no text type can hold
 *		it.
 */
static void
vapi_json_check_no_nul(const char *s, size_t len)
{
	if (memchr(s, '\0', len) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNTRANSLATABLE_CHARACTER),
				 errmsg("unsupported Unicode escape sequence"),
				 errdetail("\\u0000 cannot be converted to text.")));
}

/*
 * vapi_json_item_subset
 *		The top-level fields "keys" (strings) of a phone number, those it
 *		has, as a jsonb object (secrets included: it is not shown to
 *		anyone, an UPDATE sends it back).
 */
Jsonb *
vapi_json_item_subset(VapiItem *item, List *keys)
{
	VapiJsonbBuild state = VAPI_JSONB_BUILD_INIT;
	JsonbValue *res;
	ListCell   *lc;

	vapi_jsonb_push(&state, WJB_BEGIN_OBJECT, NULL);
	foreach(lc, keys)
	{
		const char *key = strVal(lfirst(lc));
		json_object *v;
		JsonbValue	k;

		if (!json_object_object_get_ex((json_object *) item, key, &v))
			continue;
		k.type = jbvString;
		k.val.string.val = pstrdup(key);
		k.val.string.len = strlen(key);
		vapi_jsonb_push(&state, WJB_KEY, &k);
		if (json_object_is_type(v, json_type_object) ||
			json_object_is_type(v, json_type_array))
			vapi_push_jsonb(&state, v, WJB_VALUE, -1, NULL, false);
		else
		{
			/* a scalar: push it as the value of the key */
			Jsonb	   *scalar = DatumGetJsonbP(vapi_json_to_jsonb(v, false, NULL));
			JsonbValue	sv;

			if (!JsonbExtractScalar(&scalar->root, &sv))
				elog(ERROR, "vapi_fdw: expected a JSON scalar");
			vapi_jsonb_push(&state, WJB_VALUE, &sv);
		}
	}
	res = vapi_jsonb_push(&state, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(res);
}

/*
 * vapi_json_server_string
 *		A JSON string value converted to the database encoding (and checked
 *		to be valid in it).  The result may point into the tree.
 */
static char *
vapi_json_server_string(json_object *v, int *lenp)
{
	const char *s = json_object_get_string(v);
	int			len = json_object_get_string_len(v);
	char	   *conv;

	vapi_json_check_no_nul(s, len);
	conv = pg_any_to_server(s, len, PG_UTF8);
	if (conv != s)
		len = strlen(conv);
	*lenp = len;
	return conv;
}

/*
 * vapi_json_number_text
 *		A JSON number as text, as PostgreSQL's jsonb shows it: integers as
 *		themselves, other numbers through numeric, exactly (json-c keeps
 *		the text of a non-integer, and of an integer beyond 64 bits, see
 *		vapi_json_parse_owned).
 */
static char *
vapi_json_number_text(json_object *v)
{
	if (json_object_is_type(v, json_type_int))
		return (char *) json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
	return DatumGetCString(DirectFunctionCall1(numeric_out,
											   DirectFunctionCall3(numeric_in,
																   CStringGetDatum(json_object_get_string(v)),
																   ObjectIdGetDatum(InvalidOid),
																   Int32GetDatum(-1))));
}

/*
 * vapi_push_jsonb
 *		Append a json-c value to a jsonb being built and return what
 *		pushJsonbValue returned for its last token (the finished value,
 *		once the top level is closed).  "depth" is the nesting level for
 *		secret filtering (-1: no filtering) and "parent_key" the key of the
 *		enclosing object at depth 1, to drop nested secrets; "own_column":
 *		the value is that of a column reading "parent_key" (depth 1 is its
 *		top).  The token WJB_BEGIN_ARRAY asks for a top-level scalar.
 */
static JsonbValue *
vapi_push_jsonb(VapiJsonbBuild *state, json_object *v,
				JsonbIteratorToken token, int depth, const char *parent_key,
				bool own_column)
{
	JsonbValue	jv;

	check_stack_depth();

	switch (json_object_get_type(v))
	{
		case json_type_object:
			{
				struct json_object_iter it;

				vapi_jsonb_push(state, WJB_BEGIN_OBJECT, NULL);
				json_object_object_foreachC(v, it)
				{
					JsonbValue	k;

					if (vapi_secret_hidden(depth, parent_key, it.key, own_column))
						continue;

					k.type = jbvString;
					k.val.string.val = pg_any_to_server(it.key, strlen(it.key),
														PG_UTF8);
					k.val.string.len = strlen(k.val.string.val);
					vapi_jsonb_push(state, WJB_KEY, &k);
					vapi_push_jsonb(state, it.val, WJB_VALUE,
									depth >= 0 ? depth + 1 : -1,
									depth == 0 ? it.key : NULL, false);
				}
				return vapi_jsonb_push(state, WJB_END_OBJECT, NULL);
			}
		case json_type_array:
			{
				size_t		n = json_object_array_length(v);
				size_t		i;

				vapi_jsonb_push(state, WJB_BEGIN_ARRAY, NULL);
				for (i = 0; i < n; i++)
					vapi_push_jsonb(state, json_object_array_get_idx(v, i),
									WJB_ELEM, depth >= 0 ? depth + 1 : -1,
									NULL, false);
				return vapi_jsonb_push(state, WJB_END_ARRAY, NULL);
			}
		case json_type_null:
			jv.type = jbvNull;
			break;
		case json_type_boolean:
			jv.type = jbvBool;
			jv.val.boolean = json_object_get_boolean(v);
			break;
		case json_type_int:
			jv.type = jbvNumeric;
			jv.val.numeric = int64_to_numeric(json_object_get_int64(v));
			break;
		case json_type_double:
			{
				const char *text = json_object_get_string(v);

				jv.type = jbvNumeric;
				jv.val.numeric = DatumGetNumeric(DirectFunctionCall3(numeric_in,
																	 CStringGetDatum(text),
																	 ObjectIdGetDatum(InvalidOid),
																	 Int32GetDatum(-1)));
				break;
			}
		case json_type_string:
			{
				int			len;

				jv.type = jbvString;
				jv.val.string.val = vapi_json_server_string(v, &len);
				jv.val.string.len = len;
				break;
			}
	}

	if (token == WJB_BEGIN_ARRAY)
	{
		/* a scalar at top level: jsonb stores it as a raw-scalar array */
		JsonbValue	arr;

		arr.type = jbvArray;
		arr.val.array.rawScalar = true;
		arr.val.array.nElems = 1;
		arr.val.array.elems = NULL;
		vapi_jsonb_push(state, WJB_BEGIN_ARRAY, &arr);
		vapi_jsonb_push(state, WJB_ELEM, &jv);
		return vapi_jsonb_push(state, WJB_END_ARRAY, NULL);
	}
	return vapi_jsonb_push(state, token, &jv);
}

/*
 * vapi_json_to_jsonb
 *		A json-c value as a jsonb Datum, built directly (no text round
 *		trip).  With "filter_secrets" the secret fields are left out: of a
 *		whole phone number, or (with "column_key") of the object a column
 *		reads at that top-level key.
 */
static Datum
vapi_json_to_jsonb(json_object *v, bool filter_secrets, const char *column_key)
{
	VapiJsonbBuild state = VAPI_JSONB_BUILD_INIT;
	JsonbValue *res;
	json_type	t = json_object_get_type(v);

	if (t == json_type_object && filter_secrets && column_key != NULL)
		res = vapi_push_jsonb(&state, v, WJB_VALUE, 1, column_key, true);
	else if (t == json_type_object || t == json_type_array)
		res = vapi_push_jsonb(&state, v, WJB_VALUE, filter_secrets ? 0 : -1,
							  NULL, false);
	else
		res = vapi_push_jsonb(&state, v, WJB_BEGIN_ARRAY, -1, NULL, false);
	return JsonbPGetDatum(JsonbValueToJsonb(res));
}

/*
 * vapi_json_domain_check
 *		A jsonb value built directly for a column whose type is a domain
 *		over jsonb must still satisfy the domain's constraints.
 */
static Datum
vapi_json_domain_check(VapiColumn *col, Datum value)
{
	if (col->typid != col->basetypid)
		domain_check(value, false, col->typid, &col->domain_extra, col->cxt);
	return value;
}

/*
 * vapi_has_secret_below
 *		Does the object a column reads at top-level key "key" hold a secret
 *		that column must not show?
 */
static bool
vapi_has_secret_below(json_object *v, const char *key)
{
	struct json_object_iter it;

	json_object_object_foreachC(v, it)
	{
		if (vapi_secret_hidden(1, key, it.key, true))
			return true;
	}
	return false;
}

/*
 * vapi_json_to_datum
 *		Convert one JSON value (not null) to the type of a column.
 */
static Datum
vapi_json_to_datum(json_object *v, VapiColumn *col)
{
	json_type	t = json_object_get_type(v);
	char	   *str;
	int			len;

	/* an object read at a top-level key leaves out its stale secrets */
	if (col->basetypid == JSONBOID)
		return vapi_json_domain_check(col,
									  vapi_json_to_jsonb(v, col->npath == 1,
														 col->path[0]));

	if (col->typid == BOOLOID && t == json_type_boolean)
		return BoolGetDatum(json_object_get_boolean(v));

	if (t == json_type_string)
		str = vapi_json_server_string(v, &len);
	else if (t == json_type_object || t == json_type_array)
	{
		const char *text;

		if (col->basetypid != TEXTOID && col->basetypid != JSONOID &&
			col->basetypid != VARCHAROID)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
					 errmsg("cannot convert a JSON %s to type %s",
							vapi_json_type_name(t),
							format_type_with_typemod(col->typid, col->typmod)),
					 errhint("Declare the column as jsonb, or point its \"key\" option at a scalar field.")));
		if (t == json_type_object && col->npath == 1 &&
			vapi_has_secret_below(v, col->path[0]))
			text = DatumGetCString(DirectFunctionCall1(jsonb_out,
													   vapi_json_to_jsonb(v, true,
																		  col->path[0])));
		else
			text = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN |
												  JSON_C_TO_STRING_NOSLASHESCAPE);

		str = pg_any_to_server(text, strlen(text), PG_UTF8);
		len = strlen(str);
	}
	else if (t == json_type_int || t == json_type_double)
	{
		str = vapi_json_number_text(v);
		len = strlen(str);
	}
	else
	{
		/* a boolean: its JSON text */
		str = (char *) json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN);
		len = strlen(str);
	}

	if (col->typid == TEXTOID)
		return PointerGetDatum(cstring_to_text_with_len(str, len));

	return InputFunctionCall(&col->typinput, str, col->typioparam, col->typmod);
}

/*
 * vapi_conv_error_callback
 *		Error context of a value conversion: names the column, its key,
 *		the foreign table and the phone number's id.
 */
static void
vapi_conv_error_callback(void *arg)
{
	VapiConvContext *ctx = (VapiConvContext *) arg;

	if (ctx->column == NULL)
		return;
	errcontext("column \"%s\" (key \"%s\") of foreign table \"%s\", phone number id \"%s\"",
			   ctx->column->attname,
			   ctx->column->kind == VAPI_COL_ATTRS ? "(whole object)" : ctx->column->key,
			   ctx->relname,
			   ctx->rowid ? ctx->rowid : "(none)");
}

/*
 * vapi_json_item_to_datums
 *		Fill values[]/nulls[] (indexed by attnum - 1) for the given columns
 *		from one phone-number object.  Columns not listed are untouched.
 *		An absent field and a JSON null both read as SQL NULL.
 */
void
vapi_json_item_to_datums(VapiItem *item, VapiColumn *columns, int ncolumns,
						 const char *relname, Datum *values, bool *nulls)
{
	json_object *obj = (json_object *) item;
	VapiConvContext ctx;
	ErrorContextCallback errcb;
	int			i;

	ctx.relname = relname;
	ctx.rowid = vapi_json_item_id(item);
	ctx.column = NULL;
	errcb.callback = vapi_conv_error_callback;
	errcb.arg = &ctx;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;

	for (i = 0; i < ncolumns; i++)
	{
		VapiColumn *col = &columns[i];
		int			att = col->attnum - 1;
		json_object *v = obj;
		int			j;

		ctx.column = col;

		if (col->kind == VAPI_COL_ATTRS)
		{
			Datum		jb = vapi_json_to_jsonb(obj, true, NULL);

			/* a json-typed attrs column gets the text of the same value */
			if (col->basetypid != JSONBOID)
				jb = InputFunctionCall(&col->typinput,
									   DatumGetCString(DirectFunctionCall1(jsonb_out, jb)),
									   col->typioparam, col->typmod);
			else
				jb = vapi_json_domain_check(col, jb);
			values[att] = jb;
			nulls[att] = false;
			continue;
		}

		for (j = 0; j < col->npath && v != NULL; j++)
		{
			json_object *next;

			if (!json_object_is_type(v, json_type_object) ||
				!json_object_object_get_ex(v, col->path[j], &next))
				v = NULL;
			else
				v = next;
		}

		if (v == NULL || json_object_is_type(v, json_type_null))
		{
			values[att] = (Datum) 0;
			nulls[att] = true;
			continue;
		}
		values[att] = vapi_json_to_datum(v, col);
		nulls[att] = false;
	}

	error_context_stack = errcb.previous;
}

/*
 * vapi_json_item_has_path
 *		Does the phone number have the key path (its last key present, with
 *		any value, null included)?
 */
bool
vapi_json_item_has_path(VapiItem *item, char **path, int npath)
{
	json_object *v = (json_object *) item;
	int			j;

	for (j = 0; j < npath; j++)
	{
		json_object *next;

		if (v == NULL || !json_object_is_type(v, json_type_object) ||
			!json_object_object_get_ex(v, path[j], &next))
			return false;
		v = next;
	}
	return true;
}

/*
 * vapi_json_error_message
 *		Vapi's "message" from an error body (a string, or an array of
 *		strings joined with "; "), or NULL if the body is not of that shape.
 */
char *
vapi_json_error_message(const char *buf, size_t len)
{
	MemoryContext tmp;
	MemoryContext oldcxt = CurrentMemoryContext;
	json_object *root;
	json_object *msg;
	char	   *errdesc = NULL;
	char	   *result = NULL;

	if (buf == NULL || len == 0)
		return NULL;

	tmp = AllocSetContextCreate(CurrentMemoryContext, "vapi_fdw error body",
								ALLOCSET_SMALL_SIZES);
	root = vapi_json_parse_owned(buf, len, tmp, &errdesc);
	if (root != NULL && json_object_is_type(root, json_type_object) &&
		json_object_object_get_ex(root, "message", &msg))
	{
		StringInfoData out;

		MemoryContextSwitchTo(oldcxt);
		initStringInfo(&out);
		if (json_object_is_type(msg, json_type_string))
			appendStringInfoString(&out, json_object_get_string(msg));
		else if (json_object_is_type(msg, json_type_array))
		{
			size_t		n = json_object_array_length(msg);
			size_t		i;

			for (i = 0; i < n; i++)
			{
				json_object *e = json_object_array_get_idx(msg, i);

				if (out.len > 0)
					appendStringInfoString(&out, "; ");
				appendStringInfoString(&out,
									   json_object_is_type(e, json_type_string) ?
									   json_object_get_string(e) :
									   json_object_to_json_string_ext(e, JSON_C_TO_STRING_PLAIN));
			}
		}
		if (out.len > 0)
			result = pg_any_to_server(out.data, out.len, PG_UTF8);
	}
	MemoryContextSwitchTo(oldcxt);
	MemoryContextDelete(tmp);
	return result;
}
