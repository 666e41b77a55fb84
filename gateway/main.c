/*
 * main.c - ewpd: the SMILE EWP gateway daemon.
 *
 * Start-up order: options, configuration and every asset it names (keys,
 * TLS, manifest) checked, catalogue fetched or taken from the last good
 * copy, then the supervisor forks the workers. `-n` stops after the checks.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/ssl.h>

#include "log.h"
#include "supervisor.h"
#include "xml.h"

#define DEFAULT_CONF "/etc/ewpd/ewpd.conf"

static void
usage(FILE *out)
{
	fprintf(out,
	        "usage: ewpd [-n | -m] [-c file]\n"
	        "\n"
	        "The SMILE EWP gateway: serves the Erasmus Without Paper APIs of one\n"
	        "institution with HTTP Signatures, in the foreground, logging to stderr.\n"
	        "\n"
	        "  -c file   configuration file (default " DEFAULT_CONF ")\n"
	        "  -n        check the configuration, keys, TLS files and catalogue, then exit\n"
	        "  -m        print the Discovery manifest this configuration serves, then exit\n"
	        "            (what the Registry will read from /ewp/manifest.xml)\n"
	        "  -V        print the version and exit\n"
	        "  -h        this help\n"
	        "\n"
	        "Signals: HUP reloads configuration, keys, TLS and catalogue without\n"
	        "dropping connections; TERM drains in-flight requests and exits (a second\n"
	        "TERM exits at once); USR2 fetches the registry catalogue now.\n"
	        "See conf/ewpd.conf.example for every setting.\n");
}

int
main(int argc, char *argv[])
{
	const char *path = DEFAULT_CONF;
	struct worker_assets a;
	char err[1024];
	bool check_only = false, print_manifest = false;
	int ch, rc;

	while ((ch = getopt(argc, argv, "c:nmhV")) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 'n':
			check_only = true;
			break;
		case 'm':
			print_manifest = true;
			break;
		case 'V':
			printf("ewpd %s\n", EWPD_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	log_init(LOG_LEVEL_INFO, "ewpd");
	xml_init(NULL);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (worker_assets_load(path, NULL, &a, err, sizeof(err)) == -1) {
		log_error("%s", err);
		return 1;
	}
	log_set_level(a.conf->log_level);
	if (print_manifest) {
		rc = fwrite(a.manifest.data, 1, a.manifest.len, stdout) == a.manifest.len &&
		             fflush(stdout) == 0
		         ? 0
		         : 1;
		worker_assets_free(&a);
		return rc;
	}
	if (check_only) {
		rc = supervisor_check_registry(a.conf, err, sizeof(err));
		if (rc == 0)
			printf("%s: configuration OK\n", path);
		else
			log_error("%s", err);
		worker_assets_free(&a);
		return rc == 0 ? 0 : 1;
	}
	rc = supervisor_run(&a);
	curl_global_cleanup();
	xml_cleanup();
	return rc;
}
