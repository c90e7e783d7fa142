/* api: bearer tokens. POST /api/v1/auth/token exchanges a user name and a
 * password for a token valid API_TOKEN_TTL_S; every other /api/ call needs
 * `Authorization: Bearer <token>`. Tokens and passwords are never logged. */
#include "api/api_int.h"
#include "server/common/log.h"

#include <sodium.h>
#include <sqlite3.h>
#include <string.h>
#include <strings.h>

/* Extracts the token of an "Authorization: Bearer <token>" header. */
static const char *bearer(api_req_t *r)
{
    const char *h = api_header(r, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncasecmp(h, "Bearer ", 7) != 0)
        return NULL;
    h += 7;
    while (*h == ' ')
        h++;
    return *h ? h : NULL;
}

bool api_auth_check(api_req_t *r, enum MHD_Result *ret)
{
    const char *tok = bearer(r);
    if (!tok) {
        *ret = api_problem(r, MHD_HTTP_UNAUTHORIZED, "an Authorization: Bearer <token> header is required", NULL);
        return false;
    }
    db_t *db = api_req_db(r);
    if (!db) {
        *ret = api_problem(r, MHD_HTTP_SERVICE_UNAVAILABLE, "database unavailable", NULL);
        return false;
    }
    int rc = db_token_check(db, tok, &r->user_id, r->domain, sizeof r->domain);
    if (rc == SQLITE_AUTH) {
        *ret = api_problem(r, MHD_HTTP_UNAUTHORIZED, "the token is invalid or has expired", NULL);
        return false;
    }
    if (rc != SQLITE_OK) {
        *ret = api_problem_db(r, rc, "token");
        return false;
    }
    return true;
}

enum MHD_Result api_auth_token_post(api_req_t *r)
{
    enum MHD_Result ret;
    json_t *body = api_body_object(r, &ret);
    if (!body)
        return ret;
    api_verr_t v;
    api_verr_init(&v);
    static const char *const allowed[] = {"username", "password", NULL};
    api_check_unknown(body, allowed, "", &v);
    const char *user = NULL, *pw = NULL;
    if (!api_get_string(body, "username", "username", &v, &user) && !json_is_string(json_object_get(body, "username")) &&
        !api_has(body, "username"))
        api_verr_add(&v, 400, "username", "is required");
    if (!api_get_string(body, "password", "password", &v, &pw) && !api_has(body, "password"))
        api_verr_add(&v, 400, "password", "is required");
    if (!user && api_has(body, "username") && json_is_null(json_object_get(body, "username")))
        api_verr_add(&v, 400, "username", "is required");
    if (!pw && api_has(body, "password") && json_is_null(json_object_get(body, "password")))
        api_verr_add(&v, 400, "password", "is required");
    if (api_verr_any(&v)) {
        json_decref(body);
        return api_problem_verr(r, &v, NULL);
    }
    api_verr_free(&v);
    db_t *db = api_req_db(r);
    if (!db) {
        json_decref(body);
        return api_problem(r, MHD_HTTP_SERVICE_UNAVAILABLE, "database unavailable", NULL);
    }
    int64_t uid = 0;
    int rc = db_user_verify(db, user, pw, &uid);
    if (rc == SQLITE_AUTH) {
        LOG_INFO("api", "event=login_failed user_len=%zu", strlen(user));
        json_decref(body);
        return api_problem(r, MHD_HTTP_UNAUTHORIZED, "invalid username or password", NULL);
    }
    json_decref(body);
    if (rc != SQLITE_OK)
        return api_problem_db(r, rc, "user");
    char tok[65];
    int64_t now = db_now_ms();
    rc = db_token_create(db, uid, API_TOKEN_TTL_S, tok);
    if (rc != SQLITE_OK)
        return api_problem_db(r, rc, "token");
    json_t *out = json_pack("{s:s, s:s, s:o, s:i}", "token", tok, "tokenType", "Bearer", "expiresAt",
                            api_json_time(now + (int64_t)API_TOKEN_TTL_S * 1000, false), "expiresIn",
                            (int)API_TOKEN_TTL_S);
    sodium_memzero(tok, sizeof tok);
    LOG_INFO("api", "event=login user_id=%lld", (long long)uid);
    return api_send_json(r, MHD_HTTP_OK, out, NULL);
}

enum MHD_Result api_auth_token_delete(api_req_t *r)
{
    db_t *db = api_req_db(r);
    const char *tok = bearer(r);
    if (!db || !tok)
        return api_problem(r, MHD_HTTP_SERVICE_UNAVAILABLE, "database unavailable", NULL);
    int rc = db_token_revoke(db, tok);
    if (rc != SQLITE_OK && rc != SQLITE_NOTFOUND)
        return api_problem_db(r, rc, "token");
    return api_send_empty(r, MHD_HTTP_NO_CONTENT);
}
