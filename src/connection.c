/*-------------------------------------------------------------------------
 *
 * connection.c
 *		  Per-backend cache of HTTP handles per user mapping, and the
 *		  translation of HTTP outcomes into PostgreSQL errors.
 *
 * Each user mapping has one handle for one-off requests (writes) and a
 * small pool that scans lease for their own use (a scan may keep a request
 * under way while another scan of the same query sends its own); reusing
 * handles keeps the TCP and TLS connections to the API alive across
 * queries.  An entry is rebuilt when its server or user mapping changes
 * (syscache invalidation), once no handle of it is in use.  Everything an
 * entry owns lives in its own memory context, whose reset callbacks free
 * the curl objects; a lease is returned by a reset callback of its
 * owner's memory context, on ERROR too.
 *
 * Each connection hooks into its requests (see VapiHttpHooks): they count
 * against the statement's request budget, take their place in the rate
 * budget of the key, and are counted in the statistics of the server and
 * user.  vapi_fdw_get_connections(), vapi_fdw_disconnect() and
 * vapi_fdw_disconnect_all() show and close this backend's connections, as
 * postgres_fdw's functions of the same names do.
 *
 * src/connection.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_user_mapping.h"
#include "commands/defrem.h"
#include "executor/executor.h"
#include "funcapi.h"
#include "nodes/execnodes.h"
#include "nodes/plannodes.h"
#include "parser/parsetree.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/json.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "vapi_fdw.h"

struct VapiConn
{
	Oid			umid;			/* hash key: user mapping OID */
	MemoryContext cxt;			/* owns everything below; NULL if none */
	VapiHttpGroup *group;		/* every handle below belongs to it */
	VapiHttp   *http;			/* for one-off requests */
	List	   *idle;			/* pooled handles not in use */
	int			busy;			/* pooled handles in use */
	VapiServerOptions opts;
	char	   *api_key;
	char	   *server_name;
	bool		invalidated;
	int			api_lacks;		/* VAPI_API_NO_*: what this deployment lacks */
	uint32		server_hashvalue;
	uint32		mapping_hashvalue;
	Oid			serverid;
	Oid			umuser;			/* the user mapping's role; 0 for PUBLIC */
	int			nhandles;		/* handles made: "http" and the pool's */
	TimestampTz last_used;		/* last request sent; 0: none yet */
	VapiStatsEntry *stats;		/* this server and user's statistics */
	VapiBucket *bucket;			/* the rate budget of the key */
	List	   *redact;			/* values to blank out of the answers of
								 * the request under way (vapi_request) */
};

static HTAB *ConnectionHash = NULL;

/* What is known of the outcome of the last request sent. */
static VapiRequestOutcome last_outcome = VAPI_OUTCOME_NONE;

static void vapi_inval_callback(Datum arg, int cacheid, uint32 hashvalue);
static void vapi_check_user_mapping(ForeignServer *server, Oid userid);
static bool vapi_has_own_user_mapping(Oid userid, Oid serverid);
static const char *vapi_reason_phrase(long status);
static void vapi_raise_outcome(VapiConn *conn, List *redact, int flags,
							   VapiHttpResponse *resp);
static void vapi_request_context(void *arg);
static char *vapi_remote_message(VapiConn *conn, const VapiHttpResponse *resp,
								 List *redact);
static char *vapi_redact(VapiConn *conn, const char *text);
static void vapi_translate_outcome(VapiConn *conn, const char *method,
								   const char *path_and_query, List *redact,
								   int flags, VapiHttpResponse *resp,
								   VapiStats *stats);
static char *vapi_redact_values(const char *text, List *values);
static bool vapi_conn_admit(void *arg);
static TimestampTz vapi_conn_take(void *arg);
static TimestampTz vapi_conn_held_until(void *arg);
static void vapi_conn_hold(void *arg, TimestampTz until);
static void vapi_conn_event(void *arg, const VapiHttpEvent *ev);
static int	vapi_disconnect_server(Oid serverid);

/*
 * vapi_inval_callback
 *		A server or user mapping changed: mark the entries that depend on
 *		it, so that they are rebuilt on next use.
 */
static void
vapi_inval_callback(Datum arg, int cacheid, uint32 hashvalue)
{
	HASH_SEQ_STATUS scan;
	VapiConn   *entry;

	hash_seq_init(&scan, ConnectionHash);
	while ((entry = (VapiConn *) hash_seq_search(&scan)) != NULL)
	{
		if (hashvalue == 0 ||
			(cacheid == FOREIGNSERVEROID &&
			 entry->server_hashvalue == hashvalue) ||
			(cacheid == USERMAPPINGOID &&
			 entry->mapping_hashvalue == hashvalue))
			entry->invalidated = true;
	}
}

/*
 * vapi_check_user_mapping
 *		Give a helpful error when the user has no user mapping for the
 *		server (GetUserMapping's own message names neither what is missing
 *		nor how to create it).
 */
static void
vapi_check_user_mapping(ForeignServer *server, Oid userid)
{
	HeapTuple	tp;

	tp = SearchSysCache2(USERMAPPINGUSERSERVER,
						 ObjectIdGetDatum(userid),
						 ObjectIdGetDatum(server->serverid));
	if (!HeapTupleIsValid(tp))
		tp = SearchSysCache2(USERMAPPINGUSERSERVER,
							 ObjectIdGetDatum(InvalidOid),
							 ObjectIdGetDatum(server->serverid));
	if (!HeapTupleIsValid(tp))
	{
		char	   *role = GetUserNameFromId(userid, false);

		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("no user mapping for role \"%s\" on server \"%s\"",
						role, server->servername),
				 errhint("Create one with: CREATE USER MAPPING FOR %s SERVER %s OPTIONS (api_key '...');",
						 quote_identifier(role),
						 quote_identifier(server->servername))));
	}
	ReleaseSysCache(tp);
}

