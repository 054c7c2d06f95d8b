/* chat.h - `myna chat <instance>`: the simulator in a terminal.
 *
 * Each line typed is a customer message sent through the admin listener's
 * /sim/<id>/send (so it becomes a signed webhook, as in the chat page); the
 * bot's replies are printed as they come, with their buttons or list rows
 * numbered: typing /1, /2 ... (the whole line) picks one; "/2 people" is
 * sent as text. A line of 16 KiB or more is dropped whole (said on err).
 * /quit or end of input stops; after the end of piped input it waits for
 * the replies to what was sent (at most linger_ms). */
#ifndef MYNA_CLI_CHAT_H
#define MYNA_CLI_CHAT_H

#include <stdio.h>

struct myna_chat_opts {
    const char *admin_url;  /* http://host:port of the admin listener */
    const char *instance;
    const char *from;       /* the customer's number (digits) */
    const char *name;       /* the customer's profile name */
    int linger_ms;          /* after end of input, wait this long at most */
};

/* 0 when the chat ended normally, 1 on a failure (printed on err): the
 * simulator unreachable or not answering as it does, or, when in is not a
 * terminal, a line that did not go (refused by the simulator, too long, or
 * a /N naming no option; the lines after it are still sent). */
int myna_chat_run(const struct myna_chat_opts *o, FILE *in, FILE *out, FILE *err);

#endif
