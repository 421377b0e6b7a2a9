"""API benchmark: the rules list under 100 concurrent clients, and rule previews over a week of
archive.

Builds a PostgreSQL database of its own (rules of many users, a week of per-rule counts, 400,000
archived Koji build messages with their match keys, written the consumer's way), starts the real
OIDC provider of the tests (node) and `fmn api` as separate processes, then:
- rules list: wrk (Debian's `wrk`, a second process) with 100 connections, each request for one of
  100 users with that user's own token, closed loop for --duration seconds; then the same load at a
  fixed total rate (--rate), open loop, measured by a Python client in a third process;
- preview: POST /users/{u}/rules/preview, 7 days, for an ordinary rule and for a heavy one (a user
  whose packages are among the most built), several times each.

Run:  .venv/bin/python bench/bench_api.py [--workers 2] [--messages 400000] [--duration 20]
Needs PostgreSQL (trust, user postgres), Redis on 127.0.0.1, node/npm
(tests/harness/oidc_provider) and wrk.
The archive is kept between runs (--rebuild to make it again).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import re
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fmn.archive import match_keys  # noqa: E402
from fmn.db import migrations  # noqa: E402
from fmn.rules.incoming import parse_message  # noqa: E402
from tests.api.archive import koji_build  # noqa: E402
from tests.harness.oidc import Provider  # noqa: E402
from tests.harness.ports import free_port  # noqa: E402

PG = "postgresql://postgres@127.0.0.1:5432"
DB = "fmn_bench_api"
REDIS = "redis://127.0.0.1:6379/0"
N_USERS = 5000
N_PACKAGES = 20000
LOAD_USERS = 100
RULES_PER_USER = 10
# Preview users: packages from the middle of the popularity curve (hundreds of matches in a
# week), from its upper part (thousands), from its very top (a third of all traffic).
ORDINARY, BUSY, HEAVY = "bench-ordinary", "bench-busy", "bench-heavy"
PREVIEW_USERS = (ORDINARY, BUSY, HEAVY)
OWNED = 30  # packages each preview user owns


def zipf_weights(n: int, s: float = 1.1) -> list[float]:
    return [1 / (k**s) for k in range(1, n + 1)]


def user_name(i: int) -> str:
    return f"u{i:05d}"


def package_name(i: int) -> str:
    return f"pkg{i:05d}"


def directory_data(rng: random.Random) -> dict[str, Any]:
    users = {
        user_name(i): {"username": user_name(i), "emails": [f"{user_name(i)}@example.org"]}
        for i in range(N_USERS)
    }
    for name in PREVIEW_USERS:
        users[name] = {"username": name, "emails": [f"{name}@example.org"]}
    projects: dict[str, Any] = {}
    for i in range(N_PACKAGES):
        projects[f"rpms/{package_name(i)}"] = {"access_users": {"owner": [user_name(i % N_USERS)]}}
    # The heavy user owns the most built packages; the ordinary one, packages from the middle.
    for i in range(OWNED):
        projects[f"rpms/{package_name(i)}"]["access_users"]["commit"] = [HEAVY]
        projects[f"rpms/{package_name(100 + i)}"]["access_users"]["commit"] = [BUSY]
        middle = 2000 + i * 37
        projects[f"rpms/{package_name(middle)}"]["access_users"]["commit"] = [ORDINARY]
    return {"users": users, "groups": {}, "projects": projects}


def rule_rows(
    user_index: int, rng: random.Random
) -> list[tuple[str, str, Any, list[dict[str, Any]]]]:
    """(name, tracking name, params, filters rows) for one user's rules."""
    me = user_name(user_index)
    choices: list[tuple[str, Any]] = [
        ("related-events", None),
        ("artifacts-owned", [me]),
        ("artifacts-followed", [{"name": package_name(rng.randrange(N_PACKAGES)), "type": "rpms"}]),
        ("users-followed", [user_name(rng.randrange(N_USERS))]),
    ]
    rows = []
    for n in range(RULES_PER_USER):
        tracking, params = choices[n % len(choices)]
        filters = []
        if n % 3 == 0:
            filters.append({"name": "applications", "params": ["koji", "bodhi"]})
        if n % 4 == 0:
            filters.append({"name": "topic", "params": "*.build.*"})
        rows.append((f"rule {n} of {me}", tracking, params, filters))
    return rows


