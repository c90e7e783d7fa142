/* db: users (argon2id) and bearer tokens (stored hashed, with expiry). */
#include "db_test_util.h"

static void test_users(void **state)
{
    tdb_t *t = *state;
    int64_t n = -1, id = 0, uid = 0;
    assert_int_equal(db_user_count(t->db, &n), SQLITE_OK);
    assert_int_equal(n, 0);
    assert_int_equal(db_user_create(t->db, "admin", "correct horse", "/", &id), SQLITE_OK);
    assert_true(id > 0);
    assert_int_equal(db_user_count(t->db, &n), SQLITE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(db_user_create(t->db, "admin", "x", "/", NULL), SQLITE_CONSTRAINT);
    assert_int_equal(db_user_create(t->db, "nodomain", "x", "/missing/", NULL), SQLITE_CONSTRAINT);
    assert_int_equal(db_user_verify(t->db, "admin", "correct horse", &uid), SQLITE_OK);
    assert_int_equal(uid, id);
    assert_int_equal(db_user_verify(t->db, "admin", "wrong", &uid), SQLITE_AUTH);
    assert_int_equal(uid, 0);
    assert_int_equal(db_user_verify(t->db, "nobody", "correct horse", &uid), SQLITE_AUTH);
    /* the password is hashed with argon2id */
    assert_false(tdb_raw_contains(t->db, "users", "password_hash", "correct horse", 13));
    assert_true(tdb_raw_contains(t->db, "users", "password_hash", "$argon2id$", 10));
}

static void test_tokens(void **state)
{
    tdb_t *t = *state;
    int64_t id = 0, uid = 0;
    char dom[64];
    assert_int_equal(db_user_create(t->db, "op", "pw", "/", &id), SQLITE_OK);
    char tok[65], tok2[65];
    assert_int_equal(db_token_create(t->db, id, 3600, tok), SQLITE_OK);
    assert_int_equal(strlen(tok), 64);
    assert_int_equal(db_token_create(t->db, id, 0, tok2), SQLITE_OK);
    assert_string_not_equal(tok, tok2);
    assert_int_equal(db_token_check(t->db, tok, &uid, dom, sizeof dom), SQLITE_OK);
    assert_int_equal(uid, id);
    assert_string_equal(dom, "/");
    assert_int_equal(db_token_check(t->db, tok2, &uid, NULL, 0), SQLITE_OK);
    /* stored hashed */
    assert_false(tdb_raw_contains(t->db, "api_tokens", "token_hash", tok, 64));
    assert_int_equal(tdb_int(t->db, "SELECT length(token_hash) FROM api_tokens LIMIT 1"), 32);
    /* bad tokens */
    char bad[65];
    memcpy(bad, tok, 65);
    bad[0] = bad[0] == 'a' ? 'b' : 'a';
    assert_int_equal(db_token_check(t->db, bad, &uid, dom, sizeof dom), SQLITE_AUTH);
    assert_int_equal(uid, 0);
    assert_int_equal(db_token_check(t->db, "short", &uid, dom, sizeof dom), SQLITE_AUTH);
    assert_int_equal(db_token_check(t->db, NULL, &uid, dom, sizeof dom), SQLITE_AUTH);
    /* revoke */
    assert_int_equal(db_token_revoke(t->db, tok2), SQLITE_OK);
    assert_int_equal(db_token_check(t->db, tok2, &uid, NULL, 0), SQLITE_AUTH);
    assert_int_equal(db_token_revoke(t->db, tok2), SQLITE_NOTFOUND);
    /* expiry: a token expired in the past is refused */
    tdb_exec(t->db, "UPDATE api_tokens SET expires_at = 1");
    assert_int_equal(db_token_check(t->db, tok, &uid, NULL, 0), SQLITE_AUTH);
    /* and purged on the next create */
    assert_int_equal(db_token_create(t->db, id, 1, tok2), SQLITE_OK);
    assert_int_equal(tdb_int(t->db, "SELECT count(*) FROM api_tokens"), 1);
    assert_int_equal(db_token_check(t->db, tok2, &uid, NULL, 0), SQLITE_OK);
    usleep(1100 * 1000); /* ttl 1 s */
    assert_int_equal(db_token_check(t->db, tok2, &uid, NULL, 0), SQLITE_AUTH);
    /* deleting the user removes its tokens */
    assert_int_equal(db_token_create(t->db, id, 60, tok), SQLITE_OK);
    tdb_exec(t->db, "DELETE FROM users");
    assert_int_equal(db_token_check(t->db, tok, &uid, NULL, 0), SQLITE_AUTH);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_users, tdb_setup, tdb_teardown),
        cmocka_unit_test_setup_teardown(test_tokens, tdb_setup, tdb_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
