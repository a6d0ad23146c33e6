/*-------------------------------------------------------------------------
 *
 * vapi_fdw.h
 *		  Shared definitions for the Vapi phone-number foreign data wrapper.
 *
 * One file per concern, the way postgres_fdw is split: vapi_fdw.c (the
 * handler, planning, EXPLAIN), scan.c (the scan engine), modify.c (writes),
 * deparse.c (WHERE clauses to query parameters, the API's timestamps),
 * json.c (answers to Datums), body.c (Datums to request bodies), rules.c
 * (the phone-number contract: providers, fields, secrets), columns.c (the
 * column map), connection.c (connections, user mappings, HTTP outcomes to
 * ERRORs), http.c (the transport), option.c, import.c and xact.c (what a
 * transaction changed at Vapi).  Only http.c includes curl and only json.c
 * includes json-c; everything else talks to them through the opaque types
 * declared here.
 *
 * src/vapi_fdw.h
 *
 *-------------------------------------------------------------------------
 */
#ifndef VAPI_FDW_H
#define VAPI_FDW_H

#include "fmgr.h"
#include "foreign/foreign.h"
#include "lib/stringinfo.h"
#include "nodes/pathnodes.h"
#include "storage/lwlock.h"
#include "datatype/timestamp.h"
#include "utils/palloc.h"
#include "utils/relcache.h"
#include "utils/jsonb.h"

#ifndef VAPI_FDW_VERSION
#define VAPI_FDW_VERSION "0.1"
#endif

/* The two hosts a non-superuser may point a server at. */
#define VAPI_DEFAULT_URL		"https://api.vapi.ai"
#define VAPI_EU_URL				"https://api.eu.vapi.ai"

/* Remote paths. */
#define VAPI_PATH_LIST			"/v2/phone-number"
#define VAPI_PATH_ITEM			"/phone-number"

/* Length of a phone-number id (a UUID in its text form). */
#define VAPI_ID_LEN				36

/* Defaults and limits of the server options. */
#define VAPI_DEFAULT_CONNECT_TIMEOUT_MS	10000
#define VAPI_DEFAULT_TIMEOUT_MS			30000
#define VAPI_DEFAULT_MAX_RETRIES		10
#define VAPI_DEFAULT_PAGE_SIZE			1000
#define VAPI_MAX_PAGE_SIZE				1000
#define VAPI_DEFAULT_MAX_RESPONSE_BYTES	(32 * 1024 * 1024)
#define VAPI_DEFAULT_MAX_CONCURRENT		8
#define VAPI_MAX_CONCURRENT				16

/*
 * Options of a foreign server, with defaults filled in.
 */
typedef struct VapiServerOptions
{
	char	   *url;			/* base URL, no trailing slash */
	int			connect_timeout_ms;
	int			timeout_ms;
	int			max_retries;
	int			page_size;
	int64		max_response_bytes;
	bool		prefetch;		/* request the next page in advance */
	int			max_concurrent; /* requests of one scan in flight at once */
	bool		count_pushdown; /* count(*) from metadata.totalItems */
	bool		beyond_retention_error; /* a result cut by the retention
										 * window is an ERROR, not a WARNING */
	double		max_requests_per_second;	/* rate budget, 0 = none */
	int			max_request_burst;	/* the budget's bucket size */
} VapiServerOptions;

/* What a scan does when a column's key is absent from every object. */
#define VAPI_DRIFT_OFF			0
#define VAPI_DRIFT_WARNING		1
#define VAPI_DRIFT_ERROR		2

/*
 * How one column of a foreign table is filled from a phone-number object.
 */
typedef enum VapiColumnKind
{
	VAPI_COL_PATH,				/* a field, or a dotted path into objects */
	VAPI_COL_ATTRS				/* the whole object, secrets removed */
} VapiColumnKind;

