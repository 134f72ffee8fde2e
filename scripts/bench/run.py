#!/usr/bin/env python3
"""The measuring half of scripts/bench.sh (which builds first): floor, in-process, HTTP, cold
start and memory in one run, printed as one Markdown table.

Every figure that can be is set against the floor measured in the same run (`openssl speed
rsa2048` on the same core), because the machines this runs on are shared and noisy. Every load
is bounded in time and targets 127.0.0.1 only. Servers started here are stopped on any exit.

Environment: BENCH_SECONDS (default 10) per HTTP load, BENCH_SERVER_CORE / BENCH_LOAD_CORE
(default 0 / 1), BENCH_COLD_RUNS (default 10), BENCH_ONLY (comma-separated subset of
floor,inproc,http,lambda; default all).
"""

import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import lambda_host

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
COLD_RUNS = int(os.environ.get("BENCH_COLD_RUNS", "10"))
CPUS = sorted(os.sched_getaffinity(0))
SERVER_CORE = int(os.environ.get("BENCH_SERVER_CORE", CPUS[0]))
LOAD_CORE = int(os.environ.get("BENCH_LOAD_CORE", CPUS[1] if len(CPUS) > 1 else CPUS[0]))
CLK_TCK = os.sysconf("SC_CLK_TCK")
SUB = "87b4d06c-7c6e-4e8e-9c3f-0b2f1f6f7a11"
# The identity claims the server maps into lwicontexts (as in the criterion benches).
ID_CLAIMS = {"cart_value": "10000", "vip": True, "region": "emea"}
CONTEXT_CLAIMS = "msdyn_cartvalue=cart_value,msdyn_isvip=vip,region=region"
ONLY = set(filter(None, os.environ.get("BENCH_ONLY", "floor,inproc,http,lambda").split(",")))

children = []


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def run(cmd, timeout, **kw):
    return subprocess.run(cmd, check=True, timeout=timeout, text=True, capture_output=True, **kw)


def pinned(core, cmd):
    return ["taskset", "-c", str(core), *cmd]


def target_dir():
    meta = run(["cargo", "metadata", "--format-version", "1", "--no-deps"], 60, cwd=ROOT)
    return Path(json.loads(meta.stdout)["target_directory"])


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------- floor


FLOORS = []  # every floor measurement of the run, in order


def floor():
    """Measures the floor now; returns its index in FLOORS (-1 when floors are not measured).
    A section measured between floors i and i + 1 is compared with their mean (`around`)."""
    if "floor" in ONLY:
        FLOORS.append(openssl_floor())
    return len(FLOORS) - 1


def around(i):
    near = FLOORS[max(i, 0):i + 2] if FLOORS else []
    if not near:
        return None
    return {op: statistics.mean(f[op] for f in near) for op in ["sign", "verify"]}


def openssl_floor():
    log(f"floor: openssl speed -seconds 1 rsa2048 on core {SERVER_CORE}")
    out = run(pinned(SERVER_CORE, ["openssl", "speed", "-seconds", "1", "rsa2048"]), 120).stdout
    m = re.search(r"^rsa\s+2048 bits\s+([\d.]+)s\s+([\d.]+)s", out, re.M)
    if not m:
        sys.exit(f"bench: cannot read openssl speed output:\n{out}")
    version = run(["openssl", "version"], 10).stdout.split()[1]
    return {"sign": float(m.group(1)), "verify": float(m.group(2)), "version": version}


# ----------------------------------------------------------------------------- in-process


CRITICAL = ["sign/rs256", "sign/mint", "validate/verify", "validate/full",
            "validate/full_with_report_json"]
OTHERS = ["context/insert_json", "context/to_lwicontexts", "context/check_lwicontexts",
          "public_keys/render", "keys/parse_uncached", "keys/parse", "keys/ring_from_json"]


IN_PROCESS_ROUNDS = 3