/*
 * vapi_has_own_user_mapping
 *		Does the role have a user mapping of its own for the server (not
 *		only a PUBLIC one)?
 */
static bool
vapi_has_own_user_mapping(Oid userid, Oid serverid)
{
	HeapTuple	tp;

	tp = SearchSysCache2(USERMAPPINGUSERSERVER,
						 ObjectIdGetDatum(userid),
						 ObjectIdGetDatum(serverid));
	if (!HeapTupleIsValid(tp))
		return false;
	ReleaseSysCache(tp);
	return true;
}

/*
 * vapi_scan_userid
 *		The role whose user mapping a ForeignScan uses: the view owner's
 *		for a scan through a view, else the current user's.
 */
Oid
vapi_scan_userid(ForeignScan *fsplan, EState *estate)
{
#if PG_VERSION_NUM >= 160000
	return OidIsValid(fsplan->checkAsUser) ? fsplan->checkAsUser : GetUserId();
#else
	/* a count pushed down scans no relation: its table is in fs_relids */
	Index		rti = fsplan->scan.scanrelid > 0 ? fsplan->scan.scanrelid :
		(Index) bms_next_member(fsplan->fs_relids, -1);
	RangeTblEntry *rte = exec_rt_fetch(rti, estate);

	return OidIsValid(rte->checkAsUser) ? rte->checkAsUser : GetUserId();
#endif
}

/*
 * vapi_modify_userid
 *		The role whose user mapping a write uses: the view owner's for a
 *		write through a view, else the current user's.  A partition that
 *		rows are routed to has no range table entry of its own: its root's
 *		counts.
 */
Oid
vapi_modify_userid(ResultRelInfo *rinfo, EState *estate)
{
#if PG_VERSION_NUM >= 160000
	return ExecGetResultRelCheckAsUser(rinfo, estate);
#else
	Index		rti = rinfo->ri_RangeTableIndex;
	RangeTblEntry *rte;

	if (rti == 0 && rinfo->ri_RootResultRelInfo != NULL)
		rti = rinfo->ri_RootResultRelInfo->ri_RangeTableIndex;
	rte = exec_rt_fetch(rti, estate);
	return OidIsValid(rte->checkAsUser) ? rte->checkAsUser : GetUserId();
#endif
}

/*
 * vapi_write_connection
 *		The connection a write uses.  Writing needs a user mapping of one's
 *		own (a superuser excepted): a PUBLIC mapping only reads.
 */
VapiConn *
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
 * vapi_get_connection
 *		The cached handle for the user mapping of (userid, server),
 *		created or rebuilt as needed.
 */
VapiConn *
vapi_get_connection(ForeignServer *server, Oid userid)
{
	UserMapping *user;
	VapiConn   *entry;
	bool		found;
	const char *api_key = NULL;
	ListCell   *lc;
	MemoryContext oldcxt;

	if (ConnectionHash == NULL)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(VapiConn);
		ConnectionHash = hash_create("vapi_fdw connections", 8, &ctl,
									 HASH_ELEM | HASH_BLOBS);
		CacheRegisterSyscacheCallback(FOREIGNSERVEROID,
									  vapi_inval_callback, (Datum) 0);
		CacheRegisterSyscacheCallback(USERMAPPINGOID,
									  vapi_inval_callback, (Datum) 0);
	}

	vapi_check_user_mapping(server, userid);
	user = GetUserMapping(userid, server->serverid);

	foreach(lc, user->options)
	{
		DefElem    *def = (DefElem *) lfirst(lc);

		if (strcmp(def->defname, "api_key") == 0)
			api_key = defGetString(def);
	}
	if (api_key == NULL)
	{
		bool		own = vapi_has_own_user_mapping(userid, server->serverid);
		char	   *role = own ? GetUserNameFromId(userid, false) : "PUBLIC";

		ereport(ERROR,
				(errcode(ERRCODE_FDW_OPTION_NAME_NOT_FOUND),
				 errmsg("user mapping for %s%s%s on server \"%s\" has no \"api_key\" option",
						own ? "role \"" : "", role, own ? "\"" : "",
						server->servername),
				 errhint("Add it with: ALTER USER MAPPING FOR %s SERVER %s OPTIONS (ADD api_key '...');",
						 own ? quote_identifier(role) : "PUBLIC",
						 quote_identifier(server->servername))));
	}

	entry = hash_search(ConnectionHash, &user->umid, HASH_ENTER, &found);
	if (!found)
	{
		entry->cxt = NULL;
		entry->group = NULL;
		entry->http = NULL;
		entry->idle = NIL;
		entry->busy = 0;
		entry->redact = NIL;
	}

	/*
	 * A handle still in use by a running statement keeps the entry as it is
	 * until that statement ends; the rebuild happens on the next call.
	 */
	if (entry->cxt != NULL && (!entry->invalidated || entry->busy > 0))
		return entry;

	/* (Re)build the entry. */
	if (entry->cxt != NULL)
		MemoryContextDelete(entry->cxt);
	entry->cxt = NULL;
	entry->group = NULL;
	entry->http = NULL;
	entry->idle = NIL;
	entry->busy = 0;
	entry->invalidated = false;
	entry->api_lacks = 0;
	entry->server_hashvalue =
		GetSysCacheHashValue1(FOREIGNSERVEROID,
							  ObjectIdGetDatum(server->serverid));
	entry->mapping_hashvalue =
		GetSysCacheHashValue1(USERMAPPINGOID,
							  ObjectIdGetDatum(user->umid));

	entry->cxt = AllocSetContextCreate(CacheMemoryContext,
									   "vapi_fdw connection",
									   ALLOCSET_SMALL_SIZES);
	oldcxt = MemoryContextSwitchTo(entry->cxt);
	vapi_get_server_options(server, &entry->opts);
	entry->opts.url = pstrdup(entry->opts.url);
	entry->api_key = pstrdup(api_key);
	entry->server_name = pstrdup(server->servername);
	MemoryContextSwitchTo(oldcxt);
	entry->serverid = server->serverid;
	entry->umuser = user->userid;
	entry->nhandles = 0;
	entry->last_used = 0;
	entry->stats = vapi_stats_entry(server->serverid, user->userid);
	entry->bucket = vapi_budget_bucket(entry->opts.url, api_key);

	PG_TRY();
	{
		VapiHttpHooks hooks;

		entry->group = vapi_http_group_create(entry->cxt);
		hooks.admit = vapi_conn_admit;
		hooks.take = vapi_conn_take;
		hooks.held_until = vapi_conn_held_until;
		hooks.hold = vapi_conn_hold;
		hooks.event = vapi_conn_event;
		hooks.arg = entry;
		vapi_http_group_set_hooks(entry->group, &hooks);
		entry->http = vapi_http_create(entry->cxt, entry->group, api_key);
		entry->nhandles = 1;
	}
	PG_CATCH();
	{
		MemoryContextDelete(entry->cxt);
		entry->cxt = NULL;
		entry->group = NULL;
		entry->http = NULL;
		PG_RE_THROW();
	}
	PG_END_TRY();

	return entry;
}

