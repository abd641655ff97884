/*
 * main.c: the `crashscope` command: dispatch to subcommands, usage.
 *
 * The command never records itself: crashscope_cli_marker tells the shim, when it is
 * preloaded into this binary (a recorded program that runs crashscope), to stay idle.
 */
#include "cli.h"

#include "../uploader/push.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

__attribute__((visibility("default"), used)) const int crashscope_cli_marker = 1;

void cs_cli_error(const char *fmt, ...)
{
    va_list ap;
    fputs("crashscope: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

const char *cs_cli_db_path(const char *opt_db, const cs_config *c)
{
    if (opt_db && *opt_db)
        return opt_db;
    return c->db_path[0] ? c->db_path : NULL;
}

static void usage(FILE *f)
{
    fputs("usage: crashscope <command> [options]\n"
          "\n"
          "commands:\n"
          "  run [options] -- CMD [ARGS...]   run CMD with the recorder preloaded\n"
          "  export --type cpu|wall [--format pprof|folded] [--pid N] [--seconds N]\n"
          "         [--db PATH] -o FILE        write what the window holds\n"
          "  crashes [--json]                 list crashes and deaths, newest first\n"
          "  inspect [--crash ID | --last] [--seconds N] [--json]\n"
          "                                   the crash report and the N s before it\n"
          "  upload [--follow]                send what is queued for Pyroscope\n"
          "  help                             this text\n"
          "\n"
          "Settings come from the environment (CRASHSCOPE_DB, CRASHSCOPE_CPU_HZ, ...);\n"
          "see README.md. --db PATH overrides CRASHSCOPE_DB for any command.\n",
          f);
}

int main(int argc, char **argv)
{
    /* No libcurl here: it is loaded by the first upload (uploader/http.c); the CLI never
     * starts a thread, so its global init may come then. */
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "run"))
        return cs_cmd_run(argc - 1, argv + 1);
    if (!strcmp(cmd, "export"))
        return cs_cmd_export(argc - 1, argv + 1);
    if (!strcmp(cmd, "crashes"))
        return cs_cmd_crashes(argc - 1, argv + 1);
    if (!strcmp(cmd, "inspect"))
        return cs_cmd_inspect(argc - 1, argv + 1);
    if (!strcmp(cmd, "upload"))
        return cs_cmd_upload(argc - 1, argv + 1);
    if (!strcmp(cmd, "_ingest"))
        return cs_cmd_ingest(argc - 1, argv + 1);
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        usage(stdout);
        return 0;
    }
    cs_cli_error("unknown command '%s'", cmd);
    usage(stderr);
    return 2;
}
