"""Where an issuer puts roles and groups in its tokens, and how their values map to our roles.

Identity providers nest them: Keycloak realm roles in `realm_access.roles`, client roles in
`resource_access.<client>.roles`; Entra ID puts app roles in `roles` and group ids in
`groups`; many towns send `groups` as Keycloak full paths (`/buergerservice/agents`). So the
role claim is a *claim path*, in one of two spellings (decision 016):

- dotted: `realm_access.roles`; a dot or backslash inside a key is escaped with a backslash:
  `resource_access.buergerservice\\.app.roles`, `https://example\\.org/roles`;
- a JSON Pointer (RFC 6901) when it starts with `/`: `/resource_access/buergerservice.app/roles`
  (`~1` is `/`, `~0` is `~` inside a key).

A role mapping key that starts with `/` is a group path: it matches that group and every group
below it (`/buergerservice/agents` matches `/buergerservice/agents/nord`), since Keycloak lists
only the groups a person is a direct member of while membership is inherited downwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from auth.errors import N_
from auth.roles import Role

MAX_SEGMENTS = 8
MAX_CLAIM_PATH_LENGTH = 200


class ClaimPathError(ValueError):
    """A claim path that cannot be read (the message says why, safe to show an admin). The
    message is marked (`msgid` with `params`), so the backend can say it in the admin's language."""

    def __init__(self, msgid: str, **params: object) -> None:
        super().__init__(msgid.format_map(params))
        self.msgid = msgid
        self.params = params


@lru_cache(maxsize=1024)
def parse_claim_path(text: str) -> tuple[str, ...]:
    """The keys of a claim path, outermost first. Raises ClaimPathError when malformed."""
    if not text or len(text) > MAX_CLAIM_PATH_LENGTH:
        raise ClaimPathError(N_("a claim path has 1 to {limit} characters"), limit=MAX_CLAIM_PATH_LENGTH)
    if any(ord(ch) < 0x20 or ch == "\x7f" for ch in text):
        raise ClaimPathError(N_("a claim path has no control characters"))
    keys = _pointer(text) if text.startswith("/") else _dotted(text)
    if len(keys) > MAX_SEGMENTS:
        raise ClaimPathError(N_("a claim path has at most {limit} keys"), limit=MAX_SEGMENTS)
    if any(not key for key in keys):
        raise ClaimPathError(N_("a claim path has no empty keys (two dots in a row, or a dot at either end)"))
    return tuple(keys)


def _dotted(text: str) -> list[str]:
    keys: list[str] = []
    current: list[str] = []
    escaped = False
    for ch in text:
        if escaped:
            if ch not in ".\\":
                raise ClaimPathError(
                    N_("'\\{char}' is no escape; write '\\.' for a dot and '\\\\' for a backslash in a key"), char=ch
                )
            current.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ".":
            keys.append("".join(current))
            current = []
        else:
            current.append(ch)
    if escaped:
        raise ClaimPathError(N_("a claim path ends with a lone backslash"))
    keys.append("".join(current))
    return keys


def _pointer(text: str) -> list[str]:
    keys = []
    for raw in text[1:].split("/"):
        rest = raw.replace("~0", "").replace("~1", "")
        if "~" in rest:
            raise ClaimPathError(N_("in a JSON Pointer '~' is written '~0' and '/' inside a key '~1'"))
        keys.append(raw.replace("~1", "/").replace("~0", "~"))
    return keys


def format_claim_path(keys: tuple[str, ...]) -> str:
    """The dotted spelling of `keys` (for messages)."""
    return ".".join(key.replace("\\", "\\\\").replace(".", "\\.") for key in keys)


_ABSENT = object()


@dataclass(frozen=True, slots=True)
class ClaimLookup:
    """What a claim path found in a token: the values (strings only), or why there are none.
    `missing_at` is the first key that was absent (None when the path was found)."""

    values: tuple[str, ...]
    found: bool
    missing_at: str | None = None
    not_a_list: bool = False


def read_claim(claims: dict[str, object], path: str) -> ClaimLookup:
    """Follow `path` through the token's claims. A string is one value; a list keeps its
    strings (Entra ID group ids, Keycloak roles); anything else holds no values."""
    node: object = claims
    for key in parse_claim_path(path):
        value = node.get(key, _ABSENT) if isinstance(node, dict) else _ABSENT
        if value is _ABSENT:
            return ClaimLookup((), False, missing_at=key)
        node = value
    if isinstance(node, str):
        return ClaimLookup((node,), True)
    if isinstance(node, list):
        return ClaimLookup(tuple(item for item in node if isinstance(item, str)), True)
    return ClaimLookup((), True, not_a_list=True)


def check_group_path(key: str) -> None:
    """A mapping key starting with `/` is a group path: `/a/b` (a trailing `/` is allowed), no
    empty segment."""
    if key.startswith("/") and (key == "/" or "" in key[1:].removesuffix("/").split("/")):
        raise ClaimPathError(
            N_("group path {key!r} has an empty segment; write it as Keycloak does: /parent/child"), key=key
        )


def map_roles(values: tuple[str, ...], mapping: dict[str, str]) -> frozenset[Role]:
    """Our roles for the claim's values: exact keys, and group paths for their subgroups too.
    Values nobody mapped are ignored, never guessed."""
    known = {role.value for role in Role}
    roles: set[Role] = set()
    groups = [(key.rstrip("/"), role) for key, role in mapping.items() if key.startswith("/") and role in known]
    for value in values:
        mapped = mapping.get(value)
        if mapped in known:
            roles.add(Role(mapped))
        if value.startswith("/"):
            for group, role in groups:
                if value == group or value.startswith(group + "/"):
                    roles.add(Role(role))
    return frozenset(roles)
