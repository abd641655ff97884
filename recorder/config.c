/*
 * config.c: reads crashscope's environment variables.
 *
 * Every variable has a CRASHSCOPE_ name; where the Pyroscope SDKs already have a name for
 * the same setting it is accepted as an alias, the CRASHSCOPE_ one winning. A value that
 * does not parse is never fatal: one line on stderr names the variable and the value, and
 * the default is used, because the program being recorded matters more than the recording.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void cs_warn(const char *fmt, ...)
{
    char buf[1024];
    int n = snprintf(buf, sizeof buf, "crashscope: ");
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(buf + n, sizeof buf - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        return;
    n += m;
    if (n > (int)sizeof buf - 2)
        n = (int)sizeof buf - 2;
    buf[n++] = '\n';
    ssize_t r = write(2, buf, (size_t)n);
    (void)r;
}

/* Returns the value of the first variable set among NAMES (NULL-terminated), and which. */
static const char *env_first(const char *const *names, const char **which)
{
    for (; *names; names++) {
        const char *v = getenv(*names);
        if (v && *v) {
            *which = *names;
            return v;
        }
    }
    return NULL;
}

static int parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    while (*end && isspace((unsigned char)*end))
        end++;
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on", NULL};
    static const char *const no[] = {"0", "false", "no", "off", NULL};
    for (int i = 0; yes[i]; i++)
        if (!strcasecmp(s, yes[i]))
            return *out = 1, 0;
    for (int i = 0; no[i]; i++)
        if (!strcasecmp(s, no[i]))
            return *out = 0, 0;
    return -1;
}

static void load_int(const char *const *names, long lo, long hi, int dflt, int *out, int warn)
{
    const char *which;
    const char *v = env_first(names, &which);
    long n;
    *out = dflt;
    if (!v)
        return;
    if (parse_int(v, lo, hi, &n) == 0) {
        *out = (int)n;
        return;
    }
    if (warn)
        cs_warn("%s='%.64s' is not a whole number from %ld to %ld; using %d", which, v, lo, hi,
                dflt);
}

int cs_config_default_db(char *out, size_t len)
{
    const char *xdg = getenv("XDG_STATE_HOME");
    const char *home = getenv("HOME");
    int n;
    if (xdg && xdg[0] == '/')
        n = snprintf(out, len, "%s/crashscope/crashscope.db", xdg);
    else if (home && *home)
        n = snprintf(out, len, "%s/.local/state/crashscope/crashscope.db", home);
    else
        return -1;
    return n > 0 && (size_t)n < len ? 0 : -1;
}

static int tag_key_ok(const char *k, size_t n)
{
    if (n == 0 || n > 100)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!(isalnum((unsigned char)k[i]) || k[i] == '_' || k[i] == '.'))
            return 0;
    return !(n >= 2 && k[0] == '_' && k[1] == '_');
}

int cs_config_parse_tags(const char *in, char *out, size_t len, const char **why)
{
    size_t o = 0;
    out[0] = 0;
    while (*in) {
        const char *end = strchr(in, ',');
        size_t n = end ? (size_t)(end - in) : strlen(in);
        const char *eq = memchr(in, '=', n);
        if (n == 0) { /* tolerate "a=b,,c=d" and a trailing comma */
            in += end ? 1 : 0;
            continue;
        }
        if (!eq) {
            *why = "each tag must be key=value";
            return -1;
        }
        size_t kl = (size_t)(eq - in), vl = n - kl - 1;
        if (!tag_key_ok(in, kl)) {
            *why = "tag keys are letters, digits, '_' and '.', not starting with '__'";
            return -1;
        }
        if (vl == 0 || vl > 1024 || memchr(eq + 1, '}', vl)) {
            *why = "tag values must be 1 to 1024 characters without '}'";
            return -1;
        }
        if (o + n + 2 > len) {
            *why = "too many tags";
            return -1;
        }
        if (o)
            out[o++] = ',';
        memcpy(out + o, in, n);
        o += n;
        out[o] = 0;
        in += n + (end ? 1 : 0);
    }
    return 0;
}

