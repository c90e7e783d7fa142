"""The container image (docker/Dockerfile), end to end.

1. Builds the image `lwdm:test` with `docker` where an engine answers `docker info`,
   otherwise with podman prepared by ../shared/tools/container-env (this machine: no
   registry, no Docker engine). An image whose label `lwdm.source-sha256` matches the
   files the Dockerfile copies is reused, so a suite run (normal + ASan) builds once.
2. Runs it with every port published on 127.0.0.1 (free ports, UDP included), a named
   volume on /var/lib/lwdm, LWDM_PUBLIC_HOST and LWDM_ADMIN_PASSWORD; waits for /healthz
   and runs the image's HEALTHCHECK command.
3. Bootstraps 20 simulated devices (the host's lwdm-sim) through the published UDP port
   and one DTLS-PSK device whose key was stored through the REST API; checks them and
   the seeded LwM2M servers over the REST API.
4. Stops the container (SIGTERM to lwdm as PID 1: exit 0), starts a new one on the same
   volume without LWDM_ADMIN_PASSWORD: same devices, same servers, the same admin login,
   the key file kept (the stored PSK still decrypts: the PSK device bootstraps again).
5. Removes its containers and volume (the image stays, as a cache).

Issue 5's figures (image size, build times, start to healthy, idle memory, stop time)
go to $LWDM_BUILD_DIR/docker-figures.txt and to stdout.

Skipped (pytest.skip, with the reason) only where no container runtime can work at all.
"""
import datetime
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import time
import uuid
import warnings

import pytest
import requests

from lwdm_e2e import BUILD_DIR, LWDM_SIM, SOURCE_DIR, free_ports, parse_summary, require_binaries, run

IMAGE = "lwdm:test"
LABEL = "lwdm.source-sha256"
DOCKERFILE = os.path.join(SOURCE_DIR, "docker", "Dockerfile")
FIGURES = os.path.join(BUILD_DIR, "docker-figures.txt")
ADMIN_PASSWORD = "docker-Adm1n-pw-Vx7rQ2"
PSK_KEY = "8d2c0e4b6a1f3e5d7c9b0a2f4e6d8c1b"
N_DEVICES = 20

BUILD_TIMEOUT = 480        # a cold build here takes well under a minute (packages + compile)
HEALTHY_TIMEOUT = 60
CMD_TIMEOUT = 60


# ------------------------------------------------------------------ runtime
class Runtime:
    """`docker` (an engine answers) or `podman` (with the environment container-env printed)."""

    def __init__(self, name, env, note):
        self.name, self.env, self.note = name, env, note

    def cmd(self, args, timeout=CMD_TIMEOUT, check=True, nice=False):
        prefix = ["nice", "-n", "10"] if nice and shutil.which("nice") else []
        try:
            r = subprocess.run(prefix + [self.name] + list(args), capture_output=True, text=True, timeout=timeout,
                               env=self.env, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as e:
            raise AssertionError("%s %s: no answer within %d s (%s)" % (self.name, shlex.join(args), timeout,
                                                                        (e.stderr or b"")[-2000:]))
        if check and r.returncode != 0:
            raise AssertionError("%s %s -> exit %d\nstdout: %s\nstderr: %s" % (
                self.name, shlex.join(args), r.returncode, r.stdout[-3000:], r.stderr[-3000:]))
        return r

    def ok(self, args, timeout=CMD_TIMEOUT):
        try:
            return self.cmd(args, timeout=timeout, check=False).returncode == 0
        except AssertionError:
            return False


def _container_env_tool():
    for path in (os.path.join(SOURCE_DIR, "..", "shared", "tools", "container-env"),
                 os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "tools",
                              "container-env")):
        if os.access(path, os.X_OK):
            return os.path.abspath(path)
    return None


