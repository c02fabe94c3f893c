"""Billing at scale: invoices and figures from the daily rollups vs the raw calls, and what keeping
the rollups costs during ingest.

    uv run python -m tests.bench.billing                  # 10^7 calls (about 10 minutes on 2 cores)
    uv run python -m tests.bench.billing --calls 1000000  # a smaller run

Set-up (stack.py): PostgreSQL from DATABASE_URL or embedded under .data/bench/, a fresh database
`bs_bench_<random>` bootstrapped and migrated as `make migrate` does, dropped at the end. An
operator and four client towns are written with SQL; each town has two tariffs in the measured
year (until 30 June 0.95 EUR per started minute, from 1 July 1.02 EUR to the second with a
0.10 EUR minimum per call).

1. Ingest: `--calls` calls of one year are generated in SQL (generate_series, deterministic
   pseudo-random talk and wait times, outcomes, 115 share, 10 % abandoned) and inserted in
   batches of `--batch` rows, as a bulk import does (one INSERT … SELECT per batch). The billing
   triggers rate every call and keep the rollups; the time per batch is reported.
2. Rollup maintenance cost: the same kind of batch (`--probe` rows, another year) with the
   billing triggers disabled and enabled, alternately, twice; and `--singles` single-call
   inserts (the REST path: one call per transaction) both ways. Ratio and µs per call.
3. A tenant-year invoice: the repository query the invoice run uses (rollups, per tariff) vs
   the same figures by GROUP BY over the raw calls of that tenant and year, both as the
   application role under row-level security, warm, median of `--repeat` runs. Their results
   must agree exactly. Goal: rollups ≤ 0.02 × raw. The same for the 115 figures of the year.

Output: a table on stdout and everything as JSON in bench-results/billing.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from backend.billing import invoice_repository, repository
from backend.db.pool import create_pool
from backend.db.roles import APP_ROLE, with_user
from backend.db.tenancy import tenant_transaction
from backend.settings import PROJECT_ROOT
from tests.bench import stack

OUTPUT = PROJECT_ROOT / "bench-results" / "billing.json"
YEAR = 2025
PROBE_YEAR = 2024
TOWNS = 4
SERVICE_NUMBER = UUID(int=115)

# One generated call per g: tenant, start within the year, wait, talk, outcome, purpose. The
# constants spread the values without a random generator, so every run inserts the same calls.
GENERATE = """
INSERT INTO calls (tenant_id, id, source_tenant_id, source_system, external_id, service_number_id, dialled,
                   purpose, resolved_by, offered_at, answered_at, ended_at, wait_seconds, talk_seconds, outcome)
SELECT t.tenant_id, gen_random_uuid(), $1, 'bench', $5 || g, $6, '+492921300',
       CASE WHEN g % 5 = 0 THEN '115' ELSE 'central' END, 'dialled_number',
       s.offered,
       CASE WHEN g % 10 <> 0 THEN s.offered + make_interval(secs => s.wait) END,
       s.offered + make_interval(secs => s.wait + CASE WHEN g % 10 <> 0 THEN s.talk ELSE 0 END),
       s.wait,
       CASE WHEN g % 10 <> 0 THEN s.talk END,
       CASE WHEN g % 10 = 0 THEN 'abandoned'
            WHEN g % 7 = 0 THEN 'forwarded_as_ticket'
            WHEN g % 11 = 0 THEN NULL
            ELSE 'settled_first_contact' END
FROM generate_series($2::bigint, $3::bigint) AS g
JOIN LATERAL (SELECT ($4::uuid[])[1 + (g % array_length($4::uuid[], 1))] AS tenant_id) t ON true
JOIN LATERAL (SELECT make_timestamptz($7, 1, 1, 6, 0, 0, 'Europe/Berlin')
                     + make_interval(secs => (g * 2654435761) % (364 * 86400)) AS offered,
                     (g * 40503) % 95 AS wait,
                     1 + (g * 2246822519) % 900 AS talk) s ON true