typedef struct VapiColumn
{
	AttrNumber	attnum;			/* 1-based attribute number */
	char	   *attname;		/* column name, for error messages */
	VapiColumnKind kind;
	char	  **path;			/* JSON keys to follow (VAPI_COL_PATH) */
	int			npath;
	char	   *key;			/* the path as written, for messages */
	Oid			typid;
	Oid			basetypid;		/* typid, or the base type of a domain */
	int32		typmod;
	FmgrInfo	typinput;		/* the type's input function */
	Oid			typioparam;
	void	   *domain_extra;	/* domain_check's cache */
	MemoryContext cxt;			/* where the column map lives */
} VapiColumn;

/*
 * Counters of what a scan actually did, shown by EXPLAIN ANALYZE.
 */
typedef struct VapiStats
{
	int64		requests;		/* HTTP requests sent, retries included */
	int64		retries;		/* of which were retries */
	int64		pages;			/* list pages received */
	int64		rows;			/* objects received from the API */
	int64		bytes;			/* response body bytes received */
} VapiStats;

/* Scan kinds. */
#define VAPI_MODE_LIST			0
#define VAPI_MODE_LOOKUP		1
#define VAPI_MODE_COUNT			2	/* count(*): metadata.totalItems */

/*
 * The plan of a ForeignScan, as vapi_scan_plan_encode keeps it in its
 * fdw_private and vapi_scan_plan_decode reads it back.
 */
typedef struct VapiPlanQual
{
	int			kind;			/* VAPI_QUAL_TIME, _ID_EQ or _ID_ANY */
	int			field;			/* TIME: VAPI_FIELD_* */
	int			strategy;		/* TIME: btree strategy, column on the left */
	int			operand;		/* index of its value in fdw_exprs */
} VapiPlanQual;

typedef struct VapiScanPlan
{
	List	   *retrieved_attrs;	/* attnums to convert */
	int			page_size;
	int			mode;			/* VAPI_MODE_* */
	bool		ascending;		/* sortOrder ASC */
	bool		sorted;			/* the plan relies on the order */
	int64		limit;			/* rows needed at most, -1 = all */
	char	   *search;			/* search fragment, or NULL */
	List	   *quals;			/* VapiPlanQual *: the quals sent */
	List	   *local_only;		/* integer per plan qual: 1 = not sent */
	List	   *operand_names;	/* String per fdw_exprs: outer column or "" */
	bool		prefetch;		/* request pages in advance */
	int			est_requests;	/* the planner's estimate, per loop */
} VapiScanPlan;

/* ----------------------------------------------------------------
 * http.c: the transport.  Only this file includes curl.
 * ----------------------------------------------------------------
 */
typedef struct VapiHttp VapiHttp;
typedef struct VapiHttpGroup VapiHttpGroup;

/* Outcome of a request at the transport level. */
typedef enum VapiHttpResult
{
	VAPI_HTTP_OK,				/* an HTTP response was received */
	VAPI_HTTP_CONNECT_FAILED,	/* could not resolve or connect */
	VAPI_HTTP_TIMEOUT,			/* connect or request timeout */
	VAPI_HTTP_TOO_LARGE,		/* body over max_response_bytes */
	VAPI_HTTP_TRANSPORT_ERROR,	/* any other transport failure */
	VAPI_HTTP_REFUSED			/* not sent: the statement's request budget
								 * refused it */
} VapiHttpResult;

typedef struct VapiHttpRequest
{
	const char *method;			/* GET, POST, PATCH, DELETE */
	const char *url;			/* full URL */
	const char *body;			/* request body or NULL */
	size_t		body_len;
	int			connect_timeout_ms;
	int			timeout_ms;
	int			max_retries;	/* retries on 429/502/503/504/transport */
	bool		retry_safe;		/* may the request be sent again? */
	int64		max_response_bytes;
} VapiHttpRequest;

