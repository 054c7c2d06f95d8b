/* fleet.c - live instances: control store <-> ingress, simulator, bots. */
#include "master/fleet.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/json.h"
#include "core/log.h"
#include "core/secret.h"
#include "core/util.h"
#include "master/ingress.h"
#include "master/simulator.h"
#include "master/supervisor.h"
#include "store/control.h"
#include "wa/instance.h"
#include "wa/sim.h"
#include "core/banned.h"

#define TRASH_KEEP_S (7 * 86400)
#define TRASH_TRIES 100  /* folders of one id tried, a second apart in their names */

/* The secret fields of an instance object; "llm.api_key" is inside "llm". */
static const char *const secret_fields[] = { "access_token", "app_secret", "verify_token", NULL };

struct live {
    char *id;
    int64_t owner_id;
    int64_t version;
    char *config;                /* as stored: secrets sealed */
    struct myna_instance inst;   /* parsed, secrets open, sim defaults filled */
    struct live *retired_next;   /* on f->retired */
};

struct myna_fleet {
    struct pending_delete *deleting;  /* ids whose bot and files are still going */
    struct myna_control *control;
    struct myna_secret_box *box;
    struct myna_ingress *ingress;
    struct myna_simulator *sim;
    struct myna_supervisor *sup;
    char data_dir[4096];
    char admin_addr[128];
    int default_memory_mb;       /* for instances that set none */
    struct live **v;             /* sorted by id */
    size_t n, cap;
    struct live *retired;        /* replaced or deleted, freed at the next publish */
    struct unloaded *unloaded;   /* in no order */
    size_t n_unloaded;
};

/* A stored instance whose settings did not load at start (its sealed
 * secrets do not open with this key, a value a later check refuses): not
 * live, so no bot runs for it and its webhooks get 503 (publish), but the
 * API lists it with why and can replace or delete it, so that its id is
 * not taken for good. */
struct unloaded {
    int64_t owner_id;
    char id[80];
    char why[400];
};

struct pending_delete {
    struct myna_fleet *f;
    struct pending_delete *next;
    char id[80];
};

static int being_deleted(const struct myna_fleet *f, const char *id)
{
    for (const struct pending_delete *d = f->deleting; d; d = d->next)
        if (strcmp(d->id, id) == 0)
            return 1;
    return 0;
}

/* ---- secrets in a config object ------------------------------------------------ */

static void aad_of(char *aad, size_t cap, const char *id, const char *field)
{
    snprintf(aad, cap, "instance:%s:%s", id, field);
}

/* fn(slot, field) for each secret string of obj (top level and llm.api_key). */
static int each_secret(cJSON *obj, const char *id, struct myna_secret_box *box, int seal,
                       struct myna_err *err)
{
    cJSON *llm = cJSON_GetObjectItemCaseSensitive(obj, "llm");
    cJSON *slots[4];
    const char *names[4];
    size_t n = 0;

    for (size_t i = 0; secret_fields[i]; i++) {
        cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, secret_fields[i]);
        if (cJSON_IsString(v)) {
            slots[n] = v;
            names[n++] = secret_fields[i];
        }
    }
    if (cJSON_IsObject(llm) && cJSON_IsString(cJSON_GetObjectItemCaseSensitive(llm, "api_key"))) {
        slots[n] = cJSON_GetObjectItemCaseSensitive(llm, "api_key");
        names[n++] = "llm.api_key";
    }
    for (size_t i = 0; i < n; i++) {
        char aad[200], *out;
        const char *cur = slots[i]->valuestring;
        if (*cur == '\0' || (seal && myna_secret_is_sealed(cur)))
            continue;
        aad_of(aad, sizeof(aad), id, names[i]);
        out = seal ? myna_secret_seal(box, cur, aad, err) : myna_secret_unseal(box, cur, aad, err);
        if (out == NULL)
            return myna_err_prefix(err, "instance '%s': field '%s'", id, names[i]);
        if (cJSON_SetValuestring(slots[i], out) == NULL) {
            myna_secret_wipe_free(out);
            return myna_err_set(err, MYNA_ENOMEM, "out of memory");
        }
        myna_secret_wipe_free(out);
    }
    return MYNA_OK;
}

/* The stored text of obj (a copy is sealed; obj keeps its plain secrets). */
static char *sealed_text(struct myna_fleet *f, const cJSON *obj, const char *id,
                         struct myna_err *err)
{
    cJSON *copy = cJSON_Duplicate(obj, 1);
    char *out = NULL;

    if (copy == NULL) {
        myna_err_set(err, MYNA_ENOMEM, "out of memory");
        return NULL;
    }
    if (each_secret(copy, id, f->box, 1, err) == MYNA_OK &&
        (out = cJSON_PrintUnformatted(copy)) == NULL)
        myna_err_set(err, MYNA_ENOMEM, "out of memory");
    cJSON_Delete(copy);
    return out;
}

/* config, instance id's text as stored, with its secrets open (a new
 * object), or NULL. */
static cJSON *opened_text(struct myna_fleet *f, const char *id, const char *config,
                          struct myna_err *err)
{
    cJSON *obj = cJSON_Parse(config);

    if (obj == NULL) {
        myna_err_set(err, MYNA_EPARSE, "instance '%s': the stored config is not JSON", id);
        return NULL;
    }
    if (each_secret(obj, id, f->box, 0, err) != MYNA_OK) {
        cJSON_Delete(obj);
        return NULL;
    }
    return obj;
}

/* The stored config with its secrets open (a new object), or NULL. */
static cJSON *opened(struct myna_fleet *f, const struct live *l, struct myna_err *err)
{
    return opened_text(f, l->id, l->config, err);
}

/* 1 if obj (secrets open) says what config, instance id's text as stored,
 * says: the same fields and values, enabled and auto_start included, in
 * any order. The stored secrets are compared open, since each seal has a
 * nonce of its own: the same secret is another text at every save. 0 when
 * they differ, or when config does not open (a change, then: it is
 * written). A write of obj with 1 would change nothing but the version. */
static int same_as_stored(struct myna_fleet *f, const char *id, const char *config,
                          const cJSON *obj)
{
    struct myna_err e = MYNA_ERR_INIT;
    cJSON *was = opened_text(f, id, config, &e);
    int same = was != NULL && cJSON_Compare(was, obj, 1);

    cJSON_Delete(was);  /* its strings held secrets; cJSON frees them as they are */
    return same;
}

/* ---- the live list ------------------------------------------------------------- */

static void live_free(struct live *l)
{
    if (l == NULL)
        return;
    free(l->id);
    free(l->config);
    myna_instance_release(&l->inst);
    free(l);
}

