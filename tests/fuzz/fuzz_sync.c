/*
 * fuzz_sync.c - libFuzzer target for what the institution sync reads from
 * partners (sync_read.c): an Institutions answer, then an OUnits answer,
 * from the same bytes. The sync validates answers against the intake
 * schemas first; the readers must still hold on anything a schema lets
 * through, so they get the raw documents here. Built by `make fuzz`.
 *
 * Invariants beyond "no crash, no leak": the institution read is the one
 * asked for, the unit list stays within its bound and holds no NULL, and
 * the addresses and contacts are JSON arrays.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/tree.h>

#include "sync_int.h"
#include "xml.h"

#define FUZZ_MAX_LEN (1024 * 1024)
#define FUZZ_HEI     "a.example"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_array(const struct buf *b)
{
	char *a = sync_json_array(b);
	size_t n = strlen(a);

	if (n < 2 || a[0] != '[' || a[n - 1] != ']')
		abort();
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)a[i] < 0x20)
			abort(); /* raw control characters are not JSON */
	free(a);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	xmlDocPtr doc = xml_parse((const char *)data, size, FUZZ_MAX_LEN, err, sizeof(err));
	struct sync_hei h;
	xmlNode *root;

	if (doc == NULL)
		return 0;
	root = xmlDocGetRootElement(doc);
	memset(&h, 0, sizeof(h));
	sync_extra_init(&h.extra);
	if (sync_read_hei(root, FUZZ_HEI, &h) == 0) {
		if (h.id == NULL || strcmp(h.id, FUZZ_HEI) != 0)
			abort();
		if (h.nounit_ids > SYNC_MAX_OUNITS)
			abort();
		for (size_t i = 0; i < h.nounit_ids; i++)
			if (h.ounit_ids[i] == NULL)
				abort();
	}
	if (h.nounit_ids == 0) { /* an OUnits answer alone: ask for the seeds' units */
		h.ounit_ids = calloc(2, sizeof(*h.ounit_ids));
		h.ounit_ids[0] = strdup("ou-root");
		h.ounit_ids[1] = strdup("ou-sci");
		h.nounit_ids = 2;
	}
	(void)sync_read_units(root, &h);
	if (h.nunits > h.nounit_ids)
		abort(); /* only units listed, each once */
	for (size_t i = 0; i < h.nunits; i++) {
		check_array(&h.units[i].extra.addresses);
		check_array(&h.units[i].extra.contacts);
	}
	check_array(&h.extra.addresses);
	check_array(&h.extra.contacts);
	sync_hei_free(&h);
	xmlFreeDoc(doc);
	return 0;
}
