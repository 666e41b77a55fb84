/*
 * portal_i18n.c - the interface strings, from catalogue files.
 *
 * [portal] strings is a directory with one sub-directory per language
 * (fr/, en/), each holding *.strings files of "key = text" lines ('#'
 * starts a comment line). Every area of the portal has its own file, so
 * the catalogue grows without one file everyone edits. The catalogue is
 * read once per worker and again when the directory setting changes.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "log.h"
#include "portal.h"
#include "portal_int.h"
#include "req.h"
#include "xmalloc.h"

#define I18N_MAX_LINE 4096

struct i18n_entry {
	char *key, *text;
};

struct i18n_lang {
	struct i18n_entry *e;
	size_t n, cap;
};

static struct i18n_lang langs[2]; /* fr, en */
static char *loaded_from;

static const char *const lang_codes[] = {"fr", "en"};

static int
i18n_cmp(const void *a, const void *b)
{
	return strcmp(((const struct i18n_entry *)a)->key, ((const struct i18n_entry *)b)->key);
}

static char *
i18n_trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n' || end[-1] == '\r'))
		*--end = '\0';
	return s;
}

static void
i18n_add(struct i18n_lang *l, const char *key, const char *text)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 256;
		l->e = xreallocarray(l->e, l->cap, sizeof(*l->e));
	}
	l->e[l->n].key = xstrdup(key);
	l->e[l->n].text = xstrdup(text);
	l->n++;
}

static void
i18n_read_file(struct i18n_lang *l, const char *path)
{
	char line[I18N_MAX_LINE];
	FILE *f = fopen(path, "r");
	int lineno = 0;

	if (f == NULL) {
		log_warn("portal strings %s", path);
		return;
	}
	while (fgets(line, sizeof(line), f)) {
		char *s = i18n_trim(line), *eq;

		lineno++;
		if (*s == '\0' || *s == '#')
			continue;
		if ((eq = strchr(s, '=')) == NULL) {
			log_warnx("%s:%d: no '=' in a catalogue line", path, lineno);
			continue;
		}
		*eq = '\0';
		i18n_add(l, i18n_trim(s), i18n_trim(eq + 1));
	}
	fclose(f);
}

static void
i18n_free(void)
{
	for (size_t i = 0; i < 2; i++) {
		for (size_t j = 0; j < langs[i].n; j++) {
			free(langs[i].e[j].key);
			free(langs[i].e[j].text);
		}
		free(langs[i].e);
		memset(&langs[i], 0, sizeof(langs[i]));
	}
	free(loaded_from);
	loaded_from = NULL;
}

void
portal_i18n_load(const char *dir)
{
	if (loaded_from && strcmp(loaded_from, dir) == 0)
		return;
	i18n_free();
	loaded_from = xstrdup(dir);
	for (size_t i = 0; i < 2; i++) {
		char path[4096];
		struct dirent *de;
		DIR *d;

		snprintf(path, sizeof(path), "%s/%s", dir, lang_codes[i]);
		if ((d = opendir(path)) == NULL) {
			log_warn("portal strings directory %s", path);
			continue;
		}
		while ((de = readdir(d)) != NULL) {
			size_t len = strlen(de->d_name);
			char file[8192];

			if (len < 9 || strcmp(de->d_name + len - 8, ".strings") != 0)
				continue;
			snprintf(file, sizeof(file), "%s/%s", path, de->d_name);
			i18n_read_file(&langs[i], file);
		}
		closedir(d);
		qsort(langs[i].e, langs[i].n, sizeof(*langs[i].e), i18n_cmp);
	}
}

const char *
portal_i18n_find(const char *lang, const char *key)
{
	struct i18n_entry k = {.key = (char *)key}, *e;
	size_t i = strcmp(lang, "en") == 0 ? 1 : 0;

	e = bsearch(&k, langs[i].e, langs[i].n, sizeof(*langs[i].e), i18n_cmp);
	return e ? e->text : NULL;
}

const char *
T(const struct portal *p, const char *key)
{
	const char *s = portal_i18n_find(p->lang, key);

	if (s == NULL && strcmp(p->lang, "fr") != 0)
		s = portal_i18n_find("fr", key);
	return s ? s : key;
}
