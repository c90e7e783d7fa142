/* db: secrets at rest (libsodium secretbox) and the secret key. */
#include "db/db_int.h"
#include "server/common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int db_seal(db_t *db, const void *plain, size_t len, uint8_t **out, size_t *outlen)
{
    *out = NULL;
    *outlen = 0;
    size_t n = crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + len;
    uint8_t *b = malloc(n);
    if (!b)
        return SQLITE_NOMEM;
    randombytes_buf(b, crypto_secretbox_NONCEBYTES);
    crypto_secretbox_easy(b + crypto_secretbox_NONCEBYTES, plain ? plain : (const void *)"", len, b, db->key);
    *out = b;
    *outlen = n;
    return SQLITE_OK;
}

int db_unseal(db_t *db, const void *blob, size_t bloblen, uint8_t **out, size_t *outlen)
{
    *out = NULL;
    *outlen = 0;
    if (bloblen < crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES)
        return SQLITE_CORRUPT;
    const uint8_t *b = blob;
    size_t n = bloblen - crypto_secretbox_NONCEBYTES - crypto_secretbox_MACBYTES;
    uint8_t *p = malloc(n + 1);
    if (!p)
        return SQLITE_NOMEM;
    if (crypto_secretbox_open_easy(p, b + crypto_secretbox_NONCEBYTES,
                                   bloblen - crypto_secretbox_NONCEBYTES, b, db->key) != 0) {
        free(p);
        LOG_ERROR("db", "event=secret_decrypt_failed hint=\"wrong LWDM_SECRET_KEY or key file?\"");
        return SQLITE_CORRUPT;
    }
    p[n] = 0;
    *out = p;
    *outlen = n;
    return SQLITE_OK;
}

int db_bind_secret(db_t *db, sqlite3_stmt *st, int i, const void *plain, size_t len)
{
    if (!plain)
        return sqlite3_bind_null(st, i);
    uint8_t *blob;
    size_t n;
    int rc = db_seal(db, plain, len, &blob, &n);
    if (rc != SQLITE_OK)
        return rc;
    return sqlite3_bind_blob(st, i, blob, (int)n, free);
}

int db_column_secret(db_t *db, sqlite3_stmt *st, int col, uint8_t **out, size_t *outlen)
{
    *out = NULL;
    *outlen = 0;
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        return SQLITE_OK;
    const void *b = sqlite3_column_blob(st, col);
    int n = sqlite3_column_bytes(st, col);
    return db_unseal(db, b, (size_t)n, out, outlen);
}

/* ------------------------------------------------------------ key loading */
static void kerr(char *err, size_t errlen, const char *fmt, const char *a, const char *b)
{
    if (err && errlen)
        snprintf(err, errlen, fmt, a ? a : "", b ? b : "");
}

/* Accepts 64 hex chars or base64 (any variant, padded or not) of 32 bytes,
 * surrounding whitespace ignored. 0 on success. */
static int parse_key_text(const char *text, size_t len, uint8_t key[DB_KEY_BYTES])
{
    while (len && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' ' || text[len - 1] == '\t'))
        len--;
    while (len && (*text == ' ' || *text == '\t' || *text == '\n' || *text == '\r')) {
        text++;
        len--;
    }
    size_t got = 0;
    const char *end = NULL;
    if (len == 2 * DB_KEY_BYTES &&
        sodium_hex2bin(key, DB_KEY_BYTES, text, len, NULL, &got, &end) == 0 &&
        got == DB_KEY_BYTES && end == text + len)
        return 0;
    static const int variants[] = {sodium_base64_VARIANT_ORIGINAL, sodium_base64_VARIANT_ORIGINAL_NO_PADDING,
                                   sodium_base64_VARIANT_URLSAFE, sodium_base64_VARIANT_URLSAFE_NO_PADDING};
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
        got = 0;
        end = NULL;
        if (sodium_base642bin(key, DB_KEY_BYTES, text, len, NULL, &got, &end, variants[i]) == 0 &&
            got == DB_KEY_BYTES && end == text + len)
            return 0;
    }
    sodium_memzero(key, DB_KEY_BYTES);
    return -1;
}

