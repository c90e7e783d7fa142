#include "server/common/log.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static log_level_t g_level = LOG_LVL_INFO;
static log_format_t g_format = LOG_FMT_TEXT;
static const char *const k_names[] = {"debug", "info", "warn", "error", "off"};

void log_set_level(log_level_t lvl) { g_level = lvl; }
log_level_t log_get_level(void) { return g_level; }
void log_set_format(log_format_t fmt) { g_format = fmt; }

int log_level_parse(const char *s)
{
    for (int i = 0; i <= LOG_LVL_OFF; i++)
        if (s && strcasecmp(s, k_names[i]) == 0)
            return i;
    if (s && strcasecmp(s, "warning") == 0)
        return LOG_LVL_WARN;
    return -1;
}

/* JSON-escape `in` into out (always NUL-terminated). */
static size_t json_escape(char *out, size_t cap, const char *in)
{
    size_t o = 0;
    for (; *in && o + 7 < cap; in++) {
        unsigned char c = (unsigned char)*in;
        if (c == '"' || c == '\\') { out[o++] = '\\'; out[o++] = (char)c; }
        else if (c == '\n') { out[o++] = '\\'; out[o++] = 'n'; }
        else if (c < 0x20) o += (size_t)snprintf(out + o, cap - o, "\\u%04x", c);
        else out[o++] = (char)c;
    }
    out[o] = 0;
    return o;
}

void log_vmsg(log_level_t lvl, const char *component, const char *fmt, va_list ap)
{
    if (lvl < g_level || lvl >= LOG_LVL_OFF)
        return;
    char msg[2048];
    vsnprintf(msg, sizeof msg, fmt, ap);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char tbuf[80];
    snprintf(tbuf, sizeof tbuf, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (long)(ts.tv_nsec / 1000000) % 1000);
    char line[4600];
    int n;
    if (g_format == LOG_FMT_JSON) {
        char esc[4400];
        json_escape(esc, sizeof esc, msg);
        n = snprintf(line, sizeof line, "{\"ts\":\"%s\",\"level\":\"%s\",\"component\":\"%s\",\"msg\":\"%s\"}\n",
                     tbuf, k_names[lvl], component, esc);
    } else {
        n = snprintf(line, sizeof line, "%s %s %s %s\n", tbuf, k_names[lvl], component, msg);
    }
    if (n > (int)sizeof line - 1)
        n = (int)sizeof line - 1, line[n - 1] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}

void log_msg(log_level_t lvl, const char *component, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(lvl, component, fmt, ap);
    va_end(ap);
}
