/* manage.h - `myna instance ...` and `myna token ...`: the admin API from
 * the command line (docs/admin-api.md).
 *
 *   instance list
 *   instance show ID
 *   instance create FILE        (a JSON object; "-" reads stdin)
 *   instance start|stop|restart ID
 *   instance export [--with-secrets] [ID...]   an instances file on stdout
 *   instance import FILE        creates the ones that are new, updates the others
 *   token create [--role guest|user|admin] [--name NAME]
 *
 * (`token recover`, which opens var/control.db on the host instead of
 * calling the API, is main.c's: its usage line is myna_cli_token_usage's.)
 *
 * argv starts after "instance" / "token". Exit codes: 0 done, 1 the server
 * refused, is unreachable or answered what myna does not (its message
 * printed, or that) or FILE cannot be read
 * (said with the reason, before any call), 2 bad usage. */
#ifndef MYNA_CLI_MANAGE_H
#define MYNA_CLI_MANAGE_H

#include <stdio.h>

int myna_cli_instance(int argc, char **argv, const char *admin_url, const char *token, FILE *out,
                      FILE *err);
/* The usage lines of `myna instance` and `myna token`, on f. */
void myna_cli_instance_usage(FILE *f);
void myna_cli_token_usage(FILE *f);
int myna_cli_token(int argc, char **argv, const char *admin_url, const char *token, FILE *out,
                   FILE *err);

#endif
