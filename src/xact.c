/*-------------------------------------------------------------------------
 *
 * xact.c
 *		  What the current transaction has changed at Vapi.
 *
 * The Vapi API applies every request at once and has nothing to roll back,
 * so PostgreSQL's transaction cannot cover it.  This file keeps the ledger
 * that lets vapi_fdw be honest about that:
 *   - every write that was applied, or whose outcome is unknown (its
 *     request may have reached the API), counted per command, savepoint
 *     level and kind;
 *   - the ids of the phone numbers each command created, so that a scan of
 *     the same statement never returns them (a statement sees the table as
 *     it was when it started, as it would a local table: INSERT INTO t
 *     SELECT ... FROM t ends);
 *   - a WARNING when a transaction or a savepoint is rolled back after
 *     changes at Vapi, which stay applied;
 *   - refusing PREPARE TRANSACTION after changes at Vapi, since they
 *     could not be rolled back later either.
 * The ledger lives in TopTransactionContext and goes with the transaction.
 *
 * src/xact.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"

#include "vapi_fdw.h"

/* Writes of one kind by one command at one savepoint level. */
typedef struct VapiWriteCount
{
	CommandId	cid;
	int			nestlevel;
	CmdType		operation;
	int64		applied;
	int64		unknown;		/* requests whose outcome is unknown */
} VapiWriteCount;

/* An id created in this transaction, and by which command. */
typedef struct VapiCreatedId
{
	char		id[VAPI_ID_LEN + 1];	/* hash key */
	CommandId	cid;
} VapiCreatedId;

/* The ledger of the current transaction, in TopTransactionContext. */
typedef struct VapiLedger
{
	List	   *counts;			/* VapiWriteCount, not yet warned about */
	bool		any_write;		/* anything applied or unknown, ever */
	HTAB	   *created;		/* VapiCreatedId by id */
	bool		pending;		/* a write request is under way */
	CmdType		pending_op;
	CommandId	pending_cid;
	uint64		changes;		/* bumped by every begin and end of a write */
	uint64		reported;		/* "changes" when an error said it all */
} VapiLedger;

static VapiLedger *ledger = NULL;

static VapiLedger *vapi_ledger(void);
static VapiWriteCount *vapi_ledger_count(CommandId cid, CmdType operation);
static void vapi_ledger_settle_pending(void);
static char *vapi_describe_counts(List *counts, int min_level, CommandId cid);
static void vapi_xact_callback(XactEvent event, void *arg);
static void vapi_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
								  SubTransactionId parentSubid, void *arg);

/*
 * vapi_xact_init
 *		Register the transaction callbacks (once, at module load).
 */
void
vapi_xact_init(void)
{
	RegisterXactCallback(vapi_xact_callback, NULL);
	RegisterSubXactCallback(vapi_subxact_callback, NULL);
}

/*
 * vapi_ledger
 *		The ledger of the current transaction, created on first use.
 */