def find_runtime():
    """A Runtime that can run the base image, or pytest.skip with every reason found."""
    reasons = []
    env = dict(os.environ)
    if shutil.which("docker"):
        try:
            r = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30, env=env,
                               stdin=subprocess.DEVNULL)
            if r.returncode == 0:
                return Runtime("docker", env, "docker engine")
            reasons.append("`docker info` failed: %s" % (r.stderr.strip().splitlines() or ["?"])[-1])
        except subprocess.TimeoutExpired:
            reasons.append("`docker info` did not answer within 30 s")
    else:
        reasons.append("no docker client")

    tool = _container_env_tool()
    note = "podman"
    if tool:
        try:
            r = subprocess.run([tool], capture_output=True, text=True, timeout=420, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            r = None
            reasons.append("%s did not finish within 420 s" % tool)
        if r is not None and r.returncode == 0:
            for line in r.stdout.splitlines():
                m = re.match(r"^export ([A-Z_][A-Z0-9_]*)=(.*)$", line.strip())
                if m:
                    env[m.group(1)] = shlex.split(m.group(2))[0] if m.group(2) else ""
            note = "podman prepared by %s" % tool
        elif r is not None:
            reasons.append("%s failed (exit %d): %s" % (tool, r.returncode, r.stderr.strip()[-600:]))
    else:
        reasons.append("no ../shared/tools/container-env")
    if not shutil.which("podman"):
        reasons.append("podman is not installed")
        _skip(reasons)
    rt = Runtime("podman", env, note)
    for base in ("debian:bookworm-slim", "debian:bookworm"):      # the Dockerfile's two bases
        if not rt.ok(["image", "exists", base]):
            rt.ok(["pull", "docker.io/library/" + base], timeout=300)   # where a registry answers
    if not rt.ok(["image", "exists", "debian:bookworm-slim"]):
        reasons.append("podman has no debian:bookworm-slim image and cannot pull one")
        _skip(reasons)
    # No registry (this machine): the local slim image stands in for the build stage's
    # debian:bookworm (same release, docs and man pages left out).
    if not rt.ok(["image", "exists", "debian:bookworm"]):
        rt.cmd(["tag", "debian:bookworm-slim", "debian:bookworm"])
    r = rt.cmd(["run", "--rm", "debian:bookworm-slim", "true"], timeout=120, check=False)
    if r.returncode != 0:
        reasons.append("`podman run debian:bookworm-slim true` failed: %s" % r.stderr.strip()[-600:])
        _skip(reasons)
    return rt


def _skip(reasons):
    """Skips with the reason: in the skip itself, a warning (pytest -q shows the warnings
    summary) and the figures file, where the run's figures would have been."""
    msg = "no container runtime can work here: " + "; ".join(reasons)
    print(msg)
    try:
        with open(FIGURES, "w") as f:
            f.write("test_docker.py skipped, %s: %s\n" % (time.strftime("%Y-%m-%d %H:%M"), msg))
    except OSError:
        pass
    warnings.warn(msg)
    pytest.skip(msg)


# ------------------------------------------------------------- the image
def dockerfile_sources():
    """Context paths the Dockerfile COPYs (not --from), plus the Dockerfile, docker/ and .dockerignore."""
    paths = {"docker", ".dockerignore"}
    with open(DOCKERFILE) as f:
        text = re.sub(r"\\\n", " ", f.read())
    for line in text.splitlines():
        words = line.split()
        if not words or words[0].upper() not in ("COPY", "ADD"):
            continue
        args = words[1:]
        if any(a.startswith("--from") for a in args):
            continue
        args = [a for a in args if not a.startswith("--")]
        paths.update(a.rstrip("/") or "." for a in args[:-1])
    return sorted(paths)


def source_checksum():
    h = hashlib.sha256()
    for top in dockerfile_sources():
        full = os.path.join(SOURCE_DIR, top)
        files = []
        if os.path.isdir(full):
            for root, dirs, names in os.walk(full):
                dirs[:] = sorted(d for d in dirs if d != "__pycache__")
                files += [os.path.join(root, n) for n in names]
        elif os.path.exists(full):
            files.append(full)
        for path in sorted(files):
            rel = os.path.relpath(path, SOURCE_DIR)
            st = os.stat(path)
            h.update(("%s\0%o\0" % (rel, st.st_mode & 0o111)).encode())
            with open(path, "rb") as f:
                h.update(hashlib.sha256(f.read()).digest())
    return h.hexdigest()


def image_label(rt):
    r = rt.cmd(["image", "inspect", IMAGE], check=False)
    if r.returncode != 0:
        return None
    info = json.loads(r.stdout)[0]
    labels = (info.get("Config") or {}).get("Labels") or info.get("Labels") or {}
    return labels.get(LABEL)


def build_image(rt, checksum):
    args = ["build", "-f", DOCKERFILE, "-t", IMAGE, "--label", "%s=%s" % (LABEL, checksum)]
    if rt.name == "podman":
        args += ["--pull=never", "--format", "docker"]   # docker format keeps HEALTHCHECK
    t0 = time.monotonic()
    # niced: the suite runs other tests on the same cores meanwhile (podman's build steps
    # inherit it; a docker engine builds in its daemon, unaffected)
    r = rt.cmd(args + [SOURCE_DIR], timeout=BUILD_TIMEOUT, check=False, nice=True)
    elapsed = time.monotonic() - t0
    assert r.returncode == 0, "image build failed (exit %d):\n%s\n%s" % (r.returncode, r.stdout[-6000:],
                                                                          r.stderr[-4000:])
    steps = cached = 0
    current = None
    for line in (r.stdout + "\n" + r.stderr).splitlines():
        m = re.match(r"^\[\d+/\d+\] STEP \d+/\d+: (\w+)", line)                 # podman
        if m:
            current = m.group(1).upper()
            if current in ("RUN", "COPY"):
                steps += 1
        elif line.startswith("--> Using cache") and current in ("RUN", "COPY"):
            cached += 1
            current = None
    if not steps:                               # docker (BuildKit): "#N [stage k/n] RUN ..." then "#N CACHED"
        out = r.stdout + r.stderr
        ids = set(re.findall(r"^#(\d+) \[[^\]]*\d+/\d+\] (?:RUN|COPY)", out, re.M))
        steps = len(ids)
        cached = len(ids & set(re.findall(r"^#(\d+) CACHED", out, re.M)))
    return elapsed, "%d of %d RUN/COPY steps from the layer cache" % (cached, steps), r.stdout + "\n" + r.stderr


def _bare(image_id):
    return (image_id or "").split(":")[-1]


def prune_stale(rt, build_output):
    """Removes the images earlier builds of lwdm:test left behind (they carry LABEL) unless
    this build used them (the IDs the build printed, and their parents) or a tagged image
    builds on them, so the layer cache stays whole. `rmi` does not refuse a parent of
    another image, hence the explicit set of images to keep."""
    used = set(re.findall(r"^--> (?:Using cache )?([0-9a-f]{12,64})\s*$", build_output, re.M))
    ids = rt.cmd(["images", "-a", "-q", "--no-trunc"], check=False).stdout.split()
    if not ids or not used:
        return 0
    r = rt.cmd(["image", "inspect"] + sorted(set(ids)), check=False)
    try:
        by_id = {_bare(i["Id"]): i for i in json.loads(r.stdout)}
    except (ValueError, KeyError, TypeError):
        return 0
    keep = set()
    for iid, info in by_id.items():
        if info.get("RepoTags") or any(iid.startswith(u) for u in used):
            while iid in by_id and iid not in keep:
                keep.add(iid)
                iid = _bare(by_id[iid].get("Parent"))
    stale = [info for iid, info in by_id.items() if iid not in keep
             and LABEL in (((info.get("Config") or {}).get("Labels")) or info.get("Labels") or {})]
    removed = 0
    for info in sorted(stale, key=lambda i: i.get("Created", ""), reverse=True):   # children first
        removed += rt.ok(["rmi", _bare(info["Id"])], timeout=60)
    return removed


def image_size(rt):
    info = json.loads(rt.cmd(["image", "inspect", IMAGE]).stdout)[0]
    return int(info.get("Size") or 0)


def base_size(rt):
    r = rt.cmd(["image", "inspect", "debian:bookworm-slim"], check=False)
    return int(json.loads(r.stdout)[0].get("Size") or 0) if r.returncode == 0 else 0


# ------------------------------------------------------------ containers
class Container:
    def __init__(self, rt, name, ports, volume, env):
        self.rt, self.name, self.ports, self.volume, self.env = rt, name, ports, volume, env
        self.started = None

    def run(self):
        p = self.ports
        args = ["run", "-d", "--name", self.name,
                "-p", "127.0.0.1:%d:8080" % p["http"],
                "-p", "127.0.0.1:%d:5683/udp" % p["coap"], "-p", "127.0.0.1:%d:5684/udp" % p["coaps"],
                "-p", "127.0.0.1:%d:5693/udp" % p["bs_coap"], "-p", "127.0.0.1:%d:5694/udp" % p["bs_coaps"],
                "-v", "%s:/var/lib/lwdm" % self.volume]
        for k, v in self.env.items():
            args += ["-e", "%s=%s" % (k, v)]
        self.started = time.monotonic()
        return self.rt.cmd(args + [IMAGE], timeout=120, check=False)

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.ports["http"]

    def state(self):
        r = self.rt.cmd(["inspect", self.name], check=False)
        return json.loads(r.stdout)[0]["State"] if r.returncode == 0 else {}

    def logs(self):
        r = self.rt.cmd(["logs", self.name], check=False)
        return r.stdout + r.stderr

    def wait_healthy(self, timeout=HEALTHY_TIMEOUT):
        """Seconds from `run` until /healthz answers 200 through the published port."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                r = requests.get(self.url + "/healthz", timeout=2)
                if r.status_code == 200:
                    return time.monotonic() - self.started
            except requests.RequestException:
                pass
            st = self.state()
            if st and not st.get("Running", False):
                raise AssertionError("container %s exited (%s) before it was healthy:\n%s"
                                     % (self.name, st.get("ExitCode"), self.logs()[-4000:]))
            time.sleep(0.1)
        raise AssertionError("container %s not healthy within %d s:\n%s" % (self.name, timeout, self.logs()[-4000:]))

    def healthcheck(self):
        """Runs the image's HEALTHCHECK command: podman on demand, docker on its own schedule."""
        if self.rt.name == "podman":
            r = self.rt.cmd(["healthcheck", "run", self.name], timeout=30, check=False)
            assert r.returncode == 0, "HEALTHCHECK failed: %s %s" % (r.stdout, r.stderr)
            return "healthy"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status = (self.state().get("Health") or {}).get("Status")
            if status == "healthy":
                return status
            assert status != "unhealthy", "HEALTHCHECK says unhealthy: %s" % self.state().get("Health")
            time.sleep(0.5)
        raise AssertionError("HEALTHCHECK not healthy within 30 s: %s" % self.state().get("Health"))

    def exec(self, *args):
        return self.rt.cmd(["exec", self.name] + list(args), timeout=30).stdout.strip()

    def stop(self, timeout=15):
        t0 = time.monotonic()
        self.rt.cmd(["stop", "-t", str(timeout), self.name], timeout=timeout + 30)
        elapsed = time.monotonic() - t0
        return elapsed, self.state().get("ExitCode")

    def memory(self):
        """(memory use the runtime reports, VmRSS of PID 1), as text."""
        stats = "?"
        r = self.rt.cmd(["stats", "--no-stream", "--format", "{{.MemUsage}}", self.name], timeout=60, check=False)
        if r.returncode == 0 and r.stdout.strip():
            stats = r.stdout.strip().splitlines()[-1].split("/")[0].strip()
        rss = "?"
        try:
            m = re.search(r"^VmRSS:\s*(\d+)\s*kB", self.exec("cat", "/proc/1/status"), re.M)
            if m:
                rss = "%.1f MiB" % (int(m.group(1)) / 1024.0)
        except AssertionError:
            pass
        return stats, rss


def start(rt, name, volume, env):
    """A running container on free ports (new ports if publishing one collides)."""
    last = None
    for _ in range(3):
        c = Container(rt, name, free_ports(), volume, env)
        r = c.run()
        if r.returncode == 0:
            return c
        last = r
        rt.cmd(["rm", "-f", "-v", name], check=False)
        if "address already in use" not in (r.stderr + r.stdout).lower():
            break
    raise AssertionError("%s run failed (exit %d): %s %s" % (rt.name, last.returncode, last.stdout, last.stderr))


def remove_orphans(rt):
    """Containers and volumes of earlier runs of this test whose process is gone (a run
    killed by a timeout cannot clean up after itself): lwdm-e2e-<pid>-..."""
    def dead(name):
        m = re.match(r"^lwdm-e2e-(\d+)-", name)
        if not m or int(m.group(1)) == os.getpid():
            return False
        try:
            os.kill(int(m.group(1)), 0)
            return False
        except ProcessLookupError:
            return True
        except OSError:
            return False
    names = rt.cmd(["ps", "-a", "--filter", "name=lwdm-e2e-", "--format", "{{.Names}}"], check=False).stdout.split()
    for name in filter(dead, names):
        rt.cmd(["rm", "-f", "-v", name], timeout=60, check=False)
    vols = rt.cmd(["volume", "ls", "-q", "--filter", "name=lwdm-e2e-"], check=False).stdout.split()
    for vol in filter(dead, vols):
        rt.cmd(["volume", "rm", "-f", vol], timeout=60, check=False)


# --------------------------------------------------------------- REST
class Rest:
    def __init__(self, url, password=ADMIN_PASSWORD):
        r = requests.post(url + "/api/v1/auth/token", json={"username": "admin", "password": password}, timeout=15)
        assert r.status_code == 200, "admin login failed: %s %s" % (r.status_code, r.text)
        self.url = url + "/api/v1"
        self.h = {"Authorization": "Bearer " + r.json()["token"]}

    def req(self, method, path, body=None, expect=200):
        r = requests.request(method, self.url + path, json=body, headers=self.h, timeout=15)
        assert r.status_code == expect, "%s %s -> %s: %s" % (method, path, r.status_code, r.text[:2000])
        return r.json() if r.content else None

    def all(self, path):
        items, offset = [], 0
        while True:
            j = self.req("GET", "%s?limit=1000&offset=%d" % (path, offset))
            items += j["items"]
            offset += len(j["items"])
            if not j["items"] or offset >= j["total"]:
                return items

    def devices(self, prefix):
        """{endpoint: full representation} of the devices whose endpoint starts with prefix."""
        return {d["endpoint"]: self.req("GET", "/devices/%d" % d["id"])
                for d in self.all("/devices") if d["endpoint"].startswith(prefix)}


def bootstrap_status(dev):
    lb = dev.get("lastBootstrap")
    return lb.get("status") if isinstance(lb, dict) else None


def wait_bootstrapped(rest, prefix, count, timeout=20):
    deadline = time.monotonic() + timeout
    while True:
        devs = rest.devices(prefix)
        ok = [ep for ep, d in devs.items() if bootstrap_status(d) == "success"]
        if len(devs) == count and len(ok) == count:
            return devs
        if time.monotonic() > deadline:
            raise AssertionError("expected %d devices %s* with lastBootstrap success, got %d devices, %d ok: %s"
                                 % (count, prefix, len(devs), len(ok),
                                    {ep: bootstrap_status(d) for ep, d in devs.items()}))
        time.sleep(0.3)


def sim(port, count, prefix, scheme="coap", extra=()):
    """lwdm-sim on the host through a published UDP port. --single-address: podman/docker
    forward 127.0.0.1 sources only (the sim's default gives every device its own 127.x)."""
    args = [LWDM_SIM, "bootstrap", "--server", "%s://127.0.0.1:%d" % (scheme, port), "--count", str(count),
            "--prefix", prefix, "--single-address", "--timeout", "15", "--retries", "2", "--retry-delay", "500"]
    r = run(args + list(extra), timeout=120)
    ok, failed = parse_summary(r.stdout)
    assert r.returncode == 0 and ok == count and failed == 0, "lwdm-sim: exit %d\n%s\n%s" % (
        r.returncode, r.stdout[-3000:], r.stderr[-3000:])
    return r.stdout


def fmt_size(n):
    return "%.1f MB (%d bytes)" % (n / 1e6, n)


# ------------------------------------------------------------------- test
def test_docker_image():
    require_binaries(LWDM_SIM)
    rt = find_runtime()
    figures = ["lwdm container figures, %s" % datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
               "machine: %d cores (nproc), runtime: %s (%s)" % (os.cpu_count() or 0, rt.note,
                                                                rt.cmd(["--version"]).stdout.strip())]
    t_test = time.monotonic()
    tag = "lwdm-e2e-%d-%s" % (os.getpid(), uuid.uuid4().hex[:6])
    volume = tag + "-data"
    names = [tag + "-a", tag + "-b"]
    remove_orphans(rt)
    try:
        # ---- 1. the image
        checksum = source_checksum()
        have = image_label(rt)
        if have == checksum:
            figures.append("build: skipped, %s reused (label %s matches the sources)" % (IMAGE, LABEL))
        else:
            first, first_cache, out1 = build_image(rt, checksum)
            cached, cached_cache, out2 = build_image(rt, checksum)
            pruned = prune_stale(rt, out1 + "\n" + out2)
            figures.append("build (first in this run): %.1f s, %s" % (first, first_cache))
            figures.append("build (rebuild, nothing changed): %.1f s, %s" % (cached, cached_cache))
            if pruned:
                figures.append("removed %d images of earlier lwdm:test builds (layers still used stay)" % pruned)
        figures.append("image size: %s (base debian:bookworm-slim here: %s)" % (fmt_size(image_size(rt)),
                                                                             fmt_size(base_size(rt))))
        rt.cmd(["volume", "create", volume])

        # ---- 2. first start
        c = start(rt, names[0], volume, {"LWDM_PUBLIC_HOST": "127.0.0.1", "LWDM_ADMIN_PASSWORD": ADMIN_PASSWORD})
        figures.append("container start to healthy (/healthz 200), empty volume: %.2f s" % c.wait_healthy())
        c.healthcheck()
        assert c.exec("id", "-un") == "lwdm", "the container does not run as user lwdm"
        assert c.exec("cat", "/proc/1/comm") == "lwdm", "lwdm is not PID 1"

        rest = Rest(c.url)
        servers = sorted(rest.all("/lwm2m-servers"), key=lambda s: s["id"])
        assert len(servers) == 4, "expected the 4 first-run servers: %s" % servers
        uris = json.dumps(servers)
        assert "coap://127.0.0.1:5683" in uris and "coaps://127.0.0.1:5684" in uris, \
            "LWDM_PUBLIC_HOST did not reach the first-run servers: %s" % uris
        assert "0.0.0.0" not in uris, uris
        rest.req("POST", "/devices", {"endpoint": "dockpsk-000001", "bootstrapCredentials": {
            "securityMode": "psk", "pskIdentity": "dockpsk-000001", "psk": PSK_KEY}}, expect=201)

        # ---- 3. bootstrap through the published UDP ports
        t0 = time.monotonic()
        sim(c.ports["bs_coap"], N_DEVICES, "dock-")
        figures.append("bootstrap of %d devices through the published UDP port: %.2f s (host lwdm-sim)"
                       % (N_DEVICES, time.monotonic() - t0))
        sim(c.ports["bs_coaps"], 1, "dockpsk-", scheme="coaps", extra=["--psk-key", PSK_KEY])
        before = wait_bootstrapped(rest, "dock-", N_DEVICES)
        wait_bootstrapped(rest, "dockpsk-", 1)

        time.sleep(3)                                         # idle
        stats, rss = c.memory()
        figures.append("memory of the idle container (after %d bootstraps): %s (%s stats), lwdm VmRSS %s"
                       % (N_DEVICES + 1, stats, rt.name, rss))
        key = c.exec("stat", "-c", "%a %U", "/var/lib/lwdm/lwdm.db.key")
        assert key == "600 lwdm", "key file: %s" % key

        # ---- 4. stop (SIGTERM to PID 1), a new container on the same volume
        took, code = c.stop()
        logs = c.logs()
        assert code == 0, "lwdm exited with %s on SIGTERM:\n%s" % (code, logs[-3000:])
        assert "event=stopped" in logs, logs[-3000:]
        figures.append("stop (SIGTERM, clean exit 0): %.2f s" % took)
        rt.cmd(["rm", names[0]])

        c = start(rt, names[1], volume, {"LWDM_PUBLIC_HOST": "127.0.0.1"})   # no admin password this time
        figures.append("container start to healthy, existing volume: %.2f s" % c.wait_healthy())
        c.healthcheck()
        logs = c.logs()
        assert "key_file_created" not in logs and "first-run" not in logs, \
            "the second start did not find the volume's database and key file:\n" + logs[-3000:]
        rest = Rest(c.url)                                    # the same admin login
        assert sorted(rest.all("/lwm2m-servers"), key=lambda s: s["id"]) == servers
        after = wait_bootstrapped(rest, "dock-", N_DEVICES, timeout=5)
        assert sorted(after) == sorted(before)
        assert {ep: d["lastBootstrap"] for ep, d in after.items()} == \
            {ep: d["lastBootstrap"] for ep, d in before.items()}
        # the stored PSK decrypts with the key file from the volume: DTLS bootstrap again
        sim(c.ports["bs_coaps"], 1, "dockpsk-", scheme="coaps", extra=["--psk-key", PSK_KEY])
        sim(c.ports["bs_coap"], 5, "dock2-")
        wait_bootstrapped(rest, "dock2-", 5)
        took, code = c.stop()
        assert code == 0, "lwdm exited with %s on SIGTERM:\n%s" % (code, c.logs()[-3000:])
        figures.append("test duration (build included): %.1f s" % (time.monotonic() - t_test))
    except BaseException:
        for name in names:                                    # what the containers said, for the report
            r = rt.cmd(["logs", name], check=False)
            if r.returncode == 0:
                print("---- logs of %s\n%s%s" % (name, r.stdout[-6000:], r.stderr[-6000:]))
        raise
    finally:
        for name in names:
            rt.cmd(["rm", "-f", "-v", name], timeout=60, check=False)
        rt.cmd(["volume", "rm", "-f", volume], timeout=60, check=False)
        text = "\n".join(figures) + "\n"
        print(text)
        try:
            with open(FIGURES, "w") as f:
                f.write(text)
        except OSError:
            pass
    leftovers = rt.cmd(["ps", "-a", "--filter", "name=" + tag, "--format", "{{.Names}}"], check=False).stdout.strip()
    assert not leftovers, "containers left behind: %s" % leftovers
