"""Live events (GET /api/v1/events, docs/management.md "Events") with the real
binaries: lwdm serve + lwdm-sim.

1. A device-filtered SSE stream and a JSON long poll are open when two devices
   bootstrap: each sees only its device, in order (bootstrap started, task
   IN_PROGRESS, the steps discover .. finish, task SUCCESS, bootstrap finished),
   and what an event announces is already stored when it arrives.
   Last-Event-ID and ?since= replay; 401 without a token; 400 on bad filters.
2. 40 streams and a waiting long poll hold no HTTP worker: the rest of the API
   answers at once, every stream gets the next event, closed streams are freed
   (within the hang-up check), an idle stream gets ": keepalive" after 15 s,
   and SIGTERM stops the server (exit 0) within seconds with streams open.
"""
import json
import re
import socket
import threading
import time

import pytest
import requests

from lwdm_e2e import Lwdm, procs, require_binaries, sim_args, start_sim, wait_sim, parse_summary  # noqa: F401


@pytest.fixture(autouse=True)
def _binaries():
    require_binaries()


class Sse:
    """A minimal server-sent-events client on a raw socket (chunked decoding,
    bounded waits), so a test controls exactly when it reads and closes."""

    def __init__(self, port, path, token=None, headers=None, timeout=10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        lines = ["GET %s HTTP/1.1" % path, "Host: 127.0.0.1", "Accept: text/event-stream"]
        if token:
            lines.append("Authorization: Bearer " + token)
        for k, v in (headers or {}).items():
            lines.append("%s: %s" % (k, v))
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.raw = b""
        self.body = b""
        self.eof = False
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.raw:
            self._recv(deadline)
            if self.eof:
                raise AssertionError("connection closed before the headers: %r" % self.raw)
        head, self.raw = self.raw.split(b"\r\n\r\n", 1)
        head = head.decode()
        self.status = int(head.split()[1])
        self.headers = {k.strip().lower(): v.strip() for k, v in
                        (line.split(":", 1) for line in head.split("\r\n")[1:])}
        self.chunked = self.headers.get("transfer-encoding", "").lower() == "chunked"

    def _recv(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout()
        self.sock.settimeout(left)
        data = self.sock.recv(65536)
        if not data:
            self.eof = True
        self.raw += data

    def _decode(self):
        if not self.chunked:
            self.body += self.raw
            self.raw = b""
            return
        while b"\r\n" in self.raw:
            size_line, rest = self.raw.split(b"\r\n", 1)
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                self.eof = True
                self.raw = b""
                return
            if len(rest) < size + 2:
                return
            self.body += rest[:size]
            self.raw = rest[size + 2:]

    def next_block(self, timeout=10.0):
        """The next SSE block (text up to a blank line); None on timeout; EOFError at the end."""
        deadline = time.monotonic() + timeout
        while True:
            self._decode()
            if b"\n\n" in self.body:
                block, self.body = self.body.split(b"\n\n", 1)
                return block.decode()
            if self.eof:
                raise EOFError("stream ended")
            try:
                self._recv(deadline)
            except (socket.timeout, TimeoutError):
                return None

    def next_event(self, timeout=10.0):
        """The next event as {"id", "event", "data"} (comment blocks are skipped); None on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            block = self.next_block(max(0.01, deadline - time.monotonic()))
            if block is None:
                return None
            fields = {}
            for line in block.split("\n"):
                if line.startswith(":"):
                    continue
                k, _, v = line.partition(": ")
                fields[k] = v
            if "data" in fields:
                fields["data"] = json.loads(fields["data"])
                return fields

    def events(self, until, timeout=15.0):
        """Events until until(event) is true (inclusive)."""
        out = []
        deadline = time.monotonic() + timeout
        while True:
            e = self.next_event(max(0.01, deadline - time.monotonic()))
            assert e is not None, "no more events within %.0f s after %s" % (timeout, [summary(x) for x in out])
            out.append(e)
            if until(e):
                return out

    def close(self):
        self.sock.close()


def summary(e):
    d = e["data"]["data"]
    return (e["event"], d.get("status") or "%s %s %s" % (d.get("step"), d.get("path"), d.get("code")))


def is_end(device_id):
    return lambda e: e["event"] == "bootstrap" and e["data"]["deviceId"] == device_id and \
        e["data"]["data"]["status"] in ("finished", "failed")


def check_bootstrap_sequence(evs, device_id, endpoint):
    assert all(e["data"]["deviceId"] == device_id for e in evs), [summary(e) for e in evs]
    assert all(e["data"]["endpoint"] == endpoint for e in evs)
    seqs = [int(e["id"]) for e in evs]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert all(e["data"]["seq"] == int(e["id"]) and e["data"]["type"] == e["event"] for e in evs)
    assert all(e["data"]["domain"] == "/" and re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", e["data"]["time"])
               for e in evs)
    kinds = [summary(e) for e in evs]
    assert kinds[0] == ("bootstrap", "started"), kinds
    assert kinds[1] == ("task-status", "IN_PROGRESS"), kinds
    assert kinds[-3][0] == "bootstrap-step" and kinds[-3][1].startswith("finish /bs 2.04"), kinds
    assert kinds[-2] == ("task-status", "SUCCESS"), kinds
    assert kinds[-1] == ("bootstrap", "finished"), kinds
    steps = [e["data"]["data"] for e in evs if e["event"] == "bootstrap-step"]
    assert steps[0]["step"] == "discover", steps
    assert any(s["step"] == "write" and s["path"] == "/0/1" and s["code"] == "2.04" for s in steps), steps
    assert all(s["code"].startswith("2.") for s in steps), steps
    ts = [e["data"]["data"] for e in evs if e["event"] == "task-status"]
    assert ts[0]["taskId"] == ts[1]["taskId"] and ts[0]["taskName"] == ts[1]["taskName"] and ts[0]["taskName"]
    assert ts[1]["summary"], ts


def test_bootstrap_events_filters_and_replay(procs, tmp_path):
    srv = Lwdm(procs, tmp_path, log_level="debug").start()
    tok = srv.login()
    port = srv.ports["http"]
    auth = {"Authorization": "Bearer " + tok}
    url = srv.url + "/api/v1/events"

    # --- authentication and parameters
    assert requests.get(url, timeout=5).status_code == 401
    assert requests.get(url + "?format=json", timeout=5).status_code == 401
    s = Sse(port, "/api/v1/events")
    assert s.status == 401
    s.close()
    assert requests.get(url, headers={"Authorization": "Bearer nope"}, timeout=5).status_code == 401
    for q, field in (("device=abc", "device"), ("device=1,,2", "device"), ("device=0", "device"),
                     ("type=Boot%21", "type"), ("since=-1", "since"), ("format=xml", "format"),
                     ("format=json&wait=x", "wait"), ("format=json&limit=0", "limit")):
        r = requests.get(url + "?" + q, headers=auth, timeout=5)
        assert r.status_code == 400, (q, r.status_code, r.text)
        assert r.headers["Content-Type"] == "application/problem+json"
        assert field in r.text, (q, r.text)
    r = requests.get(url + "?format=json", headers={"Last-Event-ID": "x", **auth}, timeout=5)
    assert r.status_code == 400

    # --- two known devices; a stream and a long poll each filtered to one of them
    d1 = srv.api("POST", "/devices", {"endpoint": "evt-000001"}, expect=201).json()
    d2 = srv.api("POST", "/devices", {"endpoint": "evt-000002"}, expect=201).json()
    first = requests.get(url + "?format=json", headers=auth, timeout=5)
    assert first.status_code == 200 and first.headers["Content-Type"] == "application/json"
    since = first.json()["next"]
    assert first.json()["items"] == []          # nothing happened yet

    s1 = Sse(port, "/api/v1/events?device=%d" % d1["id"], tok)
    assert s1.status == 200
    assert s1.headers["content-type"].startswith("text/event-stream")
    assert s1.next_block(5) == ": connected"
    s_all = Sse(port, "/api/v1/events?type=bootstrap,task-status", tok)   # every device, two types
    poll = {}

    def long_poll():
        t0 = time.monotonic()
        r = requests.get(url, params={"format": "json", "since": since, "wait": 20, "device": d2["id"]},
                         headers=auth, timeout=30)
        poll["status"], poll["body"], poll["secs"] = r.status_code, r.json(), time.monotonic() - t0

    th = threading.Thread(target=long_poll)
    th.start()
    time.sleep(0.5)                            # the poll is waiting (suspended)
    assert "status" not in poll

    sim = start_sim(procs, tmp_path, sim_args(srv.ports["bs_coap"], 2, "evt-", extra=["--timeout", "20"]), "sim-evt")
    evs1 = s1.events(is_end(d1["id"]))
    # what the last event announces is stored when it arrives (published after the commit)
    dev = srv.api("GET", "/devices/%d" % d1["id"], expect=200).json()
    assert dev["lastBootstrap"]["status"] == "success", dev["lastBootstrap"]
    check_bootstrap_sequence(evs1, d1["id"], "evt-000001")
    rc, out, err = wait_sim(sim, timeout=30)
    assert rc == 0 and parse_summary(out) == (2, 0), out + err

    th.join(timeout=25)
    assert poll.get("status") == 200, poll
    assert poll["secs"] < 10, poll              # answered by the first event, not the 20 s deadline
    items = poll["body"]["items"]
    assert items and all(i["deviceId"] == d2["id"] for i in items), items
    assert items[0]["type"] == "bootstrap" and items[0]["data"] == {"status": "started"}
    assert poll["body"]["next"] >= items[-1]["seq"] > since

    # the unfiltered stream saw both devices, only the two types asked for
    ended = set()

    def both_ended(e):
        if is_end(e["data"]["deviceId"])(e):
            ended.add(e["data"]["deviceId"])
        return ended == {d1["id"], d2["id"]}

    evs_all = s_all.events(both_ended)
    assert {e["event"] for e in evs_all} == {"bootstrap", "task-status"}
    assert {e["data"]["deviceId"] for e in evs_all} == {d1["id"], d2["id"]}
    # the device filter kept the other device out (nothing more arrives for s1)
    assert s1.next_event(0.5) is None

    # --- the rest of device 2's bootstrap with a poll from where the first one stopped
    evs2 = [{"id": str(i["seq"]), "event": i["type"], "data": i} for i in items]
    nxt = poll["body"]["next"]
    while not is_end(d2["id"])(evs2[-1]):
        r = requests.get(url, params={"format": "json", "since": nxt, "wait": 5, "device": d2["id"]},
                         headers=auth, timeout=10)
        assert r.status_code == 200 and r.json()["items"], r.text
        evs2 += [{"id": str(i["seq"]), "event": i["type"], "data": i} for i in r.json()["items"]]
        nxt = r.json()["next"]
    check_bootstrap_sequence(evs2, d2["id"], "evt-000002")
    # a poll with nothing new answers the empty page at its deadline
    t0 = time.monotonic()
    r = requests.get(url, params={"format": "json", "since": nxt, "wait": 1, "device": d2["id"]}, headers=auth,
                     timeout=10)
    assert r.json() == {"items": [], "next": r.json()["next"]} and r.json()["next"] >= nxt
    assert 0.9 <= time.monotonic() - t0 < 5

    # --- replay: Last-Event-ID (what a browser sends on reconnection) wins over ?since=
    s1.close()
    s_all.close()
    mid = int(evs1[2]["id"])
    s3 = Sse(port, "/api/v1/events?since=0&device=%d" % d1["id"], tok, headers={"Last-Event-ID": str(mid)})
    replay = s3.events(is_end(d1["id"]), timeout=5)
    assert [e["id"] for e in replay] == [e["id"] for e in evs1[3:]]
    assert [e["data"] for e in replay] == [e["data"] for e in evs1[3:]]
    s3.close()
    s4 = Sse(port, "/api/v1/events?since=0&device=%d" % d1["id"], tok)
    assert [e["id"] for e in s4.events(is_end(d1["id"]), timeout=5)] == [e["id"] for e in evs1]
    s4.close()
    page = requests.get(url, params={"format": "json", "since": 0, "limit": 3}, headers=auth, timeout=5).json()
    assert [i["seq"] for i in page["items"]] == [1, 2, 3] and page["next"] == 3
    # a Last-Event-ID from an earlier run of the server (beyond the newest): replay what is held
    r = requests.get(url, params={"format": "json", "device": d1["id"]}, headers={"Last-Event-ID": "999999", **auth},
                     timeout=5).json()
    assert r.get("missed") is True and [i["seq"] for i in r["items"]] == [int(e["id"]) for e in evs1]
    assert srv.stop() == 0


def _get_ms(srv, path):
    t0 = time.monotonic()
    srv.api("GET", path, expect=200, timeout=10)
    return (time.monotonic() - t0) * 1000


def test_many_streams_stay_responsive_and_shutdown(procs, tmp_path):
    srv = Lwdm(procs, tmp_path, log_level="debug").start()       # default: 4 HTTP worker threads
    tok = srv.login()
    port = srv.ports["http"]
    base = [_get_ms(srv, "/devices") for _ in range(5)]

    streams = [Sse(port, "/api/v1/events", tok) for _ in range(40)]
    assert all(s.status == 200 and s.next_block(5) == ": connected" for s in streams)
    polls = []

    def long_poll():
        try:
            r = requests.get(srv.url + "/api/v1/events", params={"format": "json", "wait": 60},
                             headers={"Authorization": "Bearer " + tok}, timeout=70)
            polls.append((r.status_code, len(r.json()["items"])))
        except requests.RequestException as e:    # the server stopping may close it unanswered
            polls.append(repr(e))

    waiting = [threading.Thread(target=long_poll) for _ in range(4)]
    for t in waiting:
        t.start()
    time.sleep(0.3)
    # with 40 streams and 4 waiting polls (more than the 4 workers) the API answers at once
    busy = [_get_ms(srv, "/devices") for _ in range(10)]
    print("GET /devices ms: idle median %.1f, with 40 streams + 4 polls median %.1f max %.1f"
          % (sorted(base)[2], sorted(busy)[5], max(busy)))
    assert max(busy) < 1000, busy
    assert srv.healthz(timeout=2) == 200

    # every stream gets the next event
    t0 = time.monotonic()
    rc, out, err = wait_sim(start_sim(procs, tmp_path, sim_args(srv.ports["bs_coap"], 1, "many-",
                                                                extra=["--timeout", "20"]), "sim-many"), timeout=30)
    assert rc == 0, out + err
    for s in streams:
        e = s.next_event(10)
        assert e and e["event"] == "bootstrap" and e["data"]["data"] == {"status": "started"}, e
    print("40 streams got the first event within %.0f ms of starting the sim" % ((time.monotonic() - t0) * 1000))
    # the waiting polls answered with that bootstrap's first event(s)
    for t in waiting:
        t.join(timeout=10)
    assert len(polls) == 4 and all(p[0] == 200 and p[1] >= 1 for p in polls), polls

    # closed streams are freed: the waker notices the hang-up of a suspended connection
    closed_before = srv.stderr().count("event=sse-closed")
    for s in streams[:20]:
        s.close()
    deadline = time.monotonic() + 5
    while srv.stderr().count("event=sse-closed") < closed_before + 20 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert srv.stderr().count("event=sse-closed") == closed_before + 20
    live = streams[20:]
    # so is a waiting page whose client went away
    newest = requests.get(srv.url + "/api/v1/events", params={"format": "json", "limit": 1000},
                          headers={"Authorization": "Bearer " + tok}, timeout=5).json()["next"]
    time.sleep(0.2)
    polls_closed = srv.stderr().count("event=poll-closed")
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    raw.sendall(("GET /api/v1/events?format=json&wait=60&since=%d HTTP/1.1\r\nHost: x\r\n"
                 "Authorization: Bearer %s\r\n\r\n" % (newest, tok)).encode())
    time.sleep(0.5)
    assert srv.stderr().count("event=poll-closed") == polls_closed     # waiting
    raw.close()
    deadline = time.monotonic() + 5
    while srv.stderr().count("event=poll-closed") == polls_closed and time.monotonic() < deadline:
        time.sleep(0.1)
    assert srv.stderr().count("event=poll-closed") == polls_closed + 1

    # an idle stream gets a keepalive comment within 15 s (+ slack)
    t0 = time.monotonic()
    blocks = []
    while time.monotonic() - t0 < 20:
        b = live[0].next_block(20 - (time.monotonic() - t0))
        if b is None:
            break
        blocks.append(b)
        if b == ": keepalive":
            break
    assert blocks and blocks[-1] == ": keepalive", blocks
    assert time.monotonic() - t0 <= 17.5
    assert live[0].next_block(5) is None        # and not again soon after

    # SIGTERM with 20 streams and a waiting poll: exit 0 within seconds, streams end
    th = threading.Thread(target=long_poll)
    th.start()
    time.sleep(0.3)
    t0 = time.monotonic()
    assert srv.stop(timeout=10) == 0
    took = time.monotonic() - t0
    print("stop with 20 streams and a poll open: %.2f s" % took)
    assert took < 5
    for s in live:
        with pytest.raises(EOFError):
            while True:
                if s.next_block(5) is None:
                    raise AssertionError("stream still open after the server stopped")
    th.join(timeout=10)
    assert not th.is_alive() and len(polls) == 5, polls
    assert srv.stderr().count("event=sse-closed") == closed_before + 40
    assert "events-clients-leaked" not in srv.stderr()
