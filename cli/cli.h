/*
 * cli.h: the subcommands of `crashscope` and what they share.
 */
#ifndef CS_CLI_H
#define CS_CLI_H

#include "../recorder/config.h"

int cs_cmd_run(int argc, char **argv);
int cs_cmd_export(int argc, char **argv);
int cs_cmd_crashes(int argc, char **argv);
int cs_cmd_inspect(int argc, char **argv);
int cs_cmd_ingest(int argc, char **argv);
int cs_cmd_upload(int argc, char **argv);

/* The database path: --db if given, else the configuration's. */
const char *cs_cli_db_path(const char *opt_db, const cs_config *c);
/* Prints "crashscope: <msg>" to stderr. */
void cs_cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
