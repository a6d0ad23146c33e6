/*-------------------------------------------------------------------------
 *
 * option.c
 *		  Options of vapi_fdw: the validator, the option table, and reading
 *		  the options of a server and of a column with defaults applied.
 *
 * Every option has exactly one place (catalog) where it may be set.  An
 * unknown name is rejected with a "Perhaps you meant" hint; a known name in
 * the wrong place says where it belongs.  The API key is never echoed in a
 * message.
 *
 * src/option.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>
#include <math.h>

#include "access/reloptions.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_foreign_data_wrapper.h"
#include "catalog/pg_foreign_server.h"
#include "catalog/pg_foreign_table.h"
#include "catalog/pg_user_mapping.h"
#include "commands/defrem.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/varlena.h"

#include "vapi_fdw.h"

/* How an option's value is checked. */
typedef enum VapiOptionType
{
	VAPI_OPT_URL,
	VAPI_OPT_INT,
	VAPI_OPT_BOOL,
	VAPI_OPT_RETENTION,			/* warning | error */
	VAPI_OPT_DRIFT,				/* warning | error | off */
	VAPI_OPT_RATE,				/* a number of requests per second */
	VAPI_OPT_SECRET,
	VAPI_OPT_KEY
} VapiOptionType;

typedef struct VapiOption
{
	const char *name;
	Oid			context;		/* catalog the option belongs to */
	VapiOptionType type;
	int64		min;			/* range, for VAPI_OPT_INT */
	int64		max;
} VapiOption;

/* Highest rate budget and burst accepted, and the lowest rate but 0. */
#define VAPI_MAX_RATE 100000
#define VAPI_MIN_RATE 0.001

static const VapiOption vapi_options[] = {
	{"url", ForeignServerRelationId, VAPI_OPT_URL, 0, 0},
	{"connect_timeout_ms", ForeignServerRelationId, VAPI_OPT_INT, 1, 600000},
	{"timeout_ms", ForeignServerRelationId, VAPI_OPT_INT, 1, 3600000},
	{"max_retries", ForeignServerRelationId, VAPI_OPT_INT, 0, 100},
	{"page_size", ForeignServerRelationId, VAPI_OPT_INT, 1, VAPI_MAX_PAGE_SIZE},
	{"max_response_bytes", ForeignServerRelationId, VAPI_OPT_INT,
	1024, INT64CONST(1073741824)},
	{"prefetch", ForeignServerRelationId, VAPI_OPT_BOOL, 0, 0},
	{"max_concurrent_requests", ForeignServerRelationId, VAPI_OPT_INT, 1,
	VAPI_MAX_CONCURRENT},
	{"count_pushdown", ForeignServerRelationId, VAPI_OPT_BOOL, 0, 0},
	{"beyond_retention", ForeignServerRelationId, VAPI_OPT_RETENTION, 0, 0},
	{"max_requests_per_second", ForeignServerRelationId, VAPI_OPT_RATE, 0,
	VAPI_MAX_RATE},
	{"max_request_burst", ForeignServerRelationId, VAPI_OPT_INT, 1,
	VAPI_MAX_RATE},
	{"field_drift", ForeignTableRelationId, VAPI_OPT_DRIFT, 0, 0},
	{"api_key", UserMappingRelationId, VAPI_OPT_SECRET, 0, 0},
	{"key", AttributeRelationId, VAPI_OPT_KEY, 0, 0},
	{NULL, InvalidOid, 0, 0, 0}
};

/* Longest API key accepted; real keys are 36 characters. */
#define VAPI_MAX_KEY_LEN 512

static const char *vapi_context_name(Oid context);
static const char *vapi_context_hint(Oid context);
static const VapiOption *vapi_find_option(const char *name, Oid context);
static void vapi_reject_option(const char *name, Oid context);
static void vapi_check_value(const VapiOption *opt, const char *value);
static bool vapi_parse_int(const char *value, int64 min, int64 max,
						   int64 *result);
static bool vapi_parse_rate(const char *value, double max, double *result);

PG_FUNCTION_INFO_V1(vapi_fdw_validator);

/*
 * vapi_fdw_validator
 *		Check the options given to CREATE/ALTER of a foreign-data wrapper,
 *		server, user mapping, foreign table or column.
 */
