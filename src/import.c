/*-------------------------------------------------------------------------
 *
 * import.c
 *		  IMPORT FOREIGN SCHEMA for vapi_fdw.
 *
 * The API has one remote schema, "vapi", holding one table,
 * "phone_numbers", whose canonical columns are fixed by the product
 * contract.  Nothing is fetched from the API to import it.
 *
 * src/import.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "foreign/foreign.h"
#include "nodes/parsenodes.h"
#include "utils/builtins.h"

#include "vapi_fdw.h"

#define VAPI_REMOTE_SCHEMA	"vapi"

/* A table the remote schema offers, with its column list. */
typedef struct VapiRemoteTable
{
	const char *name;
	const char *columns;
} VapiRemoteTable;

static const VapiRemoteTable vapi_remote_tables[] = {
	{
		"phone_numbers",
		"  id uuid,\n"
		"  org_id text,\n"
		"  provider text,\n"
		"  number text,\n"
		"  name text,\n"
		"  status text,\n"
		"  assistant_id text,\n"
		"  squad_id text,\n"
		"  workflow_id text,\n"
		"  credential_id text,\n"
		"  number_e164_check_enabled boolean,\n"
		"  sms_enabled boolean,\n"
		"  twilio_account_sid text,\n"
		"  twilio_auth_token text,\n"
		"  twilio_api_key text,\n"
		"  twilio_api_secret text,\n"
		"  number_desired_area_code text,\n"
		"  sip_uri text,\n"
		"  authentication jsonb,\n"
		"  server jsonb,\n"
		"  server_url text OPTIONS (key 'server.url'),\n"
		"  fallback_destination jsonb,\n"
		"  hooks jsonb,\n"
		"  created_at timestamptz,\n"
		"  updated_at timestamptz,\n"
		"  attrs jsonb\n"
	},
};

/*
 * vapi_remote_table_exists
 *		Does the remote schema have a table of this name?
 */
static bool
vapi_remote_table_exists(const char *name)
{
	int			i;

	for (i = 0; i < lengthof(vapi_remote_tables); i++)
		if (strcmp(vapi_remote_tables[i].name, name) == 0)
			return true;
	return false;
}

/*
 * vapiImportForeignSchema
 *		Return the CREATE FOREIGN TABLE commands for IMPORT FOREIGN SCHEMA.
 *
 * LIMIT TO and EXCEPT must name tables that exist remotely: a misspelt
 * name is an error, not a silent no-op.
 */
List *
vapiImportForeignSchema(ImportForeignSchemaStmt *stmt, Oid serverOid)
{
	ForeignServer *server = GetForeignServer(serverOid);
	List	   *commands = NIL;
	ListCell   *lc;
	int			i;

	if (strcmp(stmt->remote_schema, VAPI_REMOTE_SCHEMA) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_SCHEMA_NOT_FOUND),
				 errmsg("remote schema \"%s\" does not exist on server \"%s\"",
						stmt->remote_schema, server->servername),
				 errhint("The Vapi API has one schema: IMPORT FOREIGN SCHEMA %s FROM SERVER %s INTO ...",
						 VAPI_REMOTE_SCHEMA, quote_identifier(server->servername))));

	foreach(lc, stmt->options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);

		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("invalid option \"%s\" for IMPORT FOREIGN SCHEMA",
						def->defname),
				 errhint("vapi_fdw takes no IMPORT FOREIGN SCHEMA options.")));
	}

	foreach(lc, stmt->table_list)
	{
		RangeVar   *rv = (RangeVar *) lfirst(lc);

		if (!vapi_remote_table_exists(rv->relname))
			ereport(ERROR,
					(errcode(ERRCODE_FDW_TABLE_NOT_FOUND),
					 errmsg("remote table \"%s\" does not exist in remote schema \"%s\"",
							rv->relname, VAPI_REMOTE_SCHEMA),
					 errhint("The remote schema \"%s\" has the table \"phone_numbers\".",
							 VAPI_REMOTE_SCHEMA)));
	}

	for (i = 0; i < lengthof(vapi_remote_tables); i++)
	{
		const VapiRemoteTable *t = &vapi_remote_tables[i];
		bool		listed = false;

		foreach(lc, stmt->table_list)
			if (strcmp(((RangeVar *) lfirst(lc))->relname, t->name) == 0)
				listed = true;

		if (stmt->list_type == FDW_IMPORT_SCHEMA_LIMIT_TO && !listed)
			continue;
		if (stmt->list_type == FDW_IMPORT_SCHEMA_EXCEPT && listed)
			continue;

		commands = lappend(commands,
						   psprintf("CREATE FOREIGN TABLE %s (\n%s) SERVER %s",
									quote_identifier(t->name), t->columns,
									quote_identifier(server->servername)));
	}
	return commands;
}
