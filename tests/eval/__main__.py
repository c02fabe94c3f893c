"""`make eval [FILE=questions.jsonl]`: how well the agents' search answers caller questions.

    uv run python -m tests.eval                       # tests/eval/questions.jsonl
    uv run python -m tests.eval path/to/set.jsonl -v  # any file of the same format, with details

The file has one question a line:
    {"query": "...", "expected_leika_key": "99…" or null, "also_acceptable_keys": ["99…"]}
`null` marks a question the knowledge base should not answer (out of scope).

Set-up: PostgreSQL/Redis from DATABASE_URL/REDIS_URL, else embedded ones under .data/eval/. A
fresh database `bs_eval_<random>` is bootstrapped, migrated and loaded with the demo data
(`make run`'s: tenants, LeiKa catalogue, demo articles), then dropped. Every question goes
through the real app in-process as GraphQL `knowledgeSearch(query:, tenant: "stadt-soest")`
with the token of a Kreis Soest agent: the search an agent answering a Stadt Soest call uses.

Printed: top-1 and top-3 accuracy over the in-scope questions, how often out-of-scope questions
got no confident answer (rejection), and how often in-scope questions were wrongly rejected — for
what agents get (both retrievers fused, SEARCH_RETRIEVERS' default), with the misses; then one line per
component (lexical only, meaning only, fused, and fused with the opt-in e5 re-ranker) to compare them.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from backend import devidp
from backend.db.roles import bootstrap, run_migrations, with_database
from backend.settings import PROJECT_ROOT, Settings

DEFAULT_FILE = Path(__file__).resolve().parent / "questions.jsonl"
EVAL_DATA = PROJECT_ROOT / ".data" / "eval"
TOWN = "stadt-soest"
QUERY = """
query Eval($query: String!, $tenant: String) {
  knowledgeSearch(query: $query, tenant: $tenant, first: 3) {
    confident
    interpretedAs
    nodes { leikaKey title source confident relevance }
  }
}"""


def eval_settings(database_url: str, redis_url: str) -> Settings:
    """The in-process app's settings. One agent's token asks every question once per component:
    a set of 150+ questions is more than an agent's 600 requests a minute, and the eval is no
    agent (it stopped with RATE_LIMITED at 165 questions)."""
    return Settings(
        env="development",
        database_url=database_url,
        redis_url=redis_url,
        data_dir=EVAL_DATA,
        public_base_url="http://eval.local",
        log_level="WARNING",
        dev_signin_enabled=True,
        rate_limit_per_minute=1_000_000,
    )


@dataclass
class Question:
    line: int
    query: str
    expected: str | None
    acceptable: set[str] = field(default_factory=set)


@dataclass
class Outcome:
    question: Question
    keys: list[str | None]
    titles: list[str]
    relevance: list[float]
    confident: bool
    interpreted: list[str]

    @property
    def top1(self) -> bool:
        return bool(self.keys) and self.keys[0] in self.question.acceptable

    @property
    def top3(self) -> bool:
        return any(k in self.question.acceptable for k in self.keys[:3])


def read_questions(path: Path) -> list[Question]:
    questions = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            item = json.loads(raw)
            query = item["query"]
            expected = item.get("expected_leika_key")
            also = item.get("also_acceptable_keys") or []
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise SystemExit(f"{path}:{number}: not a question line ({error})") from None
        acceptable = ({expected} | set(also)) if expected else set()
        questions.append(Question(number, query, expected, acceptable))
    if not questions:
        raise SystemExit(f"{path}: no questions")
    return questions


async def _drop(server_url: str, name: str) -> None:
    conn = await asyncpg.connect(with_database(server_url, "postgres"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


COMPONENTS: dict[str, tuple[str, ...]] = {
    "lexical only": ("lexical",),
    "meaning only": ("meaning",),
    "fused": ("lexical", "meaning"),  # what ships (SEARCH_RETRIEVERS' default)
    # The e5 re-ranker, opt-in (decision 026, 2026-12-07): to see what it would add.
    "fused + e5 (opt-in)": ("lexical", "meaning", "rerank"),
}


async def _ask(client: Any, headers: dict[str, str], questions: list[Question]) -> list[Outcome]:
    outcomes = []
    for question in questions:
        response = await client.post(
            "/graphql",
            headers=headers,
            json={"query": QUERY, "variables": {"query": question.query, "tenant": TOWN}},
        )
        body: dict[str, Any] = response.json()
        if body.get("errors"):
            raise SystemExit(f"line {question.line}: {body['errors']}")
        result = body["data"]["knowledgeSearch"]
        outcomes.append(
            Outcome(
                question=question,
                keys=[n["leikaKey"] for n in result["nodes"]],
                titles=[n["title"] for n in result["nodes"]],
                relevance=[n["relevance"] for n in result["nodes"]],
                confident=bool(result["confident"]),
                interpreted=result["interpretedAs"],
            )
        )
    return outcomes


async def run(
    questions: list[Question], server_url: str, redis_url: str, components: tuple[str, ...] = tuple(COMPONENTS)
) -> dict[str, list[Outcome]]:
    """The questions through each component (lexical only, meaning only, fused), one database."""
    from backend.demo import load_demo_data
    from backend.main import create_app
    from tests.support.asgi import serve

    name = f"bs_eval_{uuid.uuid4().hex[:10]}"
    url = with_database(server_url, name)
    await bootstrap(url)
    await asyncio.to_thread(run_migrations, url)
    try:
        settings = eval_settings(url, redis_url)
        results: dict[str, list[Outcome]] = {}
        loaded = False
        for component in components:
            retrievers = COMPONENTS[component]
            component_settings = dataclasses.replace(settings, search_retrievers=retrievers)
            app = create_app(component_settings)
            async with serve(app, settings.public_base_url) as client:
                if not loaded:
                    started = time.monotonic()
                    await load_demo_data(app.state.app_state, settings)
                    print(f"demo data loaded in {time.monotonic() - started:.1f} s", file=sys.stderr)
                    loaded = True
                headers = {"Authorization": "Bearer " + devidp.mint_token(settings, "kreis-soest", "agent")}
                results[component] = await _ask(client, headers, questions)
        return results
    finally:
        await _drop(server_url, name)


def figures_of(outcomes: list[Outcome]) -> dict[str, Any]:
    in_scope = [o for o in outcomes if o.question.expected]
    out_of_scope = [o for o in outcomes if not o.question.expected]
    return {
        "questions": len(outcomes),
        "in_scope": len(in_scope),
        "out_of_scope": len(out_of_scope),
        "top1": sum(o.top1 for o in in_scope) / len(in_scope) if in_scope else None,
        "top3": sum(o.top3 for o in in_scope) / len(in_scope) if in_scope else None,
        "out_of_scope_rejected": sum(not o.confident for o in out_of_scope) / len(out_of_scope)
        if out_of_scope
        else None,
        "in_scope_wrongly_rejected": sum(not o.confident for o in in_scope) / len(in_scope) if in_scope else None,
    }


def pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:5.1f} %"


def components_table(results: dict[str, list[Outcome]]) -> dict[str, dict[str, Any]]:
    """One line per component: top-1, top-3, out-of-scope declined, in-scope wrongly withheld."""
    table = {component: figures_of(outcomes) for component, outcomes in results.items()}
    print(
        f"{'component':14} {'top-1':>8} {'top-3':>8} {'declined':>9} {'withheld':>9}"
        "   (out of scope declined; in scope wrongly withheld)"
    )
    for component, f in table.items():
        print(
            f"{component:14} {pct(f['top1']):>8} {pct(f['top3']):>8} "
            f"{pct(f['out_of_scope_rejected']):>9} {pct(f['in_scope_wrongly_rejected']):>9}"
        )
    print()
    return table


def report(outcomes: list[Outcome], verbose: bool) -> dict[str, Any]:
    figures = figures_of(outcomes)
    for o in outcomes:
        if verbose or (o.question.expected and not o.top1) or (not o.question.expected and o.confident):
            mark = (
                ("top1" if o.top1 else "top3" if o.top3 else "MISS")
                if o.question.expected
                else ("REJECTED" if not o.confident else "ANSWERED")
            )
            print(f"{mark:8} line {o.question.line}: {o.question.query}")
            print(
                f"         expected {o.question.expected}; confident={o.confident}; "
                f"searched: {'; '.join(o.interpreted)}"
            )
            for key, title, relevance in zip(o.keys, o.titles, o.relevance, strict=True):
                print(f"           {key}  {relevance:.2f}  {title}")

    print()
    print(
        f"questions                      {figures['questions']} ({figures['in_scope']} in scope, "
        f"{figures['out_of_scope']} out of scope)"
    )
    print(f"top-1 accuracy                 {pct(figures['top1'])}")
    print(f"top-3 accuracy                 {pct(figures['top3'])}")
    print(f"out-of-scope rejected          {pct(figures['out_of_scope_rejected'])}")
    print(f"in-scope wrongly rejected      {pct(figures['in_scope_wrongly_rejected'])}")
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="tests.eval", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("file", nargs="?", default=str(DEFAULT_FILE))
    parser.add_argument("-v", "--verbose", action="store_true", help="show every question, not only the misses")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    questions = read_questions(Path(args.file))
    from backend.devservices import ensure_services

    services = ensure_services(EVAL_DATA)
    server_url = os.environ.get("DATABASE_URL") or services.database_url
    redis_url = os.environ.get("REDIS_URL") or services.redis_url
    results = asyncio.run(run(questions, server_url, redis_url))
    table = components_table(results)
    print("fused (what agents get):")
    figures = report(results["fused"], args.verbose)
    if args.json:
        Path(args.json).write_text(json.dumps({**figures, "components": table}, indent=2) + "\n")
    del services


if __name__ == "__main__":
    main()