Datum
vapi_fdw_validator(PG_FUNCTION_ARGS)
{
	List	   *options = untransformRelOptions(PG_GETARG_DATUM(0));
	Oid			catalog = PG_GETARG_OID(1);
	ListCell   *lc;

	foreach(lc, options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);
		const VapiOption *opt = vapi_find_option(def->defname, catalog);

		if (opt == NULL)
			vapi_reject_option(def->defname, catalog);
		vapi_check_value(opt, defGetString(def));
	}

	PG_RETURN_VOID();
}

/*
 * vapi_context_name
 *		How messages name a catalog object kind.
 */
static const char *
vapi_context_name(Oid context)
{
	switch (context)
	{
		case ForeignDataWrapperRelationId:
			return "a foreign-data wrapper";
		case ForeignServerRelationId:
			return "a foreign server";
		case UserMappingRelationId:
			return "a user mapping";
		case ForeignTableRelationId:
			return "a foreign table";
		case AttributeRelationId:
			return "a foreign table column";
	}
	return "this object";
}

/*
 * vapi_context_hint
 *		An example of the statement that sets an option on a catalog kind.
 */
static const char *
vapi_context_hint(Oid context)
{
	switch (context)
	{
		case ForeignServerRelationId:
			return "CREATE SERVER ... FOREIGN DATA WRAPPER vapi_fdw OPTIONS (...)";
		case UserMappingRelationId:
			return "CREATE USER MAPPING FOR CURRENT_USER SERVER ... OPTIONS (api_key '...')";
		case AttributeRelationId:
			return "ALTER FOREIGN TABLE ... ALTER COLUMN ... OPTIONS (key '...')";
	}
	return "";
}

/*
 * vapi_find_option
 *		The table entry of an option valid for "context", or NULL.
 */
static const VapiOption *
vapi_find_option(const char *name, Oid context)
{
	const VapiOption *opt;

	for (opt = vapi_options; opt->name != NULL; opt++)
		if (opt->context == context && strcmp(opt->name, name) == 0)
			return opt;
	return NULL;
}

/*
 * vapi_reject_option
 *		Raise the error for an option that is not valid for "context":
 *		either it belongs elsewhere, or it is unknown (with the closest
 *		valid name as a hint).
 */
static void
vapi_reject_option(const char *name, Oid context)
{
	const VapiOption *opt;
	const char *best = NULL;
	int			best_dist = INT_MAX;
	int			namelen = strlen(name);
	StringInfoData valid;

	/* Known, but in another place? */
	for (opt = vapi_options; opt->name != NULL; opt++)
	{
		if (strcmp(opt->name, name) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
					 errmsg("option \"%s\" is not valid for %s",
							name, vapi_context_name(context)),
					 errhint("\"%s\" may only be set on %s, as in: %s",
							 name, vapi_context_name(opt->context),
							 vapi_context_hint(opt->context))));
	}

	/* Unknown: find the closest valid name for this context. */
	initStringInfo(&valid);
	for (opt = vapi_options; opt->name != NULL; opt++)
	{
		int			dist;
		int			maxdist;

		if (opt->context != context)
			continue;
		appendStringInfo(&valid, "%s%s", valid.len > 0 ? ", " : "", opt->name);
		maxdist = Max(2, Min(namelen, (int) strlen(opt->name)) / 2);
		dist = varstr_levenshtein_less_equal(name, namelen,
											 opt->name, strlen(opt->name),
											 1, 1, 1, maxdist + 1, true);
		if (dist <= maxdist && dist < best_dist)
		{
			best = opt->name;
			best_dist = dist;
		}
	}

	if (best != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("invalid option \"%s\" for %s",
						name, vapi_context_name(context)),
				 errhint("Perhaps you meant the option \"%s\".", best)));
	else if (valid.len > 0)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("invalid option \"%s\" for %s",
						name, vapi_context_name(context)),
				 errhint("Valid options here are: %s.", valid.data)));
	else
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("invalid option \"%s\" for %s",
						name, vapi_context_name(context)),
				 errhint("vapi_fdw takes no options on %s.",
						 vapi_context_name(context))));
}

/*
 * vapi_parse_int
 *		Parse a whole decimal integer in [min, max].
 */
