"""Finding people and offices in a town's directory by what an agent types: names with or
without salutation ("Frau Müller Bürgerbüro"), an office by its name or the word for it
("Ansprechpartner Bauamt"), a direct number in any format. Tenant-scoped through the door like
every directory read (agents and supervisors of the operator, the town's own people; never
partner systems or other towns). Knowledge search is its own module elsewhere; it asks
`entries_for_question` for the entries it shows next to its articles (decision 038)."""

from __future__ import annotations

import heapq
import re
from dataclasses import dataclass
from uuid import UUID

from auth.permissions import Operation, may
from backend import clock
from backend.directory import compiled, service
from backend.directory.provisioning import fold_letters
from backend.directory.schemas import DepartmentLine, DirectoryEntry, DirectoryHit, HitKind, Person
from backend.directory.speakable import display_name
from backend.errors import ValidationFailed
from backend.i18n import _l
from backend.state import UnitOfWork
from backend.tenants.reach import reach, reachable
from backend.tenants.schemas import Tenant

# Words that say what is wanted, not who: dropped ("Ansprechpartner Bauamt" → "Bauamt").
_FILLER = frozenset(
    fold_letters(w)
    for w in (
        *("ansprechpartner", "ansprechpartnerin", "zuständig", "zuständige", "zuständiger", "sprechen", "bitte"),
        *("für", "der", "die", "das", "den", "dem", "im", "in", "vom", "von", "beim", "bei", "mit"),
        *("frau", "herr", "herrn", "fachbereich", "abteilung", "amt"),
        # When it is open, how to reach it, where it is: "Wann hat das Bürgerbüro auf?" → "Bürgerbüro".
        *("wann", "wo", "wie", "ist", "sind", "hat", "haben", "hab", "auf", "offen", "geöffnet", "geschlossen"),
        *("öffnungszeiten", "öffnungszeit", "sprechzeiten", "heute", "morgen", "noch", "denn", "mal", "ich"),
        *("erreiche", "erreichen", "erreichbar", "telefonisch", "telefonnummer", "nummer", "adresse", "finde"),
        *("montags", "dienstags", "mittwochs", "donnerstags", "freitags", "samstags", "am", "zum", "zur", "ein"),
    )
)
_SALUTATIONS = {"FRAU": "Frau", "HERR": "Herr", "HERRN": "Herr"}
# "Bauamt", "Ordnungsamt": the office word after a stem; the stem finds "Bauordnung", "Bauaufsicht".
_OFFICE_ENDINGS = ("AMT", "BUERO", "BURO", "STELLE", "ABTEILUNG")
_DIGITS = re.compile(r"\d")


def _words(text: str) -> list[str]:
    return [fold_letters(w) for w in re.split(r"[\s,;/()+-]+", text) if fold_letters(w)]


def _stems(word: str) -> set[str]:
    stems = {word}
    for ending in _OFFICE_ENDINGS:
        if word.endswith(ending) and len(word) - len(ending) >= 3:
            stems.add(word[: -len(ending)])
    return stems


def _matches(word: str, field: str) -> bool:
    return _found(word, fold_letters(field))


def _found(word: str, folded: str, stems: set[str] | None = None) -> bool:
    return any(stem and (stem in folded) for stem in (stems or _stems(word))) if folded else False


@dataclass(frozen=True, slots=True)
class _Folded:
    """A person's searchable fields folded once (folding is most of a scan's cost: ~100 ms for
    10^4 people per question when folded on every comparison, measured on the shared machine)."""

    person: Person
    family: str
    given: str
    user: str
    line: str
    function: str
    room: str

    @staticmethod
    def of(person: Person, line: DepartmentLine | None) -> _Folded:
        return _Folded(
            person,
            fold_letters(person.family_name),
            fold_letters(person.given_name),
            fold_letters(person.user_name or ""),
            fold_letters(line.name) if line is not None else "",
            fold_letters(person.function),
            fold_letters(person.room),
        )