/*
 * vapi_connection_options
 *		The server options the handle was built with.
 */
const VapiServerOptions *
vapi_connection_options(VapiConn *conn)
{
	return &conn->opts;
}

/*
 * vapi_connection_api_lacks
 *		What the deployment behind this connection was found to lack
 *		(VAPI_API_NO_* flags), remembered until the server or user mapping
 *		changes.
 */
int
vapi_connection_api_lacks(VapiConn *conn)
{
	return conn->api_lacks;
}

/*
 * vapi_connection_server_name
 *		The name of the foreign server, for messages.
 */
const char *
vapi_connection_server_name(VapiConn *conn)
{
	return conn->server_name;
}

/*
 * vapi_cached_api_lacks
 *		What an already open connection for this server and role found the
 *		deployment to lack, without opening one (for EXPLAIN); 0 if none.
 */
int
vapi_cached_api_lacks(Oid serverid, Oid userid)
{
	HeapTuple	tp;
	Oid			umid;
	VapiConn   *entry;

	if (ConnectionHash == NULL)
		return 0;
	tp = SearchSysCache2(USERMAPPINGUSERSERVER, ObjectIdGetDatum(userid),
						 ObjectIdGetDatum(serverid));
	if (!HeapTupleIsValid(tp))
		tp = SearchSysCache2(USERMAPPINGUSERSERVER, ObjectIdGetDatum(InvalidOid),
							 ObjectIdGetDatum(serverid));
	if (!HeapTupleIsValid(tp))
		return 0;
	umid = ((Form_pg_user_mapping) GETSTRUCT(tp))->oid;
	ReleaseSysCache(tp);
	entry = hash_search(ConnectionHash, &umid, HASH_FIND, NULL);
	return entry != NULL && entry->cxt != NULL && !entry->invalidated ?
		entry->api_lacks : 0;
}

/*
 * vapi_connection_note_lack
 *		Remember that the deployment lacks something (a VAPI_API_NO_* flag).
 */
void
vapi_connection_note_lack(VapiConn *conn, int flag)
{
	conn->api_lacks |= flag;
}

/*
 * vapi_last_request_outcome
 *		What is known of the outcome of the last request sent by this
 *		backend (a write's error context and the transaction ledger ask).
 */
VapiRequestOutcome
vapi_last_request_outcome(void)
{
	return last_outcome;
}

/*
 * vapi_redact_one
 *		A copy of "text" with every occurrence of "secret" replaced, both
 *		as itself and as it reads inside a JSON string (where a quote or a
 *		backslash is escaped), since the API echoes request bodies as JSON.
 */
static char *
vapi_redact_one(const char *text, const char *secret)
{
	StringInfoData escaped;
	const char *forms[2];
	char	   *result = pstrdup(text);
	int			i;

	initStringInfo(&escaped);
	escape_json(&escaped, secret);
	/* without the surrounding quotes */
	escaped.data[escaped.len - 1] = '\0';
	forms[0] = secret;
	forms[1] = escaped.data + 1;

	for (i = 0; i < 2; i++)
	{
		size_t		len = strlen(forms[i]);
		StringInfoData buf;
		const char *p = result;
		const char *hit;

		if (len == 0 || (i == 1 && strcmp(forms[1], forms[0]) == 0))
			continue;
		initStringInfo(&buf);
		while ((hit = strstr(p, forms[i])) != NULL)
		{
			appendBinaryStringInfo(&buf, p, hit - p);
			appendStringInfoString(&buf, "[redacted]");
			p = hit + len;
		}
		appendStringInfoString(&buf, p);
		result = buf.data;
	}
	return result;
}