static bool
vapi_parse_int(const char *value, int64 min, int64 max, int64 *result)
{
	char	   *end;
	long long	v;

	errno = 0;
	v = strtoll(value, &end, 10);
	if (errno != 0 || end == value || *end != '\0' ||
		!(isdigit((unsigned char) value[0]) || value[0] == '-' || value[0] == '+'))
		return false;
	if (v < min || v > max)
		return false;
	*result = (int64) v;
	return true;
}

/*
 * vapi_parse_rate
 *		Parse a decimal number in [0, max] (a rate such as "20" or "0.5").
 */
static bool
vapi_parse_rate(const char *value, double max, double *result)
{
	char	   *end;
	double		v;
	const char *p;

	/* digits and at most one point: no exponent, sign, inf or nan */
	for (p = value; *p; p++)
		if (!isdigit((unsigned char) *p) && *p != '.')
			return false;
	errno = 0;
	v = strtod(value, &end);
	if (errno != 0 || end == value || *end != '\0' || isnan(v) ||
		v < 0 || v > max)
		return false;
	*result = v;
	return true;
}

/*
 * vapi_check_value
 *		Check the value of a known option.
 */
static void
vapi_check_value(const VapiOption *opt, const char *value)
{
	int64		ival;
	char	   *why = NULL;
	const char *must = NULL;	/* what a refused value must be */
	const char *p;

	switch (opt->type)
	{
		case VAPI_OPT_INT:
			if (!vapi_parse_int(value, opt->min, opt->max, &ival))
				must = psprintf("an integer between " INT64_FORMAT " and " INT64_FORMAT,
								opt->min, opt->max);
			break;

		case VAPI_OPT_BOOL:
			{
				bool		b;

				if (!parse_bool(value, &b))
					must = "a Boolean value such as true or false";
				break;
			}

		case VAPI_OPT_RETENTION:
			if (strcmp(value, "warning") != 0 && strcmp(value, "error") != 0)
				must = "\"warning\" or \"error\"";
			break;

		case VAPI_OPT_DRIFT:
			if (strcmp(value, "warning") != 0 && strcmp(value, "error") != 0 &&
				strcmp(value, "off") != 0)
				must = "\"warning\", \"error\" or \"off\"";
			break;

		case VAPI_OPT_RATE:
			{
				double		d;

				if (!vapi_parse_rate(value, (double) opt->max, &d) ||
					(d > 0 && d < VAPI_MIN_RATE))
					must = psprintf("0 (no limit) or a number of requests per second between %g and " INT64_FORMAT,
									VAPI_MIN_RATE, opt->max);
				break;
			}

		case VAPI_OPT_URL:
			if (!vapi_http_url_is_valid(value, &why))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid value for option \"url\": \"%s\"", value),
						 errdetail("The URL is not usable: %s.", why)));
			if (!superuser() && !vapi_http_url_is_vapi(value))
				ereport(ERROR,
						(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						 errmsg("only a superuser may set option \"url\" to \"%s\"",
								value),
						 errdetail("Other users may only use \"%s\" or \"%s\".",
								   VAPI_DEFAULT_URL, VAPI_EU_URL)));
			break;

		case VAPI_OPT_SECRET:
			/* Never echo the value. */
			if (value[0] == '\0')
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("option \"%s\" must not be empty", opt->name)));
			if (strlen(value) > VAPI_MAX_KEY_LEN)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid value for option \"%s\"", opt->name),
						 errdetail("An API key is at most %d characters long.",
								   VAPI_MAX_KEY_LEN)));
			for (p = value; *p; p++)
				if ((unsigned char) *p <= ' ' || (unsigned char) *p == 0x7f)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("invalid value for option \"%s\"", opt->name),
							 errdetail("An API key must not contain spaces or control characters.")));
			break;

		case VAPI_OPT_KEY:
			if (value[0] == '\0' || value[0] == '.' ||
				value[strlen(value) - 1] == '.' || strstr(value, "..") != NULL)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("invalid value for option \"key\": \"%s\"", value),
						 errdetail("A key is a JSON field name, or field names separated by dots such as \"server.url\".")));
			break;
	}

	if (must != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid value for option \"%s\": \"%s\"",
						opt->name, value),
				 errdetail("\"%s\" must be %s.", opt->name, must)));
}

