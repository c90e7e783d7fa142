/* Logging: one line per event, `level component key=value ...`, to stderr.
 * Thread-safe (one write(2) per line). Every line about a device carries
 * `ep=<endpoint>`; secrets (PSK, passwords, tokens) are never passed here. */
#ifndef LWDM_COMMON_LOG_H
#define LWDM_COMMON_LOG_H
#include <stdarg.h>

typedef enum { LOG_LVL_DEBUG = 0, LOG_LVL_INFO, LOG_LVL_WARN, LOG_LVL_ERROR, LOG_LVL_OFF } log_level_t;
typedef enum { LOG_FMT_TEXT = 0, LOG_FMT_JSON } log_format_t;

void log_set_level(log_level_t lvl);
log_level_t log_get_level(void);
void log_set_format(log_format_t fmt);
/* Parses "debug|info|warn|error|off"; returns -1 if unknown. */
int log_level_parse(const char *s);

/* fmt is a printf format producing the `key=value ...` part. */
void log_msg(log_level_t lvl, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void log_vmsg(log_level_t lvl, const char *component, const char *fmt, va_list ap);

/* Short names on purpose: syslog.h (pulled in by libcoap) owns LOG_DEBUG,
 * LOG_INFO, LOG_WARNING and LOG_ERR as plain constants. */
#define LOGD(comp, ...) do { if (log_get_level() <= LOG_LVL_DEBUG) log_msg(LOG_LVL_DEBUG, comp, __VA_ARGS__); } while (0)
#define LOGI(comp, ...) do { if (log_get_level() <= LOG_LVL_INFO) log_msg(LOG_LVL_INFO, comp, __VA_ARGS__); } while (0)
#define LOGW(comp, ...) log_msg(LOG_LVL_WARN, comp, __VA_ARGS__)
#define LOGE(comp, ...) log_msg(LOG_LVL_ERROR, comp, __VA_ARGS__)

/* Long names, for files that do not include libcoap/syslog.h. A file that
 * includes libcoap must include it BEFORE this header and use the short names. */
#ifndef LOG_DEBUG
#define LOG_DEBUG(...) LOGD(__VA_ARGS__)
#define LOG_INFO(...) LOGI(__VA_ARGS__)
#define LOG_WARN(...) LOGW(__VA_ARGS__)
#define LOG_ERROR(...) LOGE(__VA_ARGS__)
#endif

#endif
