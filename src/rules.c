/*-------------------------------------------------------------------------
 *
 * rules.c
 *		  The phone-number contract of the Vapi API, in one table: the
 *		  providers and the fields each takes and requires, the fields every
 *		  provider takes, the fields the API assigns, the fields that are
 *		  secret, and the limits of values.
 *
 * The read side (which keys "attrs" and object columns leave out), the
 * write side (which fields a body may carry, which are required, which a
 * row's provider refuses), the drift check (which fields every phone number
 * of a provider carries) and redaction (which values never appear in a
 * message) all ask this file, so that the rules cannot drift apart.
 *
 * src/rules.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "mb/pg_wchar.h"

#include "vapi_fdw.h"

/* Longest name the API accepts, in characters. */
#define VAPI_MAX_NAME_CHARS		40

static const char *const vapi_byo_fields[] = {"number", "credentialId", "numberE164CheckEnabled", NULL};
static const char *const vapi_byo_required[] = {"credentialId", NULL};
static const char *const vapi_twilio_fields[] = {"number", "twilioAccountSid", "twilioAuthToken", "twilioApiKey", "twilioApiSecret", "smsEnabled", NULL};
static const char *const vapi_twilio_required[] = {"number", "twilioAccountSid", NULL};
static const char *const vapi_carrier_fields[] = {"number", "credentialId", NULL};
static const char *const vapi_carrier_required[] = {"number", "credentialId", NULL};
static const char *const vapi_vapi_fields[] = {"numberDesiredAreaCode", "sipUri", "authentication", NULL};
static const char *const vapi_none[] = {NULL};

/* What each provider accepts on create, and requires. */
static const VapiProvider vapi_providers[] = {
	{"byo-phone-number", vapi_byo_fields, vapi_byo_required},
	{"twilio", vapi_twilio_fields, vapi_twilio_required},
	{"vonage", vapi_carrier_fields, vapi_carrier_required},
	{"vapi", vapi_vapi_fields, vapi_none},
	{"telnyx", vapi_carrier_fields, vapi_carrier_required},
};

/* Fields every provider accepts. */
static const char *const vapi_common_fields[] = {
	"provider", "name", "assistantId", "workflowId", "squadId", "server",
	"fallbackDestination", "hooks", NULL
};

/* Fields the API sends in every phone number, whatever its provider. */
static const char *const vapi_always_fields[] = {
	"id", "orgId", "provider", "createdAt", "updatedAt", NULL
};

/* Fields the API assigns: never sent. */
static const char *const vapi_assigned_fields[] = {
	"id", "orgId", "status", "createdAt", "updatedAt", NULL
};

/*
 * Fields that are secrets.  None is put into "attrs" (they are readable
 * only through a column of their own, where a column privilege can hide
 * them), and the values written to any of them are redacted from the
 * API's messages.
 *
 * "in_parent": the secret does show in a column reading its parent object
 * (authentication.password in the authentication column, the documented
 * way to read it).  "stale": a field that objects created under older
 * versions of the API still carry inside an object and that the current
 * API refuses in a write: left out of every column but one whose key
 * names it, and never sent back when an UPDATE writes into that object.
 */
static const struct
{
	const char *top;
	const char *sub;			/* NULL: the top-level field itself */
	bool		in_parent;
	bool		stale;
}			vapi_secrets[] = {
	{"twilioAuthToken", NULL, false, false},
	{"twilioApiSecret", NULL, false, false},
	{"serverUrlSecret", NULL, false, false},
	{"authentication", "password", true, false},
	{"server", "secret", false, true},
};

static bool vapi_in_list(const char *const *list, const char *key);
static const char *vapi_secret_inside(const char *key, bool in_parent,
									  bool stale);

/*
 * vapi_in_list
 *		Is "key" in the NULL-terminated list?
 */
static bool
vapi_in_list(const char *const *list, const char *key)
{
	for (; *list != NULL; list++)
		if (strcmp(*list, key) == 0)
			return true;
	return false;
}

/*
 * vapi_provider_find
 *		The description of a provider, or NULL for one the API does not
 *		take.
 */
const VapiProvider *
vapi_provider_find(const char *name)
{
	int			i;

	for (i = 0; i < lengthof(vapi_providers); i++)
		if (strcmp(vapi_providers[i].name, name) == 0)
			return &vapi_providers[i];
	return NULL;
}

/*
 * vapi_provider_names
 *		The providers the API takes, as a list for a message.
 */
const char *
vapi_provider_names(void)
{
	static char names[128];

	if (names[0] == '\0')
	{
		size_t		len = 0;
		int			i;

		for (i = 0; i < lengthof(vapi_providers) && len < sizeof(names); i++)
			len += snprintf(names + len, sizeof(names) - len, "%s%s",
							i > 0 ? ", " : "", vapi_providers[i].name);
	}
	return names;
}

/*
 * vapi_provider_takes
 *		Does the provider take "key" in a body?  Fields every provider
 *		takes and fields vapi_fdw does not know (the API judges those, so
 *		that a field Vapi adds works without a new release) count as taken.
 */
bool
vapi_provider_takes(const VapiProvider *provider, const char *key)
{
	return !vapi_field_known(key) || vapi_field_common(key) ||
		vapi_in_list(provider->fields, key);
}

/*
 * vapi_field_known
 *		Is "key" a field vapi_fdw knows (of any provider)?
 */
bool
vapi_field_known(const char *key)
{
	int			i;

	if (vapi_field_common(key) || vapi_field_assigned(key))
		return true;
	for (i = 0; i < lengthof(vapi_providers); i++)
		if (vapi_in_list(vapi_providers[i].fields, key))
			return true;
	return false;
}

/*
 * vapi_field_common
 *		Is "key" a field every provider takes?
 */