int cs_config_make_parent_dirs(const char *path)
{
    char buf[PATH_MAX];
    if (strlen(path) >= sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(buf, path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(buf, 0700) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return 0;
}

void cs_config_redact_url(const char *url, char *out, size_t len)
{
    const char *scheme = strstr(url, "://");
    const char *host = scheme ? scheme + 3 : url;
    const char *at = strchr(host, '@');
    const char *slash = strchr(host, '/');
    if (at && (!slash || at < slash))
        snprintf(out, len, "%.*s%s", (int)(host - url), url, at + 1);
    else
        snprintf(out, len, "%s", url);
}

static void load_str(const char *const *names, char *out, size_t len, int warn)
{
    const char *which;
    const char *v = env_first(names, &which);
    out[0] = 0;
    if (!v)
        return;
    if (strlen(v) >= len) {
        if (warn) /* the value itself is not shown: it may be a secret */
            cs_warn("%s is longer than %zu bytes; ignored", which, len - 1);
        return;
    }
    strcpy(out, v);
}

static void load_upload(cs_config *c, int warn)
{
    static const char *const n_url[] = {"CRASHSCOPE_SERVER_URL", "PYROSCOPE_SERVER_ADDRESS", NULL};
    static const char *const n_user[] = {"CRASHSCOPE_BASIC_AUTH_USER",
                                         "PYROSCOPE_BASIC_AUTH_USERNAME", NULL};
    static const char *const n_pass[] = {"CRASHSCOPE_BASIC_AUTH_PASSWORD",
                                         "PYROSCOPE_BASIC_AUTH_PASSWORD", NULL};
    static const char *const n_tenant[] = {"CRASHSCOPE_TENANT_ID", "PYROSCOPE_TENANT_ID", NULL};
    static const char *const n_upload[] = {"CRASHSCOPE_UPLOAD", NULL};
    static const char *const n_flush[] = {"CRASHSCOPE_FLUSH_SECONDS", NULL};
    static const char *const n_api[] = {"CRASHSCOPE_UPLOAD_API", NULL};
    const char *which, *v;
    load_str(n_url, c->server_url, sizeof c->server_url, warn);
    load_str(n_user, c->user, sizeof c->user, warn);
    load_str(n_pass, c->password, sizeof c->password, warn);
    load_str(n_tenant, c->tenant, sizeof c->tenant, warn);
    if (c->server_url[0] && strncmp(c->server_url, "http://", 7) != 0 &&
        strncmp(c->server_url, "https://", 8) != 0) {
        if (warn) {
            char shown[1024];
            cs_config_redact_url(c->server_url, shown, sizeof shown);
            cs_warn("CRASHSCOPE_SERVER_URL='%.200s' is not an http:// or https:// URL; nothing "
                    "will be uploaded",
                    shown);
        }
        c->server_url[0] = 0;
    }
    c->upload = c->server_url[0] ? CS_UPLOAD_CRASH : CS_UPLOAD_OFF;
    if ((v = env_first(n_upload, &which))) {
        if (!strcmp(v, "off"))
            c->upload = CS_UPLOAD_OFF;
        else if (!strcmp(v, "crash"))
            c->upload = c->server_url[0] ? CS_UPLOAD_CRASH : CS_UPLOAD_OFF;
        else if (!strcmp(v, "continuous"))
            c->upload = c->server_url[0] ? CS_UPLOAD_CONTINUOUS : CS_UPLOAD_OFF;
        else if (warn)
            cs_warn("%s='%.64s' is not off, crash or continuous; using %s", which, v,
                    c->upload ? "crash" : "off");
        if (warn && !c->server_url[0] && strcmp(v, "off") != 0 &&
            (!strcmp(v, "crash") || !strcmp(v, "continuous")))
            cs_warn("%s=%s but no CRASHSCOPE_SERVER_URL is set; nothing will be uploaded", which,
                    v);
    }
    load_int(n_flush, 10, 3600, 60, &c->flush_seconds, warn);
    if ((v = env_first(n_api, &which))) {
        if (!strcmp(v, "ingest"))
            c->upload_ingest = 1;
        else if (strcmp(v, "push") != 0 && warn)
            cs_warn("%s='%.64s' is not push or ingest; using push", which, v);
    }
}

void cs_config_load(cs_config *c, int warn)
{
    static const char *const n_enabled[] = {"CRASHSCOPE_ENABLED", NULL};
    static const char *const n_db[] = {"CRASHSCOPE_DB", NULL};
    static const char *const n_app[] = {"CRASHSCOPE_APP_NAME", "PYROSCOPE_APPLICATION_NAME", NULL};
    static const char *const n_tags[] = {"CRASHSCOPE_TAGS", "PYROSCOPE_TAGS", NULL};
    static const char *const n_cpu[] = {"CRASHSCOPE_CPU_HZ", "PYROSCOPE_SAMPLE_RATE", NULL};
    static const char *const n_wall[] = {"CRASHSCOPE_WALL_HZ", NULL};
    static const char *const n_window[] = {"CRASHSCOPE_WINDOW_SECONDS", NULL};
    static const char *const n_heap[] = {"CRASHSCOPE_HEAP_SAMPLE_BYTES", NULL};
    static const char *const n_pymalloc[] = {"CRASHSCOPE_PYTHON_MALLOC", NULL};
    const char *which, *v;

    memset(c, 0, sizeof *c);
    c->enabled = 1;
    if ((v = env_first(n_enabled, &which)) && parse_bool(v, &c->enabled) != 0) {
        c->enabled = 1;
        if (warn)
            cs_warn("%s='%.64s' is not 0/1/true/false/yes/no/on/off; recording stays on", which, v);
    }

    v = env_first(n_db, &which);
    if (v && strlen(v) < sizeof c->db_path) {
        strcpy(c->db_path, v);
    } else {
        if (v && warn)
            cs_warn("%s is longer than %zu bytes; using the default database", which,
                    sizeof c->db_path - 1);
        if (cs_config_default_db(c->db_path, sizeof c->db_path) != 0) {
            c->db_path[0] = 0;
            if (warn)
                cs_warn("neither CRASHSCOPE_DB, XDG_STATE_HOME nor HOME is set; "
                        "nothing will be recorded");
        }
    }

    if ((v = env_first(n_app, &which))) {
        size_t n = strlen(v);
        if (n >= sizeof c->app_name || strpbrk(v, "{},=")) {
            if (warn)
                cs_warn("%s='%.64s' is too long or contains one of {},=; using the "
                        "program's name",
                        which, v);
        } else {
            memcpy(c->app_name, v, n + 1);
        }
    }

    if ((v = env_first(n_tags, &which))) {
        const char *why = "";
        if (cs_config_parse_tags(v, c->tags, sizeof c->tags, &why) != 0) {
            c->tags[0] = 0;
            if (warn)
                cs_warn("%s='%.64s' is not valid (%s); recording without tags", which, v, why);
        }
    }

    load_int(n_cpu, 0, CS_MAX_HZ, CS_DEFAULT_CPU_HZ, &c->cpu_hz, warn);
    load_int(n_wall, 0, CS_MAX_HZ, CS_DEFAULT_WALL_HZ, &c->wall_hz, warn);
    load_int(n_window, 10, 7 * 24 * 3600, CS_DEFAULT_WINDOW_SECONDS, &c->window_seconds, warn);
    load_int(n_heap, 0, 1 << 30, CS_DEFAULT_HEAP_SAMPLE_BYTES, &c->heap_sample_bytes, warn);
    if ((v = env_first(n_pymalloc, &which)) && parse_bool(v, &c->python_malloc) != 0) {
        c->python_malloc = 0;
        if (warn)
            cs_warn("%s='%.64s' is not 0/1/true/false/yes/no/on/off; Python keeps its allocator",
                    which, v);
    }
    load_upload(c, warn);
}