def criterion(target, names, pattern, seconds):
    log(f"in-process: criterion benches {pattern} on core {SERVER_CORE}")
    cmd = ["cargo", "bench", "--quiet", "-p", "chat-auth-shared", "--bench", "chat_auth", "--",
           "--warm-up-time", "1", "--measurement-time", str(seconds), "--sample-size", "50",
           "--noplot", pattern]
    subprocess.run(pinned(SERVER_CORE, cmd), check=True, timeout=300, cwd=ROOT,
                   stdout=sys.stderr)
    results = {}
    for name in names:
        est = json.loads((target / "criterion" / name / "new" / "estimates.json").read_text())
        point = (est.get("slope") or est["mean"])["point_estimate"]
        results[name] = point / 1e9  # seconds
    return results


# ---------------------------------------------------------------------------------- HTTP


def proc_cpu(pid):
    """utime + stime of the whole process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_status(pid, key):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def start_server(bin_path, core, env, log_path):
    full_env = {**os.environ, **env}
    full_env.setdefault("RUST_LOG", "info")
    proc = subprocess.Popen(pinned(core, [str(bin_path), "serve"]), env=full_env,
                            stdout=subprocess.DEVNULL, stderr=open(log_path, "ab"))
    children.append(proc)
    return proc


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc in children:
        children.remove(proc)


def wait_http(url, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).read()
            return
        except Exception:
            time.sleep(0.05)
    sys.exit(f"bench: {url} did not answer within {timeout} s")


def http(url, body=None, headers=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers=headers or {})
    if data is not None:
        req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.read()


UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def seconds(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    return float(m.group(1)) * UNITS[m.group(2)]


def wrk(url, connections, duration, pid, extra=()):
    cmd = pinned(LOAD_CORE, ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency",
                             "--timeout", "5s", *extra, url])
    cpu0 = proc_cpu(pid)
    out = run(cmd, duration + 30).stdout
    cpu = proc_cpu(pid) - cpu0
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    if bad or errors or requests == 0:
        sys.exit(f"bench: load on {url} had failures:\n{out}")
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
    return {
        "busy": cpu / duration,
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50": seconds(lat["50"]),
        "p99": seconds(lat["99"]),
        "cpu_per_req": cpu / requests,
        "requests": requests,
    }


def http_benches(bin_path, work):
    idp_port, port = free_port(), free_port()
    idp_env = {"CHAT_AUTH_LISTEN": f"127.0.0.1:{idp_port}",
               "CHAT_AUTH_DATA_DIR": str(work / "idp"), "CHAT_AUTH_DEV": "1"}
    sut_env = {
        "CHAT_AUTH_LISTEN": f"127.0.0.1:{port}",
        "CHAT_AUTH_DATA_DIR": str(work / "ring"),
        "CHAT_AUTH_UPSTREAM_ISSUER": "chat-auth-dev",
        "CHAT_AUTH_UPSTREAM_AUDIENCE": "chat-auth-dev",
        "CHAT_AUTH_UPSTREAM_JWKS_URL": f"http://127.0.0.1:{idp_port}/dev/jwks.json",
        "CHAT_AUTH_CONTEXT_CLAIMS": CONTEXT_CLAIMS,
        "TOKIO_WORKER_THREADS": "1",
    }
    # The identity provider: a development-mode server on the load generator's core (it only
    # answers the sign-in and one JWKS fetch per server start).
    idp = start_server(bin_path, LOAD_CORE, idp_env, work / "idp.log")
    wait_http(f"http://127.0.0.1:{idp_port}/dev/jwks.json")
    id_token = json.loads(http(f"http://127.0.0.1:{idp_port}/dev/sign-in",
                               {"sub": SUB, "claims": ID_CLAIMS}))["id_token"]
    bearer = {"Authorization": f"Bearer {id_token}"}

    # The server under test: upstream mode (as deployed: verify the caller's identity token
    # against the IdP's JWKS, map its claims into context), one worker thread, one core.
    log(f"HTTP: server on core {SERVER_CORE} (1 tokio worker), wrk on core {LOAD_CORE}, "
        f"{SECONDS} s per load")
    sut = start_server(bin_path, SERVER_CORE, sut_env, work / "server.log")
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/public-key")
    token = http(f"{base}/token", headers=bearer).decode()
    report = json.loads(http(f"{base}/validate", {"token": token}))
    if not report.get("active") or report.get("context", {}).get("region") != "emea":
        sys.exit(f"bench: the minted token does not validate as expected: {report}")

    auth = ("-H", f"Authorization: Bearer {id_token}")
    results = {}
    os.environ["BENCH_TOKEN"] = token
    validate = ("-s", str(HERE / "validate.lua"))
    wrk(f"{base}/token", 16, 2, sut.pid, auth)  # warm-up
    wrk(f"{base}/validate", 16, 2, sut.pid, validate)  # warm-up
    # Each load sits between two floor measurements (the same core, moments apart).
    for key, path, conns, extra in [("token_c1", "token", 1, auth),
                                    ("token_c16", "token", 16, auth),
                                    ("validate_c16", "validate", 16, validate)]:
        at = floor()
        results[key] = {**wrk(f"{base}/{path}", conns, SECONDS, sut.pid, extra), "floor": at}
    results["floor_after"] = floor()
    results["rss_peak"] = proc_status(sut.pid, "VmHWM")
    results["rss_now"] = proc_status(sut.pid, "VmRSS")
    results["threads"] = proc_status_raw(sut.pid, "Threads")
    stop(sut)

    results["cold"] = cold_start(bin_path, sut_env, port, id_token, work)
    stop(idp)
    return results


def ensure_ring(bin_path, ring_dir, work):
    """Creates the file key ring (`chat-auth keys` creates it if there is none)."""
    if (ring_dir / "ring.json").exists():
        return
    with open(work / "ring.log", "ab") as log_file:
        subprocess.run([str(bin_path), "--data-dir", str(ring_dir), "keys"], check=True,
                       stdout=subprocess.DEVNULL, stderr=log_file)


def proc_status_raw(pid, key):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return line.split()[1]
    return "?"


def first_token(port, id_token, deadline):
    """Tries GET /token until it answers 200; True on success."""
    request = (f"GET /token HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
               f"Authorization: Bearer {id_token}\r\nConnection: close\r\n\r\n").encode()
    while time.perf_counter() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(request)
                answer = b""
                while chunk := s.recv(65536):
                    answer += chunk
                if answer.startswith(b"HTTP/1.1 200"):
                    return True
                status = answer.split(b"\r\n", 1)[0]
                log(f"cold start: /token answered {status!r}")
                return False
        except (ConnectionRefusedError, ConnectionResetError):
            time.sleep(0.0002)
    return False


def spawn_on_server_core(cmd, env, log_path):
    """Spawns `cmd` on the server core (inherited at spawn); this process continues on the load
    core. Returns (process, spawn time)."""
    mine = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {SERVER_CORE})
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=open(log_path, "ab"))
    os.sched_setaffinity(0, {LOAD_CORE} if LOAD_CORE in mine else mine)
    children.append(proc)
    return proc, t0


def summary(times):
    return {"median": statistics.median(times), "min": min(times), "max": max(times),
            "runs": len(times)}


def cold_start(bin_path, env, port, id_token, work):
    """Process start (spawn) to the first 200 from /token, the file ring already created."""
    log(f"cold start: {COLD_RUNS} starts, ring already in {env['CHAT_AUTH_DATA_DIR']}")
    full_env = {**os.environ, **env, "RUST_LOG": os.environ.get("RUST_LOG", "info")}
    cmd = [str(bin_path), "serve"]
    times = []
    for _ in range(COLD_RUNS):
        proc, t0 = spawn_on_server_core(cmd, full_env, work / "cold.log")
        ok = first_token(port, id_token, t0 + 10)
        elapsed = time.perf_counter() - t0
        stop(proc)
        if not ok:
            sys.exit("bench: cold start never got a 200 from /token (see cold.log)")
        times.append(elapsed)
    return summary(times)



# ------------------------------------------------------------------ Lambda-shaped (mint-token)

LAMBDA_SECONDS = 5
LAMBDA_CLAIMS = {"cart_value": "10000", "vip": "true", "region": "emea"}


def invoke_ok(runtime, event):
    kind, body = runtime.invoke(event)
    if kind != "response" or not isinstance(body, dict) or body.get("statusCode") != 200:
        sys.exit(f"bench: mint-token answered {kind}: {str(body)[:300]}")


def run_function(fn_bin, env, work, log_name):
    """Starts mint-token under a fresh cargo-lambda local runtime; returns (process, runtime, spawn
    time, first answer time)."""
    runtime = lambda_host.RuntimeApi()
    full_env = {"PATH": os.environ.get("PATH", ""), "RUST_LOG": "info",
                **lambda_host.lambda_env(runtime), **env}
    proc, t0 = spawn_on_server_core([str(fn_bin)], full_env, work / log_name)
    invoke_ok(runtime, lambda_host.token_event(SUB, LAMBDA_CLAIMS))
    return proc, runtime, t0, time.perf_counter()


def lambda_benches(target, bin_path, work):
    fn_bin = target / "release" / "mint-token"
    if not fn_bin.exists():
        sys.exit(f"bench: {fn_bin} is missing; run scripts/bench.sh (it builds first)")
    ring_dir = work / "ring"
    ensure_ring(bin_path, ring_dir, work)
    common = {"CHAT_AUTH_CONTEXT_CLAIMS": CONTEXT_CLAIMS}
    results = {}

    log(f"Lambda: mint-token under cargo-lambda's local runtime, file ring, {COLD_RUNS} cold starts")
    times = []
    for _ in range(COLD_RUNS):
        proc, runtime, t0, t1 = run_function(
            fn_bin, {**common, "CHAT_AUTH_DATA_DIR": str(ring_dir)}, work, "lambda-file.log")
        times.append(t1 - t0)
        stop(proc)
        runtime.close()
    results["cold_file"] = summary(times)

    moto = ROOT / "target" / "py" / "bin" / "moto_server"
    if not moto.exists():
        log(f"Lambda: {moto} is missing (scripts/bench.sh installs it); Secrets Manager rows "
            "skipped")
        return results
    log(f"Lambda: mint-token with the Secrets Manager store (moto), {LAMBDA_SECONDS} s of warm "
        "invocations")
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    moto_log = work / "moto.log"
    server = subprocess.Popen(pinned(LOAD_CORE, [str(moto), "-H", "127.0.0.1", "-p", str(port)]),
                              stdout=open(moto_log, "ab"), stderr=subprocess.STDOUT)
    children.append(server)
    wait_http(f"{endpoint}/moto-api/")
    for name, file in [("bench/signing", "ring.json"), ("bench/public", "public.json")]:
        lambda_host.secrets_manager(endpoint, "CreateSecret", {
            "Name": name, "SecretString": (ring_dir / file).read_text()})
    aws = {
        "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "CHAT_AUTH_SIGNING_SECRET_ID": "bench/signing",
        "CHAT_AUTH_PUBLIC_KEYS_SECRET_ID": "bench/public",
    }
    before = lambda_host.moto_requests(moto_log)
    proc, runtime, t0, t1 = run_function(fn_bin, {**common, **aws}, work, "lambda-sm.log")
    cold_calls = lambda_host.moto_requests(moto_log) - before
    warm, deadline = 0, time.monotonic() + LAMBDA_SECONDS
    event = lambda_host.token_event(SUB, LAMBDA_CLAIMS)
    cpu0 = proc_cpu(proc.pid)
    while time.monotonic() < deadline:
        invoke_ok(runtime, event)
        warm += 1
    cpu = proc_cpu(proc.pid) - cpu0
    rss = proc_status(proc.pid, "VmHWM")
    warm_calls = lambda_host.moto_requests(moto_log) - before - cold_calls
    stop(proc)
    runtime.close()
    stop(server)
    results["sm"] = {"cold_start": t1 - t0, "cold_calls": cold_calls, "warm": warm,
                     "warm_calls": warm_calls, "cpu_per_warm": cpu / max(warm, 1), "rss_peak": rss}
    return results

# ---------------------------------------------------------------------------------- table


def us(s):
    return f"{s * 1e6:,.1f} µs" if s < 1e-3 else f"{s * 1e3:,.3f} ms"


def ms(s):
    return f"{s * 1e3:.2f} ms"


def status(ok):
    return "**met**" if ok else "**missed**"


def floor_rows():
    version = FLOORS[0]["version"]
    rows = []
    for op in ["sign", "verify"]:
        times = [f[op] for f in FLOORS]
        median = statistics.median(times)
        rows.append((f"floor: OpenSSL {version} RSA-2048 {op} (`openssl speed -seconds 1 "
                     f"rsa2048`, {len(times)}× through the run; each figure below is compared "
                     f"with the two taken just before and after it)",
                     f"median {us(median)} ({1 / median:,.0f}/s); range {us(min(times))} – "
                     f"{us(max(times))}", "1.00", "", ""))
    return rows


def inproc_rows(inproc):
    """Ratio-critical figures: the median over rounds of (bench / floor around it)."""

    def row(label, name, op=None, goal="", limit=None):
        rounds = [(values[name], around(at)) for at, values in inproc if name in values]
        t = statistics.median(v for v, _ in rounds)
        ratio = ok = ""
        if op and all(f for _, f in rounds):
            r = statistics.median(v / f[op] for v, f in rounds)
            ratio = f"{r:.2f}× {op}" + (f" (median of {len(rounds)} rounds)"
                                        if len(rounds) > 1 else "")
            ok = status(r <= limit) if limit else ""
        return (label, us(t), ratio, goal, ok)

    return [
        row("in-process RS256 signature only (aws-lc)", "sign/rs256", "sign"),
        row("in-process mint: context + claims + RS256 sign", "sign/mint", "sign", "≤ 1.10×",
            1.10),
        row("in-process RSA verify only (aws-lc)", "validate/verify", "verify"),
        row("in-process full validation (signature + every check)", "validate/full", "verify",
            "≤ 1.5×", 1.5),
        row("in-process validation + /validate JSON report", "validate/full_with_report_json",
            "verify"),
        row("in-process context: build from 3 claims", "context/insert_json"),
        row("in-process context: serialize (lwicontexts)", "context/to_lwicontexts"),
        row("in-process context: parse + check lwicontexts", "context/check_lwicontexts"),
        row("in-process public key documents (3 keys)", "public_keys/render"),
        row("in-process private key parse, first time (PKCS#8 + aws-lc's RSA checks)",
            "keys/parse_uncached", "sign"),
        row("in-process private key parse, again (remembered; kid check)", "keys/parse",
            "sign"),
        row("in-process stored ring parse (start, cache refresh)", "keys/ring_from_json",
            "sign"),
    ]


def http_rows(h):
    """req/s is wall clock; "per core" is requests per second of server CPU (1 / CPU per
    request), which is what one core delivers when nothing else runs on it. Goals are judged on
    the latter because the machine is shared; both are shown."""
    rows = []
    for key, label in [("token_c1", "HTTP GET /token, 1 core, concurrency 1"),
                       ("token_c16", "HTTP GET /token, 1 core, concurrency 16"),
                       ("validate_c16", "HTTP POST /validate, 1 core, concurrency 16")]:
        r = h[key]
        floor = around(r["floor"])
        sign = floor["sign"] if floor else None
        verify = floor["verify"] if floor else None
        per_core = 1 / r["cpu_per_req"]
        value = (f"{r['rps']:,.0f} req/s (server busy {r['busy']:.0%} of its core; "
                 f"{per_core:,.0f} req/s per core-second); p50 {ms(r['p50'])}, "
                 f"p99 {ms(r['p99'])}; server CPU {us(r['cpu_per_req'])}/req")
        goal, ok, ratio = "", "", ""
        if key.startswith("token") and sign:
            ratio = f"{r['rps'] * sign:.2f}× sign/s (per core: {per_core * sign:.2f}×)"
            if key == "token_c16":
                goal, ok = "≥ 0.9× (per core)", status(per_core * sign >= 0.9)
        elif key.startswith("validate"):
            if verify:
                ratio = f"{r['rps'] * verify:.2f}× verify/s (per core: {per_core * verify:.2f}×)"
            goal, ok = "≥ 15,000 req/s (per core)", status(per_core >= 15_000)
        rows.append((label, value, ratio, goal, ok))
    c = h["cold"]
    rows.append((f"cold start, local server: spawn → first 200 from /token (median of "
                 f"{c['runs']})", f"{ms(c['median'])} (min {ms(c['min'])}, max {ms(c['max'])})",
                 "", "≤ 10 ms", status(c["median"] <= 0.010)))
    rows.append(("peak RSS under load (VmHWM)",
                 f"{h['rss_peak'] / 2**20:.1f} MiB (now {h['rss_now'] / 2**20:.1f} MiB, "
                 f"{h['threads']} threads)", "", "≤ 16 MB",
                 status(h["rss_peak"] <= 16 * 2**20)))
    return rows


def lambda_rows(lam):
    floor = around(lam["floor"])
    c = lam["cold_file"]
    rows = [(f"cold start, mint-token under cargo-lambda's local runtime, file ring: spawn → "
             f"first answer (median of {c['runs']})",
             f"{ms(c['median'])} (min {ms(c['min'])}, max {ms(c['max'])})", "", "", "")]
    sm = lam.get("sm")
    if sm is None:
        rows.append(("Secrets Manager calls per warm request", "not measured (moto missing)",
                     "", "0", ""))
        return rows
    rows.append(("cold start, mint-token with the Secrets Manager store (moto): spawn → first "
                 "answer (1 run)", ms(sm["cold_start"]), "", "", ""))
    sign_ratio = f"{sm['cpu_per_warm'] / floor['sign']:.2f}× sign" if floor else ""
    rows.append(("mint-token CPU per warm invocation (Runtime API round trip, mint, response)",
                 f"{us(sm['cpu_per_warm'])}; peak RSS {sm['rss_peak'] / 2**20:.1f} MiB",
                 sign_ratio, "", ""))
    per = sm["warm_calls"] / max(sm["warm"], 1)
    rows.append(("Secrets Manager calls per warm request (moto's request log)",
                 f"{sm['warm_calls']} calls over {sm['warm']:,} warm invocations ({per:g}/request);"
                 f" {sm['cold_calls']} at cold start", "", "0",
                 status(sm["warm_calls"] == 0 and sm["warm"] > 0)))
    return rows


def table(inproc, h, lam):
    rows = []
    if FLOORS:
        rows += floor_rows()
    if inproc:
        rows += inproc_rows(inproc)
    if h:
        rows += http_rows(h)
    if lam:
        rows += lambda_rows(lam)
    out = ["| measure | result | ratio to floor | goal | status |",
           "| --- | --- | --- | --- | --- |"]
    out += [f"| {' | '.join(r)} |" for r in rows]
    return "\n".join(out)


def machine():
    model = next((line.split(":", 1)[1].strip() for line in
                  run(["lscpu"], 10).stdout.splitlines() if line.startswith("Model name")), "?")
    load = Path("/proc/loadavg").read_text().split()[:3]
    return model, os.cpu_count(), " ".join(load)


def main():
    for tool in ["openssl", "wrk", "taskset", "cargo"]:
        if not shutil.which(tool):
            sys.exit(f"bench: {tool} is required (scripts/bench.sh installs wrk)")
    target = target_dir()
    bin_path = target / "release" / "chat-auth"
    if not bin_path.exists():
        sys.exit(f"bench: {bin_path} is missing; run scripts/bench.sh (it builds first)")
    started = time.monotonic()
    model, cores, load_before = machine()
    # In-process: rounds of (floor, the ratio-critical benches), then a closing floor; each
    # round is compared with the floors on either side of it, and the median round reported.
    inproc = None
    if "inproc" in ONLY:
        inproc = []
        for _ in range(IN_PROCESS_ROUNDS):
            at = floor()
            inproc.append((at, criterion(target, CRITICAL, "^(sign|validate)/", 2)))
        at = floor()
        inproc.append((at, criterion(target, OTHERS, "^(context|public_keys|keys)/", 2)))
    with tempfile.TemporaryDirectory(prefix="chat-auth-bench-") as tmp:
        h = http_benches(bin_path, Path(tmp)) if "http" in ONLY else None
        lam = None
        if "lambda" in ONLY:
            lam = {**lambda_benches(target, bin_path, Path(tmp)), "floor": len(FLOORS) - 1}
    _, _, load_after = machine()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                            capture_output=True).stdout.strip() or "?"
    print(f"machine: {model}, {cores} cores; load average {load_before} before, "
          f"{load_after} after; commit {commit}; {time.monotonic() - started:.0f} s")
    print(f"server, openssl and criterion on core {SERVER_CORE}, wrk on core {LOAD_CORE}; "
          f"{SECONDS} s per HTTP load, wrk -t1\n")
    print(table(inproc, h, lam))


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("bench: terminated"))
    try:
        main()
    finally:
        for child in list(children):
            stop(child)
