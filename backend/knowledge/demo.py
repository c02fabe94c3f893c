"""Knowledge demo data for `make run`: the LeiKa catalogue, shared articles of Kreis Soest with
local versions of Stadt Soest and Stadt Geseke, and a handful of local articles per town.

Idempotent, and through the same services as the API: the catalogue import, the JSON import
(external ids `demo-…`, published through the workflow), local versions. Texts are demo data:
plausible, but not checked against the towns' real fees and opening hours.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from uuid import UUID

import structlog

from auth.principal import Principal
from auth.roles import Role
from backend.knowledge import importing, service
from backend.knowledge.schemas import ArticleStatus, Contact, LocalVersionInput, OpeningHours, SectionOverrides
from backend.state import AppState, UnitOfWork, unit_of_work

log = structlog.get_logger("demo.knowledge")
# The LeiKa catalogue snapshot (4,813 services; MIT, kdn-nrw/OZG-Datenbank-NRW), shipped with the
# product so a fresh machine needs nothing beside the repository. LEIKA_CATALOGUE_CSV overrides it.
CATALOGUE = Path(__file__).resolve().parent / "data" / "leika_kdn_ozgdb_nrw.csv"
OPERATOR, SOEST, GESEKE = "kreis-soest", "stadt-soest", "stadt-geseke"
DEMO_NOTE = "\n\n*Demodaten: vor dem Einsatz mit der Fachabteilung abgleichen.*"


def catalogue_path() -> Path:
    return Path(os.environ.get("LEIKA_CATALOGUE_CSV") or CATALOGUE)


def _hours(*spec: tuple[int, str, str]) -> list[dict[str, Any]]:
    return [{"weekday": d, "opens": o, "closes": c} for d, o, c in spec]


OFFICE_HOURS_SOEST = _hours(
    (1, "08:00", "12:30"),
    (2, "08:00", "12:30"),
    (2, "14:00", "17:30"),
    (3, "08:00", "12:30"),
    (4, "08:00", "12:30"),
    (4, "14:00", "18:00"),
    (5, "08:00", "12:00"),
)
OFFICE_HOURS_GESEKE = _hours(
    (1, "08:00", "12:00"),
    (2, "08:00", "12:00"),
    (3, "08:00", "12:00"),
    (4, "08:00", "12:00"),
    (4, "14:00", "17:30"),
    (5, "08:00", "12:00"),
)
OFFICE_HOURS_KREIS = _hours(
    (1, "07:30", "12:30"),
    (2, "07:30", "12:30"),
    (3, "07:30", "12:30"),
    (4, "07:30", "12:30"),
    (4, "14:00", "17:00"),
    (5, "07:30", "12:30"),
)

# Personalausweis (shared) and Soest's Hundesteuer come from the demo's XZuFi messages
# (demo_xzufi.py); a second hand-written article under the same LeiKa key would only compete with them.
SHARED: list[dict[str, Any]] = [
    {
        "externalId": "demo-reisepass",
        "title": "Reisepass beantragen",
        "summary": "Den Reisepass beantragen Sie persönlich im Bürgerbüro; der Express-Pass ist in wenigen "
        "Werktagen da.",
        "leikaKey": "99085001012000",
        "searchTerms": ["Pass", "Reisepass abgelaufen", "Expresspass", "Urlaub Ausland"],
        "sections": {
            "description": "Für Reisen in viele Länder außerhalb der EU brauchen Sie einen Reisepass. Er ist bei "
            "Personen ab 24 Jahren zehn Jahre gültig, darunter sechs Jahre. Für Kinder gibt es den "
            "Reisepass ab Geburt." + DEMO_NOTE,
            "documents": "- bisheriger Reisepass oder Personalausweis\n- ein aktuelles biometrisches Passfoto\n"
            "- bei Kindern: Zustimmung aller Sorgeberechtigten",
            "fees": "- ab 24 Jahren: 70,00 €\n- unter 24 Jahren: 37,50 €\n- Express-Zuschlag: 32,00 €",
            "processing_time": "Etwa 4 bis 6 Wochen, im Expressverfahren 3 bis 4 Werktage.",
            "responsible_office": "Das Bürgerbüro Ihres Wohnorts.",
            "legal_basis": "Passgesetz (PassG); Passverordnung (PassV)",
        },
    },
    {
        "externalId": "demo-wohnsitz-anmelden",
        "title": "Wohnsitz anmelden nach einem Umzug",
        "summary": "Wer umzieht, meldet sich innerhalb von zwei Wochen im Bürgerbüro des neuen Wohnorts an.",
        "leikaKey": "99115005104000",
        "searchTerms": ["Ummeldung", "umziehen", "Umzug", "neue Wohnung", "Adresse ändern", "ummelden"],
        "sections": {
            "description": "Nach dem Einzug in eine neue Wohnung melden Sie sich innerhalb von zwei Wochen an. Bei "
            "einem Umzug innerhalb der Stadt ist das eine Ummeldung, der Ablauf ist derselbe. Die "
            "Adresse im Personalausweis wird dabei gleich geändert." + DEMO_NOTE,
            "documents": "- Personalausweis oder Reisepass aller umziehenden Personen\n"
            "- Wohnungsgeberbestätigung des Vermieters",
            "fees": "Die Anmeldung ist gebührenfrei.",
            "deadlines": "Innerhalb von zwei Wochen nach dem Einzug; wer die Frist versäumt, riskiert ein Bußgeld.",
            "processing_time": "Sofort, während des Termins.",
            "responsible_office": "Das Bürgerbüro des neuen Wohnorts.",
            "legal_basis": "Bundesmeldegesetz (BMG), § 17 und § 19",
        },
    },
    {
        "externalId": "demo-kfz-zulassung",
        "title": "Fahrzeug zulassen",
        "summary": "Autos, Motorräder und Anhänger lassen Sie beim Straßenverkehrsamt des Kreises Soest in Soest "
        "oder Lippstadt zu, oder online über i-Kfz.",
        "leikaKey": "99036008007000",
        "searchTerms": [
            "Auto anmelden",
            "Kfz-Zulassung",
            "Zulassungsstelle",
            "Nummernschild",
            "Kennzeichen",
            "Auto ummelden",
        ],
        "sections": {
            "description": "Neue, gebrauchte und zuvor abgemeldete Fahrzeuge werden bei der Zulassungsstelle des "
            "Kreises zugelassen. Wunschkennzeichen können vorab online reserviert werden." + DEMO_NOTE,
            "documents": "- Personalausweis oder Reisepass\n- Zulassungsbescheinigung Teil I und Teil II\n"
            "- elektronische Versicherungsbestätigung (eVB-Nummer)\n- SEPA-Mandat für die Kfz-Steuer\n"
            "- Nachweis über die Hauptuntersuchung",
            "fees": "Ab 26,30 € für die Zulassung, zuzüglich Kennzeichenschilder.",
            "processing_time": "Während des Termins.",
            "responsible_office": "Kreis Soest, Straßenverkehrsamt, Zulassungsstelle",
            "opening_hours": OFFICE_HOURS_KREIS,
            "opening_hours_note": "Nur mit Termin.",
            "contacts": [{"label": "Zulassungsstelle Kreis Soest", "phone": "02921 30-0"}],
            "legal_basis": "Fahrzeug-Zulassungsverordnung (FZV), § 6",
            "online_service": {"title": "Fahrzeug online zulassen (i-Kfz)", "url": "https://www.kreis-soest.de/"},
        },
    },
    {
        "externalId": "demo-elterngeld",
        "title": "Elterngeld beantragen",
        "summary": "Elterngeld beantragen Sie schriftlich oder online bei der Elterngeldstelle des Kreises Soest, "
        "spätestens drei Monate nach der Geburt.",
        "leikaKey": "99041006017000",
        "searchTerms": ["Elterngeld Plus", "Elternzeit Geld", "Baby Geld"],
        "sections": {
            "description": "Elterngeld ersetzt einen Teil des Einkommens, das nach der Geburt wegfällt. Rückwirkend "
            "gezahlt werden nur die letzten drei Lebensmonate vor dem Monat des Antrags." + DEMO_NOTE,
            "documents": "- Geburtsurkunde für Elterngeld\n- Einkommensnachweise der letzten zwölf Monate\n"
            "- Bescheinigung der Krankenkasse über Mutterschaftsgeld",
            "fees": "Gebührenfrei.",
            "deadlines": "Innerhalb von drei Monaten nach der Geburt.",
            "responsible_office": "Kreis Soest, Elterngeldstelle",
            "contacts": [{"label": "Elterngeldstelle Kreis Soest", "phone": "02921 30-0"}],
            "legal_basis": "Bundeselterngeld- und Elternzeitgesetz (BEEG)",
            "online_service": {
                "title": "Elterngeld online beantragen (ElterngeldDigital)",
                "url": "https://www.elterngeld-digital.de/",
            },
        },
    },
]

LOCAL: dict[str, list[dict[str, Any]]] = {
    SOEST: [
        {
            "externalId": "demo-soest-sperrmuell",
            "title": "Sperrmüll abholen lassen",
            "summary": "Sperrmüll holt die Stadt Soest auf Anmeldung bis zu zweimal im Jahr kostenlos ab.",
            "leikaKey": "99001009004002",
            "searchTerms": ["Sperrmülltermin", "alte Möbel", "Sperrgut"],
            "sections": {
                "description": "Melden Sie die Abholung online oder telefonisch an; Sie erhalten einen Termin. "
                "Elektrogeräte werden gesondert abgeholt." + DEMO_NOTE,
                "fees": "Zwei Abholungen im Jahr sind in der Abfallgebühr enthalten.",
                "responsible_office": "Stadt Soest, Abfallwirtschaft",
                "contacts": [{"label": "Abfallberatung Stadt Soest", "phone": "02921 103-0"}],
                "online_service": {"title": "Sperrmüll online anmelden", "url": "https://www.soest.de/"},
            },
        },
        {
            "externalId": "demo-soest-standesamt",
            "title": "Heiraten in Soest: Eheschließung anmelden",
            "summary": "Die Eheschließung melden Sie beim Standesamt Soest an, frühestens sechs Monate vor dem "
            "Wunschtermin.",
            "leikaKey": "99059001104000",
            "searchTerms": ["Hochzeit", "heiraten", "Trauung", "Standesamt"],
            "sections": {
                "description": "Beide Partner kommen zur Anmeldung gemeinsam ins Standesamt. Trauungen sind im "
                "Rathaus und in besonderen Trauorten möglich." + DEMO_NOTE,
                "documents": "- Personalausweise oder Reisepässe\n- beglaubigte Abschrift aus dem "
                "Geburtenregister\n- bei Geschiedenen: Eheurkunde mit Scheidungsvermerk",
                "fees": "Anmeldung 40 €, Trauung außerhalb der Dienstzeit ab 100 €.",
                "responsible_office": "Stadt Soest, Standesamt",
                "contacts": [{"label": "Standesamt Soest", "phone": "02921 103-0"}],
                "legal_basis": "Personenstandsgesetz (PStG), § 12",
            },
        },
        {
            "externalId": "demo-soest-bewohnerparken",
            "title": "Bewohnerparkausweis für die Soester Altstadt",
            "summary": "Wer in einer Bewohnerparkzone der Altstadt wohnt, bekommt für sein Auto einen "
            "Bewohnerparkausweis beim Ordnungsamt.",
            "leikaKey": "99108001001000",
            "searchTerms": ["Anwohnerparken", "Parkausweis Altstadt"],
            "sections": {
                "description": "Der Ausweis gilt ein Jahr und nur in der angegebenen Zone." + DEMO_NOTE,
                "documents": "- Personalausweis mit Adresse in der Zone\n- Fahrzeugschein",
                "fees": "30,70 € im Jahr.",
                "responsible_office": "Stadt Soest, Ordnungsamt",
                "contacts": [{"label": "Ordnungsamt Soest", "phone": "02921 103-0"}],
            },
        },
    ],
    GESEKE: [
        {
            "externalId": "demo-geseke-hundesteuer",
            "title": "Hundesteuer in Geseke",
            "summary": "Hunde melden Sie innerhalb eines Monats bei der Steuerabteilung der Stadt Geseke an.",
            "leikaKey": "99102013000000",
            "searchTerms": ["Hund anmelden", "Hundemarke"],
            "sections": {
                "description": "Die Hundesteuer wird jährlich festgesetzt; Assistenzhunde sind befreit." + DEMO_NOTE,
                "fees": "- erster Hund: 84 € im Jahr\n- jeder weitere Hund: 108 € im Jahr",
                "deadlines": "Innerhalb eines Monats.",
                "responsible_office": "Stadt Geseke, Steuerabteilung",
                "contacts": [{"label": "Steuerabteilung Stadt Geseke", "phone": "02942 500-0"}],
            },
        },
        # Geseke's bulky-waste collection comes from the demo's XZuFi message (demo_xzufi.py),
        # with the Abfallberatung's contacts and opening hours.
        {
            "externalId": "demo-geseke-fundbuero",
            "title": "Fundbüro Geseke",
            "summary": "Fundsachen geben Sie im Bürgerbüro Geseke ab; dort fragen Sie auch nach Verlorenem.",
            "leikaKey": "99089017000000",
            "searchTerms": ["Fundbüro", "verloren", "gefunden"],
            "sections": {
                "description": "Fundsachen werden sechs Monate aufbewahrt." + DEMO_NOTE,
                "responsible_office": "Stadt Geseke, Bürgerbüro",
                "opening_hours": OFFICE_HOURS_GESEKE,
                "contacts": [{"label": "Bürgerbüro Geseke", "phone": "02942 500-0"}],
            },
        },
        {
            "externalId": "demo-geseke-osterfeuer",
            "title": "Osterfeuer anmelden",
            "summary": "Osterfeuer melden Sie spätestens zwei Wochen vorher beim Ordnungsamt Geseke an.",
            "leikaKey": "99063010006000",
            "searchTerms": ["Brauchtumsfeuer", "Feuer Ostern"],
            "sections": {
                "description": "Nur Brauchtumsfeuer von Vereinen und Gemeinschaften sind erlaubt; Gartenabfälle "
                "dürfen nicht verbrannt werden." + DEMO_NOTE,
                "deadlines": "Spätestens zwei Wochen vor dem Feuer.",
                "responsible_office": "Stadt Geseke, Ordnungsamt",
                "contacts": [{"label": "Ordnungsamt Geseke", "phone": "02942 500-0"}],
            },
        },
    ],
    OPERATOR: [
        {
            "externalId": "demo-kreis-schwerbehindertenausweis",
            "title": "Schwerbehindertenausweis beantragen",
            "summary": "Den Schwerbehindertenausweis beantragen Sie beim Kreis Soest; er zeigt den Grad der "
            "Behinderung und die Merkzeichen.",
            "leikaKey": "99015007012000",
            "searchTerms": ["Behindertenausweis", "Grad der Behinderung", "GdB"],
            "sections": {
                "description": "Ab einem Grad der Behinderung von 50 gibt es den Ausweis." + DEMO_NOTE,
                "documents": "- ärztliche Unterlagen\n- ein Passfoto",
                "fees": "Gebührenfrei.",
                "responsible_office": "Kreis Soest, Abteilung Soziales",
                "contacts": [{"label": "Kreis Soest", "phone": "02921 30-0"}],
                "legal_basis": "SGB IX, § 152",
            },
        },
    ],
}

# What the towns set in their local versions of the shared articles.
LOCAL_VERSIONS: dict[str, dict[str, SectionOverrides]] = {
    SOEST: {
        "demo-personalausweis": SectionOverrides(
            responsible_office="Stadt Soest, Bürgerbüro im Rathaus, Am Vreithof 8",
            opening_hours=[
                OpeningHours(weekday=h["weekday"], opens=h["opens"], closes=h["closes"]) for h in OFFICE_HOURS_SOEST
            ],
            opening_hours_note="Termine online oder telefonisch.",
            contacts=[Contact(label="Bürgerbüro Soest", phone="02921 103-0")],
        ),
        "demo-wohnsitz-anmelden": SectionOverrides(
            responsible_office="Stadt Soest, Bürgerbüro im Rathaus",
            contacts=[Contact(label="Bürgerbüro Soest", phone="02921 103-0")],
        ),
    },
    GESEKE: {
        "demo-personalausweis": SectionOverrides(
            responsible_office="Stadt Geseke, Bürgerbüro, Bachstraße 1",
            opening_hours=[
                OpeningHours(weekday=h["weekday"], opens=h["opens"], closes=h["closes"]) for h in OFFICE_HOURS_GESEKE
            ],
            contacts=[Contact(label="Bürgerbüro Geseke", phone="02942 500-0")],
        ),
    },
}


def _camel(row: dict[str, Any]) -> dict[str, Any]:
    """Rows are written with snake_case section names here; the import speaks camelCase."""

    def camel(name: str) -> str:
        head, *rest = name.split("_")
        return head + "".join(part.title() for part in rest)

    return {**row, "sections": {camel(k): v for k, v in row.get("sections", {}).items()}}


def _principal(tenant_id: UUID, slug: str, role: Role, acting: set[UUID]) -> Principal:
    return Principal(
        issuer="system",
        subject="demo-loader",
        tenant_id=tenant_id,
        tenant_slug=slug,
        roles=frozenset({role}),
        acting_tenant_ids=frozenset(acting),
    )


async def load_knowledge_demo(app: AppState, tenant_ids: Mapping[str, UUID], catalogue: Path | None = None) -> None:
    """The catalogue and the demo articles for the demo tenants (by slug); safe to run again."""
    operator_id = tenant_ids[OPERATOR]
    everyone = set(tenant_ids.values())
    source = catalogue or catalogue_path()
    if source.exists():
        admin = _principal(operator_id, OPERATOR, Role.PLATFORM_ADMIN, everyone)
        async with unit_of_work(app, admin) as uow:
            report = await importing.import_catalogue(uow, source.read_text(encoding="utf-8"))
        log.info(
            "leika_catalogue_loaded",
            rows=report.rows,
            inserted=report.inserted,
            updated=report.updated,
            errors=len(report.errors),
        )
    else:
        log.warning("leika_catalogue_missing", path=str(source))

    operator_editor = _principal(operator_id, OPERATOR, Role.EDITOR, everyone)
    async with unit_of_work(app, operator_editor) as uow:
        shared_rows = [{**_camel(row), "shared": True} for row in SHARED]
        shared_text = "\n".join(json.dumps(r) for r in shared_rows)
        report_shared = await importing.import_articles(uow, shared_text, publish=True)
    for slug, rows in LOCAL.items():
        editor = _principal(tenant_ids[slug], slug, Role.EDITOR, everyone if slug == OPERATOR else {tenant_ids[slug]})
        async with unit_of_work(app, editor) as uow:
            text = "\n".join(json.dumps(_camel(r)) for r in rows)
            imported = await importing.import_articles(uow, text, publish=True)
            if imported.errors:
                log.warning("demo_articles_rejected", tenant=slug, errors=[e.message for e in imported.errors])
    for slug, overrides in LOCAL_VERSIONS.items():
        editor = _principal(tenant_ids[slug], slug, Role.EDITOR, {tenant_ids[slug]})
        async with unit_of_work(app, editor) as uow:
            for external_id, override in overrides.items():
                await _ensure_local_version(uow, operator_id, external_id, override)
    log.info("knowledge_demo_loaded", shared_errors=len(report_shared.errors))


async def _ensure_local_version(
    uow: UnitOfWork, operator_id: UUID, external_id: str, overrides: SectionOverrides
) -> None:
    base_id = await service.shared_article_id(uow, operator_id, external_id)
    if base_id is None or await service.has_local_version(uow, base_id):
        return
    state = await service.create_local_version(uow, base_id, LocalVersionInput(overrides=overrides))
    state = await service.change_status(uow, state.id, ArticleStatus.IN_REVIEW, state.latest_version)
    await service.change_status(uow, state.id, ArticleStatus.PUBLISHED, state.latest_version)