/*
 * vapi_redact
 *		A copy of "text" with every occurrence of the API key replaced, so
 *		that remote text echoing the key never reaches a message.
 */
static char *
vapi_redact(VapiConn *conn, const char *text)
{
	if (text == NULL)
		return NULL;
	return vapi_redact_one(text, conn->api_key);
}

/*
 * vapi_redact_values
 *		A copy of "text" with every occurrence of each of "values" (strings
 *		of at least 4 bytes) replaced.
 */
static char *
vapi_redact_values(const char *text, List *values)
{
	ListCell   *lc;
	char	   *result = pstrdup(text);

	foreach(lc, values)
	{
		const char *v = (const char *) lfirst(lc);

		if (strlen(v) >= 4)
			result = vapi_redact_one(result, v);
	}
	return result;
}

/*
 * vapi_transport_detail
 *		What a failed transfer was (vapi_fdw's own sentence, see http.c),
 *		redacted like any text that reaches a message.
 */
static char *
vapi_transport_detail(VapiConn *conn, const char *msg)
{
	return vapi_redact(conn, msg ? msg : "unknown transport failure");
}

/*
 * vapi_reason_phrase
 *		The standard reason phrase of common HTTP status codes.
 */
static const char *
vapi_reason_phrase(long status)
{
	switch (status)
	{
		case 400:
			return "Bad Request";
		case 401:
			return "Unauthorized";
		case 402:
			return "Payment Required";
		case 403:
			return "Forbidden";
		case 404:
			return "Not Found";
		case 405:
			return "Method Not Allowed";
		case 409:
			return "Conflict";
		case 413:
			return "Payload Too Large";
		case 422:
			return "Unprocessable Entity";
		case 429:
			return "Too Many Requests";
		case 500:
			return "Internal Server Error";
		case 502:
			return "Bad Gateway";
		case 503:
			return "Service Unavailable";
		case 504:
			return "Gateway Timeout";
	}
	return status >= 500 ? "Server Error" : status >= 400 ? "Client Error" :
		"Unexpected Status";
}

/*
 * vapi_remote_message
 *		What the API said about a failed request: Vapi's "message" (a
 *		string, or an array of strings joined with "; "), else the start of
 *		the raw body.  The key is redacted.
 */
static char *
vapi_remote_message(VapiConn *conn, const VapiHttpResponse *resp, List *redact)
{
	char	   *msg = vapi_json_error_message(resp->body, resp->body_len);

	if (msg == NULL)
	{
		size_t		n = Min(resp->body_len, 200);
		StringInfoData buf;
		size_t		i;

		if (n == 0)
			return pstrdup("(empty response body)");
		initStringInfo(&buf);
		appendStringInfoString(&buf, "response body: ");
		for (i = 0; i < n; i++)
		{
			unsigned char c = (unsigned char) resp->body[i];

			/*
			 * Keep control bytes and non-ASCII out of the message, and fold
			 * white space, so that an HTML page reads as one line.
			 */
			if (c <= ' ')
			{
				if (buf.len > 0 && buf.data[buf.len - 1] != ' ')
					appendStringInfoChar(&buf, ' ');
			}
			else if (c >= 0x7f)
				appendStringInfoChar(&buf, '?');
			else
				appendStringInfoChar(&buf, (char) c);
		}
		if (resp->body_len > n)
			appendStringInfoString(&buf, "...");
		msg = buf.data;
	}
	return vapi_redact_values(vapi_redact(conn, msg), redact);
}

/* What gives a pooled handle back when its owner's memory goes. */
typedef struct VapiLease
{
	VapiConn   *conn;
	VapiHttp   *http;
	MemoryContextCallback cb;
} VapiLease;

/*
 * vapi_lease_release
 *		Memory context reset callback: return a handle to the pool, first
 *		abandoning a transfer still under way (after an ERROR, say).
 */
static void
vapi_lease_release(void *arg)
{
	VapiLease  *lease = (VapiLease *) arg;
	VapiConn   *conn = lease->conn;
	MemoryContext oldcxt;

	conn->busy--;
	if (lease->http == NULL)
		return;					/* a pin */
	if (vapi_http_pending(lease->http))
		vapi_http_abort(lease->http);
	if (conn->cxt == NULL)
		return;
	oldcxt = MemoryContextSwitchTo(conn->cxt);
	conn->idle = lcons(lease->http, conn->idle);
	MemoryContextSwitchTo(oldcxt);
}

/*
 * vapi_connection_acquire
 *		A handle of this connection for the sole use of a scan or a write
 *		(which may keep a request under way while others are sent), given
 *		back to the pool when "owner" is reset or deleted.  Handles keep
 *		their TCP/TLS connection between uses.
 */
