/*
 * ctl_keys.c - `ewpctl keys`: generate, list and show RSA keys.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ctl.h"
#include "keys.h"
#include "xmalloc.h"

struct keys_args {
	const char *dir;
	const char *name;
	int bits;
};

static int
keys_parse_args(int argc, char **argv, struct keys_args *a)
{
	a->dir = NULL;
	a->name = NULL;
	a->bits = 2048;
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) {
			a->dir = argv[++i];
		} else if (strcmp(argv[i], "--bits") == 0 && i + 1 < argc) {
			char *end;
			long b = strtol(argv[++i], &end, 10);
			if (*end != '\0' || b < KEYS_MIN_BITS || b > 8192) {
				ctl_err("--bits must be a number from %d to 8192", KEYS_MIN_BITS);
				return -1;
			}
			a->bits = (int)b;
		} else if (argv[i][0] == '-' || a->name) {
			ctl_err("unexpected argument \"%s\"", argv[i]);
			return -1;
		} else {
			a->name = argv[i];
		}
	}
	return 0;
}

static const char *
keys_dir(struct ctl *ctl, const struct keys_args *a)
{
	return a->dir ? a->dir : ctl_conf(ctl)->keys_dir;
}

/* DIR/NAME, with ".pem" added when NAME has no extension. */
static char *
keys_file(const char *dir, const char *name)
{
	const char *ext = strrchr(name, '.');

	if (strchr(name, '/'))
		return xstrdup(name);
	return ext ? xasprintf("%s/%s", dir, name) : xasprintf("%s/%s.pem", dir, name);
}

/* What the configuration does with this file, when a configuration is given. */
static const char *
keys_role(struct ctl *ctl, const char *file)
{
	struct conf *c;
	FILE *f = fopen(ctl->conf_path, "r");

	if (f == NULL)
		return "";
	fclose(f);
	c = ctl_conf(ctl);
	if (strcmp(file, c->client_key) == 0)
		return "client (signs requests)";
	if (strcmp(file, c->server_key) == 0)
		return "server (signs responses)";
	return "not in use";
}

static int
keys_generate_cmd(struct ctl *ctl, const struct keys_args *a)
{
	char err[512];
	char *path;
	struct keys_priv *k;

	if (a->name == NULL) {
		ctl_err("keys generate needs a NAME");
		return 2;
	}
	path = keys_file(keys_dir(ctl, a), a->name);
	if (keys_generate(path, a->bits, err, sizeof(err)) == -1 ||
	    (k = keys_priv_load(path, false, err, sizeof(err))) == NULL) {
		ctl_err("%s", err);
		free(path);
		return 1;
	}
	printf("wrote %s (private, 0600) and %s.pub\n", path, path);
	printf("RSA %d bits, keyId (sha-256 of the public key):\n%s\n", keys_priv_bits(k),
	       keys_priv_keyid(k));
	keys_priv_free(k);
	free(path);
	return 0;
}

static int
keys_show_one(struct ctl *ctl, const char *dir, const char *name, bool full)
{
	char err[512];
	char *path = keys_file(dir, name);
	struct keys_priv *k = keys_priv_load(path, false, err, sizeof(err));
	struct stat st;
	int rc = 0;

	if (k == NULL) {
		printf("%-20s  unusable: %s\n", name, err);
		free(path);
		return 1;
	}
	if (!full) {
		printf("%-20s  RSA %-4d  %s  %s\n", name, keys_priv_bits(k), keys_priv_keyid(k),
		       keys_role(ctl, name));
	} else {
		if (stat(path, &st) == 0)
			printf("file:    %s (mode %03o)\n", path, (unsigned)(st.st_mode & 0777));
		printf("keyId:   %s\nsize:    RSA %d bits\nrole:    %s\n", keys_priv_keyid(k),
		       keys_priv_bits(k), keys_role(ctl, name));
		printf("public key (for the manifest's rsa-public-key):\n%s\n",
		       keys_priv_public_b64(k));
	}
	keys_priv_free(k);
	free(path);
	return rc;
}

static int
keys_list_cmd(struct ctl *ctl, const struct keys_args *a)
{
	const char *dir = keys_dir(ctl, a);
	struct dirent **names;
	int n, rc = 0;

	if ((n = scandir(dir, &names, NULL, alphasort)) == -1) {
		ctl_err("cannot read %s", dir);
		return 1;
	}
	for (int i = 0; i < n; i++) {
		size_t len = strlen(names[i]->d_name);
		if (len > 4 && strcmp(names[i]->d_name + len - 4, ".pem") == 0)
			rc |= keys_show_one(ctl, dir, names[i]->d_name, false);
		free(names[i]);
	}
	free(names);
	return rc;
}

int
ctl_keys(struct ctl *ctl, int argc, char **argv)
{
	struct keys_args a;

	if (argc < 1) {
		ctl_err("keys: generate, list or show");
		return 2;
	}
	if (keys_parse_args(argc - 1, argv + 1, &a) == -1)
		return 2;
	if (strcmp(argv[0], "generate") == 0)
		return keys_generate_cmd(ctl, &a);
	if (strcmp(argv[0], "list") == 0)
		return keys_list_cmd(ctl, &a);
	if (strcmp(argv[0], "show") == 0) {
		if (a.name == NULL) {
			ctl_err("keys show needs a NAME");
			return 2;
		}
		return keys_show_one(ctl, keys_dir(ctl, &a), a.name, true);
	}
	ctl_err("keys: unknown subcommand \"%s\"", argv[0]);
	return 2;
}