static size_t lower_bound(const struct myna_fleet *f, const char *id)
{
    size_t lo = 0, hi = f->n;

    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (strcmp(f->v[mid]->id, id) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static struct live *find(const struct myna_fleet *f, const char *id)
{
    size_t i = lower_bound(f, id);

    return i < f->n && strcmp(f->v[i]->id, id) == 0 ? f->v[i] : NULL;
}

/* A live instance from its stored row: secrets opened, parsed, sim filled. */
static struct live *live_new(struct myna_fleet *f, const char *id, int64_t owner,
                             int64_t version, const char *config, struct myna_err *err)
{
    struct live *l = calloc(1, sizeof(*l));
    struct myna_field_error fe[1];
    struct myna_instance_set one;
    size_t nfe = 0;
    cJSON *obj = NULL;
    char *plain = NULL;

    if (l == NULL || (l->id = strdup(id)) == NULL || (l->config = strdup(config)) == NULL) {
        myna_err_set(err, MYNA_ENOMEM, "out of memory");
        goto fail;
    }
    l->owner_id = owner;
    l->version = version;
    if ((obj = opened(f, l, err)) == NULL)
        goto fail;
    if ((plain = cJSON_PrintUnformatted(obj)) == NULL) {
        myna_err_set(err, MYNA_ENOMEM, "out of memory");
        goto fail;
    }
    if (myna_instance_parse_one(plain, strlen(plain), &l->inst, fe, 1, &nfe, err) != MYNA_OK) {
        if (nfe)
            myna_err_set(err, MYNA_ECONFIG, "instance '%s': field '%s': %s", id, fe[0].field,
                         fe[0].error);
        goto fail;
    }
    one.v = &l->inst;
    one.n = 1;
    if (myna_sim_prepare(&one, f->data_dir, f->admin_addr, 1, err) != MYNA_OK)
        goto fail;
    myna_secret_wipe_free(plain);
    cJSON_Delete(obj);
    return l;
fail:
    myna_secret_wipe_free(plain);
    cJSON_Delete(obj);
    live_free(l);
    return NULL;
}

/* Puts l in the list (replacing the one of the same id, returned), or
 * NULL with l not taken on OOM (*oom set). */
static struct live *put(struct myna_fleet *f, struct live *l, int *oom)
{
    size_t i = lower_bound(f, l->id);
    struct live *old;

    *oom = 0;
    if (i < f->n && strcmp(f->v[i]->id, l->id) == 0) {
        old = f->v[i];
        f->v[i] = l;
        return old;
    }
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 16;
        struct live **nv = realloc(f->v, cap * sizeof(*nv));
        if (nv == NULL) {
            *oom = 1;
            return NULL;
        }
        f->v = nv;
        f->cap = cap;
    }
    memmove(&f->v[i + 1], &f->v[i], (f->n - i) * sizeof(*f->v));
    f->v[i] = l;
    f->n++;
    return NULL;
}

static struct live *take(struct myna_fleet *f, const char *id)
{
    size_t i = lower_bound(f, id);
    struct live *l;

    if (i >= f->n || strcmp(f->v[i]->id, id) != 0)
        return NULL;
    l = f->v[i];
    memmove(&f->v[i], &f->v[i + 1], (f->n - i - 1) * sizeof(*f->v));
    f->n--;
    return l;
}

/* l left the list: freed by the next publish that succeeds (the simulator
 * borrows the instances it was last given). */
static void retire(struct myna_fleet *f, struct live *l)
{
    if (l) {
        l->retired_next = f->retired;
        f->retired = l;
    }
}

static void free_retired(struct myna_fleet *f)
{
    while (f->retired) {
        struct live *l = f->retired;
        f->retired = l->retired_next;
        live_free(l);
    }
}

/* Every instance to the ingress (it refuses records for a disabled one's
 * number), with the unloaded ids (it answers their webhooks 503, not 404);
 * the enabled ones to the simulator. */
static int publish(struct myna_fleet *f, struct myna_err *err)
{
    const struct myna_instance **v = calloc(f->n ? f->n : 1, sizeof(*v));
    const char **u = calloc(f->n_unloaded ? f->n_unloaded : 1, sizeof(*u));
    size_t n = 0, all;
    int rc;

    if (v == NULL || u == NULL) {
        free(v);
        free(u);
        return myna_err_set(err, MYNA_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < f->n_unloaded; i++)
        u[i] = f->unloaded[i].id;
    /* the enabled ones first: they are v[0..n), and the ingress routes a
     * number owned twice to the enabled owner */
    for (size_t i = 0; i < f->n; i++)
        if (f->v[i]->inst.enabled)
            v[n++] = &f->v[i]->inst;
    all = n;
    for (size_t i = 0; i < f->n; i++)
        if (!f->v[i]->inst.enabled)
            v[all++] = &f->v[i]->inst;
    rc = myna_ingress_set_instances(f->ingress, v, all, u, f->n_unloaded, err);
    if (rc == MYNA_OK && f->sim)
        rc = myna_simulator_set_instances(f->sim, v, n, err);
    free(v);
    free(u);
    if (rc == MYNA_OK)
        free_retired(f);  /* nothing points into them any more */
    return rc;
}

/* ---- audit ------------------------------------------------------------------------- */

/* The change's audit row, and who->audit_also's after it; inside the
 * change's transaction. */
static int audit(struct myna_fleet *f, const struct myna_actor *who, const char *action,
                 const char *target, const char *detail, struct myna_err *err)
{
    struct myna_control_audit a = { 0, myna_wall_ms(), who->user_id, (char *)who->name,
                                    (char *)action, (char *)target, (char *)detail,
                                    (char *)who->from_addr };
    int rc = myna_control_audit_add(f->control, &a, NULL, err);

    if (rc == MYNA_OK && who->audit_also != NULL) {
        a.action = (char *)who->audit_also;
        a.detail = NULL;
        rc = myna_control_audit_add(f->control, &a, NULL, err);
    }
    return rc;
}

/* ---- lifecycle ----------------------------------------------------------------------- */

struct myna_fleet *myna_fleet_new(struct myna_control *control, struct myna_secret_box *box,
                                  struct myna_ingress *ingress, struct myna_simulator *sim,
                                  struct myna_supervisor *sup, const char *data_dir,
                                  const char *admin_addr, int default_memory_mb,
                                  struct myna_err *err)
{
    struct myna_fleet *f = calloc(1, sizeof(*f));

    if (f == NULL) {
        myna_err_set(err, MYNA_ENOMEM, "out of memory");
        return NULL;
    }
    f->control = control;
    f->box = box;
    f->ingress = ingress;
    f->sim = sim;
    f->sup = sup;
    snprintf(f->data_dir, sizeof(f->data_dir), "%s", data_dir);
    snprintf(f->admin_addr, sizeof(f->admin_addr), "%s", admin_addr);
    f->default_memory_mb = default_memory_mb;
    return f;
}

void myna_fleet_free(struct myna_fleet *f)
{
    if (f == NULL)
        return;
    while (f->deleting) {  /* the master stops: the files move at the next delete */
        struct pending_delete *d = f->deleting;
        f->deleting = d->next;
        free(d);
    }
    for (size_t i = 0; i < f->n; i++)
        live_free(f->v[i]);
    free(f->v);
    free(f->unloaded);
    free_retired(f);
    free(f);
}

static int memory_mb(const struct myna_fleet *f, const struct live *l)
{
    return l->inst.max_memory_mb > 0 ? l->inst.max_memory_mb : f->default_memory_mb;
}

/* l's bot known to the supervisor (it is added at its first start), with
 * l's memory limit. */
static void bot_known(struct myna_fleet *f, const struct live *l)
{
    if (myna_supervisor_add(f->sup, l->id, memory_mb(f, l)) != MYNA_OK)
        myna_supervisor_set_memory_limit(f->sup, l->id, memory_mb(f, l));
}

static void bot_start(struct myna_fleet *f, const struct live *l)
{
    if (f->sup == NULL || !l->inst.enabled)
        return;
    bot_known(f, l);
    myna_supervisor_start(f->sup, l->id);
}

/* Keeps row, whose settings did not load (why in err), on the unloaded
 * list: one bad instance must not keep the others down. */
static int note_unloaded(struct myna_fleet *f, const struct myna_control_instance *row,
                         struct myna_err *err)
{
    struct unloaded *nv = realloc(f->unloaded, (f->n_unloaded + 1) * sizeof(*nv)), *u;

    if (nv == NULL)
        return myna_err_set(err, MYNA_ENOMEM, "out of memory");
    f->unloaded = nv;
    u = &nv[f->n_unloaded++];
    u->owner_id = row->owner_id;
    snprintf(u->id, sizeof(u->id), "%s", row->id);
    snprintf(u->why, sizeof(u->why), "%.*s", (int)myna_utf8_cut(err->msg, sizeof(u->why) - 1),
             err->msg);
    return MYNA_OK;
}

static struct unloaded *find_unloaded(const struct myna_fleet *f, const char *id)
{
    for (size_t i = 0; i < f->n_unloaded; i++)
        if (strcmp(f->unloaded[i].id, id) == 0)
            return &f->unloaded[i];
    return NULL;
}

int myna_fleet_load(struct myna_fleet *f, struct myna_err *err)
{
    struct myna_control_instance *rows = NULL;
    size_t n = 0, offset = 0;
    int rc = MYNA_OK;

    f->n_unloaded = 0;
    do {
        rc = myna_control_instance_list(f->control, 0, MYNA_CONTROL_LIST_MAX, offset, &rows, &n,
                                        err);
        for (size_t i = 0; i < n; i++) {
            struct live *l = NULL, *old;
            int oom;
            if (rc == MYNA_OK &&
                (l = live_new(f, rows[i].id, rows[i].owner_id, rows[i].version, rows[i].config,
                              err)) == NULL) {
                char q[600];
                if (err->code == MYNA_ENOMEM)
                    rc = err->code;
                else if ((rc = note_unloaded(f, &rows[i], err)) == MYNA_OK)
                    MYNA_LOG(MYNA_ERROR, "instance_not_loaded", "instance=%s err=%s", rows[i].id,
                             myna_log_q(q, sizeof(q), f->unloaded[f->n_unloaded - 1].why));
            }
            if (l && ((old = put(f, l, &oom)) != NULL || oom)) {
                live_free(old);
                if (oom) {
                    live_free(l);
                    rc = myna_err_set(err, MYNA_ENOMEM, "out of memory");
                }
            }
            myna_control_instance_release(&rows[i]);
        }
        free(rows);
        rows = NULL;
        offset += n;
    } while (rc == MYNA_OK && n == MYNA_CONTROL_LIST_MAX);
    if (rc == MYNA_OK)
        rc = publish(f, err);
    for (size_t i = 0; rc == MYNA_OK && i < f->n; i++)
        if (f->v[i]->inst.auto_start)
            bot_start(f, f->v[i]);
    return rc;
}

/* ---- writes ---------------------------------------------------------------------------- */

/* Validates obj (secrets open) as an instance of id: MYNA_OK, or
 * MYNA_ECONFIG with errs. */
static int validate(const cJSON *obj, struct myna_field_error *errs, size_t max, size_t *n,
                    struct myna_err *err)
{
    char *text = cJSON_PrintUnformatted(obj);
    struct myna_instance in;
    int rc;

    if (text == NULL)
        return myna_err_set(err, MYNA_ENOMEM, "out of memory");
    rc = myna_instance_parse_one(text, strlen(text), &in, errs, max, n, err);
    if (rc == MYNA_OK)
        myna_instance_release(&in);
    myna_secret_wipe_free(text);
    return rc;
}

static int bot_running(struct myna_fleet *f, const char *id)
{
    struct myna_bot_status st;

    return myna_supervisor_status(f->sup, id, &st) == MYNA_OK &&
           (strcmp(st.state, "running") == 0 || strcmp(st.state, "starting") == 0);
}

/* Stores obj as instance id (create or update) with its audit row, then,
 * with go_live, makes it live. What would keep it from going live (a value
 * that looks sealed but does not open with this server's key) refuses it
 * before anything is stored. */
static int commit(struct myna_fleet *f, const struct myna_actor *who, const char *id,
                  const cJSON *obj, int create, int64_t owner, const char *action, int go_live,
                  struct myna_err *err)
{
    char *config = sealed_text(f, obj, id, err), detail[160];
    const cJSON *en = cJSON_GetObjectItemCaseSensitive(obj, "enabled"),
                *as = cJSON_GetObjectItemCaseSensitive(obj, "auto_start");
    int enabled = !cJSON_IsFalse(en), auto_start = !cJSON_IsFalse(as), rc, oom;
    int64_t version = 1;
    struct live *l, *old;

    if (config == NULL)
        return err->code;
    l = live_new(f, id, owner, version, config, err);
    if (l == NULL) {
        free(config);
        if (err->code == MYNA_EBADSIG || err->code == MYNA_EPARSE)
            err->code = MYNA_ECONFIG;  /* the input's fault: 400 */
        return err->code;
    }
    snprintf(detail, sizeof(detail), "{\"enabled\":%s,\"auto_start\":%s}",
             enabled ? "true" : "false", auto_start ? "true" : "false");
    if ((rc = myna_control_begin(f->control, err)) == MYNA_OK) {
        rc = create ? myna_control_instance_create(f->control, id, owner, config, enabled,
                                                   auto_start, myna_wall_ms(), err)
                    : myna_control_instance_update(f->control, id, config, enabled, auto_start,
                                                   -1, myna_wall_ms(), &version, err);
        if (rc == MYNA_OK)
            rc = audit(f, who, action, id, detail, err);
        if (rc == MYNA_OK)
            rc = myna_control_commit(f->control, err);
        else
            myna_control_rollback(f->control);
    }
    free(config);
    if (rc != MYNA_OK || !go_live) {
        live_free(l);
        return rc;
    }
    l->version = version;
    old = put(f, l, &oom);
    if (oom) {
        live_free(l);
        return myna_err_set(err, MYNA_ENOMEM, "out of memory");
    }
    retire(f, old);
    rc = publish(f, err);
    if (f->sup) {
        /* also for a bot between processes (waiting out a backoff): the
         * supervisor starts it again on its own, with the limit it has */
        if (old)
            myna_supervisor_set_memory_limit(f->sup, id, memory_mb(f, l));
        if (!l->inst.enabled)
            myna_supervisor_stop(f->sup, id, NULL, NULL);
        else if (old && bot_running(f, id))
            myna_supervisor_restart(f->sup, id);  /* it reads the new config */
        else if (l->inst.auto_start)
            bot_start(f, l);
    }
    return rc;
}

/* A slug from name: lower-case ASCII letters and digits, '-' between
 * words; "instance" when nothing is left. */
/* The Latin letters a letter of name's other alphabets is written with in
 * an id: Russian and Ukrainian Cyrillic (as on passports), and the
 * accented letters of Latin-1; NULL for anything else. */
static const char *latin_of(uint32_t cp)
{
    static const char *const cyrillic[32] = {  /* U+0410 to U+044F, lower case */
        "a", "b", "v", "g", "d", "e", "zh", "z", "i", "y", "k", "l", "m", "n", "o", "p",
        "r", "s", "t", "u", "f", "kh", "ts", "ch", "sh", "shch", "", "y", "", "e", "yu", "ya",
    };
    static const char *const latin1[32] = {  /* U+00C0 to U+00FF */
        "a", "a", "a", "a", "a", "a", "ae", "c", "e", "e", "e", "e", "i", "i", "i", "i",
        "d", "n", "o", "o", "o", "o", "o", NULL, "o", "u", "u", "u", "u", "y", "th", "ss",
    };

    if (cp >= 0x410 && cp <= 0x44f)
        return cyrillic[(cp - 0x410) % 32];
    if (cp == 0xff)
        return "y";   /* the one small letter whose capital is not 0x20 below */
    if (cp >= 0xc0 && cp <= 0xfe)
        return latin1[cp < 0xe0 ? cp - 0xc0 : cp - 0xe0];  /* U+00F7 is U+00D7's NULL */
    switch (cp) {
    case 0x401: case 0x451: return "e";   /* Ё ё */
    case 0x404: case 0x454: return "ye";  /* Є є */
    case 0x406: case 0x456: case 0x407: case 0x457: return "i";  /* І і Ї ї */
    case 0x490: case 0x491: return "g";   /* Ґ ґ */
    default: return NULL;
    }
}

/* An id made from name: its letters and digits in lower case (those of
 * other alphabets as latin_of writes them), each run of anything else one
 * '-'; "instance" when nothing is left. */
static void slugify(const char *name, char *out, size_t cap)
{
    size_t n = 0, len = strlen(name), k;
    int dash = 0;

    for (size_t i = 0; i < len && n + 2 < cap && n < 56; i += k) {
        const unsigned char *p = (const unsigned char *)name + i;
        char one[2] = { 0, 0 };
        const char *letters = NULL;
        if ((k = myna_utf8_seq(p, len - i)) == 0)
            k = 1;
        if (k == 1) {
            one[0] = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
            if ((one[0] >= 'a' && one[0] <= 'z') || (one[0] >= '0' && one[0] <= '9'))
                letters = one;
        } else {
            letters = latin_of(myna_utf8_decode(p, k));
        }
        if (letters == NULL) {
            dash = 1;
            continue;
        }
        if (letters[0] != '\0' && dash && n > 0)
            out[n++] = '-';
        for (const char *l = letters; *l && n + 1 < cap && n < 56; l++)
            out[n++] = *l;
        dash = letters[0] == '\0' ? dash : 0;
    }
    while (n > 0 && out[n - 1] == '-')
        n--;
    out[n] = '\0';
    if (n == 0)
        snprintf(out, cap, "instance");
}

/* slug, else slug-2, slug-3 ...: not live and not in the store. */
static int unique_id(struct myna_fleet *f, const char *name, char *id, size_t cap)
{
    char base[64];

    slugify(name, base, sizeof(base));
    for (int k = 1; k < 10000; k++) {
        struct myna_control_instance row;
        struct myna_err e = MYNA_ERR_INIT;
        int rc;
        if (k == 1)
            snprintf(id, cap, "%s", base);
        else
            snprintf(id, cap, "%s-%d", base, k);
        if (find(f, id) || being_deleted(f, id))
            continue;
        rc = myna_control_instance_get(f->control, id, &row, &e);
        if (rc == MYNA_OK) {
            myna_control_instance_release(&row);
            continue;
        }
        if (rc == MYNA_ENOTFOUND)
            return MYNA_OK;
    }
    return MYNA_EEXISTS;
}

static void trash_files(struct myna_fleet *f, const char *id);

/* obj's "id", or NULL without one: a null id is taken out of obj, as
 * left out, as null is for every field. */
static cJSON *id_given(cJSON *obj)
{
    cJSON *given = cJSON_GetObjectItemCaseSensitive(obj, "id");

    if (!cJSON_IsNull(given))
        return given;
    cJSON_DeleteItemFromObjectCaseSensitive(obj, "id");
    return NULL;
}

/* Stores and log of an id that no instance has: a delete cut short (its
 * files move to the trash only once its bot stopped, and a crash of the
 * master in between left them). A new instance of that id must not open
 * the deleted one's inbox, history and outbox, nor show its log: they go to
 * the trash first. */
static void trash_leftovers(struct myna_fleet *f, const char *id)
{
    char path[4400];
    struct stat st;
    int found = 0;

    snprintf(path, sizeof(path), "%s/instances/%s.db", f->data_dir, id);
    found |= stat(path, &st) == 0;
    snprintf(path, sizeof(path), "%s/instances/%s.bot.db", f->data_dir, id);
    found |= stat(path, &st) == 0;
    snprintf(path, sizeof(path), "%s/logs/%s.log", f->data_dir, id);
    found |= stat(path, &st) == 0;
    if (!found)
        return;
    MYNA_LOG(MYNA_WARN, "instance_leftovers_trashed", "instance=%s dir=trash", id);
    trash_files(f, id);
}

/* One bad field as the API reports it: errs[0] when there is room, and
 * err. Returns MYNA_ECONFIG. */
static int field_error(const char *field, const char *why, struct myna_field_error *errs,
                       size_t max, size_t *n, struct myna_err *err)
{
    if (max > 0) {
        snprintf(errs[0].field, sizeof(errs[0].field), "%.*s",
                 (int)myna_utf8_cut(field, sizeof(errs[0].field) - 1), field);
        snprintf(errs[0].error, sizeof(errs[0].error), "%s", why);
    }
    *n = max > 0;
    return myna_err_set(err, MYNA_ECONFIG, "field '%s': %s", field, why);
}

/* 1 if v's name, its text and all below it are valid UTF-8. */
static int all_utf8(const cJSON *v)
{
    if ((v->string && myna_utf8_count(v->string) == (size_t)-1) ||
        (cJSON_IsString(v) && myna_utf8_count(v->valuestring) == (size_t)-1))
        return 0;
    for (const cJSON *c = v->child; c; c = c->next)
        if (!all_utf8(c))
            return 0;
    return 1;
}

/* An instance's body is stored as it is and shown again as JSON, which
 * must be UTF-8: a body with any other text is refused, naming the
 * top-level field that holds it ("" when it is that field's own name).
 * MYNA_OK, or MYNA_ECONFIG with errs[0..*n). */
static int check_utf8(const cJSON *obj, struct myna_field_error *errs, size_t max, size_t *n,
                      struct myna_err *err)
{
    const cJSON *item;

    cJSON_ArrayForEach(item, obj) {
        if (myna_utf8_count(item->string) == (size_t)-1)
            return field_error("", "a field name that is not valid UTF-8", errs, max, n, err);
        if (!all_utf8(item))
            return field_error(item->string, "must be valid UTF-8", errs, max, n, err);
    }
    return MYNA_OK;
}

/* A number past the range of a double (1e999) is read as infinity, which
 * the check and the store see printed as null: the field's default, where
 * the number itself is out of every bound. Refused, naming where it is.
 * MYNA_OK, or MYNA_ECONFIG with errs[0..*n). */
static int check_numbers(const cJSON *obj, struct myna_field_error *errs, size_t max, size_t *n,
                         struct myna_err *err)
{
    char path[sizeof(errs->field)];

    return myna_json_infinite(obj, path, sizeof(path))
               ? field_error(path, "a number too large", errs, max, n, err)
               : MYNA_OK;
}

int myna_fleet_create(struct myna_fleet *f, const struct myna_actor *who, const char *body,
                      size_t len, char *id, size_t cap, struct myna_field_error *errs,
                      size_t max_errs, size_t *n_errs, struct myna_err *err)
{
    const char *why = "another value";
    cJSON *obj = myna_json_parse_whole(body, len, &why);
    const cJSON *name, *given;
    int rc;

    *n_errs = 0;
    if (!cJSON_IsObject(obj)) {
        cJSON_Delete(obj);
        return myna_err_set(err, MYNA_EPARSE, "the body must be a JSON object (%s)", why);
    }
    if (check_utf8(obj, errs, max_errs, n_errs, err) != MYNA_OK ||
        check_numbers(obj, errs, max_errs, n_errs, err) != MYNA_OK) {
        cJSON_Delete(obj);
        return err->code;
    }
    name = cJSON_GetObjectItemCaseSensitive(obj, "name");
    given = id_given(obj);
    if (given != NULL) {  /* an import keeps its ids */
        struct myna_control_instance row;
        struct myna_err e = MYNA_ERR_INIT;
        if (!cJSON_IsString(given) || !myna_is_slug(given->valuestring)) {
            cJSON_Delete(obj);
            return field_error("id", "must be 1-64 characters of a-z, 0-9 and '-' (or left out)",
                               errs, max_errs, n_errs, err);
        }
        int taken = find(f, given->valuestring) != NULL || being_deleted(f, given->valuestring);
        if (!taken && myna_control_instance_get(f->control, given->valuestring, &row, &e) ==
                          MYNA_OK) {
            taken = 1;
            myna_control_instance_release(&row);
        }
        if (taken) {
            myna_err_set(err, MYNA_EEXISTS, "instance '%s' exists already (or is being deleted)",
                         given->valuestring);
            cJSON_Delete(obj);
            return MYNA_EEXISTS;
        }
        snprintf(id, cap, "%s", given->valuestring);
    } else if (unique_id(f, cJSON_IsString(name) ? name->valuestring : "", id, cap) != MYNA_OK ||
               cJSON_AddStringToObject(obj, "id", id) == NULL) {
        cJSON_Delete(obj);
        return myna_err_set(err, MYNA_EEXISTS, "no free id for that name");
    }
    rc = validate(obj, errs, max_errs, n_errs, err);
    if (rc == MYNA_OK) {
        trash_leftovers(f, id);
        rc = commit(f, who, id, obj, 1, who->user_id, "instance.create", 1, err);
    }
    cJSON_Delete(obj);
    return rc;
}

/* A patch's fields, checked before it is merged: each one a field of an
 * instance, given once. Merging looks each field up in the stored object,
 * so a body of many unknown fields would cost time quadratic in its size
 * on the loop; checked first, what is merged is at most one of each field.
 * MYNA_OK, or MYNA_ECONFIG with the first bad field in errs[0]. */
static int check_patch_fields(const cJSON *patch, struct myna_field_error *errs, size_t max,
                              size_t *n, struct myna_err *err)
{
    const cJSON *item;
    char name[160];

    cJSON_ArrayForEach(item, patch) {
        if (!myna_instance_field_known(item->string)) {
            snprintf(name, sizeof(name), "%.*s", (int)myna_utf8_cut(item->string, 64),
                     item->string);
            return field_error(name, "unknown field", errs, max, n, err);
        }
    }
    switch (myna_json_repeated_key(patch, name, sizeof(name))) {  /* k log k */
    case 0:
        return MYNA_OK;
    case -1:
        return myna_err_set(err, MYNA_ENOMEM, "out of memory");
    default:
        return field_error(name, "appears twice", errs, max, n, err);
    }
}

/* A value the API showed masked ("••••abcd") means "unchanged". */
static int is_masked(const cJSON *v)
{
    return cJSON_IsString(v) && myna_secret_is_masked(v->valuestring);
}

/* 1 if name is one of the top-level secrets: only they are shown masked,
 * so only for them does a masked value mean "unchanged". */
static int is_secret_field(const char *name)
{
    for (size_t i = 0; secret_fields[i]; i++)
        if (strcmp(name, secret_fields[i]) == 0)
            return 1;
    return 0;
}

/* A stored secret was given for the host its object names (llm.api_key
 * for llm.url, access_token for graph_url): kept (left out or sent
 * masked) by a patch that names another host, the bot would send it to a
 * host its owner never chose. 1 if patch does that to cur; def is the
 * host when the url is absent or null (a patch's null names it too). */
static int moves_kept_secret(const cJSON *patch, const cJSON *cur, const char *url_name,
                             const char *key_name, const char *def)
{
    const cJSON *key = cJSON_GetObjectItemCaseSensitive(patch, key_name),
                *old = cJSON_GetObjectItemCaseSensitive(cur, key_name),
                *url = cJSON_GetObjectItemCaseSensitive(patch, url_name),
                *old_url = cJSON_GetObjectItemCaseSensitive(cur, url_name);
    const char *was = cJSON_IsString(old_url) ? old_url->valuestring : def,
               *now = cJSON_IsString(url) ? url->valuestring : def;

    if (url == NULL || now == NULL || !(cJSON_IsString(url) || cJSON_IsNull(url)))
        return 0;  /* the host stays, or the patch names none and is refused for it */
    return (key == NULL || is_masked(key)) && cJSON_IsString(old) && *old->valuestring &&
           (was == NULL || strcmp(now, was) != 0);
}

/* obj, a whole instance, in place of u's stored settings, which did not
 * load: nothing of them is kept, so a masked secret cannot stand for one. */
static int replace_unloaded(struct myna_fleet *f, const struct myna_actor *who,
                            struct unloaded *u, cJSON *obj, struct myna_field_error *errs,
                            size_t max_errs, size_t *n_errs, struct myna_err *err)
{
    const cJSON *given = id_given(obj), *llm = cJSON_GetObjectItemCaseSensitive(obj, "llm");
    int rc;

    if (given && (!cJSON_IsString(given) || strcmp(given->valuestring, u->id) != 0))
        return field_error("id", "cannot be changed", errs, max_errs, n_errs, err);
    for (size_t i = 0; secret_fields[i]; i++)
        if (is_masked(cJSON_GetObjectItemCaseSensitive(obj, secret_fields[i])))
            return field_error(secret_fields[i],
                               "must be given itself: the stored settings did not load", errs,
                               max_errs, n_errs, err);
    if (cJSON_IsObject(llm) && is_masked(cJSON_GetObjectItemCaseSensitive(llm, "api_key")))
        return field_error("llm.api_key", "must be given itself: the stored settings did not load",
                           errs, max_errs, n_errs, err);
    if (given == NULL && cJSON_AddStringToObject(obj, "id", u->id) == NULL)
        return myna_err_set(err, MYNA_ENOMEM, "out of memory");
    if ((rc = validate(obj, errs, max_errs, n_errs, err)) == MYNA_OK &&
        (rc = commit(f, who, u->id, obj, 0, u->owner_id, "instance.update", 1, err)) == MYNA_OK)
        *u = f->unloaded[--f->n_unloaded];  /* live now */
    return rc;
}

/* A PUT whose result is what is stored: nothing is written (no version,
 * no instance.update row) and the bot is left as it is. Only
 * who->audit_also's row is, for what the answer does (shows the secrets).
 * The instances go to the ingress again, as after a change: an instance
 * store that failed to open (a file since mended) is tried again. */
static int unchanged(struct myna_fleet *f, const struct myna_actor *who, const char *id,
                     struct myna_err *err)
{
    struct myna_control_audit a = { 0, myna_wall_ms(), who->user_id, (char *)who->name,
                                    (char *)who->audit_also, (char *)id, NULL,
                                    (char *)who->from_addr };
    int rc = who->audit_also ? myna_control_audit_add(f->control, &a, NULL, err) : MYNA_OK;

    return rc == MYNA_OK ? publish(f, err) : rc;
}

int myna_fleet_update(struct myna_fleet *f, const struct myna_actor *who, const char *id,
                      const char *body, size_t len, struct myna_field_error *errs,
                      size_t max_errs, size_t *n_errs, struct myna_err *err)
{
    struct live *l = find(f, id);
    struct unloaded *u = l ? NULL : find_unloaded(f, id);
    cJSON *patch, *cur, *item;
    const cJSON *llm;
    const char *why = "another value";
    int rc;

    *n_errs = 0;
    if (l == NULL && u == NULL)
        return myna_err_set(err, MYNA_ENOTFOUND, "no instance '%s'", id);
    if (!cJSON_IsObject(patch = myna_json_parse_whole(body, len, &why))) {
        cJSON_Delete(patch);
        return myna_err_set(err, MYNA_EPARSE, "the body must be a JSON object (%s)", why);
    }
    if (check_utf8(patch, errs, max_errs, n_errs, err) != MYNA_OK ||
        check_patch_fields(patch, errs, max_errs, n_errs, err) != MYNA_OK ||
        check_numbers(patch, errs, max_errs, n_errs, err) != MYNA_OK) {
        cJSON_Delete(patch);
        return err->code;
    }
    if (u) {
        rc = replace_unloaded(f, who, u, patch, errs, max_errs, n_errs, err);
        cJSON_Delete(patch);
        return rc;
    }
    if ((cur = opened(f, l, err)) == NULL) {
        cJSON_Delete(patch);
        return err->code;
    }
    llm = cJSON_GetObjectItemCaseSensitive(patch, "llm");
    if (moves_kept_secret(patch, cur, "graph_url", "access_token", MYNA_GRAPH_URL_DEFAULT))
        rc = field_error("access_token", "must be given again (or \"\") when graph_url changes",
                         errs, max_errs, n_errs, err);
    else if (cJSON_IsObject(llm) &&
             moves_kept_secret(llm, cJSON_GetObjectItemCaseSensitive(cur, "llm"), "url",
                               "api_key", NULL))
        rc = field_error("llm.api_key", "must be given again (or \"\") when llm.url changes",
                         errs, max_errs, n_errs, err);
    else
        rc = MYNA_OK;
    if (rc != MYNA_OK) {
        cJSON_Delete(patch);
        cJSON_Delete(cur);
        return rc;
    }
    cJSON_ArrayForEach(item, patch) {
        cJSON *copy;
        if (strcmp(item->string, "id") == 0) {  /* null: as left out, kept */
            if (!cJSON_IsNull(item) &&
                (!cJSON_IsString(item) || strcmp(item->valuestring, id) != 0)) {
                cJSON_Delete(patch);
                cJSON_Delete(cur);
                return field_error("id", "cannot be changed", errs, max_errs, n_errs, err);
            }
            continue;
        }
        if (is_masked(item) && is_secret_field(item->string))
            continue;
        if (strcmp(item->string, "llm") == 0 && cJSON_IsObject(item)) {
            cJSON *key = cJSON_GetObjectItemCaseSensitive(item, "api_key");
            cJSON *old = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(cur, "llm"),
                                                          "api_key");
            if ((key == NULL || is_masked(key)) && cJSON_IsString(old)) {
                cJSON *keep = cJSON_CreateString(old->valuestring);
                if (key)
                    cJSON_ReplaceItemInObjectCaseSensitive(item, "api_key", keep);
                else
                    cJSON_AddItemToObject(item, "api_key", keep);
            }
        }
        /* case-sensitive, as the replace: "NAME" is not "name" (and, not a
         * field, was refused before the merge) */
        if ((copy = cJSON_Duplicate(item, 1)) == NULL ||
            (cJSON_GetObjectItemCaseSensitive(cur, item->string) != NULL
                 ? !cJSON_ReplaceItemInObjectCaseSensitive(cur, item->string, copy)
                 : !cJSON_AddItemToObject(cur, item->string, copy))) {
            cJSON_Delete(copy);
            cJSON_Delete(patch);
            cJSON_Delete(cur);
            return myna_err_set(err, MYNA_ENOMEM, "out of memory");
        }
    }
    rc = validate(cur, errs, max_errs, n_errs, err);
    if (rc == MYNA_OK && same_as_stored(f, id, l->config, cur))
        rc = unchanged(f, who, id, err);
    else if (rc == MYNA_OK)
        rc = commit(f, who, id, cur, 0, l->owner_id, "instance.update", 1, err);
    cJSON_Delete(patch);
    cJSON_Delete(cur);
    return rc;
}

/* ---- delete: data to the trash ------------------------------------------------------ */

static void trash_files(struct myna_fleet *f, const char *id)
{
    static const char *const suffixes[] = { ".db", ".db-wal", ".db-shm", ".bot.db", ".bot.db-wal",
                                            ".bot.db-shm", ".bot.lock", NULL };
    char dir[4400], from[4400], to[4600];

    snprintf(dir, sizeof(dir), "%s/trash", f->data_dir);
    mkdir(dir, 0750);
    /* a folder of its own: another delete of the id in the same second
     * (or a clock set back) must not overwrite the files kept there; a
     * later second in the name only delays the purge by as much */
    for (int64_t k = 0, now = myna_wall_ms() / 1000;; k++) {
        snprintf(dir, sizeof(dir), "%s/trash/%s-%lld", f->data_dir, id, (long long)(now + k));
        if (mkdir(dir, 0750) == 0)
            break;
        if (errno != EEXIST || k == TRASH_TRIES) {
            MYNA_LOG_ERRNO(MYNA_ERROR, "trash_failed", errno, "instance=%s", id);
            return;
        }
    }
    for (size_t i = 0; suffixes[i]; i++) {
        snprintf(from, sizeof(from), "%s/instances/%s%s", f->data_dir, id, suffixes[i]);
        snprintf(to, sizeof(to), "%s/%s%s", dir, id, suffixes[i]);
        if (rename(from, to) != 0 && errno != ENOENT)
            MYNA_LOG_ERRNO(MYNA_ERROR, "trash_failed", errno, "instance=%s file=%s%s", id, id,
                           suffixes[i]);
    }
    for (int k = 0; k <= 3; k++) {
        snprintf(from, sizeof(from), k ? "%s/logs/%s.log.%d" : "%s/logs/%s.log", f->data_dir, id,
                 k);
        snprintf(to, sizeof(to), k ? "%s/%s.log.%d" : "%s/%s.log", dir, id, k);
        rename(from, to);
    }
}

static void on_bot_removed(void *arg)
{
    struct pending_delete *d = arg, **pp;

    trash_files(d->f, d->id);  /* the bot is gone: nothing writes its files */
    MYNA_LOG(MYNA_INFO, "instance_deleted", "instance=%s", d->id);
    for (pp = &d->f->deleting; *pp; pp = &(*pp)->next)
        if (*pp == d) {
            *pp = d->next;
            break;
        }
    free(d);
}

int myna_fleet_delete(struct myna_fleet *f, const struct myna_actor *who, const char *id,
                      struct myna_err *err)
{
    struct unloaded *u = find_unloaded(f, id);
    struct pending_delete *d;
    int rc;

    if (find(f, id) == NULL && u == NULL)
        return myna_err_set(err, MYNA_ENOTFOUND, "no instance '%s'", id);
    if ((d = calloc(1, sizeof(*d))) == NULL)
        return myna_err_set(err, MYNA_ENOMEM, "out of memory");
    d->f = f;
    snprintf(d->id, sizeof(d->id), "%s", id);
    if ((rc = myna_control_begin(f->control, err)) == MYNA_OK) {
        rc = myna_control_instance_delete(f->control, id, err);
        if (rc == MYNA_OK)
            rc = audit(f, who, "instance.delete", id, NULL, err);
        if (rc == MYNA_OK)
            rc = myna_control_commit(f->control, err);
        else
            myna_control_rollback(f->control);
    }
    if (rc != MYNA_OK) {
        free(d);
        return rc;
    }
    d->next = f->deleting;  /* its id stays taken until its files are moved */
    f->deleting = d;
    if (u)
        *u = f->unloaded[--f->n_unloaded];
    retire(f, take(f, id));
    rc = publish(f, err);  /* webhooks for it are 404 from here */
    if (f->sup == NULL || myna_supervisor_remove(f->sup, id, on_bot_removed, d) != MYNA_OK)
        on_bot_removed(d);
    return rc;
}

int myna_fleet_action(struct myna_fleet *f, const struct myna_actor *who, const char *id,
                      const char *action, struct myna_err *err)
{
    struct live *l = find(f, id);
    char audit_action[40], *config = NULL;
    int rc, auto_start;
    int64_t version = 0;

    if (l == NULL)
        return myna_err_set(err, MYNA_ENOTFOUND, "no instance '%s'", id);
    if (strcmp(action, "start") != 0 && strcmp(action, "stop") != 0 &&
        strcmp(action, "restart") != 0)
        return myna_err_set(err, MYNA_EINVAL, "unknown action '%.32s'", action);
    if (f->sup == NULL)
        return myna_err_set(err, MYNA_EINVAL, "bots are off (--bots 0)");
    if (!l->inst.enabled && strcmp(action, "stop") != 0)
        return myna_err_set(err, MYNA_EINVAL, "instance '%s' is disabled", id);
    auto_start = strcmp(action, "start") == 0 ? 1 : strcmp(action, "stop") == 0 ? 0 : -1;
    snprintf(audit_action, sizeof(audit_action), "instance.%s", action);
    if (auto_start >= 0) {  /* the stored config says it too: it decides at the next start */
        cJSON *obj = opened(f, l, err);
        if (obj == NULL)
            return err->code;
        cJSON_DeleteItemFromObjectCaseSensitive(obj, "auto_start");
        config = cJSON_AddBoolToObject(obj, "auto_start", auto_start) ? sealed_text(f, obj, id, err)
                                                                     : NULL;
        cJSON_Delete(obj);
        if (config == NULL)
            return err->code ? err->code : myna_err_set(err, MYNA_ENOMEM, "out of memory");
    }
    if ((rc = myna_control_begin(f->control, err)) == MYNA_OK) {
        rc = auto_start < 0 ? MYNA_OK
                            : myna_control_instance_update(f->control, id, config, -1, auto_start,
                                                           -1, myna_wall_ms(), &version, err);
        if (rc == MYNA_OK)
            rc = audit(f, who, audit_action, id, NULL, err);
        if (rc == MYNA_OK)
            rc = myna_control_commit(f->control, err);
        else
            myna_control_rollback(f->control);
    }
    if (rc != MYNA_OK) {
        free(config);
        return rc;
    }
    if (auto_start >= 0) {  /* committed: now the live instance says what is stored */
        free(l->config);
        l->config = config;
        l->inst.auto_start = auto_start;
        l->version = version;
    }
    if (auto_start == 1)
        bot_start(f, l);
    else if (auto_start == 0)
        myna_supervisor_stop(f->sup, id, NULL, NULL);  /* not known: nothing runs */
    else {
        bot_known(f, l);  /* a bot never started (auto_start false) starts */
        if ((rc = myna_supervisor_restart(f->sup, id)) != MYNA_OK)
            return myna_err_set(err, rc, "instance '%s' cannot be restarted: %s", id,
                                rc == MYNA_EAGAIN ? "the server is stopping" : myna_strerror(rc));
    }
    return MYNA_OK;
}

/* ---- reads --------------------------------------------------------------------------- */

const struct myna_instance *myna_fleet_find(const struct myna_fleet *f, const char *id)
{
    const struct live *l = find(f, id);

    return l ? &l->inst : NULL;
}

int64_t myna_fleet_owner(const struct myna_fleet *f, const char *id)
{
    const struct live *l = find(f, id);
    const struct unloaded *u = l ? NULL : find_unloaded(f, id);

    return l ? l->owner_id : u ? u->owner_id : -1;
}

const char *myna_fleet_unloaded(const struct myna_fleet *f, const char *id)
{
    const struct unloaded *u = find_unloaded(f, id);

    return u ? u->why : NULL;
}

size_t myna_fleet_unloaded_count(const struct myna_fleet *f)
{
    return f->n_unloaded;
}

const char *myna_fleet_unloaded_id(const struct myna_fleet *f, size_t i)
{
    return i < f->n_unloaded ? f->unloaded[i].id : NULL;
}

size_t myna_fleet_count(const struct myna_fleet *f)
{
    return f->n;
}

const char *myna_fleet_id(const struct myna_fleet *f, size_t i)
{
    return i < f->n ? f->v[i]->id : NULL;
}

char *myna_fleet_bot_config(struct myna_fleet *f, const char *id)
{
    struct live *l = find(f, id);
    struct myna_err err = MYNA_ERR_INIT;
    cJSON *obj = l ? opened(f, l, &err) : NULL;
    char *out = obj ? cJSON_PrintUnformatted(obj) : NULL;

    if (l && out == NULL) {
        char q[600];
        MYNA_LOG(MYNA_ERROR, "bot_config_failed", "instance=%s err=%s", id,
                 myna_log_q(q, sizeof(q), err.msg));
    }
    cJSON_Delete(obj);  /* its strings held secrets; cJSON frees them as they are */
    return out;
}

cJSON *myna_fleet_config_json(struct myna_fleet *f, const char *id,
                              enum myna_secrets_view view)
{
    struct live *l = find(f, id);
    struct myna_err err = MYNA_ERR_INIT;
    cJSON *obj = l ? opened(f, l, &err) : NULL, *llm;
    const char *names[] = { "access_token", "app_secret", "verify_token" };

    if (obj == NULL)
        return NULL;
    llm = cJSON_GetObjectItemCaseSensitive(obj, "llm");
    for (size_t i = 0; view != MYNA_SECRETS_SHOWN && i < 4; i++) {
        cJSON *parent = i < 3 ? obj : llm;
        const char *name = i < 3 ? names[i] : "api_key";
        cJSON *v = cJSON_IsObject(parent) ? cJSON_GetObjectItemCaseSensitive(parent, name) : NULL;
        char masked[MYNA_SECRET_MASK_MAX];
        if (!cJSON_IsString(v))
            continue;
        if (view == MYNA_SECRETS_HIDDEN) {
            cJSON_DeleteItemFromObjectCaseSensitive(parent, name);
        } else {
            myna_secret_mask(v->valuestring, masked, sizeof(masked));
            /* a mask longer than the secret is a new copy: without memory
             * for it the secret would stay in the clear, so it goes */
            if (cJSON_SetValuestring(v, masked) == NULL)
                cJSON_DeleteItemFromObjectCaseSensitive(parent, name);
        }
    }
    cJSON_AddNumberToObject(obj, "version", (double)l->version);
    return obj;
}

/* ---- import ---------------------------------------------------------------------------- */

int myna_fleet_import(struct myna_fleet *f, const char *path, int64_t owner_id,
                      struct myna_err *err)
{
    struct myna_actor system = { owner_id, "import", 2, NULL, NULL };
    cJSON *root, *list, *item;
    int rc = MYNA_OK;

    /* checked whole first, with the messages of the file format; a named
     * LLM provider is stored as its settings */
    if ((list = myna_instances_load_json(path, &root, err)) == NULL)
        return err->code;
    cJSON_ArrayForEach(item, list) {
        const char *id = cJSON_GetObjectItemCaseSensitive(item, "id")->valuestring;
        struct myna_control_instance row;
        struct myna_err e = MYNA_ERR_INIT;
        int exists = myna_control_instance_get(f->control, id, &row, &e) == MYNA_OK, same = 0;

        if (exists) {
            same = same_as_stored(f, id, row.config, item);
            myna_control_instance_release(&row);
        }
        /* one the file says as it is stored is left as it is: no version,
         * no instance.import row at every start */
        if (!same && (rc = commit(f, &system, id, item, !exists, owner_id, "instance.import", 0,
                                  err)) != MYNA_OK)
            break;
    }
    cJSON_Delete(root);
    if (rc != MYNA_OK)
        myna_err_prefix(err, "importing '%s'", path);
    return rc;
}

int64_t myna_fleet_purge_trash(struct myna_fleet *f)
{
    char dir[4200];
    DIR *d;
    struct dirent *e;
    int64_t now = myna_wall_ms() / 1000, next = 0;

    snprintf(dir, sizeof(dir), "%s/trash", f->data_dir);
    if ((d = opendir(dir)) == NULL)
        return 0;
    while ((e = readdir(d)) != NULL) {
        const char *dash = strrchr(e->d_name, '-');
        int64_t ts;
        if (e->d_name[0] == '.' || dash == NULL || myna_parse_i64(dash + 1, 0, INT64_MAX, &ts) != 0)
            continue;
        if (now - ts < TRASH_KEEP_S) {  /* kept: when is it due? */
            if (next == 0 || ts + TRASH_KEEP_S < next)
                next = ts + TRASH_KEEP_S;
            continue;
        }
        {
            char sub[4500], file[4800];
            DIR *sd;
            struct dirent *se;
            snprintf(sub, sizeof(sub), "%s/%s", dir, e->d_name);
            if ((sd = opendir(sub)) == NULL)
                continue;
            while ((se = readdir(sd)) != NULL)
                if (se->d_name[0] != '.') {
                    snprintf(file, sizeof(file), "%s/%s", sub, se->d_name);
                    unlink(file);
                }
            closedir(sd);
            if (rmdir(sub) == 0) {
                char q[600];
                MYNA_LOG(MYNA_INFO, "trash_purged", "dir=%s", myna_log_q(q, sizeof(q), e->d_name));
            }
        }
    }
    closedir(d);
    return next;
}
