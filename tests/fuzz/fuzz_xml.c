/*
 * fuzz_xml.c - libFuzzer target for XML intake: xml_parse() and
 * registry_load_mem() on arbitrary bytes.
 *
 * Build (clang 14 with libclang-rt-14-dev, from the checkout root):
 *   clang -std=c17 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
 *     -fno-sanitize-recover=all -Igateway $(pkg-config --cflags libxml-2.0 openssl) \
 *     tests/fuzz/fuzz_xml.c gateway/xml.c gateway/registry.c gateway/registry_map.c \
 *     gateway/registry_load.c gateway/registry_elems.c gateway/keys.c \
 *     gateway/codec.c gateway/buf.c gateway/xmalloc.c gateway/log.c \
 *     -o build/fuzz_xml $(pkg-config --libs libxml-2.0 openssl)
 * Run (the official examples make a useful seed corpus):
 *   mkdir -p build/fuzz-xml-corpus
 *   build/fuzz_xml -max_len=65536 -timeout=5 build/fuzz-xml-corpus \
 *     ../shared/ewp-specs/ewp-specs-api-registry ../shared/ewp-specs/ewp-specs-api-discovery
 *
 * Invariants checked beyond "no crash, no leak": a refusal always says
 * why, and an accepted document never has a DOCTYPE.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/tree.h>

#include "registry.h"
#include "xml.h"

#define FUZZ_MAX_LEN (1024 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
fuzz_parse(const char *s, size_t size)
{
	char err[512];
	xmlDocPtr doc = xml_parse(s, size, FUZZ_MAX_LEN, err, sizeof(err));

	if (doc == NULL) {
		if (err[0] == '\0')
			abort(); /* a refusal must carry a reason */
		return;
	}
	if (xmlGetIntSubset(doc) != NULL)
		abort(); /* DOCTYPE slipped through */
	xmlFreeDoc(doc);
}

static void
fuzz_registry(const char *s, size_t size)
{
	char err[512];
	struct registry *r = registry_load_mem(s, size, "fuzz", err, sizeof(err));
	const char *const *heis;

	if (r == NULL) {
		if (err[0] == '\0')
			abort();
		return;
	}
	/* Exercise the lookups on whatever got indexed. */
	(void)registry_key(r, "5531f9a02c44a894d0b706961259fec740ad4ae8a3555871f1a5cd9801285bd4");
	(void)registry_client_heis(
	    r, "5531f9a02c44a894d0b706961259fec740ad4ae8a3555871f1a5cd9801285bd4", &heis);
	(void)registry_api(r, "uw.edu.pl", "urn:x");
	(void)registry_hei_by_other_id(r, "erasmus", "PL WARSZAW01");
	(void)registry_hei_name(r, "uw.edu.pl");
	registry_free(r);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;

	if (!ready) {
		xml_init(NULL);
		ready = true;
	}
	fuzz_parse((const char *)data, size);
	fuzz_registry((const char *)data, size);
	return 0;
}