typedef struct VapiHttpResponse
{
	VapiHttpResult result;
	long		status;			/* HTTP status, 0 if none */
	char	   *body;			/* NUL-terminated, palloc'd */
	size_t		body_len;
	char	   *content_type;	/* palloc'd or NULL */
	char	   *transport_error;	/* palloc'd curl message or NULL */
	int			attempts;		/* requests sent, retries included */
	long		retry_after_ms; /* last Retry-After seen, -1 if none */
	bool		gave_up_early;	/* a retry would pass statement_timeout */
	long		gave_up_ms;		/* the wait that was not started */
} VapiHttpResponse;

/*
 * What the owner of a group (connection.c) is told of each attempt: when
 * it is sent and when it is answered.
 */
typedef struct VapiHttpEvent
{
	bool		answered;		/* false: sent now; true: answered */
	const char *method;
	int			attempt;		/* 1-based */
	size_t		bytes_sent;		/* sent: the request body's bytes */
	double		backoff_ms;		/* sent: waited for a retry or a hold */
	double		budget_ms;		/* sent: waited for the rate budget */
	const VapiHttpResponse *resp;	/* answered: the attempt's outcome */
	double		latency_ms;		/* answered: sent to answered */
	bool		will_retry;		/* answered: another attempt follows */
} VapiHttpEvent;

/*
 * Hooks of a group, all optional.  "admit" is asked once per attempt
 * whether it may be sent at all (false: the request ends, not sent, with
 * VAPI_HTTP_REFUSED); "take" is asked for a token of the rate budget when
 * the attempt is about to go, and answers 0 (taken: send now) or when to
 * ask again; "held_until" is a hold that other backends set, "hold" tells
 * them of one set here (after a 429); "event" is told of every attempt
 * sent and answered.  None of them may raise an ERROR: they are called
 * while the group's transfers are driven.
 */
typedef struct VapiHttpHooks
{
	bool		(*admit) (void *arg);
	TimestampTz (*take) (void *arg);
	TimestampTz (*held_until) (void *arg);
	void		(*hold) (void *arg, TimestampTz until);
	void		(*event) (void *arg, const VapiHttpEvent *ev);
	void	   *arg;
} VapiHttpHooks;

extern void vapi_http_global_init(void);
extern void vapi_http_group_set_hooks(VapiHttpGroup *group,
									  const VapiHttpHooks *hooks);
extern VapiHttpGroup *vapi_http_group_create(MemoryContext cxt);
extern VapiHttp *vapi_http_create(MemoryContext cxt, VapiHttpGroup *group,
								  const char *api_key);
extern void vapi_http_start(VapiHttp *http, const VapiHttpRequest *req,
							MemoryContext resp_cxt);
extern bool vapi_http_pending(VapiHttp *http);
extern bool vapi_http_done(VapiHttp *http);
extern void vapi_http_pump(VapiHttp *http);
extern int	vapi_http_wait_any(VapiHttp *const *handles, int n);
extern void vapi_http_finish(VapiHttp *http, VapiHttpResponse *resp);
extern void vapi_http_abort(VapiHttp *http);
extern bool vapi_http_url_is_valid(const char *url, char **why);
extern bool vapi_http_url_is_vapi(const char *url);

/* ----------------------------------------------------------------
 * connection.c: per-backend handle cache and error translation.
 * ----------------------------------------------------------------
 */
typedef struct VapiConn VapiConn;

/* Flags for vapi_request(). */
#define VAPI_REQ_ALLOW_404		0x01	/* a 404 is an answer, not an error */
#define VAPI_REQ_ALLOW_CLIENT_ERRORS 0x02	/* 400 and 404 go to the caller */

/*
 * What is known of the outcome of the last request sent, for writes whose
 * request failed: did it change anything at Vapi?
 */
typedef enum VapiRequestOutcome
{
	VAPI_OUTCOME_NONE,			/* no request yet */
	VAPI_OUTCOME_SENDING,		/* under way (or interrupted): unknown */
	VAPI_OUTCOME_NOT_SENT,		/* could not connect: nothing reached the API */
	VAPI_OUTCOME_REFUSED,		/* the API answered that it did not do it */
	VAPI_OUTCOME_UNKNOWN,		/* no usable answer: it may have been done */
	VAPI_OUTCOME_DONE			/* a 2xx answer (or an allowed 404) */
} VapiRequestOutcome;

