"""`wrk` as the bench's load generator, with the Python client (loadgen.py) as the fallback.

The Python client (asyncio + httpx) tops out near 2,000 req/s on a 2-core machine, so the
ratio of two cheap requests measures the client; `wrk` (C, one thread, event loop) drives
~9,000 req/s against a litestar health route on the same machine, so its ratios are the
server's. `ensure_wrk()` installs the Debian package when it is missing and apt can (root);
otherwise the bench says it fell back to the Python client.

Each run is `wrk -t1 -c<connections> -d<seconds>s` with a generated Lua script that sets the
method, headers and body, checks every response (status 200, the scenario's marker in the
body, no `"errors"`: a 429 or a GraphQL RATE_LIMITED answer would measure nothing) and prints
its figures as one JSON line. The server's CPU time comes from /proc, as loadgen.py reads it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

from tests.bench.loadgen import Result, _loopback_only, _process_cpu_seconds

CLIENT_WRK = "wrk"
CLIENT_PYTHON = "python (asyncio + httpx)"


def ensure_wrk() -> str | None:
    """The path of `wrk`, installing the Debian package first if it is missing and we may."""
    if os.environ.get("BENCH_NO_WRK"):  # to compare with the Python client's figures
        return None
    found = shutil.which("wrk")
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt and os.geteuid() == 0:
        subprocess.run([apt, "install", "-y", "-q", "wrk"], capture_output=True, check=False, timeout=300)
    return shutil.which("wrk")


@dataclass(frozen=True)
class WrkTarget:
    name: str
    base_url: str
    method: str
    path: str
    headers: dict[str, str]
    body: bytes | None
    marker: bytes
    server_pid: int | None


def _lua_string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    return f'"{escaped}"'


def _script(target: WrkTarget) -> str:
    headers = "\n".join(f"wrk.headers[{_lua_string(k)}] = {_lua_string(v)}" for k, v in target.headers.items())
    body = f"wrk.body = {_lua_string(target.body.decode())}" if target.body is not None else ""
    return f"""
wrk.method = {_lua_string(target.method)}
{headers}
{body}
local marker = {_lua_string(target.marker.decode())}
local threads = {{}}
function setup(thread) table.insert(threads, thread) end
function init(args) bad = 0 end
function response(status, headers, body)
  if status ~= 200 or not string.find(body, marker, 1, true) or string.find(body, '"errors"', 1, true) then
    bad = bad + 1
  end
end
function done(summary, latency, requests)
  local b = 0
  for _, t in ipairs(threads) do b = b + t:get("bad") end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {{"requests":%d,"duration_us":%d,"bad":%d,"socket_errors":%d,' ..
    '"p50_us":%d,"p95_us":%d,"p99_us":%d,"mean_us":%.1f}}\\n',
    summary.requests, summary.duration, b, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.mean))
end
"""


def run_wrk(wrk: str, target: WrkTarget, *, connections: int, seconds: float) -> Result:
    """One round: `wrk -t1 -c<connections> -d<seconds>`; errors are responses that failed the check."""
    _loopback_only(target.base_url)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(_script(target))
        script = handle.name
    try:
        cpu_before = _process_cpu_seconds(target.server_pid)
        completed = subprocess.run(
            [wrk, "-t1", f"-c{connections}", f"-d{seconds:g}s", "-s", script, target.base_url + target.path],
            capture_output=True,
            text=True,
            check=False,
            timeout=seconds + 60,
        )
        cpu_after = _process_cpu_seconds(target.server_pid)
    finally:
        os.unlink(script)
    line = next((x for x in completed.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if completed.returncode != 0 or line is None:
        output = completed.stderr or completed.stdout
        raise RuntimeError(f"{target.name}: wrk failed ({completed.returncode}): {output}")
    figures = json.loads(line.removeprefix("WRKJSON "))
    done = int(figures["requests"])
    elapsed = figures["duration_us"] / 1e6
    cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    return Result(
        name=target.name,
        requests=done,
        errors=int(figures["bad"]) + int(figures["socket_errors"]),
        seconds=elapsed,
        rps=done / elapsed if elapsed > 0 else 0.0,
        p50_ms=figures["p50_us"] / 1000,
        p95_ms=figures["p95_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        mean_ms=figures["mean_us"] / 1000,
        server_cpu_us_per_request=(cpu / done * 1e6) if cpu is not None and done else None,
        client_cpu_us_per_request=float("nan"),
        timed_out=False,
    )