VapiHttp *
vapi_connection_acquire(VapiConn *conn, MemoryContext owner)
{
	VapiLease  *lease = MemoryContextAllocZero(owner, sizeof(VapiLease));
	VapiHttp   *http;

	if (conn->idle != NIL)
	{
		http = linitial(conn->idle);
		conn->idle = list_delete_first(conn->idle);
	}
	else
	{
		char	   *key = pstrdup(conn->api_key);

		http = vapi_http_create(conn->cxt, conn->group, key);
		explicit_bzero(key, strlen(key));
		pfree(key);
		conn->nhandles++;
	}
	conn->busy++;
	lease->conn = conn;
	lease->http = http;
	lease->cb.func = vapi_lease_release;
	lease->cb.arg = lease;
	MemoryContextRegisterResetCallback(owner, &lease->cb);
	return http;
}

/*
 * vapi_connection_pin
 *		Keep the connection as it is (not rebuilt after an ALTER, not
 *		closed by vapi_fdw_disconnect) until "owner" is reset or deleted:
 *		for a write, which sends its requests on the connection's own
 *		handle from one row to the next.
 */
void
vapi_connection_pin(VapiConn *conn, MemoryContext owner)
{
	VapiLease  *lease = MemoryContextAllocZero(owner, sizeof(VapiLease));

	conn->busy++;
	lease->conn = conn;
	lease->http = NULL;
	lease->cb.func = vapi_lease_release;
	lease->cb.arg = lease;
	MemoryContextRegisterResetCallback(owner, &lease->cb);
}

/*
 * vapi_connection_count_rows
 *		Count phone numbers received in the statistics.
 */
void
vapi_connection_count_rows(VapiConn *conn, int64 rows)
{
	if (conn->stats != NULL && vapi_track_stats)
		vapi_stats_count_rows(conn->stats, rows);
}

/*
 * vapi_conn_admit
 *		VapiHttpHooks.admit: may an attempt be sent under the statement's
 *		request budget?  (A refused one is reported by its owner, see
 *		vapi_raise_outcome.)
 */
static bool
vapi_conn_admit(void *arg)
{
	return vapi_budget_statement_allows();
}

/*
 * vapi_conn_take
 *		VapiHttpHooks.take: a token of the key's rate budget, or when to
 *		ask again.
 */
static TimestampTz
vapi_conn_take(void *arg)
{
	VapiConn   *conn = (VapiConn *) arg;

	return vapi_budget_take(conn->bucket, conn->opts.max_requests_per_second,
							conn->opts.max_request_burst);
}

/*
 * vapi_conn_held_until
 *		VapiHttpHooks.held_until: the hold of the key's bucket, set by any
 *		backend's 429.
 */
static TimestampTz
vapi_conn_held_until(void *arg)
{
	return vapi_budget_held_until(((VapiConn *) arg)->bucket);
}

/*
 * vapi_conn_hold
 *		VapiHttpHooks.hold: a 429 here holds every backend using the key.
 */
static void
vapi_conn_hold(void *arg, TimestampTz until)
{
	vapi_budget_hold(((VapiConn *) arg)->bucket, until);
}

/*
 * vapi_conn_event
 *		VapiHttpHooks.event: note when the connection was last used, and
 *		count an attempt sent or answered (unless vapi_fdw.track_stats is
 *		off); an answer that failed becomes the last error, redacted like
 *		any remote text.
 */
static void
vapi_conn_event(void *arg, const VapiHttpEvent *ev)
{
	VapiConn   *conn = (VapiConn *) arg;
	char	   *message = NULL;

	if (!ev->answered)
		conn->last_used = GetCurrentTimestamp();
	if (!vapi_track_stats)
		return;
	if (ev->answered && ev->resp->result != VAPI_HTTP_OK)
		message = psprintf("%s %s",
						   ev->resp->result == VAPI_HTTP_TIMEOUT ? "timeout:" :
						   "transport failure:",
						   vapi_transport_detail(conn, ev->resp->transport_error));
	else if (ev->answered &&
			 (ev->resp->status < 200 || ev->resp->status >= 300))
	{
		MemoryContext cxt = CurrentMemoryContext;

		/*
		 * The remote text, as an ERROR would give it; if it cannot be had
		 * (a message the database encoding cannot hold, say), the status
		 * alone: a hook must not raise while transfers are driven.
		 */
		PG_TRY();
		{
			message = psprintf("HTTP %ld (%s): %s", ev->resp->status,
							   vapi_reason_phrase(ev->resp->status),
							   vapi_remote_message(conn, ev->resp, conn->redact));
		}
		PG_CATCH();
		{
			MemoryContextSwitchTo(cxt);
			FlushErrorState();
			message = psprintf("HTTP %ld (%s)", ev->resp->status,
							   vapi_reason_phrase(ev->resp->status));
		}
		PG_END_TRY();
	}
	vapi_stats_count_event(conn->stats, ev, message);
	if (message != NULL)
		pfree(message);
}

/*
 * vapi_request_start
 *		Start a request on "http" without waiting for it; the answer will be
 *		allocated in "resp_cxt".  vapi_request_finish completes it.  A POST
 *		is never retried once it may have reached the server.  "stats", if
 *		given, counts the request.
 */
void
vapi_request_start(VapiConn *conn, VapiHttp *http, const char *method,
				   const char *path_and_query, const char *body,
				   size_t body_len, MemoryContext resp_cxt, VapiStats *stats)
{
	VapiHttpRequest req;
	char	   *url = psprintf("%s%s", conn->opts.url, path_and_query);

	/* counted when sent, so that an abandoned request counts too */
	if (stats != NULL)
		stats->requests++;
	last_outcome = VAPI_OUTCOME_SENDING;

	memset(&req, 0, sizeof(req));
	req.method = method;
	req.url = url;
	req.body = body;
	req.body_len = body_len;
	req.connect_timeout_ms = conn->opts.connect_timeout_ms;
	req.timeout_ms = conn->opts.timeout_ms;
	req.max_retries = conn->opts.max_retries;
	req.retry_safe = strcmp(method, "POST") != 0;
	req.max_response_bytes = conn->opts.max_response_bytes;
	vapi_http_start(http, &req, resp_cxt);
	pfree(url);
}

