/* cli: the operator subcommands of llm-router that work on the database
 * directly, without the dashboard (the server may be running: SQLite WAL):
 *
 *   llm-router user list | add NAME [--role admin|viewer] | delete NAME | passwd NAME
 *   llm-router apikey create NAME [--expires-at RFC3339] | list | revoke ID
 *   llm-router --routes          (the route table with its policy, as JSON)
 *
 * Passwords are read from the terminal (not echoed) or, when stdin is not a
 * terminal, from its first line; never from the command line. */
#ifndef RT_CLI_H
#define RT_CLI_H

#include "options.h"
#include "config.h"

/* True when argv[1] names a subcommand handled here. */
int rt_cli_is_command(int argc, char **argv);
/* Runs it with the loaded configuration (not freed). Returns the exit code. */
int rt_cli_run(int argc, char **argv, const rt_config_t *cfg);
/* Prints rt_routes as a JSON array [{method, path, policy}] on stdout. */
int rt_cli_print_routes(void);

#endif