async def seed_rules(conn: asyncpg.Connection, rng: random.Random) -> None:
    names = [user_name(i) for i in range(N_USERS)] + list(PREVIEW_USERS)
    await conn.copy_records_to_table(
        "users", records=[(i + 1, n) for i, n in enumerate(names)], columns=["id", "name"]
    )
    rules, tracking, generation, destinations, filters, generated = [], [], [], [], [], []
    now = dt.datetime.now(dt.UTC)
    rule_id = 0
    filter_id = 0
    for u in range(N_USERS):
        for name, tname, params, frows in rule_rows(u, rng):
            rule_id += 1
            rules.append((rule_id, name, False, u + 1))
            tracking.append((rule_id, rule_id, tname, json.dumps(params)))
            generation.append((rule_id, rule_id))
            destinations.append((rule_id, rule_id, "email", f"{user_name(u)}@example.org"))
            for f in frows:
                filter_id += 1
                filters.append((filter_id, rule_id, f["name"], json.dumps(f["params"])))
            for day in range(7):
                when = now - dt.timedelta(days=day, hours=rng.random() * 20)
                generated.append((rule_id, when, rng.randrange(1, 20)))
    await conn.copy_records_to_table(
        "rules", records=rules, columns=["id", "name", "disabled", "user_id"]
    )
    await conn.copy_records_to_table(
        "tracking_rules", records=tracking, columns=["id", "rule_id", "name", "params"]
    )
    await conn.copy_records_to_table(
        "generation_rules", records=generation, columns=["id", "rule_id"]
    )
    await conn.copy_records_to_table(
        "destinations",
        records=destinations,
        columns=["id", "generation_rule_id", "protocol", "address"],
    )
    await conn.copy_records_to_table(
        "filters", records=filters, columns=["id", "generation_rule_id", "name", "params"]
    )
    await conn.copy_records_to_table(
        "generated", records=generated, columns=["rule_id", "when", "count"]
    )
    for table in (
        "users",
        "rules",
        "tracking_rules",
        "generation_rules",
        "destinations",
        "filters",
    ):
        await conn.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
        )


async def seed_archive(conn: asyncpg.Connection, n: int, rng: random.Random) -> None:
    users = [user_name(i) for i in range(N_USERS)]
    packages = [package_name(i) for i in range(N_PACKAGES)]
    user_weights = zipf_weights(N_USERS, 1.0)
    package_weights = zipf_weights(N_PACKAGES, 1.0)
    now = dt.datetime.now(dt.UTC)
    # Oldest first, as the consumer archives them (rows of one hour sit together on disk).
    ages = sorted((rng.random() * 7 * 86400 for _ in range(n)), reverse=True)
    batch = 20000
    pk = 0
    for start in range(0, n, batch):
        size = min(batch, n - start)
        owners = rng.choices(users, user_weights, k=size)
        names = rng.choices(packages, package_weights, k=size)
        messages, keys = [], []
        for age, owner, package in zip(ages[start : start + size], owners, names, strict=True):
            sent_at = now - dt.timedelta(seconds=age)
            data = koji_build(owner, package, sent_at)
            parsed = parse_message(data)
            pk += 1
            messages.append((pk, data["id"], data["topic"], sent_at, now, json.dumps(data)))
            keys.extend((pk, kind, value, sent_at) for kind, value in match_keys(parsed))
        await conn.copy_records_to_table(
            "archived_messages",
            records=messages,
            columns=["id", "message_id", "topic", "sent_at", "received_at", "data"],
        )
        await conn.copy_records_to_table(
            "archived_message_keys",
            records=keys,
            columns=["message_pk", "kind", "value", "sent_at"],
        )
        print(f"  archived {start + size:,}/{n:,}", file=sys.stderr, end="\r")
    print(file=sys.stderr)
    await conn.execute("SELECT setval(pg_get_serial_sequence('archived_messages', 'id'), $1)", pk)
    await conn.execute("ANALYZE")