/*
 * vapi_request_finish
 *		Wait for a request started with vapi_request_start and translate
 *		its outcome, as vapi_request does.
 */
void
vapi_request_finish(VapiConn *conn, VapiHttp *http, const char *method,
					const char *path_and_query, List *redact, int flags,
					VapiHttpResponse *resp, VapiStats *stats)
{
	vapi_http_finish(http, resp);
	vapi_translate_outcome(conn, method, path_and_query, redact, flags,
						   resp, stats);
}

/*
 * vapi_request
 *		Send one request to the API on the connection's own handle
 *		(retrying where that is safe) and raise an ERROR for any outcome
 *		but a 2xx answer (or a 404, when VAPI_REQ_ALLOW_404 is given).  The
 *		answer goes to "resp", allocated in "resp_cxt"; "stats", if given,
 *		counts what was done.  Values in "redact" (secrets in the body) are
 *		blanked out of remote text, like the key.
 */
void
vapi_request(VapiConn *conn, const char *method, const char *path_and_query,
			 const char *body, size_t body_len, List *redact, int flags,
			 VapiHttpResponse *resp, MemoryContext resp_cxt, VapiStats *stats)
{
	/* the statistics' last error is redacted like the ERROR */
	conn->redact = redact;
	PG_TRY();
	{
		vapi_request_start(conn, conn->http, method, path_and_query, body,
						   body_len, resp_cxt, stats);
		vapi_request_finish(conn, conn->http, method, path_and_query, redact,
							flags, resp, stats);
	}
	PG_FINALLY();
	{
		/* a request left waiting would be sent by the next one's pump */
		conn->redact = NIL;
		if (vapi_http_pending(conn->http))
			vapi_http_abort(conn->http);
	}
	PG_END_TRY();
}

/*
 * vapi_translate_outcome
 *		Count a finished request and raise an ERROR for any outcome but a
 *		2xx answer (or a 404 with VAPI_REQ_ALLOW_404).
 */
static void
vapi_translate_outcome(VapiConn *conn, const char *method,
					   const char *path_and_query, List *redact, int flags,
					   VapiHttpResponse *resp, VapiStats *stats)
{
	if (stats != NULL)
	{
		/*
		 * The first attempt was counted when the request was started (and
		 * is taken back if the statement's budget refused it).
		 */
		stats->requests += resp->attempts - 1;
		stats->retries += Max(resp->attempts - 1, 0);
		stats->bytes += resp->body_len;
	}

	/* What the outcome tells of whether the request was carried out. */
	if (resp->result == VAPI_HTTP_CONNECT_FAILED ||
		(resp->result == VAPI_HTTP_REFUSED && resp->attempts == 0))
		last_outcome = VAPI_OUTCOME_NOT_SENT;
	else if (resp->result != VAPI_HTTP_OK || resp->status >= 500)
		last_outcome = VAPI_OUTCOME_UNKNOWN;
	else if ((resp->status >= 200 && resp->status < 300) ||
			 (resp->status == 404 && (flags & VAPI_REQ_ALLOW_404)))
		last_outcome = VAPI_OUTCOME_DONE;
	else
		last_outcome = VAPI_OUTCOME_REFUSED;

	/* Client errors the caller handles itself (a list request's fallbacks). */
	if ((flags & VAPI_REQ_ALLOW_CLIENT_ERRORS) && resp->result == VAPI_HTTP_OK &&
		(resp->status == 400 || resp->status == 404))
		return;

	vapi_raise_response(conn, method, path_and_query, redact, flags, resp);
}

/*
 * vapi_is_json_answer
 *		Does the answer say it is JSON (as Vapi's own answers, errors
 *		included, are)?  An HTML page comes from something in front of
 *		the API: a proxy, a firewall, a load balancer.
 */
static bool
vapi_is_json_answer(const VapiHttpResponse *resp)
{
	return resp->content_type != NULL &&
		(strncmp(resp->content_type, "application/json", 16) == 0 ||
		 strstr(resp->content_type, "+json") != NULL);
}

/*
 * vapi_raise_outcome
 *		The ERRORs of vapi_raise_response, raised under its error context.
 */
