/* xmlw.c - escaped XML text output. */
#include <string.h>

#include "xmlw.h"

int
xmlw_escape(struct buf *b, const char *s)
{
	const char *run = s;

	for (; *s; s++) {
		const char *rep = NULL;
		unsigned char c = (unsigned char)*s;

		switch (c) {
		case '&':
			rep = "&amp;";
			break;
		case '<':
			rep = "&lt;";
			break;
		case '>':
			rep = "&gt;";
			break;
		case '"':
			rep = "&quot;";
			break;
		case '\'':
			rep = "&apos;";
			break;
		default:
			/* XML 1.0 forbids most C0 controls even escaped. */
			if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
				rep = "";
		}
		if (rep == NULL)
			continue;
		if (buf_add(b, run, (size_t)(s - run)) == -1 || buf_addstr(b, rep) == -1)
			return -1;
		run = s + 1;
	}
	return buf_add(b, run, (size_t)(s - run));
}

int
xmlw_elem(struct buf *b, const char *name, const char *text)
{
	if (buf_printf(b, "<%s>", name) == -1 || xmlw_escape(b, text) == -1)
		return -1;
	return buf_printf(b, "</%s>", name);
}

int
xmlw_elem_attr(struct buf *b, const char *name, const char *attr, const char *value,
               const char *text)
{
	if (buf_printf(b, "<%s %s=\"", name, attr) == -1 || xmlw_escape(b, value) == -1 ||
	    buf_addstr(b, "\">") == -1 || xmlw_escape(b, text) == -1)
		return -1;
	return buf_printf(b, "</%s>", name);
}
