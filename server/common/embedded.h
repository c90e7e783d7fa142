/* Files embedded into the binary at build time (cmake/embed.cmake).
 * Each table ends with an entry whose name is NULL. `data` is NUL-terminated
 * one byte past `len`, so text files can be used as C strings. */
#ifndef LWDM_COMMON_EMBEDDED_H
#define LWDM_COMMON_EMBEDDED_H
#include <stddef.h>

typedef struct {
    const char *name;          /* file name without directory, e.g. "0.xml" */
    const unsigned char *data; /* contents, NUL-terminated */
    size_t len;                /* length without the terminating NUL */
} lwdm_embedded_file_t;

/* OMA object definitions from objects/ (*.xml files) */
extern const lwdm_embedded_file_t lwdm_builtin_objects[];
extern const size_t lwdm_builtin_objects_count;
/* SQL migrations from migrations/NNNN_name.sql, sorted by name */
extern const lwdm_embedded_file_t lwdm_migrations[];
extern const size_t lwdm_migrations_count;

#endif