static void
vapi_raise_outcome(VapiConn *conn, List *redact, int flags,
				   VapiHttpResponse *resp)
{
	char	   *attempts;

	attempts = resp->attempts > 1 ?
		psprintf(" (after %d attempts)", resp->attempts) : "";

	switch (resp->result)
	{
		case VAPI_HTTP_OK:
			break;
		case VAPI_HTTP_CONNECT_FAILED:
			ereport(ERROR,
					(errcode(ERRCODE_FDW_UNABLE_TO_ESTABLISH_CONNECTION),
					 errmsg("could not connect to the Vapi API at \"%s\"%s",
							conn->opts.url, attempts),
					 errdetail_internal("%s", vapi_transport_detail(conn, resp->transport_error))));
			break;
		case VAPI_HTTP_TIMEOUT:
			ereport(ERROR,
					(errcode(ERRCODE_FDW_ERROR),
					 errmsg("Vapi API request timed out%s", attempts),
					 errdetail("No complete answer within timeout_ms (%d ms) or connect_timeout_ms (%d ms) of server \"%s\".",
							   conn->opts.timeout_ms,
							   conn->opts.connect_timeout_ms,
							   conn->server_name)));
			break;
		case VAPI_HTTP_TOO_LARGE:
			ereport(ERROR,
					(errcode(ERRCODE_FDW_ERROR),
					 errmsg("Vapi API response is larger than max_response_bytes (" INT64_FORMAT " bytes)",
							conn->opts.max_response_bytes),
					 errhint("Raise the option max_response_bytes or lower page_size on server \"%s\".",
							 conn->server_name)));
			break;
		case VAPI_HTTP_TRANSPORT_ERROR:
			ereport(ERROR,
					(errcode(ERRCODE_FDW_ERROR),
					 errmsg("Vapi API request failed%s", attempts),
					 errdetail_internal("%s", vapi_transport_detail(conn, resp->transport_error))));
			break;
		case VAPI_HTTP_REFUSED:
			vapi_budget_statement_refuse();
			break;
	}

	if (resp->status >= 200 && resp->status < 300)
	{
		/* an answer that says it is not JSON: an error page of a proxy */
		if (resp->content_type != NULL && !vapi_is_json_answer(resp))
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_DATA_TYPE),
					 errmsg("Vapi API returned a response that is not JSON"),
					 errdetail("Content-Type is \"%s\".",
							   vapi_redact(conn, resp->content_type))));
		return;
	}
	if (resp->status == 404 && (flags & VAPI_REQ_ALLOW_404))
		return;

	if ((resp->status == 403 || resp->status == 429) && !vapi_is_json_answer(resp))
		ereport(ERROR,
				(errcode(resp->status == 429 ? ERRCODE_CONFIGURATION_LIMIT_EXCEEDED :
						 ERRCODE_FDW_ERROR),
				 errmsg("a server in front of the Vapi API refused the request: HTTP %ld (%s)%s",
						resp->status, vapi_reason_phrase(resp->status), attempts),
				 errdetail_internal("The answer is not Vapi's JSON (Content-Type \"%s\"); %s",
									resp->content_type ? vapi_redact(conn, resp->content_type) : "none",
									vapi_remote_message(conn, resp, redact)),
				 errhint("A proxy, firewall or load balancer answered, not Vapi: the API key was not judged.  Check the network path to the url of server \"%s\".",
						 conn->server_name)));
	else if (resp->status == 429)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("Vapi API rate limit exceeded%s", attempts),
				 errdetail_internal("%s", vapi_remote_message(conn, resp, redact)),
				 resp->gave_up_early ?
				 errhint("The request was not retried: the wait before a retry (%ld ms%s) would pass statement_timeout or timeout_ms.",
						 resp->gave_up_ms,
						 resp->retry_after_ms >= 0 ? ", as Retry-After asked" : "") :
				 errhint("Retry later, or raise max_retries on server \"%s\".",
						 conn->server_name)));
	else if (resp->status >= 300 && resp->status < 400)
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("Vapi API answered with a redirect (HTTP %ld), which vapi_fdw does not follow",
						resp->status),
				 errdetail("Redirects are never followed, so the API key is only ever sent to the server's url."),
				 errhint("Check the url option of server \"%s\".", conn->server_name)));
	else if (resp->status == 401 || resp->status == 403)
	{
		/* a key of the other region is a bad key here */
		const char *other = NULL;

		if (strcmp(conn->opts.url, VAPI_DEFAULT_URL) == 0)
			other = VAPI_EU_URL;
		else if (strcmp(conn->opts.url, VAPI_EU_URL) == 0)
			other = VAPI_DEFAULT_URL;
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
				 errmsg("Vapi API rejected the API key: HTTP %ld (%s)",
						resp->status, vapi_reason_phrase(resp->status)),
				 errdetail_internal("%s", vapi_remote_message(conn, resp, redact)),
				 other != NULL ?
				 errhint("Check the api_key option of the user mapping for server \"%s\".  A key of an organisation in the other region is refused here: such an organisation needs url '%s' on the server.",
						 conn->server_name, other) :
				 errhint("Check the api_key option of the user mapping for server \"%s\".",
						 conn->server_name)));
	}
	else
		ereport(ERROR,
				(errcode(ERRCODE_FDW_ERROR),
				 errmsg("Vapi API request failed: HTTP %ld (%s)%s",
						resp->status, vapi_reason_phrase(resp->status),
						attempts),
				 errdetail_internal("%s", vapi_remote_message(conn, resp, redact)),
				 resp->gave_up_early ?
				 errhint("The request was not retried: the wait before a retry (%ld ms%s) would pass statement_timeout or timeout_ms.",
						 resp->gave_up_ms,
						 resp->retry_after_ms >= 0 ? ", as Retry-After asked" : "") : 0));
}

/*
 * vapi_request_context
 *		Error context naming the request an ERROR is about.
 */
static void
vapi_request_context(void *arg)
{
	const char *const *label = (const char *const *) arg;

	errcontext("Vapi request: %s %s", label[0], label[1]);
}

