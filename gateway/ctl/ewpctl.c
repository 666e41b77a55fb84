/*
 * ewpctl.c - the admin command line of the SMILE EWP gateway: keys,
 * registry catalogue checks and signed debug calls to any EWP endpoint.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "ctl.h"
#include "log.h"
#include "xml.h"

#define DEFAULT_CONF "/etc/ewpd/ewpd.conf"
#ifndef EWP_SQL_DIR
#define EWP_SQL_DIR "/usr/local/share/ewpd/sql"
#endif
#define EWP_SQL_DIR_HELP EWP_SQL_DIR

static void
usage(FILE *out)
{
	fprintf(out,
	        "usage: ewpctl [-c file] command [arguments]\n"
	        "\n"
	        "Commands:\n"
	        "  keys generate [--bits N] [--dir DIR] NAME\n"
	        "                        new RSA key DIR/NAME.pem (0600) and NAME.pem.pub\n"
	        "  keys list [--dir DIR] every key with its keyId and role\n"
	        "  keys show [--dir DIR] NAME\n"
	        "                        keyId, size and the base64 public key\n"
	        "  registry check [FILE] validate a catalogue (default: the cached one)\n"
	        "  registry key KEYID    what the catalogue says of a key\n"
	        "  registry hei HEI_ID   what the catalogue says of an institution\n"
	        "  migrate [--dir DIR] [--conninfo STR] [--dry-run]\n"
	        "                        apply the SQL migrations the database lacks\n"
	        "                        (DIR default " EWP_SQL_DIR_HELP ")\n"
	        "  import composantes|formations|cours|nominations FILE [--dry-run]\n"
	        "         [--separator C] [--conninfo STR]\n"
	        "                        load a SMILE CSV export, all lines or none\n"
	        "  sync institutions [--cacert FILE] [--schemas DIR] [--conninfo STR]\n"
	        "         [--timeout SECONDS] [HEI...]\n"
	        "                        copy partners' Institutions and OUnits into SMILE\n"
	        "  sync status [--conninfo STR]\n"
	        "                        each partner's last sync: attempt, success, error\n"
	        "  log [--partner HEI] [--api NAME] [--status N|Nxx] [--failed] [--in|--out]\n"
	        "      [--request-id ID] [--since DURATION] [--grep TEXT] [--limit N]\n"
	        "                        search the EWP message log (newest first)\n"
	        "  log show ID           one exchange: headers and bodies, XML indented\n"
	        "  jobs list [--status S] [--kind K] [--partner HEI] [--limit N]\n"
	        "                        the job queue (CNRs to send...), newest first\n"
	        "  jobs show ID          one job: every column and its exchanges\n"
	        "  jobs retry ID         a job that ended in failure: pending again, now\n"
	        "  jobs retry --partner HEI\n"
	        "                        every pending job of HEI due now (partner back)\n"
	        "  call [-X METHOD] [-d DATA | -d @FILE] [-H 'Name: value'] [--cacert FILE] URL\n"
	        "                        signed EWP request; prints the verified response\n"
	        "Mobilities (REF: the mobility's id, or SENDING_HEI:OMOBILITY_ID):\n"
	        "  mobility list [--partner HEI] [--status S] [--incoming|--outgoing]\n"
	        "         [--year YYYY]  mobilities, newest first, last decision\n"
	        "  mobility show REF     fields, registration, decisions, jobs, exchanges\n"
	        "  mobility approve REF [--by NAME]\n"
	        "  mobility reject REF --comment TEXT [--by NAME]\n"
	        "                        decide on a partner's nomination (sent by ewpd)\n"
	        "  mobility dates REF [--arrival YYYY-MM-DD|none] [--departure YYYY-MM-DD|none]\n"
	        "                        actual dates of an incoming student (notifies the\n"
	        "                        sending HEI)\n"
	        "  mobility sync [--full] [HEI...]\n"
	        "                        queue the OMobilities re-sync of partners (default:\n"
	        "                        all with OMobilities v3 in the catalogue)\n"
	        "  mobility nominate FILE.xml [--schemas DIR]\n"
	        "                        create or update one of our outgoing nominations\n"
	        "                        (an OMobilities v3 student-mobility element)\n"
	        "  mobility cancel OMOBILITY_ID\n"
	        "                        cancel one of our outgoing nominations (final)\n"
	        "  la show REF           LA versions, components, ECTS totals, history\n"
	        "  la approve REF --signer-name N --signer-position P --signer-email E\n"
	        "         [--by NAME]\n"
	        "  la comment REF --comment TEXT --signer-name N --signer-position P\n"
	        "         --signer-email E [--by NAME]\n"
	        "                        decide on a partner's LA changes proposal\n"
	        "  la create OMOBILITY_ID FILE.xml [--schemas DIR]\n"
	        "                        header of an outgoing student's LA (la element\n"
	        "                        without versions)\n"
	        "  la propose OMOBILITY_ID FILE.xml [--schemas DIR]\n"
	        "                        new changes-proposal of that LA (id computed\n"
	        "                        from the content when absent)\n"
	        "  user add|passwd|role|disable|enable|unlock|list|show ...\n"
	        "                        staff portal accounts (ewpctl user --help)\n"
	        "Commands that use the database take --conninfo STR (default: [database]).\n"
	        "\n"
	        "  -c file   configuration file (default " DEFAULT_CONF ")\n"
	        "  -h        this help\n"
	        "DIR defaults to [keys] keys_dir of the configuration.\n");
}

void
ctl_safe_text(char *s, size_t len, bool keep_lines)
{
	unsigned char *p = (unsigned char *)s;

	for (size_t i = 0; i < len; i++) {
		if ((p[i] < 0x20 && !(keep_lines && (p[i] == '\n' || p[i] == '\t'))) ||
		    p[i] == 0x7f)
			p[i] = '?';
		else if (p[i] == 0xc2 && i + 1 < len && p[i + 1] >= 0x80 && p[i + 1] <= 0x9f) {
			p[i] = p[i + 1] = '?';
			i++;
		}
	}
}

void
ctl_safe_result(PGresult *res)
{
	for (int r = 0; r < PQntuples(res); r++)
		for (int c = 0; c < PQnfields(res); c++) {
			char *v = PQgetvalue(res, r, c);

			ctl_safe_text(v, strlen(v), true);
		}
}

void
ctl_err(const char *fmt, ...)
{
	va_list ap;

	fputs("ewpctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

struct conf *
ctl_conf(struct ctl *ctl)
{
	char err[1024];

	if (ctl->conf == NULL &&
	    (ctl->conf = conf_load(ctl->conf_path, err, sizeof(err))) == NULL) {
		ctl_err("%s", err);
		exit(1);
	}
	return ctl->conf;
}

int
main(int argc, char *argv[])
{
	struct ctl ctl = {.conf_path = DEFAULT_CONF};
	int i = 1, rc;

	log_init(LOG_LEVEL_WARN, "ewpctl");
	while (i < argc && argv[i][0] == '-') {
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc) {
			ctl.conf_path = argv[i + 1];
			i += 2;
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (i == argc) {
		usage(stderr);
		return 2;
	}
	xml_init(NULL);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (strcmp(argv[i], "keys") == 0)
		rc = ctl_keys(&ctl, argc - i - 1, argv + i + 1);
	else if (strcmp(argv[i], "call") == 0)
		rc = ctl_call(&ctl, argc - i - 1, argv + i + 1);
	else if (strcmp(argv[i], "migrate") == 0)
		rc = ctl_migrate(&ctl, argc - i - 1, argv + i + 1);
	else if (strcmp(argv[i], "import") == 0)
		rc = ctl_import(&ctl, argc - i - 1, argv + i + 1);
	else if (strcmp(argv[i], "sync") == 0)
		rc = ctl_sync(&ctl, argc - i - 1, argv + i + 1);
	else if (strcmp(argv[i], "log") == 0)
		rc = ctl_log(&ctl, argc - i - 1, argv + i + 1);
	else if (strcmp(argv[i], "jobs") == 0)
		rc = ctl_jobs(&ctl, argc - i - 1, argv + i + 1);
	else if (strcmp(argv[i], "mobility") == 0)
		rc = ctl_mobility(&ctl, argc - i - 1, argv + i + 1);
	else if (strcmp(argv[i], "la") == 0)
		rc = ctl_la(&ctl, argc - i - 1, argv + i + 1);
	else if (strcmp(argv[i], "user") == 0)
		rc = ctl_user(&ctl, argc - i - 1, argv + i + 1);
	else if (strcmp(argv[i], "registry") == 0)
		rc = ctl_registry(&ctl, argc - i - 1, argv + i + 1);
	else {
		ctl_err("unknown command \"%s\" (try ewpctl -h)", argv[i]);
		rc = 2;
	}
	conf_free(ctl.conf);
	curl_global_cleanup();
	xml_cleanup();
	return rc;
}
