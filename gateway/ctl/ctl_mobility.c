/*
 * ctl_mobility.c - `ewpctl mobility` and `ewpctl la`: picks the
 * subcommand. Each subcommand lives in the file of its flow (sending a
 * nomination, deciding on a partner's one, the arrival dates...), listed
 * in the tables below with the line of usage it prints.
 */
#include <stdio.h>
#include <string.h>

#include "ctl.h"

struct ctl_subcommand {
	const char *name;
	int (*run)(struct ctl *ctl, int argc, char **argv);
	const char *usage; /* arguments after the subcommand's name */
};

static const struct ctl_subcommand mobility_subcommands[] = {
    {"nominate", ctl_mobility_nominate, "FILE.xml [--schemas DIR] [--conninfo STR]"},
    {"cancel", ctl_mobility_cancel, "OMOBILITY_ID [--conninfo STR]"},
    {.name = "sync", .run = ctl_mobility_sync, .usage = "[--full] [--conninfo STR] [HEI...]"},
    {"list", ctl_mobility_list,
     "[--partner HEI] [--status S] [--incoming|--outgoing] [--year YYYY] [--limit N]"},
    {"show", ctl_mobility_show, "ID|SENDING_HEI:OMOBILITY_ID"},
    {"approve", ctl_mobility_approve, "ID|SENDING_HEI:OMOBILITY_ID [--by NAME]"},
    {"reject", ctl_mobility_reject, "ID|SENDING_HEI:OMOBILITY_ID --comment TEXT [--by NAME]"},
    {"dates", ctl_mobility_dates,
     "ID|SENDING_HEI:OMOBILITY_ID [--arrival YYYY-MM-DD|none] [--departure YYYY-MM-DD|none]"
     " [--conninfo STR]"},
    {NULL, NULL, NULL}, /* end */
};

static const struct ctl_subcommand la_subcommands[] = {
    {"create", ctl_la_create, "OMOBILITY_ID FILE.xml [--schemas DIR] [--conninfo STR]"},
    {"propose", ctl_la_propose, "OMOBILITY_ID FILE.xml [--schemas DIR] [--conninfo STR]"},
    {"show", ctl_la_show, "ID|SENDING_HEI:OMOBILITY_ID"},
    {"approve", ctl_la_approve,
     "ID --signer-name N --signer-position P --signer-email E [--by NAME]"},
    {"comment", ctl_la_comment,
     "ID --comment TEXT --signer-name N --signer-position P --signer-email E [--by NAME]"},
    {NULL, NULL, NULL}, /* end */
};

static int
subcommand_usage(const char *command, const struct ctl_subcommand *table)
{
	fprintf(stderr, "usage:");
	for (const struct ctl_subcommand *s = table; s->name != NULL; s++)
		fprintf(stderr, "%s ewpctl %s %s %s\n", s == table ? "" : "      ", command,
		        s->name, s->usage);
	if (table->name == NULL)
		fprintf(stderr, " (no %s subcommands in this build)\n", command);
	return 2;
}

static int
subcommand_run(struct ctl *ctl, const char *command, const struct ctl_subcommand *table, int argc,
               char **argv)
{
	if (argc < 1 || strcmp(argv[0], "-h") == 0 || strcmp(argv[0], "--help") == 0)
		return subcommand_usage(command, table);
	for (const struct ctl_subcommand *s = table; s->name != NULL; s++)
		if (strcmp(s->name, argv[0]) == 0)
			return s->run(ctl, argc - 1, argv + 1);
	ctl_err("unknown subcommand \"%s %s\"", command, argv[0]);
	return subcommand_usage(command, table);
}

int
ctl_mobility(struct ctl *ctl, int argc, char **argv)
{
	return subcommand_run(ctl, "mobility", mobility_subcommands, argc, argv);
}

int
ctl_la(struct ctl *ctl, int argc, char **argv)
{
	return subcommand_run(ctl, "la", la_subcommands, argc, argv);
}