/*
 * vapi_raise_response
 *		Raise the ERROR that describes a failed request (anything but a 2xx
 *		answer, or a 404 with VAPI_REQ_ALLOW_404), or a 2xx answer that
 *		says it is not JSON, with the request as its context.  Returns if
 *		there is nothing to raise.
 */
void
vapi_raise_response(VapiConn *conn, const char *method,
					const char *path_and_query, List *redact, int flags,
					VapiHttpResponse *resp)
{
	const char *label[2];
	ErrorContextCallback errcb;

	label[0] = method;
	label[1] = path_and_query;
	errcb.callback = vapi_request_context;
	errcb.arg = (void *) label;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;
	vapi_raise_outcome(conn, redact, flags, resp);
	error_context_stack = errcb.previous;
}

/*
 * vapi_disconnect_server
 *		Close this backend's connections to a server (InvalidOid: to every
 *		server): their handles and TCP connections are freed, and the next
 *		query opens new ones.  A connection in use by a running statement
 *		is left open, with a WARNING.  Returns how many were closed.
 */
static int
vapi_disconnect_server(Oid serverid)
{
	HASH_SEQ_STATUS scan;
	VapiConn   *entry;
	int			closed = 0;

	if (ConnectionHash == NULL)
		return 0;
	hash_seq_init(&scan, ConnectionHash);
	while ((entry = (VapiConn *) hash_seq_search(&scan)) != NULL)
	{
		if (entry->cxt == NULL ||
			(OidIsValid(serverid) && entry->serverid != serverid))
			continue;
		if (entry->busy > 0 || vapi_http_pending(entry->http))
		{
			ereport(WARNING,
					(errcode(ERRCODE_OBJECT_IN_USE),
					 errmsg("cannot close the connection to server \"%s\" because it is still in use",
							entry->server_name)));
			continue;
		}
		MemoryContextDelete(entry->cxt);
		entry->cxt = NULL;
		entry->group = NULL;
		entry->http = NULL;
		entry->idle = NIL;
		closed++;
	}
	return closed;
}

/* Columns of vapi_fdw_get_connections(), in order. */
enum
{
	VAPI_CC_SERVER,
	VAPI_CC_USER,
	VAPI_CC_HANDLES,
	VAPI_CC_IN_USE,
	VAPI_CC_IDLE,
	VAPI_CC_LAST_USED,
	VAPI_CC_VALID,
	VAPI_CC_NCOLS
};

PG_FUNCTION_INFO_V1(vapi_fdw_get_connections);

/*
 * vapi_fdw_get_connections
 *		SQL function: this backend's open connections, one row per server
 *		and user mapping: the handles (each keeps its own TCP connection
 *		alive), those in use by a running statement and those idle, when
 *		it last sent a request, and whether it is still valid (false: its
 *		server or user mapping was altered, and it is rebuilt on next use).
 */
Datum
vapi_fdw_get_connections(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	HASH_SEQ_STATUS scan;
	VapiConn   *entry;

	InitMaterializedSRF(fcinfo, 0);
	if (ConnectionHash == NULL)
		return (Datum) 0;
	hash_seq_init(&scan, ConnectionHash);
	while ((entry = (VapiConn *) hash_seq_search(&scan)) != NULL)
	{
		Datum		values[VAPI_CC_NCOLS];
		bool		nulls[VAPI_CC_NCOLS];
		ForeignServer *server;
		char	   *user;
		int			in_use;

		if (entry->cxt == NULL)
			continue;
		memset(nulls, false, sizeof(nulls));
		server = GetForeignServerExtended(entry->serverid, FSV_MISSING_OK);
		if (server != NULL)
			values[VAPI_CC_SERVER] = CStringGetTextDatum(server->servername);
		else
			nulls[VAPI_CC_SERVER] = true;
		user = OidIsValid(entry->umuser) ?
			GetUserNameFromId(entry->umuser, true) : "public";
		if (user != NULL)
			values[VAPI_CC_USER] = CStringGetTextDatum(user);
		else
			nulls[VAPI_CC_USER] = true;
		in_use = (entry->nhandles - 1 - list_length(entry->idle)) +
			(vapi_http_pending(entry->http) ? 1 : 0);
		values[VAPI_CC_HANDLES] = Int32GetDatum(entry->nhandles);
		values[VAPI_CC_IN_USE] = Int32GetDatum(in_use);
		values[VAPI_CC_IDLE] = Int32GetDatum(entry->nhandles - in_use);
		if (entry->last_used != 0)
			values[VAPI_CC_LAST_USED] = TimestampTzGetDatum(entry->last_used);
		else
			nulls[VAPI_CC_LAST_USED] = true;
		values[VAPI_CC_VALID] = BoolGetDatum(!entry->invalidated);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(vapi_fdw_disconnect);

/*
 * vapi_fdw_disconnect
 *		SQL function: close this backend's connections to the named server;
 *		true if any was closed.
 */
Datum
vapi_fdw_disconnect(PG_FUNCTION_ARGS)
{
	ForeignServer *server;

	server = GetForeignServerByName(text_to_cstring(PG_GETARG_TEXT_PP(0)),
									false);
	PG_RETURN_BOOL(vapi_disconnect_server(server->serverid) > 0);
}

PG_FUNCTION_INFO_V1(vapi_fdw_disconnect_all);

/*
 * vapi_fdw_disconnect_all
 *		SQL function: close every connection of this backend; true if any
 *		was closed.
 */
Datum
vapi_fdw_disconnect_all(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(vapi_disconnect_server(InvalidOid) > 0);
}
