/*
 * ctl_registry.c - `ewpctl registry`: check a catalogue and ask it what
 * it says about a key or an institution, as ewpd would see it.
 */
#include <stdio.h>
#include <string.h>

#include "ctl.h"
#include "registry.h"

#define ECHO_ENTRY_NS                                                                              \
	"https://github.com/erasmus-without-paper/ewp-specs-api-echo/blob/stable-v2/"              \
	"manifest-entry.xsd"

static struct registry *
registry_open(struct ctl *ctl, const char *file)
{
	char err[512];
	const char *path = file ? file : ctl_conf(ctl)->registry_cache;
	struct registry *r = registry_load_file(path, err, sizeof(err));

	if (r == NULL)
		ctl_err("%s", err);
	return r;
}

static int
registry_key_cmd(const struct registry *r, const char *keyid)
{
	const struct registry_key *k = registry_key(r, keyid);
	const char *const *heis;
	size_t n;

	if (k == NULL) {
		printf("%s: not in the catalogue (a partner signing with it gets 403)\n", keyid);
		return 1;
	}
	printf("keyId:  %s\nRSA:    %d bits\nclient: %s\nserver: %s\n", k->keyid,
	       keys_pub_bits(k->pub), k->client ? "yes" : "no", k->server ? "yes" : "no");
	n = registry_client_heis(r, keyid, &heis);
	printf("HEIs covered as a client key (%zu):\n", n);
	for (size_t i = 0; i < n; i++)
		printf("  %s\n", heis[i]);
	return 0;
}

static int
registry_hei_cmd(const struct registry *r, const char *hei)
{
	const struct registry_api *echo;

	if (!registry_hei_known(r, hei)) {
		printf("%s: not in the catalogue\n", hei);
		return 1;
	}
	printf("HEI:   %s\nname:  %s\n", hei, registry_hei_name(r, hei) ?: "");
	echo = registry_api(r, hei, ECHO_ENTRY_NS);
	if (echo)
		printf("echo:  version %s at %s\n", echo->version,
		       registry_api_url(echo, "url") ?: "(no url)");
	else
		printf("echo:  not offered by its host\n");
	return 0;
}

int
ctl_registry(struct ctl *ctl, int argc, char **argv)
{
	struct registry *r;
	int rc;

	if (argc < 1 || argc > 2) {
		ctl_err("registry: check [FILE], key KEYID or hei HEI_ID");
		return 2;
	}
	if (strcmp(argv[0], "check") == 0) {
		if ((r = registry_open(ctl, argc == 2 ? argv[1] : NULL)) == NULL)
			return 1;
		printf("catalogue OK: %zu hosts, %zu HEIs, %zu keys\n", registry_host_count(r),
		       registry_hei_count(r), registry_key_count(r));
		registry_free(r);
		return 0;
	}
	if (argc != 2 || (strcmp(argv[0], "key") != 0 && strcmp(argv[0], "hei") != 0)) {
		ctl_err("registry: check [FILE], key KEYID or hei HEI_ID");
		return 2;
	}
	if ((r = registry_open(ctl, NULL)) == NULL)
		return 1;
	rc = strcmp(argv[0], "key") == 0 ? registry_key_cmd(r, argv[1])
	                                 : registry_hei_cmd(r, argv[1]);
	registry_free(r);
	return rc;
}
