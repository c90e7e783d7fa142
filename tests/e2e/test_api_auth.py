"""REST API: tokens, authentication, /healthz, generic HTTP behaviour."""
import re

import pytest
import requests

from conftest import ADMIN_PASSWORD, Api, assert_problem, login

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def test_healthz_needs_no_auth(anon):
    r = anon.get("/healthz")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert body["status"] == "ok"
    assert body["db"] == "ok"


def test_token_ok(server):
    r = requests.post(server.base + "/api/v1/auth/token", json={"username": "admin", "password": ADMIN_PASSWORD})
    assert r.status_code == 200
    body = r.json()
    assert re.fullmatch(r"[0-9a-f]{64}", body["token"])
    assert ISO.match(body["expiresAt"])
    assert body["expiresAt"] > "2000"


def test_token_works_with_curl_style_content_type(server):
    # `curl -d '{...}'` sends application/x-www-form-urlencoded
    r = requests.post(server.base + "/api/v1/auth/token",
                      data='{"username":"admin","password":"%s"}' % ADMIN_PASSWORD,
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("body", [
    {"username": "admin", "password": "wrong"},
    {"username": "nobody", "password": ADMIN_PASSWORD},
    {"username": "admin", "password": ""},
    {"username": "ADMIN", "password": ADMIN_PASSWORD},
])
def test_token_wrong_credentials(anon, body):
    assert_problem(anon.post("/api/v1/auth/token", body), 401)


@pytest.mark.parametrize("body,field", [
    ({"password": ADMIN_PASSWORD}, "username"),
    ({"username": "admin"}, "password"),
    ({"username": None, "password": ADMIN_PASSWORD}, "username"),
    ({"username": 5, "password": ADMIN_PASSWORD}, "username"),
    ({"username": "admin", "password": ["x"]}, "password"),
    ({"username": "admin", "password": ADMIN_PASSWORD, "remember": True}, "remember"),
])
def test_token_bad_request(anon, body, field):
    assert_problem(anon.post("/api/v1/auth/token", body), 400, field)


@pytest.mark.parametrize("data", [b"", b"{", b"[1,2]", b"\"str\"", b"{\"username\":\"a\",\"username\":\"b\"}",
                                  b"\xff\xfe"])
def test_token_malformed_json(server, data):
    r = requests.post(server.base + "/api/v1/auth/token", data=data, headers={"Content-Type": "application/json"})
    assert_problem(r, 400)


@pytest.mark.parametrize("path", ["/api/v1/lwm2m-servers", "/api/v1/lwm2m-servers/1", "/api/v1/devices",
                                  "/api/v1/bootstrap-settings", "/api/v1/no-such-thing"])
def test_requires_token(anon, path):
    r = anon.get(path)
    assert_problem(r, 401)
    assert r.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", [
    "Bearer " + "0" * 64,
    "Bearer abc",
    "Bearer ",
    "Basic YWRtaW46eA==",
    "bearer" + "x" * 64,
])
def test_bad_token(server, header):
    r = requests.get(server.base + "/api/v1/lwm2m-servers", headers={"Authorization": header})
    assert_problem(r, 401)
    assert "Bearer" in r.headers["WWW-Authenticate"]


def test_token_scheme_case_insensitive(server, token):
    r = requests.get(server.base + "/api/v1/lwm2m-servers", headers={"Authorization": "bearer " + token})
    assert r.status_code == 200


def test_token_is_stored_hashed(server, token):
    rows = server.sql("SELECT token_hash FROM api_tokens")
    assert rows
    for (h,) in rows:
        assert isinstance(h, bytes) and len(h) == 32
        assert token.encode() not in h and bytes.fromhex(token) != h


def test_password_is_stored_hashed(server):
    (h,) = server.sql("SELECT password_hash FROM users WHERE username = 'admin'")[0]
    assert h.startswith("$argon2id$")
    assert ADMIN_PASSWORD not in h


def test_expired_token_refused(server):
    tok = login(server.base)
    api = Api(server.base, tok)
    assert api.get("/api/v1/devices").status_code == 200
    # expire every token but the module's own: find this one by recency
    server.sql("UPDATE api_tokens SET expires_at = 1 WHERE id = (SELECT max(id) FROM api_tokens)")
    assert_problem(api.get("/api/v1/devices"), 401)


def test_revoke_token(server):
    tok = login(server.base)
    api = Api(server.base, tok)
    assert api.get("/api/v1/devices").status_code == 200
    assert api.delete("/api/v1/auth/token").status_code == 204
    assert_problem(api.get("/api/v1/devices"), 401)


def test_unknown_path_with_token(api):
    assert_problem(api.get("/api/v1/no-such-thing"), 404)
    assert_problem(api.get("/api/v1/lwm2m-servers/abc"), 404)
    assert_problem(api.get("/api/v1/lwm2m-servers/0"), 404)
    assert_problem(api.get("/api/v1/lwm2m-servers/99999999"), 404)


def test_method_not_allowed(api):
    r = api.delete("/api/v1/lwm2m-servers")
    assert_problem(r, 405)
    assert "GET" in r.headers["Allow"] and "POST" in r.headers["Allow"]


def test_body_too_large(api):
    big = b'{"name":"' + b"x" * (1024 * 1024 + 10) + b'"}'
    r = api.post("/api/v1/lwm2m-servers", data=big, headers={"Content-Type": "application/json"})
    assert_problem(r, 413)
    # the server is still fine
    assert api.get("/api/v1/lwm2m-servers").status_code == 200


def test_body_too_large_chunked(api):
    def gen():
        for _ in range(20):
            yield b"x" * 65536
    r = api.post("/api/v1/devices", data=gen(), headers={"Content-Type": "application/json"})
    assert_problem(r, 413)


def test_logs_hold_no_secrets(server, api):
    # a login and a few calls have happened; neither the password nor a token is logged
    tok = login(server.base)
    Api(server.base, tok).get("/api/v1/devices")
    text = server.log_text()
    assert ADMIN_PASSWORD not in text
    assert tok not in text
    assert "api method=GET path=/api/v1/devices status=200" in text