async def prepare_database(n_messages: int, rebuild: bool) -> str:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{DB}"
    admin = await asyncpg.connect(f"{PG}/postgres")
    exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DB)
    if exists and not rebuild:
        conn = await asyncpg.connect(f"{PG}/{DB}")
        try:
            have = await conn.fetchval("SELECT count(*) FROM archived_messages")
        except asyncpg.UndefinedTableError:
            have = -1
        await conn.close()
        if have == n_messages:
            await admin.close()
            print(f"reusing {DB} ({have:,} archived messages)", file=sys.stderr)
            await asyncio.to_thread(migrations.upgrade, url)  # migrations added since
            return url
    await admin.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{DB}"')
    await admin.close()
    await asyncio.to_thread(migrations.upgrade, url)
    conn = await asyncpg.connect(f"{PG}/{DB}")
    rng = random.Random(7)
    print("seeding rules ...", file=sys.stderr)
    await seed_rules(conn, rng)
    print(f"seeding {n_messages:,} archived messages ...", file=sys.stderr)
    await seed_archive(conn, n_messages, rng)
    await conn.close()
    return url


def write_config(workdir: Path, db_url: str, oidc: Provider, directory_file: Path) -> Path:
    config = workdir / "fmn.toml"
    config.write_text(
        f"""
[database]
url = "{db_url}"
pool_size = 5

[cache]
url = "{REDIS}"

[bus]
amqp_url = "memory://"

[directory]
local_file = "{directory_file}"

[oidc]
provider_url = "{oidc.issuer}"
client_id = "fmn-api-tests"
client_secret = "fmn-api-tests-secret"
token_check = "introspection"
allowed_clients = ["fmn-api-tests"]
token_checks_per_minute = 1000000

[api]
secret_keys = ["{secrets.token_urlsafe(48)}"]
rate_limit_per_minute = 1000000
frontend_dir = "/nonexistent"
"""
    )
    return config


