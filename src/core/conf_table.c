/* conf_table.c - the only list of server options. Type, default, bounds,
 * environment name, reload class and help live in the row and nowhere else;
 * --help, --dump-config and docs/configuration.md are generated from it. */
#include <stddef.h>

#include "core/conf.h"
#include "core/banned.h"

static const char *const log_levels[] = { "error", "warn", "info", "debug", NULL };
static const char *const sync_modes[] = { "full", "normal", NULL };

#define OFF(f) offsetof(struct myna_conf, f)

const struct myna_opt myna_opts[] = {
    { .name = "config", .env = "MYNA_CONFIG", .type = MYNA_OPT_STR, .def = "",
      .metavar = "FILE", .off = OFF(config),
      .help = "Config file of key = value lines; flags and MYNA_* variables override it." },
    { .name = "public", .env = "MYNA_PUBLIC", .type = MYNA_OPT_ADDR, .def = "127.0.0.1:8080",
      .metavar = "ADDR:PORT", .off = OFF(public_addr),
      .help = "Public listener: webhooks (/webhook/<instance>) and /healthz. Port 0 picks a free port; "
              "an IPv6 address goes in brackets ([::]:8080)." },
    { .name = "admin", .env = "MYNA_ADMIN", .type = MYNA_OPT_ADDR, .def = "127.0.0.1:8081",
      .metavar = "ADDR:PORT", .off = OFF(admin_addr),
      .help = "Admin listener: the admin API (/admin/), the simulator (/sim), /metrics and /healthz. Keep it private. Port 0 picks a free port; "
              "an IPv6 address goes in brackets ([::1]:8081)." },
    { .name = "data", .env = "MYNA_DATA", .type = MYNA_OPT_STR, .def = "./var", .min = 1,
      .metavar = "DIR", .off = OFF(data_dir),
      .help = "Data directory (not empty); each instance's stores are DIR/instances/<id>.db "
              "and <id>.bot.db." },
    { .name = "instances", .env = "MYNA_INSTANCES", .type = MYNA_OPT_STR, .def = "",
      .metavar = "FILE", .off = OFF(instances),
      .help = "JSON file of instances imported into the control store at every start (see docs/instances.md)." },
    { .name = "log_level", .env = "MYNA_LOG_LEVEL", .type = MYNA_OPT_ENUM, .def = "info",
      .choices = log_levels, .metavar = "LEVEL", .reload = MYNA_RELOAD_SIGHUP,
      .off = OFF(log_level), .help = "Least severe level logged: error, warn, info or debug." },
    { .name = "log_file", .env = "MYNA_LOG_FILE", .type = MYNA_OPT_STR, .def = "",
      .metavar = "FILE", .off = OFF(log_file),
      .help = "Append log lines to FILE (reopened on SIGHUP); empty means standard error." },
    { .name = "max_body_bytes", .env = "MYNA_MAX_BODY_BYTES", .type = MYNA_OPT_SIZE,
      .def = "3m", .min = 1024, .max = 64 << 20, .metavar = "BYTES",
      .off = OFF(max_body_bytes),
      .help = "Webhook bodies larger than this are answered 413 (Meta sends up to 3 MB)." },
    { .name = "store_sync", .env = "MYNA_STORE_SYNC", .type = MYNA_OPT_ENUM, .def = "full",
      .choices = sync_modes, .metavar = "MODE", .off = OFF(store_sync),
      .help = "full: fsync every group commit (survives power loss); normal: survives crashes only." },
    { .name = "commit_max_records", .env = "MYNA_COMMIT_MAX_RECORDS", .type = MYNA_OPT_INT,
      .def = "4096", .min = 1, .max = 1000000, .metavar = "N", .off = OFF(commit_max_records),
      .help = "Most records grouped into one store transaction by the ingress." },
    { .name = "max_pending", .env = "MYNA_MAX_PENDING", .type = MYNA_OPT_INT, .def = "20000",
      .min = 1, .max = 10000000, .metavar = "N", .off = OFF(max_pending),
      .help = "Webhook requests waiting for their commit; past this Myna answers 503 and Meta retries." },
    { .name = "http_timeout_s", .env = "MYNA_HTTP_TIMEOUT_S", .type = MYNA_OPT_INT, .def = "30",
      .min = 1, .max = 3600, .metavar = "SECONDS", .off = OFF(http_timeout_s),
      .help = "Idle and read timeout of HTTP connections on both listeners." },
    { .name = "drain_timeout_ms", .env = "MYNA_DRAIN_TIMEOUT_MS", .type = MYNA_OPT_INT,
      .def = "5000", .min = 0, .max = 600000, .metavar = "MS", .off = OFF(drain_timeout_ms),
      .help = "On SIGTERM, how long to wait for commits in flight before exiting anyway." },
    { .name = "bots", .env = "MYNA_BOTS", .type = MYNA_OPT_INT, .def = "1", .min = 0, .max = 1,
      .metavar = "0|1", .off = OFF(bots),
      .help = "1: run a bot process per instance that answers; 0: only receive and store." },
    { .name = "bot_store_sync", .env = "MYNA_BOT_STORE_SYNC", .type = MYNA_OPT_ENUM,
      .def = "normal", .choices = sync_modes, .metavar = "MODE", .off = OFF(bot_store_sync),
      .help = "The bots' commits: normal survives any process being killed (the promise); "
              "full also survives power loss, at a cost in latency." },
    { .name = "send_unconfirmed_ms", .env = "MYNA_SEND_UNCONFIRMED_MS", .type = MYNA_OPT_INT,
      .def = "600000", .min = 1000, .max = 86400000, .metavar = "MS",
      .off = OFF(send_unconfirmed_ms),
      .help = "A send Meta accepted but never confirmed with a status after this long is "
              "flagged (log, status 'unconfirmed')." },
    { .name = "send_reconcile_ms", .env = "MYNA_SEND_RECONCILE_MS", .type = MYNA_OPT_INT,
      .def = "60000", .min = 100, .max = 86400000, .metavar = "MS", .off = OFF(send_reconcile_ms),
      .help = "A send cut short (a crash, or no answer after the request left) waits this long for Meta's status before it is resent." },
    { .name = "send_hold_ms", .env = "MYNA_SEND_HOLD_MS", .type = MYNA_OPT_INT,
      .def = "60000", .min = 100, .max = 86400000, .metavar = "MS", .off = OFF(send_hold_ms),
      .help = "After Meta refuses the access token or says the account is locked, an instance "
              "sends nothing for this long; then one reply is tried, and the rest go only once "
              "one is taken." },
    { .name = "send_tries", .env = "MYNA_SEND_TRIES", .type = MYNA_OPT_INT,
      .def = "15", .min = 1, .max = 1000, .metavar = "N", .off = OFF(send_tries),
      .help = "A reply is sent at most this many times (errors worth another try, sends cut "
              "short); then it is a dead letter, since the contact's later replies wait "
              "behind it. A replay (myna outbox replay) gives it as many again." },
    { .name = "bot_max_memory_mb", .env = "MYNA_BOT_MAX_MEMORY_MB", .type = MYNA_OPT_INT,
      .def = "500", .min = 1, .max = 1048576, .metavar = "MB", .off = OFF(bot_max_memory_mb),
      .help = "A bot whose resident memory passes this is restarted gracefully (checked "
              "every 2 s)." },
    { .name = "bot_heartbeat_timeout_ms", .env = "MYNA_BOT_HEARTBEAT_TIMEOUT_MS",
      .type = MYNA_OPT_INT, .def = "30000", .min = 3000, .max = 3600000, .metavar = "MS",
      .off = OFF(bot_heartbeat_timeout_ms),
      .help = "A bot whose loop sends no heartbeat (one every 2 s) for this long is killed and "
              "restarted." },
    { .name = "alert_webhook", .env = "MYNA_ALERT_WEBHOOK", .type = MYNA_OPT_URL, .def = "",
      .metavar = "URL", .off = OFF(alert_webhook),
      .help = "Alerts (a bot in a crash loop, an access token refused, an LLM circuit open) are "
              "POSTed here as JSON, besides the log (event=alert); empty: logged only." },
    { .name = "login_token_ttl_s", .env = "MYNA_LOGIN_TOKEN_TTL_S", .type = MYNA_OPT_INT,
      .def = "2592000", .min = 1, .max = 31536000, .metavar = "SECONDS",
      .off = OFF(login_token_ttl_s),
      .help = "A token made by a login (POST /admin/login) stops working after this long "
              "(30 days); tokens made with POST /admin/tokens do not." },
    { .name = "audit_keep_days", .env = "MYNA_AUDIT_KEEP_DAYS", .type = MYNA_OPT_INT,
      .def = "365", .min = 0, .max = 36500, .metavar = "DAYS", .off = OFF(audit_keep_days),
      .help = "Audit log rows older than this are removed (at start, then hourly); 0 keeps "
              "them forever." },
    { .name = NULL },
};
