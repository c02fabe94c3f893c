"""Offline XRechnung validation the way KoSIT's validator does it (see ../shared/NOTES.md):
(1) the UBL 2.1 XSD with lxml, (2) the compiled EN 16931 and (3) XRechnung Schematron XSLTs with
saxonche (SVRL), (4) the `customLevel` overrides of the scenario matching the document.
Accepted = schema-valid and no error-level finding left."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from lxml import etree
from saxonche import PySaxonProcessor

from backend.settings import PROJECT_ROOT

# A copy of ../shared/data/xrechnung (UBL 2.1 schemas, KoSIT rules 2026-01-31, the official
# sample), unmodified, with its licences: tests must not depend on a folder outside the repo.
XRECHNUNG = PROJECT_ROOT / "tests" / "billing" / "xrechnung"
RULES = XRECHNUNG / "rules" / "kosit-2026-01-31"
SVRL = {"svrl": "http://purl.oclc.org/dsdl/svrl"}
SCENARIOS = {"s": "http://www.xoev.de/de/validator/framework/1/scenarios"}
SEVERITY = {"fatal": "error", "error": "error", "warning": "warning", "information": "information"}


@dataclass(frozen=True)
class Finding:
    rule: str
    level: str  # error, warning or information, after the scenario's overrides
    text: str


@dataclass(frozen=True)
class Report:
    scenario: str
    schema_errors: list[str]
    findings: list[Finding]

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "error"]

    @property
    def accepted(self) -> bool:
        return not self.schema_errors and not self.errors


@dataclass(frozen=True)
class Scenario:
    name: str
    match: str
    namespaces: dict[str, str]
    schema: str  # maindoc file name
    levels: dict[str, str]


class Validator:
    def __init__(self) -> None:
        self.processor = PySaxonProcessor(license=False)
        compiler = self.processor.new_xslt30_processor()
        self.stylesheets = [
            compiler.compile_stylesheet(stylesheet_file=str(RULES / name))
            for name in ("EN16931-UBL-validation.xsl", "XRechnung-UBL-validation.xsl")
        ]

    @cached_property
    def scenarios(self) -> list[Scenario]:
        found = []
        for element in etree.parse(str(RULES / "scenarios.xml")).iterfind("s:scenario", SCENARIOS):
            schema = element.findtext("s:validateWithXmlSchema/s:resource/s:location", namespaces=SCENARIOS) or ""
            found.append(
                Scenario(
                    name=element.findtext("s:name", namespaces=SCENARIOS) or "",
                    match=(element.findtext("s:match", namespaces=SCENARIOS) or "").strip(),
                    namespaces={n.get("prefix", ""): n.text or "" for n in element.iterfind("s:namespace", SCENARIOS)},
                    schema=Path(schema).name,
                    levels={
                        (c.text or "").strip(): c.get("level", "")
                        for c in element.iterfind("s:createReport/s:customLevel", SCENARIOS)
                    },
                )
            )
        return found

    def _scenario(self, xml: str) -> Scenario:
        node = self.processor.parse_xml(xml_text=xml)
        for scenario in self.scenarios:
            xpath = self.processor.new_xpath_processor()
            for prefix, uri in scenario.namespaces.items():
                xpath.declare_namespace(prefix, uri)
            xpath.set_context(xdm_item=node)
            if xpath.effective_boolean_value(scenario.match):
                return scenario
        raise AssertionError("no KoSIT scenario matches the document")

    def validate(self, xml: bytes) -> Report:
        text = xml.decode("utf-8")
        scenario = self._scenario(text)
        schema = etree.XMLSchema(etree.parse(str(XRECHNUNG / "ubl-2.1" / "maindoc" / scenario.schema)))
        document = etree.fromstring(xml)
        schema_errors = [] if schema.validate(document) else [str(e) for e in schema.error_log]
        findings = []
        for stylesheet in self.stylesheets:
            node = self.processor.parse_xml(xml_text=text)  # text, not a path (NOTES.md)
            svrl = etree.fromstring(stylesheet.transform_to_string(xdm_node=node).encode("utf-8"))
            for failed in svrl.iterfind(".//svrl:failed-assert", SVRL):
                rule = failed.get("id", "")
                level = scenario.levels.get(rule) or SEVERITY.get(failed.get("flag", "error"), "error")
                findings.append(
                    Finding(rule, level, " ".join((failed.findtext("svrl:text", namespaces=SVRL) or "").split()))
                )
        return Report(scenario.name, schema_errors, findings)