extern VapiRequestOutcome vapi_last_request_outcome(void);

extern VapiConn *vapi_get_connection(ForeignServer *server, Oid userid);
struct ForeignScan;
struct ResultRelInfo;
struct EState;
extern Oid	vapi_scan_userid(struct ForeignScan *fsplan, struct EState *estate);
extern Oid	vapi_modify_userid(struct ResultRelInfo *rinfo, struct EState *estate);
extern VapiConn *vapi_write_connection(ForeignServer *server, Oid userid,
									   const char *relname);
extern const VapiServerOptions *vapi_connection_options(VapiConn *conn);
extern void vapi_connection_pin(VapiConn *conn, MemoryContext owner);
extern void vapi_connection_count_rows(VapiConn *conn, int64 rows);
extern Datum vapi_fdw_get_connections(PG_FUNCTION_ARGS);
extern Datum vapi_fdw_disconnect(PG_FUNCTION_ARGS);
extern Datum vapi_fdw_disconnect_all(PG_FUNCTION_ARGS);

/* What a deployment of the API may lack (found at run time). */
#define VAPI_API_NO_V2			0x01	/* no GET /v2/phone-number: use v1 */
#define VAPI_API_NO_SORT_ORDER	0x02	/* v2 without sortOrder */
#define VAPI_API_NO_SEARCH		0x04	/* v2 without search */
#define VAPI_API_NO_PAGE		0x08	/* v2 without page */

extern int	vapi_connection_api_lacks(VapiConn *conn);
extern const char *vapi_connection_server_name(VapiConn *conn);
extern int	vapi_cached_api_lacks(Oid serverid, Oid userid);
extern void vapi_connection_note_lack(VapiConn *conn, int flag);
extern void vapi_request(VapiConn *conn, const char *method,
						 const char *path_and_query,
						 const char *body, size_t body_len,
						 List *redact, int flags, VapiHttpResponse *resp,
						 MemoryContext resp_cxt, VapiStats *stats);
extern VapiHttp *vapi_connection_acquire(VapiConn *conn, MemoryContext owner);
extern void vapi_request_start(VapiConn *conn, VapiHttp *http,
							   const char *method, const char *path_and_query,
							   const char *body, size_t body_len,
							   MemoryContext resp_cxt, VapiStats *stats);
extern void vapi_request_finish(VapiConn *conn, VapiHttp *http,
								const char *method, const char *path_and_query,
								List *redact, int flags,
								VapiHttpResponse *resp, VapiStats *stats);
extern void vapi_raise_response(VapiConn *conn, const char *method,
								const char *path_and_query, List *redact,
								int flags, VapiHttpResponse *resp);

/* ----------------------------------------------------------------
 * shmem.c: the shared memory of vapi_fdw (with shared_preload_libraries).
 * ----------------------------------------------------------------
 */
extern void vapi_shmem_install(void);
extern bool vapi_shmem_ready(void);
extern LWLock *vapi_shmem_lock(void);

/* ----------------------------------------------------------------
 * stats.c: cumulative statistics of the requests sent, per foreign
 * server and user, shared by every backend when preloaded.
 * ----------------------------------------------------------------
 */
typedef struct VapiStatsEntry VapiStatsEntry;

extern Size vapi_stats_shmem_size(void);
extern void vapi_stats_shmem_init(void);
extern VapiStatsEntry *vapi_stats_entry(Oid serverid, Oid userid);
extern void vapi_stats_count_event(VapiStatsEntry *e, const VapiHttpEvent *ev,
								   const char *error_message);
extern void vapi_stats_count_rows(VapiStatsEntry *e, int64 rows);
extern bool vapi_track_stats;
extern Datum vapi_fdw_stats(PG_FUNCTION_ARGS);
extern Datum vapi_fdw_stats_reset(PG_FUNCTION_ARGS);