static VapiLedger *
vapi_ledger(void)
{
	if (ledger == NULL)
	{
		HASHCTL		ctl;

		ledger = MemoryContextAllocZero(TopTransactionContext,
										sizeof(VapiLedger));
		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = VAPI_ID_LEN + 1;
		ctl.entrysize = sizeof(VapiCreatedId);
		ctl.hcxt = TopTransactionContext;
		ledger->created = hash_create("vapi_fdw created ids", 64, &ctl,
									  HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	}
	return ledger;
}

/*
 * vapi_ledger_count
 *		The counter of writes of "operation" by command "cid" at the
 *		current savepoint level.
 */
static VapiWriteCount *
vapi_ledger_count(CommandId cid, CmdType operation)
{
	VapiLedger *l = vapi_ledger();
	int			level = GetCurrentTransactionNestLevel();
	ListCell   *lc;
	VapiWriteCount *c;
	MemoryContext oldcxt;

	foreach(lc, l->counts)
	{
		c = lfirst(lc);
		if (c->cid == cid && c->nestlevel == level && c->operation == operation)
			return c;
	}
	oldcxt = MemoryContextSwitchTo(TopTransactionContext);
	c = palloc0(sizeof(VapiWriteCount));
	c->cid = cid;
	c->nestlevel = level;
	c->operation = operation;
	l->counts = lappend(l->counts, c);
	MemoryContextSwitchTo(oldcxt);
	return c;
}

/*
 * vapi_xact_write_begin
 *		A write request of "operation" by command "cid" is about to be
 *		sent.  Until vapi_xact_write_end, its outcome counts as unknown if
 *		the transaction ends.
 */
void
vapi_xact_write_begin(CmdType operation, CommandId cid)
{
	VapiLedger *l = vapi_ledger();

	l->pending = true;
	l->pending_op = operation;
	l->pending_cid = cid;
	l->changes++;
}

/*
 * vapi_xact_write_end
 *		The write request begun last has an answer: "applied" says whether
 *		it changed anything at Vapi; "created_id" is the id of a phone
 *		number it created, or NULL.
 */
void
vapi_xact_write_end(bool applied, const char *created_id)
{
	VapiLedger *l = vapi_ledger();

	Assert(l->pending);
	l->pending = false;
	l->changes++;
	if (!applied)
		return;
	vapi_ledger_count(l->pending_cid, l->pending_op)->applied++;
	l->any_write = true;
	if (created_id != NULL && strlen(created_id) == VAPI_ID_LEN)
	{
		VapiCreatedId *e;
		bool		found;

		e = hash_search(l->created, created_id, HASH_ENTER, &found);
		if (!found)
			e->cid = l->pending_cid;
	}
}

/*
 * vapi_ledger_settle_pending
 *		A write request was under way when its (sub)transaction failed:
 *		count it as applied, not applied or unknown, from what the last
 *		request's outcome was.
 */
static void
vapi_ledger_settle_pending(void)
{
	VapiRequestOutcome outcome;

	if (ledger == NULL || !ledger->pending)
		return;
	ledger->pending = false;
	outcome = vapi_last_request_outcome();
	if (outcome == VAPI_OUTCOME_DONE)
		vapi_ledger_count(ledger->pending_cid, ledger->pending_op)->applied++;
	else if (outcome == VAPI_OUTCOME_SENDING || outcome == VAPI_OUTCOME_UNKNOWN)
		vapi_ledger_count(ledger->pending_cid, ledger->pending_op)->unknown++;
	else
		return;
	ledger->any_write = true;
}

/*
 * vapi_xact_created_by_command
 *		Was the phone number with this id created in this transaction by
 *		command "curcid" or a later one?  A scan whose snapshot has command
 *		id "curcid" does not return it, as it would not see such a row of a
 *		local table.
 */
bool
vapi_xact_created_by_command(const char *id, CommandId curcid)
{
	VapiCreatedId *e;

	if (ledger == NULL || curcid == InvalidCommandId ||
		hash_get_num_entries(ledger->created) == 0 ||
		strlen(id) != VAPI_ID_LEN)
		return false;
	e = hash_search(ledger->created, id, HASH_FIND, NULL);
	return e != NULL && e->cid >= curcid;
}

/*
 * vapi_xact_created_since
 *		Has the transaction created a phone number in command "curcid" or a
 *		later one (which a scan of that command must not see)?
 */
bool
vapi_xact_created_since(CommandId curcid)
{
	HASH_SEQ_STATUS scan;
	VapiCreatedId *e;

	if (ledger == NULL || curcid == InvalidCommandId ||
		hash_get_num_entries(ledger->created) == 0)
		return false;
	hash_seq_init(&scan, ledger->created);
	while ((e = hash_seq_search(&scan)) != NULL)
	{
		if (e->cid >= curcid)
		{
			hash_seq_term(&scan);
			return true;
		}
	}
	return false;
}

/*
 * vapi_describe_counts
 *		"2 phone numbers created and 1 deleted at Vapi", with the requests
 *		of unknown outcome, for the counts at savepoint level "min_level" or
 *		deeper (and of command "cid", unless it is InvalidCommandId); NULL
 *		if there are none.
 */
static char *
vapi_describe_counts(List *counts, int min_level, CommandId cid)
{
	int64		n[3] = {0, 0, 0};
	int64		unknown = 0;
	static const char *const verbs[3] = {"created", "updated", "deleted"};
	StringInfoData buf;
	ListCell   *lc;
	int			i;
	bool		first = true;

	foreach(lc, counts)
	{
		VapiWriteCount *c = lfirst(lc);
		int			k = c->operation == CMD_INSERT ? 0 :
			c->operation == CMD_UPDATE ? 1 : 2;

		if (c->nestlevel < min_level ||
			(cid != InvalidCommandId && c->cid != cid))
			continue;
		n[k] += c->applied;
		unknown += c->unknown;
	}
	if (n[0] + n[1] + n[2] + unknown == 0)
		return NULL;

	initStringInfo(&buf);
	for (i = 0; i < 3; i++)
	{
		if (n[i] == 0)
			continue;
		if (!first)
			appendStringInfoString(&buf, ", ");
		if (first)
			appendStringInfo(&buf, INT64_FORMAT " phone number%s %s",
							 n[i], n[i] == 1 ? "" : "s", verbs[i]);
		else
			appendStringInfo(&buf, INT64_FORMAT " %s", n[i], verbs[i]);
		first = false;
	}
	if (!first)
		appendStringInfoString(&buf, " at Vapi");
	if (unknown > 0)
		appendStringInfo(&buf, "%s" INT64_FORMAT " write request%s of unknown outcome (%s may have been applied at Vapi)",
						 first ? "" : ", and ", unknown,
						 unknown == 1 ? "" : "s",
						 unknown == 1 ? "it" : "they");
	return buf.data;
}

/*
 * vapi_xact_statement_writes
 *		What command "cid" has already changed at Vapi, for the context of
 *		an error raised while it runs ("3 phone numbers deleted at Vapi"),
 *		or NULL.
 */
char *
vapi_xact_statement_writes(CommandId cid)
{
	if (ledger == NULL || cid == InvalidCommandId)
		return NULL;
	return vapi_describe_counts(ledger->counts, 0, cid);
}

/*
 * vapi_xact_totals
 *		What the whole transaction has changed at Vapi so far: writes
 *		applied, and of unknown outcome; "pending" if a write request is
 *		under way (or was interrupted).
 */
void
vapi_xact_totals(int64 *applied, int64 *unknown, bool *pending)
{
	ListCell   *lc;

	*applied = *unknown = 0;
	*pending = false;
	if (ledger == NULL)
		return;
	foreach(lc, ledger->counts)
	{
		VapiWriteCount *c = lfirst(lc);

		*applied += c->applied;
		*unknown += c->unknown;
	}
	*pending = ledger->pending;
}

/*
 * vapi_xact_only_command
 *		Is everything the transaction changed at Vapi the doing of command
 *		"cid", with no write under way?
 */
bool
vapi_xact_only_command(CommandId cid)
{
	ListCell   *lc;

	if (ledger == NULL || ledger->pending)
		return false;
	foreach(lc, ledger->counts)
	{
		VapiWriteCount *c = lfirst(lc);

		if (c->cid != cid && (c->applied > 0 || c->unknown > 0))
			return false;
	}
	return true;
}

/*
 * vapi_xact_mark_reported
 *		An error being raised says everything the transaction has changed at
 *		Vapi (its context counts the rows): the rollback that follows need
 *		not warn about it again.  (The WARNING of a rollback reaches the
 *		client after the error, so it is kept for what no error said: an
 *		explicit ROLLBACK, an error raised elsewhere after the writes.)
 */
void
vapi_xact_mark_reported(void)
{
	if (ledger != NULL)
		ledger->reported = ledger->changes;
}

/*
 * vapi_xact_callback
 *		End of a transaction: refuse to PREPARE one that changed anything
 *		at Vapi; warn that a rollback leaves the changes at Vapi in place;
 *		forget the ledger.
 */
static void
vapi_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_PREPARE:
			if (ledger != NULL && (ledger->any_write || ledger->pending))
			{
				char	   *what;

				vapi_ledger_settle_pending();
				what = vapi_describe_counts(ledger->counts, 0, InvalidCommandId);
				/* this error says it all: the rollback need not warn */
				ledger->reported = ledger->changes;
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot PREPARE a transaction that has changed phone numbers at Vapi"),
						 what != NULL ?
						 errdetail("The Vapi API applies each change at once and cannot roll it back later (this transaction: %s).",
								   what) :
						 errdetail("The Vapi API applies each change at once and cannot roll it back later.")));
			}
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			if (ledger != NULL)
			{
				char	   *what;
				bool		said = ledger->reported == ledger->changes;

				vapi_ledger_settle_pending();
				what = vapi_describe_counts(ledger->counts, 0, InvalidCommandId);
				if (what != NULL && !said)
					ereport(WARNING,
							(errcode(ERRCODE_WARNING),
							 errmsg("the transaction was rolled back, but its changes at Vapi stay applied"),
							 errdetail("%s; the Vapi API has no transactions.",
									   what)));
			}
			ledger = NULL;
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PREPARE:
			ledger = NULL;
			break;
		default:
			break;
	}
}

/*
 * vapi_subxact_callback
 *		End of a savepoint (or a PL/pgSQL exception block): on rollback,
 *		warn that its changes at Vapi stay applied; on release, its writes
 *		become the parent's.
 */
static void
vapi_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					  SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();
	ListCell   *lc;

	if (ledger == NULL)
		return;
	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		char	   *what;
		bool		said = ledger->reported == ledger->changes;

		vapi_ledger_settle_pending();
		what = vapi_describe_counts(ledger->counts, level, InvalidCommandId);
		if (what != NULL && !said)
			ereport(WARNING,
					(errcode(ERRCODE_WARNING),
					 errmsg("the savepoint was rolled back, but its changes at Vapi stay applied"),
					 errdetail("%s; the Vapi API has no transactions.", what)));
		/* warned about once: forget them (any_write stays set) */
		foreach(lc, ledger->counts)
		{
			VapiWriteCount *c = lfirst(lc);

			if (c->nestlevel >= level)
				ledger->counts = foreach_delete_current(ledger->counts, lc);
		}
	}
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		foreach(lc, ledger->counts)
		{
			VapiWriteCount *c = lfirst(lc);

			if (c->nestlevel >= level)
				c->nestlevel = level - 1;
		}
	}
}