# The folded people of each town's compiled snapshot, kept as long as that snapshot is current.
_FOLDED: dict[UUID, tuple[compiled.Snapshot, tuple[_Folded, ...]]] = {}


def _folded_people(town_id: UUID, snapshot: compiled.Snapshot) -> tuple[_Folded, ...]:
    held = _FOLDED.get(town_id)
    if held is None or held[0] is not snapshot:
        lines = snapshot.lines
        people = tuple(
            _Folded.of(p, lines.get(p.department_id) if p.department_id else None) for p in snapshot.people.values()
        )
        _FOLDED[town_id] = held = (snapshot, people)
    return held[1]


def _number_score(digits: str, number: str | None) -> bool:
    """A direct number typed whole, nationally, or as its extension (at least 3 digits)."""
    if not number:
        return False
    have = number.lstrip("+")
    national = "0" + have[2:] if have.startswith("49") else have
    return len(digits) >= 3 and (have.endswith(digits) or national.endswith(digits) or digits.endswith(have))


async def search_directory(uow: UnitOfWork, tenant_slug: str, text: str, limit: int = 20) -> list[DirectoryHit]:
    tenant = await reach(uow, tenant_slug, Operation.DIRECTORY_READ)
    if not text.strip() or len(text) > 200:
        raise ValidationFailed(_l("search for 1 to 200 characters"), field="query")
    if not 1 <= limit <= 100:
        raise ValidationFailed(_l("limit must be between 1 and 100"), field="limit")
    # The compiled town (decision 023), its people folded once (decision 038): no query once compiled.
    town = (await compiled.held(uow, tenant, Operation.DIRECTORY_READ)).snapshot
    return _best_hits(tenant.id, town, text, limit)


def _best_hits(town_id: UUID, town: compiled.Snapshot, text: str, limit: int) -> list[DirectoryHit]:
    """The best `limit` people and offices of a compiled town for the typed words and digits.
    Only the best people become hits (a broad office word can match hundreds of them)."""
    digits = "".join(_DIGITS.findall(text))
    raw = _words(text)
    salutation = next((_SALUTATIONS[w] for w in raw if w in _SALUTATIONS), None)
    words = [w for w in raw if w not in _FILLER]
    stemmed = [(w, _stems(w)) for w in words]
    scored = [
        (r, f.person) for f in _folded_people(town_id, town) if (r := _person_score(f, stemmed, digits, salutation))
    ]
    best = heapq.nsmallest(limit, scored, key=lambda x: (-x[0][0], HitKind.PERSON.value, x[0][1]))
    hits = [DirectoryHit(kind=HitKind.PERSON, score=r[0], person=p, department=None, matched=r[1]) for r, p in best]
    hits += [h for h in (_department_hit(line, words, digits) for line in town.lines.values()) if h]
    hits.sort(key=lambda h: (-h.score, h.kind.value, h.matched))
    return hits[:limit]


# What makes a question one for a person or an office (decision 038): without one of these the
# knowledge search adds no directory entries and costs nothing more. A salutation or a word for
# "who", an office word ("Bauamt", "Bürgerbüro", "Standesamt"), or a question that is a number.
_PERSON_CUES = frozenset(
    fold_letters(w)
    for w in (
        *("ansprechpartner", "ansprechpartnerin", "zuständig", "zuständige", "zuständiger", "zuständigen"),
        *("sachbearbeiter", "sachbearbeiterin", "durchwahl", "sprechen", "erreichen", "verbinden", "mitarbeiter"),
        *("frau", "herr", "herrn", "dr", "fachbereich", "abteilung", "amt", "büro", "telefonnummer"),
    )
)
_NUMBER = re.compile(r"[+(]?\d[\d\s()/-]{1,24}")
ENTRIES_NEXT_TO_ARTICLES = 5


def names_a_person_or_office(text: str) -> bool:
    """Whether a knowledge question asks for a person or an office (or is a direct number)."""
    if len(text) > 200:
        return False
    if _NUMBER.fullmatch(text.strip()) and 3 <= len(_DIGITS.findall(text)) <= 15:
        return True
    words = _words(text)
    return any(w in _PERSON_CUES or (w.endswith(_OFFICE_ENDINGS) and len(w) > 5) for w in words)