/* ----------------------------------------------------------------
 * budget.c: the rate budget (a token bucket per API key and URL, shared
 * by every backend when preloaded) and the statement request budget.
 * ----------------------------------------------------------------
 */
typedef struct VapiBucket VapiBucket;

extern int	vapi_max_requests_per_statement;

extern Size vapi_budget_shmem_size(void);
extern void vapi_budget_shmem_init(void);
extern VapiBucket *vapi_budget_bucket(const char *url, const char *api_key);
extern TimestampTz vapi_budget_take(VapiBucket *b, double rate, int burst);
extern TimestampTz vapi_budget_held_until(VapiBucket *b);
extern void vapi_budget_hold(VapiBucket *b, TimestampTz until);
extern bool vapi_budget_statement_allows(void);
extern void vapi_budget_statement_refuse(void);

/* ----------------------------------------------------------------
 * option.c
 * ----------------------------------------------------------------
 */
extern void vapi_get_server_options(ForeignServer *server,
									VapiServerOptions *opts);
extern int	vapi_table_field_drift(Oid relid);
extern Datum vapi_fdw_validator(PG_FUNCTION_ARGS);

/* ----------------------------------------------------------------
 * columns.c: the column map.
 * ----------------------------------------------------------------
 */
extern char *vapi_column_key(Oid relid, AttrNumber attnum,
							 const char *attname, bool *is_explicit);
extern bool vapi_column_reads_attrs(FormData_pg_attribute *att,
									bool is_explicit);
extern VapiColumn *vapi_build_columns(Relation rel, List *retrieved_attrs,
									  int *ncolumns);
extern AttrNumber vapi_find_key_attno(Relation rel, const char *key);
extern VapiColumn *vapi_column_for_attno(VapiColumn *columns, int ncolumns,
										 AttrNumber attno);
extern const char *vapi_column_label(VapiColumn *columns, int ncolumns,
									 const char *key);

/* ----------------------------------------------------------------
 * rules.c: the phone-number contract (providers, fields, secrets, limits).
 * ----------------------------------------------------------------
 */
typedef struct VapiProvider
{
	const char *name;
	const char *const *fields;	/* provider-specific fields */
	const char *const *required;
} VapiProvider;

extern const VapiProvider *vapi_provider_find(const char *name);
extern const char *vapi_provider_names(void);
extern bool vapi_provider_takes(const VapiProvider *provider, const char *key);
extern bool vapi_field_common(const char *key);
extern bool vapi_field_assigned(const char *key);
extern List *vapi_field_assigned_list(void);
extern const char *vapi_field_create_only(const char *key);
extern bool vapi_secret_hidden(int depth, const char *parent_key,
							   const char *key, bool own_column);
extern bool vapi_secret_key(const char *key);
extern const char *vapi_secret_in_object(const char *key);
extern const char *vapi_secret_stale(const char *key);
extern void vapi_check_name(const char *name, int len, const char *colname);
extern bool vapi_field_expected(const char *provider, const char *key);
extern bool vapi_field_known(const char *key);
extern bool vapi_field_required_by_a_provider(const char *key);

/* ----------------------------------------------------------------
 * deparse.c: which quals can be pushed, and the requests they make
 * (strings only, no network).
 * ----------------------------------------------------------------
 */

/* The two timestamp fields the list endpoint filters on. */
#define VAPI_FIELD_CREATED		0
#define VAPI_FIELD_UPDATED		1
#define VAPI_NFIELDS			2

/* The four comparisons of each (createdAtGt, createdAtGe, ...). */
#define VAPI_OP_GT				0
#define VAPI_OP_GE				1
#define VAPI_OP_LT				2
#define VAPI_OP_LE				3
#define VAPI_NOPS				4

/* The columns of a foreign table that pushdown can use. */
typedef struct VapiRelColumns
{
	AttrNumber	time_attno[VAPI_NFIELDS];	/* timestamptz createdAt/updatedAt */
	AttrNumber	id_attno;		/* the column reading "id" */
	Oid			id_type;		/* uuid, text or varchar */
	Bitmapset  *search_attnos;	/* text columns reading name/number/sipUri */
} VapiRelColumns;