"""

# The invoice figures straight from the raw calls: what the rollups save the invoice run.
RAW_USAGE = """
SELECT f.id AS tariff_id,
       count(*) FILTER (WHERE c.talk_seconds > 0 AND f.id IS NOT NULL)::bigint AS calls,
       coalesce(sum(b.seconds), 0)::bigint AS billable_seconds,
       count(*) FILTER (WHERE c.talk_seconds > 0 AND billing_at_minimum(b.seconds, f.price_per_minute, f.minimum_charge)
       )::bigint AS minimum_calls,
       coalesce(sum(b.seconds) FILTER (WHERE billing_at_minimum(b.seconds, f.price_per_minute, f.minimum_charge)
       ), 0)::bigint AS minimum_billable_seconds,
       count(*) FILTER (WHERE c.talk_seconds > 0 AND f.id IS NULL)::bigint AS unrated_calls
FROM calls c
JOIN tenants tn ON tn.id = c.tenant_id
LEFT JOIN tariffs f ON f.tenant_id = c.tenant_id AND f.valid @> (c.offered_at AT TIME ZONE tn.time_zone)::date
CROSS JOIN LATERAL (
    SELECT billing_billable_seconds(c.talk_seconds, f.first_period_seconds, f.increment_seconds) AS seconds
) b
WHERE c.tenant_id = $1 AND c.offered_at >= ($2::date)::timestamp AT TIME ZONE 'Europe/Berlin'
  AND c.offered_at < ($3::date)::timestamp AT TIME ZONE 'Europe/Berlin'
GROUP BY f.id
"""

RAW_FIGURES = """
SELECT c.tenant_id, s.scope, count(*)::bigint AS offered, count(c.answered_at)::bigint AS answered,
       count(*) FILTER (WHERE c.outcome = 'abandoned')::bigint AS abandoned,
       count(*) FILTER (WHERE c.answered_at IS NOT NULL AND c.wait_seconds <= 30)::bigint AS answered_within_30s,
       count(*) FILTER (WHERE c.answered_at IS NOT NULL AND c.wait_seconds IS NOT NULL)::bigint AS wait_reported,
       count(*) FILTER (WHERE c.outcome = 'settled_first_contact')::bigint AS settled_first_contact,
       count(*) FILTER (WHERE c.outcome = 'forwarded_as_ticket')::bigint AS forwarded_as_ticket,
       count(*) FILTER (WHERE c.outcome = 'transferred_to_department')::bigint AS transferred,
       coalesce(sum(c.talk_seconds), 0)::bigint AS talk_seconds
