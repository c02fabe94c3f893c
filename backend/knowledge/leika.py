"""The LeiKa service catalogue: key validation and reading the catalogue file.

A LeiKa key (Leistungsschlüssel) is `99` followed by 12 digits: group (3), object (3), action
(Verrichtung, 3) and action detail (3). `99008001012000` is "Personalausweis Ausstellung".
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from backend.i18n import Message, _l
from backend.knowledge.schemas import ImportProblem

_KEY = re.compile(r"^99[0-9]{12}$")
# A key as people type it: with spaces, dots or dashes between the groups.
_LOOSE_KEY = re.compile(r"(?<![0-9])99(?:[ .\-]?[0-9]){12}(?![0-9])")
_KEY_PREFIX = re.compile(r"^99[0-9]{3,11}$")
REQUIRED_COLUMNS = ("leika_key", "name")
ACTIONS_FILE = Path(__file__).resolve().parent / "data" / "verrichtungen_de.txt"


def is_leika_key(value: str) -> bool:
    return bool(_KEY.match(value))


def leika_key_problem(value: str) -> Message | None:
    """Why `value` is not a LeiKa key (None when it is one)."""
    if is_leika_key(value):
        return None
    digits = re.sub(r"[ .\-]", "", value)
    if is_leika_key(digits):
        return _l("write the LeiKa key without separators: {key}", key=digits)
    if not digits.isdigit():
        return _l("a LeiKa key has digits only: 99 and 12 more")
    if not digits.startswith("99"):
        return _l("a LeiKa key starts with 99")
    return _l("a LeiKa key has 14 digits, this one has {count}", count=len(digits))


def find_leika_key(text: str) -> str | None:
    """A full LeiKa key inside free text ("99 008 001 012 000" too)."""
    match = _LOOSE_KEY.search(text)
    return re.sub(r"[^0-9]", "", match.group(0)) if match else None


def leika_key_prefix(text: str) -> str | None:
    """A query that is only the start of a key (`99008001`) searches that branch of the catalogue."""
    compact = re.sub(r"[ .\-]", "", text.strip())
    return compact if _KEY_PREFIX.match(compact) else None


def leika_group(key: str) -> str:
    return key[2:5]


def service_object(key: str) -> str:
    """The service object (Leistungsobjekt) a key belongs to: `99008001` in `99008001012000`;
    its entries are twins that differ by the action and its detail."""
    return key[:8]


def verrichtung(key: str) -> str:
    """The action (Verrichtung) code of a key: `012` (Ausstellung) in `99008001012000`."""
    return key[8:11]


@cache
def _action_words() -> dict[str, tuple[str, ...]]:
    words: dict[str, tuple[str, ...]] = {}
    for raw in ACTIONS_FILE.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        code, _, rest = line.partition(" ")
        if not line or not re.fullmatch(r"[0-9]{3}", code) or ":" not in rest:
            continue
        said = [w.strip() for w in rest.split(":", 1)[1].split(",") if w.strip()]
        words[code] = tuple(dict.fromkeys([*words.get(code, ()), *said]))
    return words


def action_words(key: str) -> tuple[str, ...]:
    """What callers say for the entry's action (`data/verrichtungen_de.txt`): "umziehen" for an
    Ummeldung, "verloren" for an Ersatz. Empty for the object itself (`…000000`) and for actions
    whose noun the question analysis derives from the caller's verb anyway."""
    return _action_words().get(verrichtung(key), ()) if is_leika_key(key) else ()


def is_object_level(key: str) -> bool:
    """The entry for the service object itself (no particular action): `…000000`."""
    return key.endswith("000000")


@dataclass(frozen=True, slots=True)
class CatalogueEntry:
    leika_key: str
    name: str
    typisierung: str
    ozg_service: str
    ozg_id: str | None
    life_situation: str
    legal_basis: str


def _clean(value: str | None) -> str:
    return " ".join((value or "").split())


def parse_catalogue(text: str) -> tuple[list[CatalogueEntry], list[ImportProblem]]:
    """Read the catalogue CSV (header row; `leika_key` and `name` required). Bad rows are
    reported with the line they start on; a key seen twice keeps its first row."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = reader.fieldnames or []
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        return [], [ImportProblem(line=1, message=f"missing columns: {', '.join(missing)}")]
    entries: list[CatalogueEntry] = []
    problems: list[ImportProblem] = []
    seen: set[str] = set()
    line = reader.line_num + 1
    try:
        for row in reader:
            key = _clean(row.get("leika_key"))
            name = _clean(row.get("name"))
            problem = leika_key_problem(key) if key else "leika_key is empty"
            if problem:
                # Import reports are English (decision 017: only error responses are translated).
                problems.append(ImportProblem(line=line, message=str(problem), field="leika_key"))
            elif not name:
                problems.append(ImportProblem(line=line, message="name is empty", field="name"))
            elif len(name) > 500:
                problems.append(ImportProblem(line=line, message="name is longer than 500 characters", field="name"))
            elif key in seen:
                problems.append(ImportProblem(line=line, message=f"key {key} appears twice", field="leika_key"))
            else:
                seen.add(key)
                entries.append(
                    CatalogueEntry(
                        leika_key=key,
                        name=name,
                        typisierung=_clean(row.get("typisierung")),
                        ozg_service=_clean(row.get("ozg_leistung")),
                        ozg_id=_clean(row.get("ozg_id")) or None,
                        life_situation=_clean(row.get("ozg_lebenslage")),
                        legal_basis=_clean(row.get("rechtsgrundlage")),
                    )
                )
            line = reader.line_num + 1
    except csv.Error as error:
        problems.append(ImportProblem(line=line, message=f"unreadable CSV: {error}"))
    return entries, problems