bool
vapi_field_common(const char *key)
{
	return vapi_in_list(vapi_common_fields, key);
}

/*
 * vapi_field_assigned
 *		Is "key" a field the API assigns (never sent)?
 */
bool
vapi_field_assigned(const char *key)
{
	return vapi_in_list(vapi_assigned_fields, key);
}

/*
 * vapi_field_assigned_list
 *		The fields the API assigns, as a List of C strings.
 */
List *
vapi_field_assigned_list(void)
{
	List	   *result = NIL;
	const char *const *p;

	for (p = vapi_assigned_fields; *p != NULL; p++)
		result = lappend(result, (char *) *p);
	return result;
}

/*
 * vapi_field_create_only
 *		Why a top-level field cannot be changed by an UPDATE, or NULL if it
 *		can.
 */
const char *
vapi_field_create_only(const char *key)
{
	if (strcmp(key, "provider") == 0)
		return "The provider of a phone number cannot change.";
	if (strcmp(key, "numberDesiredAreaCode") == 0)
		return "The area code is only used to buy a number.";
	if (vapi_field_assigned(key))
		return "The API assigns it.";
	return NULL;
}

/*
 * vapi_secret_hidden
 *		Reading an object at nesting "depth" (0: the phone number itself,
 *		1: an object at "parent_key"), is "key" a secret to leave out?  In
 *		a column reading that object ("own_column"), a secret that shows in
 *		its parent's column is kept.
 */
bool
vapi_secret_hidden(int depth, const char *parent_key, const char *key,
				   bool own_column)
{
	int			i;

	for (i = 0; i < lengthof(vapi_secrets); i++)
	{
		if (depth == 0 && vapi_secrets[i].sub == NULL &&
			strcmp(key, vapi_secrets[i].top) == 0)
			return true;
		if (depth == 1 && parent_key != NULL &&
			vapi_secrets[i].sub != NULL &&
			!(own_column && vapi_secrets[i].in_parent) &&
			strcmp(parent_key, vapi_secrets[i].top) == 0 &&
			strcmp(key, vapi_secrets[i].sub) == 0)
			return true;
	}
	return false;
}

/*
 * vapi_secret_key
 *		Does a column reading the key path "key" (dotted) hold a secret,
 *		whose values are redacted from messages?
 */
bool
vapi_secret_key(const char *key)
{
	int			i;

	for (i = 0; i < lengthof(vapi_secrets); i++)
	{
		size_t		toplen = strlen(vapi_secrets[i].top);

		if (vapi_secrets[i].sub == NULL ?
			strcmp(key, vapi_secrets[i].top) == 0 :
			(strncmp(key, vapi_secrets[i].top, toplen) == 0 &&
			 key[toplen] == '.' &&
			 strcmp(key + toplen + 1, vapi_secrets[i].sub) == 0))
			return true;
	}
	return false;
}

/*
 * vapi_secret_inside
 *		The secret field inside the object at top-level key "key" that is
 *		shown in a column reading the object ("in_parent") or that is stale,
 *		as asked; NULL if there is none.
 */
static const char *
vapi_secret_inside(const char *key, bool in_parent, bool stale)
{
	int			i;

	for (i = 0; i < lengthof(vapi_secrets); i++)
		if (vapi_secrets[i].sub != NULL &&
			(!in_parent || vapi_secrets[i].in_parent) &&
			(!stale || vapi_secrets[i].stale) &&
			strcmp(key, vapi_secrets[i].top) == 0)
			return vapi_secrets[i].sub;
	return NULL;
}

/*
 * vapi_secret_in_object
 *		The secret field inside the object at top-level key "key" that a
 *		column reading that whole object holds in clear (its value is
 *		redacted from messages), or NULL.
 */
const char *
vapi_secret_in_object(const char *key)
{
	return vapi_secret_inside(key, true, false);
}

/*
 * vapi_secret_stale
 *		The stale secret inside the object at top-level key "key" that an
 *		UPDATE must not send back, or NULL.
 */
const char *
vapi_secret_stale(const char *key)
{
	return vapi_secret_inside(key, false, true);
}

/*
 * vapi_check_name
 *		ERROR if a name (of "len" bytes) is longer than the API accepts;
 *		"colname" is the column it comes from.
 */
void
vapi_check_name(const char *name, int len, const char *colname)
{
	int			chars = pg_mbstrlen_with_len(name, len);

	if (chars > VAPI_MAX_NAME_CHARS)
		ereport(ERROR,
				(errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
				 errmsg("value of column \"%s\" is too long for Vapi", colname),
				 errdetail("A name has at most %d characters; this one has %d.",
						   VAPI_MAX_NAME_CHARS, chars)));
}

/*
 * vapi_field_required_by_a_provider
 *		Do the phone numbers of some provider always carry "key"?
 */
bool
vapi_field_required_by_a_provider(const char *key)
{
	int			i;

	for (i = 0; i < lengthof(vapi_providers); i++)
		if (vapi_in_list(vapi_providers[i].required, key))
			return true;
	return false;
}

/*
 * vapi_field_expected
 *		Should a phone number of "provider" (NULL: not known) carry "key",
 *		a top-level field, so that its absence from every number read means
 *		the API renamed or removed it?  True for the fields every number
 *		has, for those its provider requires, and for a field vapi_fdw does
 *		not know (a column declared for a field the API may not have).  An
 *		optional field (name, assistantId, ...) is absent whenever it is
 *		unset, so its absence says nothing.
 */
bool
vapi_field_expected(const char *provider, const char *key)
{
	const VapiProvider *p;

	if (vapi_in_list(vapi_always_fields, key) || !vapi_field_known(key))
		return true;
	p = provider != NULL ? vapi_provider_find(provider) : NULL;
	return p != NULL && vapi_in_list(p->required, key);
}