def start_api(config: Path, port: int, workers: int, workdir: Path) -> subprocess.Popen[bytes]:
    log = (workdir / "api.log").open("wb")
    process = subprocess.Popen(
        [
            str(ROOT / ".venv" / "bin" / "fmn"),
            "--log-level",
            "WARNING",
            "api",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        env={**os.environ, "FMN_CONFIG": str(config)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/healthz/live").status_code == 200:
                return process
        except httpx.TransportError:
            time.sleep(0.2)
    raise RuntimeError(f"the API did not start, see {workdir / 'api.log'}")


def wrk_script(workdir: Path, port: int, tokens: dict[str, str]) -> Path:
    entries = ",\n".join(f'  {{"{u}", "{t}"}}' for u, t in tokens.items())
    script = workdir / "rules.lua"
    script.write_text(
        f"""
local users = {{
{entries}
}}
local i = math.random(#users)
request = function()
  i = i % #users + 1
  local u = users[i]
  return wrk.format("GET", "/api/v1/users/" .. u[1] .. "/rules",
                    {{["Authorization"] = "Bearer " .. u[2]}})
end
"""
    )
    return script


def run_wrk(port: int, script: Path, connections: int, duration: int) -> dict[str, Any]:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is needed: apt-get install wrk")
    out = subprocess.run(
        [
            wrk,
            "-t2",
            f"-c{connections}",
            f"-d{duration}s",
            "--latency",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    percentiles = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", out, re.M))
    rate = float(re.search(r"Requests/sec:\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": rate,
        "p50": percentiles.get("50"),
        "p90": percentiles.get("90"),
        "p99": percentiles.get("99"),
        "non2xx": int(errors.group(1)) if errors else 0,
        "raw": out,
    }


def process_tree(pid: int) -> list[int]:
    """A process and all its descendants (Linux /proc)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                todo.extend(int(c) for c in (task / "children").read_text().split())
            except OSError:
                pass
    return found


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User + system CPU seconds of each process still there."""
    tick = os.sysconf("SC_CLK_TCK")
    times = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        times[pid] = (int(fields[11]) + int(fields[12])) / tick
    return times


async def backend_pids() -> list[int]:
    conn = await asyncpg.connect(f"{PG}/postgres")
    try:
        rows = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1", DB)
    finally:
        await conn.close()
    return [r["pid"] for r in rows]


def run_wrk_measured(
    api_pid: int, port: int, script: Path, connections: int, duration: int
) -> dict[str, Any]:
    """run_wrk, plus the CPU time each side spent per request: the API's processes, the
    PostgreSQL backends of the benchmark database, and wrk itself."""
    api_before = cpu_seconds(process_tree(api_pid))
    pg_before = cpu_seconds(asyncio.run(backend_pids()))
    wrk_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = run_wrk(port, script, connections, duration)
    wrk_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    api_after = cpu_seconds(process_tree(api_pid))
    pg_after = cpu_seconds(asyncio.run(backend_pids()))
    requests = result["rps"] * duration

    def per_request(before: dict[int, float], after: dict[int, float]) -> float:
        spent = sum(t - before.get(pid, 0.0) for pid, t in after.items())
        return round(spent / requests * 1000, 3)

    wrk_spent = (wrk_after.ru_utime + wrk_after.ru_stime) - (
        wrk_before.ru_utime + wrk_before.ru_stime
    )
    cpu = {
        "api": per_request(api_before, api_after),
        "postgresql": per_request(pg_before, pg_after),
        "wrk": round(wrk_spent / requests * 1000, 3),
    }
    cpu["total"] = round(sum(cpu.values()), 3)
    result["cpu_ms_per_request"] = cpu
    return result


OPEN_LOOP = r"""
# Open-loop load: `clients` keep-alive connections, each sending GETs on a fixed schedule (the
# total rate split evenly); latency runs from the scheduled time, so queueing counts. Plain
# asyncio streams: an HTTP client library would cost more CPU than the server being measured.
import asyncio, json, sys, time

async def main(host, port, tokens, rate, duration, clients):
    users = list(tokens.items())
    interval = clients / rate
    latencies, errors = [], 0

    async def client(k):
        nonlocal errors
        user, token = users[k % len(users)]
        request = (f"GET /api/v1/users/{user}/rules HTTP/1.1\r\nHost: {host}\r\n"
                   f"Authorization: Bearer {token}\r\n\r\n").encode()
        reader, writer = await asyncio.open_connection(host, port)
        start = time.perf_counter() + k * interval / clients
        n = 0
        while (due := start + n * interval) - start < duration:
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            writer.write(request)
            status = int((await reader.readline()).split()[1])
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - due)
            errors += status != 200
            n += 1
        writer.close()

    await asyncio.gather(*(client(k) for k in range(clients)))
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000
    print(json.dumps({"n": len(latencies), "errors": errors, "p50": pick(0.5),
                      "p90": pick(0.9), "p99": pick(0.99), "max": latencies[-1] * 1000}))

asyncio.run(main("127.0.0.1", int(sys.argv[1]), json.loads(open(sys.argv[2]).read()),
                 float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])))
"""


def run_open_loop(
    port: int, tokens: dict[str, str], rate: float, duration: int, clients: int, workdir: Path
) -> dict[str, Any]:
    (workdir / "tokens.json").write_text(json.dumps(tokens))
    (workdir / "open_loop.py").write_text(OPEN_LOOP)
    out = subprocess.run(
        [
            sys.executable,
            str(workdir / "open_loop.py"),
            str(port),
            str(workdir / "tokens.json"),
            str(rate),
            str(duration),
            str(clients),
        ],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise RuntimeError(f"the open-loop client failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


async def cpu_per_request(config: Path, tokens: dict[str, str], rounds: int = 15) -> dict[str, Any]:
    """CPU time of the API process per rules-list request, served in this process through
    ASGI (no HTTP parsing, no PostgreSQL time): less sensitive to other load than latency.
    Best and median of `rounds` rounds of 100 requests."""
    from fmn.api.app import create_app
    from fmn.core.settings import load_settings

    os.environ["FMN_CONFIG"] = str(config)
    app = create_app(load_settings())
    users = list(tokens.items())

    async def call(i: int) -> None:
        user, token = users[i % len(users)]
        path = f"/api/v1/users/{user}/rules"
        scope = {
            "type": "http",
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "server": ("127.0.0.1", 80),
            "client": ("127.0.0.1", 1),
            "headers": [(b"authorization", f"Bearer {token}".encode())],
        }
        status = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])

        await app(scope, receive, send)
        if status != [200]:
            raise RuntimeError(f"GET {path}: {status}")

    per_request = []
    async with app.router.lifespan_context(app):
        for i in range(2 * len(users)):  # warm: identities, connections, statement caches
            await call(i)
        for _ in range(rounds):
            started = time.process_time()
            for i in range(100):
                await call(i)
            per_request.append((time.process_time() - started) / 100 * 1000)
    per_request.sort()
    return {"best_ms": per_request[0], "median_ms": per_request[len(per_request) // 2]}


def preview_rule(user: str) -> dict[str, Any]:
    return {
        "rule": {
            "name": "preview",
            "tracking_rule": {"name": "artifacts-owned", "params": [user]},
            "generation_rules": [
                {
                    "destinations": [{"protocol": "email", "address": f"{user}@example.org"}],
                    "filters": {"my_actions": True},
                }
            ],
        },
        "days": 7,
    }


def run_previews(port: int, tokens: dict[str, str], runs: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
        for user in PREVIEW_USERS:
            times, answer = [], {}
            for run in range(runs + 1):  # the first run warms caches up and is not counted
                started = time.perf_counter()
                response = http.post(
                    f"/api/v1/users/{user}/rules/preview",
                    headers={"Authorization": f"Bearer {tokens[user]}"},
                    json=preview_rule(user),
                )
                if run:
                    times.append(time.perf_counter() - started)
                response.raise_for_status()
                answer = response.json()
            results[user] = {
                "median_s": statistics.median(times),
                "max_s": max(times),
                "scanned": answer["scanned"],
                "total": answer["total"],
                "complete": answer["complete"],
            }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=400_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument(
        "--rate",
        type=float,
        nargs="*",
        default=[50.0, 100.0, 200.0],
        help="open-loop requests/s in all",
    )
    parser.add_argument(
        "--part",
        choices=["all", "rules", "preview", "cpu"],
        default="all",
        help="cpu: only the in-process CPU per cached rules list (no API process, no wrk)",
    )
    parser.add_argument("--rounds", type=int, default=15, help="rounds of 100 for the CPU figure")
    parser.add_argument("--previews", type=int, default=5)
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()

    db_url = asyncio.run(prepare_database(args.messages, args.rebuild))
    workdir = Path(tempfile.mkdtemp(prefix="fmn-bench-api-"))
    rng = random.Random(3)
    directory_file = workdir / "directory.json"
    directory_file.write_text(json.dumps(directory_data(rng)))
    load_users = [user_name(i) for i in range(LOAD_USERS)]
    accounts = {u: {"groups": []} for u in [*load_users, *PREVIEW_USERS]}
    oidc = Provider(accounts, workdir)
    oidc.start()
    api = None
    try:
        config = write_config(workdir, db_url, oidc, directory_file)
        if args.part == "cpu":
            tokens = {u: oidc.token(u) for u in load_users}
            alone = asyncio.run(cpu_per_request(config, tokens, args.rounds))
            print(
                json.dumps({"rules_list_cpu_per_request": alone, "load_average": os.getloadavg()})
            )
            return
        port = free_port()
        api = start_api(config, port, args.workers, workdir)
        tokens = {u: oidc.token(u) for u in accounts}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            for user, token in tokens.items():  # logins: identities into the shared cache
                headers = {"Authorization": f"Bearer {token}"}
                for _ in range(args.workers * 2):
                    http.get(f"/api/v1/users/{user}/rules", headers=headers).raise_for_status()
        load_tokens = {u: tokens[u] for u in load_users}
        closed: dict[str, Any] = {"raw": ""}
        opened: dict[str, Any] = {}
        cpu: dict[str, Any] = {}
        if args.part in ("all", "rules"):
            cpu = asyncio.run(cpu_per_request(config, load_tokens, args.rounds))
            print(f"API process CPU per rules list: {cpu}", file=sys.stderr)
            script = wrk_script(workdir, port, load_tokens)
            run_wrk(port, script, args.connections, 3)  # warm-up
            closed = run_wrk_measured(api.pid, port, script, args.connections, args.duration)
            print(closed["raw"], file=sys.stderr)
            print(f"CPU per request: {closed['cpu_ms_per_request']}", file=sys.stderr)
            for rate in args.rate:
                opened[str(rate)] = run_open_loop(
                    port, load_tokens, rate, args.duration, args.connections, workdir
                )
                print(f"open loop at {rate}/s: {opened[str(rate)]}", file=sys.stderr)
        previews = {}
        if args.part in ("all", "preview"):
            previews = run_previews(port, tokens, args.previews)
    finally:
        if api is not None:
            api.terminate()
            api.wait(20)
        oidc.stop()
    print(
        json.dumps(
            {
                "workers": args.workers,
                "messages": args.messages,
                "rules_list_cpu_per_request": cpu,
                "rules_list_closed_loop": {k: v for k, v in closed.items() if k != "raw"},
                "rules_list_open_loop": opened,
                "load_average": os.getloadavg(),
                "preview": previews,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
