/*-------------------------------------------------------------------------
 *
 * deparse.c
 *		  Build the requests (path and query string) that a scan sends.
 *
 * Strings only: nothing here touches the network.  Every query-string
 * value is percent-encoded, so no value can change the shape of a URL.
 *
 * src/deparse.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "vapi_fdw.h"

/*
 * vapi_append_query_param
 *		Append "name=value" to a query string being built in "buf", with a
 *		"?" or "&" separator as needed and the value percent-encoded
 *		(everything but RFC 3986 unreserved characters).
 */
void
vapi_append_query_param(StringInfo buf, const char *name, const char *value)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p;

	appendStringInfoChar(buf, strchr(buf->data, '?') ? '&' : '?');
	appendStringInfoString(buf, name);
	appendStringInfoChar(buf, '=');
	for (p = (const unsigned char *) value; *p; p++)
	{
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
			(*p >= '0' && *p <= '9') ||
			*p == '-' || *p == '.' || *p == '_' || *p == '~')
			appendStringInfoChar(buf, (char) *p);
		else
		{
			appendStringInfoChar(buf, '%');
			appendStringInfoChar(buf, hex[*p >> 4]);
			appendStringInfoChar(buf, hex[*p & 0x0F]);
		}
	}
}

/*
 * vapi_deparse_list_request
 *		The path and query string of one page of the list endpoint.
 *
 * Scans page through GET /v2/phone-number newest first, keyset-paged on
 * createdAt: each page after the first asks for createdAtLe = the oldest
 * createdAt seen so far (rows seen twice at that instant are dropped by
 * the executor), and "page" is only used to step through a run of more
 * equal timestamps than fit on one page.
 */
char *
vapi_deparse_list_request(const VapiListRequest *req)
{
	StringInfoData buf;
	char		num[32];

	initStringInfo(&buf);
	appendStringInfoString(&buf, VAPI_PATH_LIST);
	vapi_append_query_param(&buf, "sortBy", "createdAt");
	vapi_append_query_param(&buf, "sortOrder", "DESC");
	snprintf(num, sizeof(num), "%d", req->limit);
	vapi_append_query_param(&buf, "limit", num);
	if (req->page > 1)
	{
		snprintf(num, sizeof(num), "%d", req->page);
		vapi_append_query_param(&buf, "page", num);
	}
	if (req->created_le != NULL)
		vapi_append_query_param(&buf, "createdAtLe", req->created_le);
	return buf.data;
}
