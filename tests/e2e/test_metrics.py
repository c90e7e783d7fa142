"""GET /metrics: Prometheus text format, and the counters move with what the
server does (bootstraps, refusals, CoAP messages, HTTP requests, task runs)."""
import re
import time
import urllib.request

from lwdm_e2e import (CoapClient, Lwdm, POST, procs, request, require_binaries, run, sim_args,  # noqa: F401
                      parse_summary)

LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"]*")*)?\})? '
                  r'(-?[0-9.eE+-]+|\+Inf|NaN)$')


def scrape(s):
    with urllib.request.urlopen(s.url + "/metrics", timeout=10) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain")
        text = r.read().decode()
    values = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            assert line.startswith("# HELP ") or line.startswith("# TYPE ") or not line, line
            continue
        m = LINE.match(line)
        assert m, "not Prometheus text format: %r" % line
        values[m.group(1) + (m.group(2) or "")] = float(m.group(5))
    return values


def test_metrics_follow_the_server(procs, tmp_path):
    require_binaries()
    s = Lwdm(procs, tmp_path, log_level="info").start()
    m0 = scrape(s)
    for k in ('lwdm_bootstraps_total{result="succeeded"}', 'lwdm_bootstrap_requests_total',
              'lwdm_devices{state="known"}', 'lwdm_db_size_bytes', 'lwdm_loop_busy_seconds_total',
              'lwdm_task_runs_total{status="SUCCESS"}', 'lwdm_task_reports{status="SUCCESS"}',
              'lwdm_dtls_handshakes_total{result="identity_refused"}'):
        assert k in m0, k
    assert m0['lwdm_db_size_bytes'] > 0

    r = run(sim_args(s.ports["bs_coap"], 5, "met-"), timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    # one refused Request (malformed pct)
    c = CoapClient(s.ports["bs_coap"])
    try:
        reply = c.exchange(request(POST, "bs", ["ep=met-bad", "pct=abc"]), timeout=3)
    finally:
        c.close()
    assert reply is not None and reply.code_str == "4.00"
    s.login()
    s.api("GET", "/devices")

    # the sim is done when it has answered Finish; the server counts the bootstrap when
    # it reads that answer and writes the record at the end of the loop pass: poll
    deadline = time.monotonic() + 20
    while True:
        m1 = scrape(s)
        settled = (m1.get('lwdm_bootstraps_total{result="succeeded"}', 0) -
                   m0.get('lwdm_bootstraps_total{result="succeeded"}', 0) >= 5 and
                   m1.get('lwdm_devices{state="bootstrapped"}', 0) - m0.get('lwdm_devices{state="bootstrapped"}', 0) >= 5)
        if settled or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    d = lambda k: m1.get(k, 0) - m0.get(k, 0)  # noqa: E731
    assert d('lwdm_bootstrap_requests_total') == 6
    assert d('lwdm_bootstraps_total{result="started"}') == 5
    assert d('lwdm_bootstraps_total{result="succeeded"}') == 5
    assert d('lwdm_bootstraps_total{result="refused"}') == 1
    assert d('lwdm_task_runs_total{status="SUCCESS"}') == 5  # the bootstrap settings' task
    assert m1['lwdm_task_reports{status="SUCCESS"}'] >= 5
    assert d('lwdm_devices{state="known"}') == 5
    assert d('lwdm_devices{state="bootstrapped"}') == 5
    # seven exchanges per NoSec bootstrap: Request in, then Discover, 2 Deletes, 2 Writes, Finish out
    assert d('lwdm_coap_messages_total{direction="in",code="POST"}') == 6
    assert d('lwdm_coap_messages_total{direction="out",code="2.04"}') >= 5
    assert d('lwdm_coap_messages_total{direction="out",code="4.00"}') == 1
    assert d('lwdm_coap_messages_total{direction="out",code="GET"}') == 5
    assert d('lwdm_coap_messages_total{direction="out",code="DELETE"}') == 10
    assert d('lwdm_coap_messages_total{direction="out",code="PUT"}') == 10
    assert d('lwdm_coap_messages_total{direction="in",code="2.05"}') == 5
    assert d('lwdm_loop_busy_seconds_total') > 0
    # HTTP by route and status, with a histogram
    assert m1.get('lwdm_http_requests_total{route="/api/v1/devices",method="GET",status="200"}', 0) >= 1
    assert m1.get('lwdm_http_request_duration_seconds_count{route="/api/v1/devices"}', 0) >= 1
    assert m1.get('lwdm_http_request_duration_seconds_bucket{route="/api/v1/devices",le="+Inf"}', 0) >= 1
    assert s.stop() == 0


def test_registered_and_online_gauges(procs, tmp_path):
    """lwdm_devices_registered / lwdm_devices_online follow Register and De-register
    (set by the network loop once a second)."""
    from lwdm_e2e import FakeDevice, wait_until
    require_binaries()
    s = Lwdm(procs, tmp_path, args=["--accept-unknown", "on"], log_level="info").start()
    m0 = scrape(s)
    assert m0["lwdm_devices_registered"] == 0 and m0["lwdm_devices_online"] == 0
    devs = [FakeDevice(s.ports["coap"], "gauge-%d" % i) for i in range(3)]
    try:
        for d in devs:
            assert d.register(lt=60).code_str == "2.01"
        wait_until(lambda: scrape(s)["lwdm_devices_registered"] == 3, 5, what="3 registered")
        assert scrape(s)["lwdm_devices_online"] == 3
        assert scrape(s)['lwdm_registrations_total{event="register"}'] >= 3
        assert devs[0].deregister().code_str == "2.02"
        wait_until(lambda: scrape(s)["lwdm_devices_registered"] == 2, 5, what="2 registered")
        assert scrape(s)['lwdm_registrations_total{event="deregister"}'] == 1
    finally:
        for d in devs:
            d.close()
    assert s.stop() == 0