async def entries_for_question(uow: UnitOfWork, town: Tenant, text: str) -> list[DirectoryEntry]:
    """Directory entries for the knowledge search, next to its articles: only for a question
    that names a person or an office, and only for principals who may read this town's directory
    (never partner systems, never another town's people: for them, nothing). Matched against the
    town held in process with its presence (decisions 023 and 039: no query once held)."""
    if not may(uow.principal, Operation.DIRECTORY_READ) or town.id not in reachable(uow, Operation.DIRECTORY_READ):
        return []
    if not names_a_person_or_office(text):
        return []
    held = await compiled.held(uow, town, Operation.DIRECTORY_READ)
    compiled_town, lines = held.snapshot, held.snapshot.lines
    hits = _best_hits(town.id, compiled_town, text, ENTRIES_NEXT_TO_ARTICLES)
    at = clock.now()
    people = [h.person for h in hits if h.person is not None]
    presences = service.held_presences(compiled_town, held.live, people, at)
    entries = []
    for hit in hits:
        if hit.person is not None:
            person, state = hit.person, presences[hit.person.id]
            line = lines.get(person.department_id) if person.department_id else None
            entries.append(
                DirectoryEntry(
                    kind=HitKind.PERSON,
                    person_id=person.id,
                    name=f"{person.salutation.value} {display_name(person)}".strip(),
                    function=person.function or None,
                    department_id=person.department_id,
                    department_name=line.name if line else None,
                    number=person.phone,
                    reachable_now=state.reachable and person.phone is not None,
                    reason=state.reason if person.phone is not None or not state.reachable else "no direct number",
                    matched=hit.matched,
                )
            )
        elif hit.department is not None:
            line_calendar = compiled_town.calendar_of(hit.department.department_id)
            open_now, reason = service.line_state(line_calendar, hit.department, at)
            entries.append(
                DirectoryEntry(
                    kind=HitKind.DEPARTMENT,
                    person_id=None,
                    name=hit.department.name,
                    function=None,
                    department_id=hit.department.department_id,
                    department_name=hit.department.name,
                    number=hit.department.phone,
                    reachable_now=open_now,
                    reason=reason,
                    matched=hit.matched,
                    hours=list(line_calendar.service_hours),
                )
            )
    return entries


def _person_score(
    folded: _Folded, words: list[tuple[str, set[str]]], digits: str, salutation: str | None
) -> tuple[float, list[str]] | None:
    """A person's score for the typed words (each with its stems) and digits; None: no match."""
    person = folded.person
    score, matched = 0.0, list[str]()
    for word, stems in words:
        if folded.family == word or (folded.user and folded.user == word):
            score, matched = score + 3, [*matched, word]
        elif _found(word, folded.family, stems) or _found(word, folded.given, stems):
            score, matched = score + 2, [*matched, word]
        elif _found(word, folded.line, stems):
            score, matched = score + 1.5, [*matched, word]
        elif _found(word, folded.function, stems) or _found(word, folded.room, stems):
            score, matched = score + 1, [*matched, word]
    if digits and _number_score(digits, person.phone):
        score, matched = score + 4, [*matched, digits]
    if score == 0 or (words and len(matched) < len(words) and not (digits and digits in matched)):
        return None  # every word must match somewhere: "Frau Müller Bürgerbüro" is not every Müller
    if salutation is not None and person.salutation.value == salutation:
        score += 0.5
    return score, matched


def _department_hit(line: DepartmentLine, words: list[str], digits: str) -> DirectoryHit | None:
    matched = [w for w in words if _matches(w, line.name)]
    score = 2.0 * len(matched)
    if digits and _number_score(digits, line.phone):
        score, matched = score + 4, [*matched, digits]
    if score == 0 or (len([w for w in words if w in matched]) < len(words) and not (digits and digits in matched)):
        return None
    return DirectoryHit(kind=HitKind.DEPARTMENT, score=score, person=None, department=line, matched=matched)
