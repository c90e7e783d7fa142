/* db: API users (argon2id password hashes) and bearer tokens (stored hashed). */
#include "db/db_int.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char SQL_COUNT[] = "SELECT count(*) FROM users";
static const char SQL_INSERT[] =
    "INSERT INTO users (username, password_hash, domain, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)";
static const char SQL_BY_NAME[] = "SELECT id, password_hash FROM users WHERE username = ?1";
static const char SQL_TOKEN_INSERT[] =
    "INSERT INTO api_tokens (token_hash, user_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)";
static const char SQL_TOKEN_PURGE[] = "DELETE FROM api_tokens WHERE expires_at IS NOT NULL AND expires_at <= ?1";
static const char SQL_TOKEN_CHECK[] =
    "SELECT u.id, u.domain FROM api_tokens t JOIN users u ON u.id = t.user_id"
    " WHERE t.token_hash = ?1 AND (t.expires_at IS NULL OR t.expires_at > ?2)";
static const char SQL_TOKEN_REVOKE[] = "DELETE FROM api_tokens WHERE token_hash = ?1";

int db_user_count(db_t *db, int64_t *n)
{
    *n = 0;
    sqlite3_stmt *st = db_stmt(db, SQL_COUNT);
    if (!st)
        return SQLITE_ERROR;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *n = sqlite3_column_int64(st, 0);
        rc = SQLITE_OK;
    }
    db_stmt_done(st);
    return rc;
}

int db_user_create(db_t *db, const char *username, const char *password, const char *domain, int64_t *id_out)
{
    if (id_out)
        *id_out = 0;
    if (!username || !*username || !password)
        return SQLITE_MISUSE;
    char hash[crypto_pwhash_STRBYTES];
    if (crypto_pwhash_str(hash, password, strlen(password), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
        return SQLITE_NOMEM;
    sqlite3_stmt *st = db_stmt(db, SQL_INSERT);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_text(st, 1, username, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, domain ? domain : "/", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, db_now_ms());
    int rc = db_step_done(st);
    if (rc == SQLITE_OK && id_out)
        *id_out = sqlite3_last_insert_rowid(db->h);
    return rc;
}

/* A valid hash to verify against when the user does not exist, so that the
 * answer takes the same time either way. */
static pthread_once_t g_dummy_once = PTHREAD_ONCE_INIT;
static char g_dummy_hash[crypto_pwhash_STRBYTES];
static void make_dummy_hash(void)
{
    if (crypto_pwhash_str(g_dummy_hash, "lwdm-dummy", 10, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
        g_dummy_hash[0] = 0;
}

int db_user_verify(db_t *db, const char *username, const char *password, int64_t *user_id)
{
    *user_id = 0;
    if (!username || !password)
        return SQLITE_AUTH;
    sqlite3_stmt *st = db_stmt(db, SQL_BY_NAME);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_text(st, 1, username, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    char hash[crypto_pwhash_STRBYTES] = {0};
    int64_t id = 0;
    if (rc == SQLITE_ROW) {
        id = sqlite3_column_int64(st, 0);
        snprintf(hash, sizeof hash, "%s", (const char *)sqlite3_column_text(st, 1));
    }
    db_stmt_done(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return rc;
    if (rc == SQLITE_DONE) {
        pthread_once(&g_dummy_once, make_dummy_hash);
        if (g_dummy_hash[0] && crypto_pwhash_str_verify(g_dummy_hash, password, strlen(password)) == 0)
            return SQLITE_AUTH; /* cannot happen: nobody knows the dummy password */
        return SQLITE_AUTH;
    }
    if (crypto_pwhash_str_verify(hash, password, strlen(password)) != 0)
        return SQLITE_AUTH;
    *user_id = id;
    return SQLITE_OK;
}

static void token_hash(const char *token, uint8_t out[32])
{
    crypto_generichash(out, 32, (const unsigned char *)token, strlen(token), NULL, 0);
}

int db_token_create(db_t *db, int64_t user_id, int64_t ttl_s, char token_out[65])
{
    token_out[0] = 0;
    uint8_t raw[32], h[32];
    char tok[65];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2hex(tok, sizeof tok, raw, sizeof raw);
    token_hash(tok, h);
    int64_t now = db_now_ms();
    /* Housekeeping: expired tokens are useless. */
    sqlite3_stmt *st = db_stmt(db, SQL_TOKEN_PURGE);
    if (st) {
        sqlite3_bind_int64(st, 1, now);
        (void)db_step_done(st);
    }
    st = db_stmt(db, SQL_TOKEN_INSERT);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_blob(st, 1, h, sizeof h, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, user_id);
    sqlite3_bind_int64(st, 3, now);
    if (ttl_s > 0)
        sqlite3_bind_int64(st, 4, now + ttl_s * 1000);
    else
        sqlite3_bind_null(st, 4);
    int rc = db_step_done(st);
    if (rc == SQLITE_OK)
        memcpy(token_out, tok, sizeof tok);
    sodium_memzero(tok, sizeof tok);
    sodium_memzero(raw, sizeof raw);
    return rc;
}

int db_token_check(db_t *db, const char *token, int64_t *user_id, char *domain_out, size_t domain_cap)
{
    *user_id = 0;
    if (domain_out && domain_cap)
        domain_out[0] = 0;
    if (!token || strlen(token) != 64)
        return SQLITE_AUTH;
    uint8_t h[32];
    token_hash(token, h);
    sqlite3_stmt *st = db_stmt(db, SQL_TOKEN_CHECK);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_blob(st, 1, h, sizeof h, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, db_now_ms());
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *user_id = sqlite3_column_int64(st, 0);
        if (domain_out && domain_cap)
            snprintf(domain_out, domain_cap, "%s", (const char *)sqlite3_column_text(st, 1));
        rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
        rc = SQLITE_AUTH;
    }
    db_stmt_done(st);
    return rc;
}

int db_token_revoke(db_t *db, const char *token)
{
    if (!token)
        return SQLITE_NOTFOUND;
    uint8_t h[32];
    token_hash(token, h);
    sqlite3_stmt *st = db_stmt(db, SQL_TOKEN_REVOKE);
    if (!st)
        return SQLITE_ERROR;
    sqlite3_bind_blob(st, 1, h, sizeof h, SQLITE_STATIC);
    int rc = db_step_done(st);
    if (rc == SQLITE_OK && sqlite3_changes(db->h) == 0)
        rc = SQLITE_NOTFOUND;
    return rc;
}
