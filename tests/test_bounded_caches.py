"""In-process memos are bounded and drop their least recently used entries when full.

They used to empty themselves completely on reaching their size: one flood of made-up tokens,
issuers or numbers then made every other caller of that moment miss at once.
"""

from __future__ import annotations

from datetime import UTC, datetime

from auth.oidc import TokenVerifier
from backend.telephony import routing
from backend.telephony.routing import CompiledRouting, RoutingTable
from backend.tenants import signin
from backend.tenants.signin import _Memo


def test_the_signin_memo_keeps_recent_entries_when_full() -> None:
    memo: _Memo[str, int] = _Memo()
    for n in range(signin.MEMO_SIZE + 1):
        memo.put(f"https://issuer-{n}.example", "tag", n)
    assert memo.get(f"https://issuer-{signin.MEMO_SIZE - 1}.example", "tag") == signin.MEMO_SIZE - 1
    assert memo.get(f"https://issuer-{signin.MEMO_SIZE}.example", "tag") == signin.MEMO_SIZE
    assert memo.get("https://issuer-0.example", "tag") is None  # the oldest made room
    assert memo.get(f"https://issuer-{signin.MEMO_SIZE}.example", "other tag") is None


def test_routing_decisions_keep_recent_entries_when_full() -> None:
    compiled = CompiledRouting(RoutingTable(compiled_at=0.0))
    at = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)
    for n in range(routing.MEMO_SIZE + 1):
        compiled.decide(f"+49292{n:07d}", None, at, frozenset())
    minute = int(at.timestamp() // 60)
    assert ("+492920000000", None, minute, frozenset()) not in compiled._decisions
    for n in (routing.MEMO_SIZE - 1, routing.MEMO_SIZE):
        assert (f"+49292{n:07d}", None, minute, frozenset()) in compiled._decisions
    assert len(compiled._decisions) == routing.MEMO_SIZE


def test_the_token_memo_is_bounded_by_its_size() -> None:
    verifier = TokenVerifier(registry=None, jwks=None)  # type: ignore[arg-type]
    assert verifier._verified.maxsize == TokenVerifier.MEMO_SIZE