typedef enum VapiQualKind
{
	VAPI_QUAL_TIME,				/* created_at/updated_at compared to a value */
	VAPI_QUAL_ID_EQ,			/* id = value */
	VAPI_QUAL_ID_ANY,			/* id = ANY(array) */
	VAPI_QUAL_SEARCH			/* a search prefilter (superset) */
} VapiQualKind;

/* A qual that can be pushed, as found by vapi_classify_qual. */
typedef struct VapiQual
{
	VapiQualKind kind;
	int			field;			/* TIME: VAPI_FIELD_* */
	int			strategy;		/* TIME: btree strategy, column on the left */
	Expr	   *operand;		/* TIME, ID_*: evaluated at execution */
	char	   *search;			/* SEARCH: the fragment */
} VapiQual;

/* One list request. */
typedef struct VapiListRequest
{
	bool		v1;				/* GET /phone-number: limit and times only */
	int			limit;			/* page size */
	int			page;			/* 1-based page number, 1 = omit */
	bool		ascending;		/* sortOrder */
	bool		send_sort_order;	/* the deployment takes sortOrder */
	const char *search;			/* or NULL */
	const char *time[VAPI_NFIELDS][VAPI_NOPS];	/* values or NULL */
} VapiListRequest;

/* The time bounds of a scan, while its quals' values are folded. */
typedef struct VapiTimeBounds
{
	int64		lower_ts[VAPI_NFIELDS];
	int			lower_op[VAPI_NFIELDS];	/* VAPI_OP_GT, _GE, or -1: none */
	int64		upper_ts[VAPI_NFIELDS];
	int			upper_op[VAPI_NFIELDS];	/* VAPI_OP_LT, _LE, or -1: none */
	const char *placeholder[VAPI_NFIELDS][VAPI_NOPS];	/* for EXPLAIN */
} VapiTimeBounds;

extern void vapi_rel_columns(Relation rel, VapiRelColumns *cols);
extern void vapi_bounds_init(VapiTimeBounds *b);
extern void vapi_bounds_add(VapiTimeBounds *b, int field, int strategy,
							int64 ts);
extern void vapi_bounds_add_placeholder(VapiTimeBounds *b, int field,
										int strategy, const char *text);
extern bool vapi_bounds_params(const VapiTimeBounds *b,
							   const char *time[VAPI_NFIELDS][VAPI_NOPS]);
extern bool vapi_time_value(Datum value, Oid type, int64 *ts);
extern char *vapi_datum_id(Datum value, Oid type, char **text);
extern bool vapi_classify_qual(PlannerInfo *root, RelOptInfo *baserel,
							   const VapiRelColumns *cols, Expr *clause,
							   bool allow_outer, VapiQual *q);
extern char *vapi_deparse_list_request(const VapiListRequest *req);
extern char *vapi_deparse_item_path(const char *id);
extern char *vapi_format_timestamp(int64 ts, bool round_up);
extern bool vapi_parse_timestamp(const char *s, int64 *usecs);
extern char *vapi_format_unix_us(int64 us);
extern int64 vapi_ms_floor(int64 ts);
extern bool vapi_valid_id(const char *id);
extern char *vapi_id_lower(const char *id);

/* ----------------------------------------------------------------
 * json.c: reading the API's answers; the only file that includes json-c.
 * ----------------------------------------------------------------
 */
typedef struct VapiPage VapiPage;
typedef struct VapiItem VapiItem;	/* one phone-number object */