FROM calls c
CROSS JOIN LATERAL (VALUES ('all'), (CASE WHEN c.purpose = '115' THEN '115' END)) AS s(scope)
WHERE c.tenant_id = ANY($1::uuid[]) AND c.offered_at >= $2 AND c.offered_at < $3 AND s.scope IS NOT NULL
GROUP BY c.tenant_id, s.scope
"""


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench.billing", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=10_000_000, help="calls of the measured year (default 10^7)")
    parser.add_argument("--batch", type=int, default=1_000_000, help="rows per INSERT … SELECT")
    parser.add_argument("--probe", type=int, default=500_000, help="rows per maintenance probe batch")
    parser.add_argument("--singles", type=int, default=1000, help="single-call inserts per maintenance probe")
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per query (after one warm-up)")
    parser.add_argument("--output", default=str(OUTPUT), help="JSON results file")
    return parser.parse_args(argv)


def _say(text: str) -> None:
    print(text, flush=True)


async def _setup(admin: asyncpg.Connection) -> dict[str, Any]:
    operator = uuid4()
    towns = [uuid4() for _ in range(TOWNS)]
    await admin.execute(
        """INSERT INTO tenants (id, slug, name, kind, is_operator, ags, federal_state, service_hours, status)
           VALUES ($1, 'bench-kreis', 'Kreis Soest', 'district', true, '05974', 'NW', '[]', 'active')""",
        operator,
    )
    for index, town in enumerate(towns):
        agreement = uuid4()
        await admin.execute(
            """INSERT INTO tenants (id, slug, name, kind, federal_state, service_hours, status)
               VALUES ($1, $2, $3, 'town', 'NW', '[]', 'active')""",
            town,
            f"bench-town-{index}",
            f"Stadt {index}",
        )
        await admin.execute(
            "INSERT INTO agreements (tenant_id, id, operator_tenant_id, starts_on) VALUES ($1, $2, $3, '2018-01-01')",
            town,
            agreement,
            operator,
        )
        for lower, upper, price, increment, minimum in (
            (date(PROBE_YEAR, 1, 1), date(YEAR, 7, 1), Decimal("0.95"), 60, None),
            (date(YEAR, 7, 1), None, Decimal("1.02"), 1, Decimal("0.10")),
        ):
            await admin.execute(
                """INSERT INTO tariffs (tenant_id, id, agreement_id, operator_tenant_id, valid, price_per_minute,
                                        increment_seconds, minimum_charge, created_by)
                   VALUES ($1, $2, $3, $4, daterange($5::date, $6::date), $7, $8, $9, 'bench')""",
                town,
                uuid4(),
                agreement,
                operator,
                lower,
                upper,
                price,
                increment,
                minimum,
            )
    return {"operator": operator, "towns": towns}


async def _insert(
    admin: asyncpg.Connection, world: dict[str, Any], first: int, last: int, tag: str, year: int
) -> float:
    started = time.perf_counter()
    await admin.execute(GENERATE, world["operator"], first, last, world["towns"], tag, SERVICE_NUMBER, year)
    return time.perf_counter() - started


async def _singles(admin: asyncpg.Connection, world: dict[str, Any], count: int, tag: str) -> float:
    """One call per statement and transaction, as the REST API records calls."""
    started = time.perf_counter()
    for g in range(1, count + 1):
        await admin.execute(GENERATE, world["operator"], g, g, world["towns"], tag, SERVICE_NUMBER, PROBE_YEAR)
    return time.perf_counter() - started


async def _toggle(admin: asyncpg.Connection, enabled: bool) -> None:
    verb = "ENABLE" if enabled else "DISABLE"
    for trigger in ("billing_calls_inserted", "billing_calls_updated", "billing_calls_deleted"):
        await admin.execute(f"ALTER TABLE calls {verb} TRIGGER {trigger}")


async def _median(runs: int, action: Callable[[], Awaitable[Any]]) -> tuple[float, list[float], Any]:
    result = await action()  # warm-up (and the result to compare)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await action()
        times.append(time.perf_counter() - started)
    return statistics.median(times), times, result


def _usage_key(rows: list[Any]) -> dict[Any, tuple[int, ...]]:
    return {
        r.tariff_id: (
            r.usage.calls,
            r.usage.billable_seconds,
            r.usage.minimum_calls,
            r.usage.minimum_billable_seconds,
            r.unrated_calls,
        )
        for r in rows
    }


async def _compare(pool: asyncpg.Pool, world: dict[str, Any], repeat: int) -> dict[str, Any]:
    town = world["towns"][0]
    start, end = date(YEAR, 1, 1), date(YEAR + 1, 1, 1)

    async def from_rollups() -> Any:
        async with tenant_transaction(pool, [town], readonly=True) as conn:
            return await invoice_repository.usage_by_tariff(conn, town, start, end)

    async def from_raw() -> Any:
        async with tenant_transaction(pool, [town], readonly=True) as conn:
            return await conn.fetch(RAW_USAGE, town, start, end)

    rollup_s, rollup_times, rollup_rows = await _median(repeat, from_rollups)
    raw_s, raw_times, raw_rows = await _median(max(3, repeat // 2), from_raw)
    raw_key = {
        r["tariff_id"]: (
            r["calls"],
            r["billable_seconds"],
            r["minimum_calls"],
            r["minimum_billable_seconds"],
            r["unrated_calls"],
        )
        for r in raw_rows
    }
    agree = _usage_key(rollup_rows) == raw_key

    lo, hi = datetime(YEAR, 1, 1, tzinfo=UTC), datetime(YEAR + 1, 1, 1, tzinfo=UTC)

    async def figures_rollups() -> Any:
        async with tenant_transaction(pool, [town], readonly=True) as conn:
            return await repository.figure_sums(conn, [town], start, end)

    async def figures_raw() -> Any:
        async with tenant_transaction(pool, [town], readonly=True) as conn:
            return await conn.fetch(RAW_FIGURES, [town], lo, hi)

    figures_s, _, _ = await _median(repeat, figures_rollups)
    figures_raw_s, _, _ = await _median(max(3, repeat // 2), figures_raw)
    async with tenant_transaction(pool, [town], readonly=True) as conn:
        calls = await conn.fetchval(
            "SELECT count(*) FROM calls WHERE tenant_id = $1 AND offered_at >= $2 AND offered_at < $3", town, lo, hi
        )
        rollup_rows_read = await conn.fetchval(
            "SELECT count(*) FROM call_rollups WHERE tenant_id = $1 AND day >= $2 AND day < $3", town, start, end
        )
    return {
        "tenant_calls_in_year": calls,
        "rollup_rows_read": rollup_rows_read,
        "invoice_rollups_ms": rollup_s * 1000,
        "invoice_raw_ms": raw_s * 1000,
        "invoice_ratio": rollup_s / raw_s,
        "invoice_results_agree": agree,
        "invoice_rollups_runs_ms": [t * 1000 for t in rollup_times],
        "invoice_raw_runs_ms": [t * 1000 for t in raw_times],
        "figures_rollups_ms": figures_s * 1000,
        "figures_raw_ms": figures_raw_s * 1000,
        "figures_ratio": figures_s / figures_raw_s,
    }


async def _main(args: argparse.Namespace, admin_url: str) -> dict[str, Any]:
    admin = await asyncpg.connect(admin_url)
    try:
        world = await _setup(admin)
        _say(f"ingest: {args.calls:,} calls of {YEAR} for {TOWNS} towns in batches of {args.batch:,}")
        batches = []
        first = 1
        while first <= args.calls:
            last = min(args.calls, first + args.batch - 1)
            seconds = await _insert(admin, world, first, last, "y", YEAR)
            batches.append({"rows": last - first + 1, "seconds": seconds})
            _say(f"  rows {first:>11,} … {last:>11,}: {seconds:7.1f} s ({(last - first + 1) / seconds:>9,.0f} calls/s)")
            first = last + 1
        await admin.execute("ANALYZE calls; ANALYZE call_rollups; ANALYZE call_charges")

        _say(f"maintenance: {args.probe:,}-row batches and {args.singles} single inserts, triggers off/on, twice")
        probes: dict[str, list[float]] = {"off": [], "on": [], "singles_off": [], "singles_on": []}
        offset = 0
        for round_ in range(2):
            for enabled in (False, True):
                key = "on" if enabled else "off"
                await _toggle(admin, enabled)
                seconds = await _insert(admin, world, offset + 1, offset + args.probe, f"p{round_}{key}", PROBE_YEAR)
                probes[key].append(seconds)
                singles = await _singles(admin, world, args.singles, f"s{round_}{key}")
                probes[f"singles_{key}"].append(singles)
                _say(f"  round {round_ + 1}, triggers {key:>3}: batch {seconds:6.2f} s, singles {singles:6.2f} s")
                offset += args.probe
        await _toggle(admin, True)
        # The probe year holds calls inserted without triggers: rebuild its rollups (timed, too).
        started = time.perf_counter()
        for town in world["towns"]:
            await admin.execute("SELECT set_config('app.tenant_ids', $1, false)", "{" + str(town) + "}")
            await admin.fetchval("SELECT billing_rebuild($1, $2, $3)", town, date(PROBE_YEAR, 1, 1), date(YEAR, 1, 1))
        rebuild_seconds = time.perf_counter() - started
        sizes = {
            r["name"]: r["bytes"]
            for r in await admin.fetch(
                """SELECT c.relname AS name, pg_total_relation_size(c.oid) AS bytes FROM pg_class c
                   WHERE c.relname IN ('calls', 'call_charges', 'call_rollups')"""
            )
        }
        counts = {
            "calls": await admin.fetchval("SELECT count(*) FROM calls"),
            "call_charges": await admin.fetchval("SELECT count(*) FROM call_charges"),
            "call_rollups": await admin.fetchval("SELECT count(*) FROM call_rollups"),
        }
    finally:
        await admin.close()

    pool = await create_pool(with_user(admin_url, APP_ROLE), 1, 2)
    try:
        _say(f"tenant-year invoice and figures: rollups vs raw GROUP BY, median of {args.repeat} warm runs")
        compared = await _compare(pool, world, args.repeat)
    finally:
        await pool.close()

    probe_off, probe_on = statistics.median(probes["off"]), statistics.median(probes["on"])
    singles_off, singles_on = statistics.median(probes["singles_off"]), statistics.median(probes["singles_on"])
    ingest_seconds = sum(b["seconds"] for b in batches)
    return {
        "calls": args.calls,
        "batch": args.batch,
        "ingest_seconds": ingest_seconds,
        "ingest_calls_per_second": args.calls / ingest_seconds,
        "batches": batches,
        "maintenance": {
            "probe_rows": args.probe,
            "batch_off_s": probes["off"],
            "batch_on_s": probes["on"],
            "batch_ratio_on_off": probe_on / probe_off,
            "batch_overhead_us_per_call": (probe_on - probe_off) / args.probe * 1e6,
            "singles": args.singles,
            "singles_off_s": probes["singles_off"],
            "singles_on_s": probes["singles_on"],
            "singles_ratio_on_off": singles_on / singles_off,
            "singles_overhead_us_per_call": (singles_on - singles_off) / args.singles * 1e6,
            "rebuild_probe_year_s": rebuild_seconds,
        },
        "sizes_bytes": sizes,
        "row_counts": counts,
        **compared,
    }


def _report(result: dict[str, Any]) -> None:
    m = result["maintenance"]
    mb = {k: v / 2**20 for k, v in result["sizes_bytes"].items()}
    _say("")
    _say(
        f"{result['calls']:,} calls ingested in {result['ingest_seconds']:.0f} s "
        f"({result['ingest_calls_per_second']:,.0f} calls/s, rating and rollups included)"
    )
    _say(
        f"sizes: calls {mb.get('calls', 0):,.0f} MB, call_charges {mb.get('call_charges', 0):,.0f} MB, "
        f"call_rollups {mb.get('call_rollups', 0):,.1f} MB ({result['row_counts']['call_rollups']:,} rows)"
    )
    _say(
        f"rollup maintenance, {m['probe_rows']:,}-row batch: on ÷ off = {m['batch_ratio_on_off']:.2f} "
        f"(+{m['batch_overhead_us_per_call']:.1f} µs per call)"
    )
    _say(
        f"rollup maintenance, single-call inserts: on ÷ off = {m['singles_ratio_on_off']:.2f} "
        f"(+{m['singles_overhead_us_per_call']:.0f} µs per call)"
    )
    _say(f"rebuild of a year of probe calls from raw: {m['rebuild_probe_year_s']:.1f} s")
    _say(
        f"tenant-year invoice ({result['tenant_calls_in_year']:,} calls, {result['rollup_rows_read']} rollup rows): "
        f"rollups {result['invoice_rollups_ms']:.2f} ms vs raw {result['invoice_raw_ms']:.0f} ms "
        f"→ {result['invoice_ratio']:.5f}× (goal ≤ 0.02×), results agree: {result['invoice_results_agree']}"
    )
    _say(
        f"tenant-year 115 figures: rollups {result['figures_rollups_ms']:.2f} ms vs raw "
        f"{result['figures_raw_ms']:.0f} ms → {result['figures_ratio']:.5f}×"
    )


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    with stack.services() as (server_url, _redis_url), stack.bench_database(server_url, None) as admin_url:
        result = asyncio.run(_main(args, admin_url))
    result["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
    result["finished_at"] = datetime.now(UTC).isoformat()
    _report(result)
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w") as out:
        json.dump(result, out, indent=2, default=str)
    _say(f"results: {args.output}")
    return 0 if result["invoice_results_agree"] else 1


if __name__ == "__main__":
    sys.exit(main())