/*
 * vapi_get_server_options
 *		Fill "opts" from a server's options, with defaults.
 */
void
vapi_get_server_options(ForeignServer *server, VapiServerOptions *opts)
{
	ListCell   *lc;

	opts->url = VAPI_DEFAULT_URL;
	opts->connect_timeout_ms = VAPI_DEFAULT_CONNECT_TIMEOUT_MS;
	opts->timeout_ms = VAPI_DEFAULT_TIMEOUT_MS;
	opts->max_retries = VAPI_DEFAULT_MAX_RETRIES;
	opts->page_size = VAPI_DEFAULT_PAGE_SIZE;
	opts->max_response_bytes = VAPI_DEFAULT_MAX_RESPONSE_BYTES;
	opts->prefetch = true;
	opts->max_concurrent = VAPI_DEFAULT_MAX_CONCURRENT;
	opts->count_pushdown = true;
	opts->beyond_retention_error = false;
	opts->max_requests_per_second = 0;
	opts->max_request_burst = 0;

	foreach(lc, server->options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);
		const VapiOption *opt = vapi_find_option(def->defname,
												 ForeignServerRelationId);
		const char *value = defGetString(def);
		int64		v = 0;

		if (opt == NULL)
			continue;
		if (opt->type == VAPI_OPT_INT &&
			!vapi_parse_int(value, opt->min, opt->max, &v))
			continue;			/* validated on entry; be defensive */

		if (strcmp(def->defname, "url") == 0)
			opts->url = pstrdup(value);
		else if (strcmp(def->defname, "connect_timeout_ms") == 0)
			opts->connect_timeout_ms = (int) v;
		else if (strcmp(def->defname, "timeout_ms") == 0)
			opts->timeout_ms = (int) v;
		else if (strcmp(def->defname, "max_retries") == 0)
			opts->max_retries = (int) v;
		else if (strcmp(def->defname, "page_size") == 0)
			opts->page_size = (int) v;
		else if (strcmp(def->defname, "max_response_bytes") == 0)
			opts->max_response_bytes = v;
		else if (strcmp(def->defname, "prefetch") == 0)
			(void) parse_bool(value, &opts->prefetch);
		else if (strcmp(def->defname, "count_pushdown") == 0)
			(void) parse_bool(value, &opts->count_pushdown);
		else if (strcmp(def->defname, "max_concurrent_requests") == 0)
			opts->max_concurrent = (int) v;
		else if (strcmp(def->defname, "beyond_retention") == 0)
			opts->beyond_retention_error = strcmp(value, "error") == 0;
		else if (strcmp(def->defname, "max_requests_per_second") == 0)
			(void) vapi_parse_rate(value, (double) opt->max,
								   &opts->max_requests_per_second);
		else if (strcmp(def->defname, "max_request_burst") == 0)
			opts->max_request_burst = (int) v;
	}

	/* the bucket holds one second of the rate unless told otherwise */
	if (opts->max_request_burst == 0)
		opts->max_request_burst =
			(int) Max(1.0, ceil(opts->max_requests_per_second));

	/* Store the base URL without a trailing slash. */
	if (opts->url[0] != '\0' && opts->url[strlen(opts->url) - 1] == '/')
	{
		opts->url = pstrdup(opts->url);
		while (strlen(opts->url) > 0 && opts->url[strlen(opts->url) - 1] == '/')
			opts->url[strlen(opts->url) - 1] = '\0';
	}
}


/*
 * vapi_table_field_drift
 *		What a scan of the foreign table does when a column's key is absent
 *		from every phone number it read (option field_drift):
 *		VAPI_DRIFT_WARNING (the default), VAPI_DRIFT_ERROR or
 *		VAPI_DRIFT_OFF.
 */
int
vapi_table_field_drift(Oid relid)
{
	ForeignTable *table = GetForeignTable(relid);
	ListCell   *lc;

	foreach(lc, table->options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);

		if (strcmp(def->defname, "field_drift") == 0)
		{
			const char *value = defGetString(def);

			if (strcmp(value, "error") == 0)
				return VAPI_DRIFT_ERROR;
			if (strcmp(value, "off") == 0)
				return VAPI_DRIFT_OFF;
		}
	}
	return VAPI_DRIFT_WARNING;
}