static int read_key_file(const char *path, uint8_t key[DB_KEY_BYTES], char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        kerr(err, errlen, "cannot read key file %s: %s", path, strerror(errno));
        return SQLITE_CANTOPEN;
    }
    struct stat sb;
    if (fstat(fd, &sb) == 0 && (sb.st_mode & 077))
        LOG_WARN("db", "event=key_file_permissions path=%s mode=%o hint=\"chmod 600\"", path,
                 (unsigned)(sb.st_mode & 0777));
    char buf[256];
    size_t len = 0;
    ssize_t r;
    while (len < sizeof buf && (r = read(fd, buf + len, sizeof buf - len)) != 0) {
        if (r < 0) {
            if (errno == EINTR)
                continue;
            kerr(err, errlen, "cannot read key file %s: %s", path, strerror(errno));
            close(fd);
            sodium_memzero(buf, sizeof buf);
            return SQLITE_IOERR;
        }
        len += (size_t)r;
    }
    close(fd);
    int rc = SQLITE_OK;
    if (len == DB_KEY_BYTES)
        memcpy(key, buf, DB_KEY_BYTES); /* raw 32 bytes */
    else if (len == sizeof buf || parse_key_text(buf, len, key) != 0) {
        kerr(err, errlen, "key file %s: expected 64 hex characters or base64 of 32 bytes%s", path, NULL);
        rc = SQLITE_CORRUPT;
    }
    sodium_memzero(buf, sizeof buf);
    return rc;
}

int db_secret_key_load(const char *db_path, const char *env_value, uint8_t key[DB_KEY_BYTES], char *err, size_t errlen)
{
    if (sodium_init() < 0) {
        kerr(err, errlen, "libsodium initialisation failed%s%s", NULL, NULL);
        return SQLITE_ERROR;
    }
    if (env_value && *env_value) {
        if (parse_key_text(env_value, strlen(env_value), key) != 0) {
            kerr(err, errlen, "LWDM_SECRET_KEY: expected 64 hex characters or base64 of 32 bytes%s%s", NULL, NULL);
            return SQLITE_MISUSE;
        }
        return SQLITE_OK;
    }
    if (!db_path || !*db_path) {
        kerr(err, errlen, "no database path to derive the key file from%s%s", NULL, NULL);
        return SQLITE_MISUSE;
    }
    size_t plen = strlen(db_path) + 5;
    char *path = malloc(plen);
    if (!path)
        return SQLITE_NOMEM;
    snprintf(path, plen, "%s.key", db_path);
    int rc;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST) {
        rc = read_key_file(path, key, err, errlen);
    } else if (fd < 0) {
        kerr(err, errlen, "cannot create key file %s: %s", path, strerror(errno));
        rc = SQLITE_CANTOPEN;
    } else {
        uint8_t k[DB_KEY_BYTES];
        char hex[2 * DB_KEY_BYTES + 2];
        randombytes_buf(k, sizeof k);
        sodium_bin2hex(hex, sizeof hex, k, sizeof k);
        size_t hl = strlen(hex);
        hex[hl++] = '\n';
        rc = SQLITE_OK;
        size_t off = 0;
        while (off < hl) {
            ssize_t w = write(fd, hex + off, hl - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                kerr(err, errlen, "cannot write key file %s: %s", path, strerror(errno));
                rc = SQLITE_IOERR;
                break;
            }
            off += (size_t)w;
        }
        if (rc == SQLITE_OK && fsync(fd) != 0) {
            kerr(err, errlen, "cannot sync key file %s: %s", path, strerror(errno));
            rc = SQLITE_IOERR;
        }
        close(fd);
        if (rc == SQLITE_OK) {
            memcpy(key, k, DB_KEY_BYTES);
            LOG_INFO("db", "event=key_file_created path=%s", path);
        } else {
            unlink(path);
        }
        sodium_memzero(k, sizeof k);
        sodium_memzero(hex, sizeof hex);
    }
    free(path);
    return rc;
}