/* What the metadata of a v2 list page says about further pages. */
typedef struct VapiPageInfo
{
	int			count;			/* number of results on this page */
	int			items_per_page; /* metadata.itemsPerPage, or -1 */
	int			has_next_page;	/* 1, 0, or -1 when absent */
	int64		total_items;	/* metadata.totalItems, or -1 */
	int64		current_page;	/* metadata.currentPage, or -1 */
	int			beyond_retention;	/* metadata.itemsBeyondRetention: 1, 0, -1 */
	bool		has_applied_created_ge; /* metadata.createdAtGe is there: */
	int64		applied_created_ge; /* the lower bound the server applied */
} VapiPageInfo;

extern VapiPage *vapi_json_parse_page(const char *buf, size_t len,
									  MemoryContext cxt, VapiPageInfo *info);
extern VapiPage *vapi_json_parse_object(const char *buf, size_t len,
										MemoryContext cxt);
extern VapiItem *vapi_json_page_item(VapiPage *page, int i);
extern const char *vapi_json_item_id(VapiItem *item);
extern const char *vapi_json_item_string(VapiItem *item, const char *key);
extern void vapi_json_item_to_datums(VapiItem *item, VapiColumn *columns,
									 int ncolumns, const char *relname,
									 Datum *values, bool *nulls);
extern char *vapi_json_error_message(const char *buf, size_t len);
extern Jsonb *vapi_json_item_subset(VapiItem *item, List *keys);
extern bool vapi_json_item_has_path(VapiItem *item, char **path, int npath);

/* ----------------------------------------------------------------
 * body.c: request bodies of writes, built with jsonb, and their checks.
 * ----------------------------------------------------------------
 */

/* A field of a request body: a key path and its value as JSON text. */
typedef struct VapiBodyField
{
	char	  **path;
	int			npath;
	const char *json;			/* NULL: JSON null */
} VapiBodyField;

extern char *vapi_body_build(Jsonb *base, List *drop, List *fields);
extern VapiBodyField *vapi_body_field(char **path, int npath, const char *json);
extern VapiBodyField *vapi_body_column(VapiColumn *col, Datum value,
									   bool isnull);
extern char *vapi_body_string(Jsonb *object, const char *key);
extern Jsonb *vapi_body_attrs(VapiColumn *col, Datum value);
extern void vapi_body_check_create_column(VapiColumn *col);
extern const VapiProvider *vapi_body_provider(const char *provider_name,
											  Jsonb *attrs,
											  VapiColumn *columns,
											  int ncolumns);
extern void vapi_body_check_create(const char *body,
								   const VapiProvider *provider,
								   VapiColumn *columns, int ncolumns);
extern void vapi_body_check_update_column(const VapiProvider *provider,
										  VapiColumn *col, Datum value,
										  bool isnull);

/* ----------------------------------------------------------------
 * xact.c: what the current transaction has changed at Vapi.
 * ----------------------------------------------------------------
 */
extern void vapi_xact_init(void);
extern void vapi_xact_write_begin(CmdType operation, CommandId cid);
extern void vapi_xact_write_end(bool applied, const char *created_id);
extern bool vapi_xact_created_by_command(const char *id, CommandId curcid);
extern bool vapi_xact_created_since(CommandId curcid);
extern char *vapi_xact_statement_writes(CommandId cid);
extern void vapi_xact_totals(int64 *applied, int64 *unknown, bool *pending);
extern void vapi_xact_mark_reported(void);
extern bool vapi_xact_only_command(CommandId cid);

/* ----------------------------------------------------------------
 * import.c
 * ----------------------------------------------------------------
 */
extern List *vapiImportForeignSchema(ImportForeignSchemaStmt *stmt,
									 Oid serverOid);

/* ----------------------------------------------------------------
 * modify.c
 * ----------------------------------------------------------------
 */
struct ExplainState;
struct ModifyTableState;
struct ResultRelInfo;
struct EState;
struct TupleTableSlot;
struct ModifyTable;
extern void vapiAddForeignUpdateTargets(PlannerInfo *root, Index rtindex,
										RangeTblEntry *target_rte,
										Relation target_relation);
extern List *vapiPlanForeignModify(PlannerInfo *root,
								   struct ModifyTable *plan,
								   Index resultRelation, int subplan_index);
