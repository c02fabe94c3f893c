"""A small closed-loop load generator: asyncio + httpx, HTTP/1.1 keep-alive, fixed concurrency.

`concurrency` workers, each with its own httpx client holding one kept-alive connection, send
requests back to back until `requests` have completed or `time_limit` seconds have passed.
(One client per worker rather than one shared pool of `concurrency` connections: httpx's pool
bookkeeping grows with the number of connections and roughly doubled the client's CPU per
request at 16, which matters when client and server share two cores.)
A warm-up of the same shape runs first on the same connections and is not measured.
Latency is measured around each `await client.request(...)`, so it includes the client's own
cost, the same for every scenario. Besides wall-clock numbers it reads the CPU time the
server process (and this client process) used during the measured phase, from /proc: on a
small machine where client and server share cores, CPU per request is the steadier number.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class Target:
    """One request shape, sent over and over."""

    name: str
    base_url: str
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    server_pid: int | None = None
    # Cheap per-response check (status and body); a failing response counts as an error.
    check: Callable[[httpx.Response], bool] = lambda response: response.status_code == 200


@dataclass(frozen=True)
class Result:
    name: str
    requests: int
    errors: int
    seconds: float
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    server_cpu_us_per_request: float | None
    client_cpu_us_per_request: float
    timed_out: bool


def _process_cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time of a process (Linux /proc); None elsewhere."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat") as handle:
            stat = handle.read()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS  # utime, stime


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(q / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def _loopback_only(base_url: str) -> None:
    host = urlsplit(base_url).hostname
    if host != "127.0.0.1":
        raise ValueError(f"the load generator only talks to 127.0.0.1, not {host!r}")


async def _phase(
    clients: list[httpx.AsyncClient], target: Target, total: int, deadline: float
) -> tuple[list[float], int, bool]:
    latencies: list[float] = []
    errors = 0
    issued = 0
    timed_out = False

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal issued, errors, timed_out
        while issued < total:
            if time.perf_counter() >= deadline:
                timed_out = True
                return
            issued += 1
            started = time.perf_counter()
            try:
                response = await client.request(target.method, target.path, headers=target.headers, content=target.body)
                ok = target.check(response)
            except httpx.HTTPError:
                ok = False
            latencies.append(time.perf_counter() - started)
            if not ok:
                errors += 1

    await asyncio.gather(*(worker(client) for client in clients))
    return latencies, errors, timed_out


async def run(target: Target, *, concurrency: int, requests: int, warmup: int, time_limit: float) -> Result:
    """Warm up, then measure `requests` requests (at most `time_limit` seconds in total)."""
    _loopback_only(target.base_url)
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(base_url=target.base_url, limits=limits, timeout=10.0, trust_env=False)
            )
            for _ in range(concurrency)
        ]
        started = time.perf_counter()
        deadline = started + time_limit
        _, warmup_errors, _ = await _phase(clients, target, warmup, deadline)
        if warmup_errors:
            raise RuntimeError(f"{target.name}: {warmup_errors} of {warmup} warm-up requests failed")
        server_cpu_before = _process_cpu_seconds(target.server_pid)
        client_cpu_before = time.process_time()
        measured_from = time.perf_counter()
        latencies, errors, timed_out = await _phase(clients, target, requests, deadline)
        seconds = time.perf_counter() - measured_from
        client_cpu = time.process_time() - client_cpu_before
        server_cpu_after = _process_cpu_seconds(target.server_pid)
    done = len(latencies)
    latencies.sort()
    server_cpu = None if server_cpu_before is None or server_cpu_after is None else server_cpu_after - server_cpu_before
    return Result(
        name=target.name,
        requests=done,
        errors=errors,
        seconds=seconds,
        rps=done / seconds if seconds > 0 else 0.0,
        p50_ms=percentile(latencies, 50) * 1000,
        p95_ms=percentile(latencies, 95) * 1000,
        p99_ms=percentile(latencies, 99) * 1000,
        mean_ms=(sum(latencies) / done * 1000) if done else float("nan"),
        server_cpu_us_per_request=(server_cpu / done * 1e6) if server_cpu is not None and done else None,
        client_cpu_us_per_request=(client_cpu / done * 1e6) if done else float("nan"),
        timed_out=timed_out,
    )