extern void vapiBeginForeignModify(struct ModifyTableState *mtstate,
								   struct ResultRelInfo *rinfo,
								   List *fdw_private, int subplan_index,
								   int eflags);
extern struct TupleTableSlot *vapiExecForeignInsert(struct EState *estate,
													struct ResultRelInfo *rinfo,
													struct TupleTableSlot *slot,
													struct TupleTableSlot *planSlot);
extern struct TupleTableSlot *vapiExecForeignUpdate(struct EState *estate,
													struct ResultRelInfo *rinfo,
													struct TupleTableSlot *slot,
													struct TupleTableSlot *planSlot);
extern struct TupleTableSlot *vapiExecForeignDelete(struct EState *estate,
													struct ResultRelInfo *rinfo,
													struct TupleTableSlot *slot,
													struct TupleTableSlot *planSlot);
extern void vapiEndForeignModify(struct EState *estate,
								 struct ResultRelInfo *rinfo);
extern void vapiBeginForeignInsert(struct ModifyTableState *mtstate,
								   struct ResultRelInfo *rinfo);
extern void vapiEndForeignInsert(struct EState *estate,
								 struct ResultRelInfo *rinfo);
extern int	vapiIsForeignRelUpdatable(Relation rel);
struct ForeignScanState;
extern bool vapiPlanDirectModify(PlannerInfo *root, struct ModifyTable *plan,
								 Index resultRelation, int subplan_index);
extern void vapiBeginDirectModify(struct ForeignScanState *node, int eflags);
extern struct TupleTableSlot *vapiIterateDirectModify(struct ForeignScanState *node);
extern void vapiEndDirectModify(struct ForeignScanState *node);
extern void vapiExplainDirectModify(struct ForeignScanState *node,
									struct ExplainState *es);
extern void vapiExplainForeignModify(struct ModifyTableState *mtstate,
									 struct ResultRelInfo *rinfo,
									 List *fdw_private, int subplan_index,
									 struct ExplainState *es);

/* ----------------------------------------------------------------
 * vapi_fdw.c: the handler, planning, EXPLAIN.
 * ----------------------------------------------------------------
 */
struct ForeignScan;
struct ForeignScanState;
extern void vapi_scan_plan_decode(List *fdw_private, VapiScanPlan *plan);
extern bool vapi_is_own_scan(struct ForeignScanState *node);

/* ----------------------------------------------------------------
 * scan.c: the scan engine.
 * ----------------------------------------------------------------
 */
typedef struct VapiScanState VapiScanState;

extern VapiScanState *vapi_scan_begin(struct ForeignScanState *node,
									  const VapiScanPlan *plan, Oid userid);
extern bool vapi_scan_next(VapiScanState *st, Datum *values, bool *nulls);
extern void vapi_scan_rescan(VapiScanState *st);
extern void vapi_scan_end(VapiScanState *st);
extern List *vapi_scan_explain_requests(VapiScanState *st, Oid serverid,
										Oid userid, List *dpcontext,
										bool useprefix);
extern const char *vapi_scan_first_request(VapiScanState *st);
extern bool vapi_scan_reordered(VapiScanState *st);
extern int	vapi_scan_windows(VapiScanState *st);
extern bool vapi_scan_count(VapiScanState *st, int64 *count);
extern int	vapi_scan_count_source(VapiScanState *st);
extern Relation vapi_scan_relation(VapiScanState *st);
extern const VapiStats *vapi_scan_stats(VapiScanState *st);
struct HeapTupleData;
extern int	vapi_sample_rows(Relation relation, int elevel,
							 struct HeapTupleData **rows, int targrows,
							 double *totalrows, double *totaldeadrows);
struct PlanState;

extern struct ForeignScanState *vapi_scan_keep_keys(struct PlanState *planstate,
													Index scanrelid,
													List *keys);
extern Jsonb *vapi_scan_kept_object(struct ForeignScanState *node,
									const char *id);

#endif							/* VAPI_FDW_H */
