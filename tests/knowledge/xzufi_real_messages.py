# ruff: noqa: E501  (XML messages: a line is an element as a feed writes it)
"""XZuFi 2.2 messages in the shapes the real network sends (decision 024's amendment of
2026-12-07, branch xzufireal), written by us for Kreis Soest's towns: a PVOG page in the
default namespace with one object per `schreibe` and `loesche` by `klasse`, structured fees,
deadlines and processing times, HTML as CDATA and as elements, offices with several addresses,
XÖV reachability codes and hours with seconds and zones, responsibilities sent apart."""

from __future__ import annotations

NS = "http://xoev.de/schemata/xzufi/2_2_0"


def pvog_page(suffix: str) -> str:
    """A transfer page as PVOG serves it: default namespace, no prefix anywhere, `schreibe` per object."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<xzufi.transfer xmlns="{NS}" xzufiVersion="2.2.0" produktbezeichnung="Landesredaktion NRW" produkthersteller="IT.NRW">
  <nachrichtenkopf><nachrichtUUID>2f0c1e9a-1d3b-4c55-9a7e-{suffix}0001</nachrichtUUID></nachrichtenkopf>
  <schreibe>
    <leistung>
      <id schemeAgencyID="L100040" schemeID="leistung">L100040.LB.{suffix}1</id>
      <versionsinformation><geaendertDatumZeit>2026-11-02T09:15:00+01:00</geaendertDatumZeit></versionsinformation>
      <referenzLeiKa listURI="urn:de:fim:leika:leistung" listVersionID="2025-10"><code>99037004000000</code></referenzLeiKa>
      <modulText>
        <positionDarstellung>1</positionDarstellung>
        <inhalt languageCode="de">Hundesteuer Anmeldung</inhalt>
        <inhalt languageCode="en">Dog tax registration</inhalt>
        <leikaTextmodul listURI="urn:de:xzufi:codeliste:leistungstextmodulleika" listVersionID="20240216"><code>02</code></leikaTextmodul>
      </modulText>
      <modulText>
        <inhalt languageCode="de"><![CDATA[<p>Wer in Soest einen Hund hält, muss ihn innerhalb von zwei Wochen anmelden.</p><ul><li>Hundesteuermarke</li><li>Befreiung für Blindenführhunde</li></ul>]]></inhalt>
        <leikaTextmodul><code>06</code></leikaTextmodul>
      </modulText>
      <modulText>
        <inhalt languageCode="de"><p xmlns="http://www.w3.org/1999/xhtml">Das Formular erhalten Sie im Steueramt.</p><p xmlns="http://www.w3.org/1999/xhtml">Sie können es auch online ausfüllen.</p></inhalt>
        <leikaTextmodul><code>11</code></leikaTextmodul>
      </modulText>
      <modulFrist>
        <frist>
          <typ listURI="urn:de:xzufi:codeliste:fristtyp"><code>01</code><name>Anmeldefrist</name></typ>
          <fristDauer><dauer>2</dauer><einheit><code>Woche</code></einheit></fristDauer>
        </frist>
        <frist>
          <typ><code>02</code><name>Abmeldung</name></typ>
          <fristStichtag><von>2027-01-01</von><bis>2027-03-31</bis></fristStichtag>
        </frist>
        <beschreibung languageCode="de">Die Anmeldung ist nach Beginn der Hundehaltung fällig.</beschreibung>
      </modulFrist>
      <modulKosten>
        <kosten>
          <typ><code>01</code><name>Steuer je Hund</name></typ>
          <betragFix waehrung="EUR">96.00</betragFix>
          <beschreibung languageCode="de">erster Hund, im Jahr</beschreibung>
        </kosten>
        <kosten>
          <betragVon><betrag>120,00</betrag><waehrung><code>EUR</code></waehrung></betragVon>
          <betragBis><betrag>1.200,00</betrag><waehrung><code>EUR</code></waehrung></betragBis>
          <beschreibung languageCode="de">gefährliche Hunde, je nach Rasse</beschreibung>
        </kosten>
      </modulKosten>
      <modulBearbeitungsdauer>
        <bearbeitungsdauer><dauer>5</dauer><dauerBis>10</dauerBis><einheit><code>d</code></einheit></bearbeitungsdauer>
      </modulBearbeitungsdauer>
      <modulBegriffImKontext>
        <begriffImKontext><begriff languageCode="de">Hundemarke</begriff><typ><code>1</code></typ></begriffImKontext>
        <begriffImKontext><begriff languageCode="en">dog licence</begriff></begriffImKontext>
      </modulBegriffImKontext>
      <modulUrsprungsportal languageCode="de"><uri>https://www.soest.de/</uri><titel>Stadt Soest</titel></modulUrsprungsportal>
      <modulFachlicheFreigabe><fachlichFreigegebenAm>2026-10-30</fachlichFreigegebenAm></modulFachlicheFreigabe>
      <typisierung><code>3</code></typisierung>
      <gueltigkeitGebietID schemeID="urn:de:bund:destatis:bevoelkerungsstatistik:schluessel:rs">059740040040</gueltigkeitGebietID>
      <sprachversion><languageCode>de</languageCode></sprachversion>
    </leistung>
  </schreibe>
  <schreibe>
    <organisationseinheit>
      <id schemeAgencyID="L100040">L100040.OE.{suffix}2</id>
      <name><name languageCode="en">Tax office</name><name languageCode="de">Steueramt Soest</name></name>
      <anschrift>
        <typ><code>02</code><name>Postfach</name></typ>
        <postfach>2252</postfach><postleitzahl>59491</postleitzahl><ort>Soest</ort>
      </anschrift>
      <anschrift>
        <typ><code>01</code><name>Besucheranschrift</name></typ>
        <strasse>Am Vreithof</strasse><hausnummer>8</hausnummer><postleitzahl>59494</postleitzahl><ort>Soest</ort>
        <verwaltungspolitischeKodierung>
          <regionalschluessel><code>059740040040</code></regionalschluessel>
        </verwaltungspolitischeKodierung>
      </anschrift>
      <kommunikation><kanal listURI="urn:de:xoev:codeliste:erreichbarkeit"><code>01</code></kanal><kennung>steueramt@soest.de</kennung></kommunikation>
      <kommunikation><kanal><code>04</code><name>Fax</name></kanal><kennung>+49 2921 103-9201</kennung></kommunikation>
      <kommunikation><kanal><code>02</code></kanal><kennung>+49 2921 103-2201</kennung></kommunikation>
      <internetadresse><uri>https://www.soest.de/steueramt</uri><titel>Steueramt</titel></internetadresse>
      <oeffnungszeiten>
        <zeitraum><wochentag><code>01</code></wochentag><von>08:00:00+01:00</von><bis>12:30:00+01:00</bis></zeitraum>
        <zeitraum><wochentag>Donnerstag</wochentag><zeitfenster><von>08:00:00</von><bis>12:00:00</bis></zeitfenster><zeitfenster><von>14:00:00</von><bis>17:30:00</bis></zeitfenster></zeitraum>
        <beschreibung languageCode="de">Termine nach Vereinbarung.</beschreibung>
      </oeffnungszeiten>
      <zustaendigkeit>
        <id>L100040.ZS.{suffix}3</id>
        <leistungID>L100040.LB.{suffix}1</leistungID>
        <gebietID schemeID="urn:de:bund:destatis:bevoelkerungsstatistik:schluessel:rs">059740040040</gebietID>
        <rolle><code>01</code></rolle>
      </zustaendigkeit>
      <zustaendigkeit>
        <id>L100040.ZS.{suffix}4</id>
        <leistungID>L100040.LB.{suffix}1</leistungID>
        <gebietID>Soest</gebietID>
      </zustaendigkeit>
    </organisationseinheit>
  </schreibe>
  <schreibe>
    <zustaendigkeitTransferObjekt>
      <uebergeordnetesObjektID schemeAgencyID="L100040">L100040.OE.{suffix}2</uebergeordnetesObjektID>
      <zustaendigkeit>
        <id schemeAgencyID="L100040">L100040.ZS.{suffix}5</id>
        <leistungID schemeAgencyID="L100040">L100040.LB.{suffix}6</leistungID>
        <gebietID>059740040040</gebietID>
        <rolle><code>01</code><name>zuständige Stelle</name></rolle>
      </zustaendigkeit>
    </zustaendigkeitTransferObjekt>
  </schreibe>
  <schreibe><onlinedienst><id>L100040.OD.{suffix}7</id></onlinedienst></schreibe>
  <loesche klasse="Leistung"><id schemeAgencyID="L100040">L100040.LB.{suffix}8</id></loesche>
  <loesche klasse="Zustaendigkeit"><id>L100040.ZS.{suffix}9</id></loesche>
  <loesche klasse="Onlinedienst"><id>L100040.OD.{suffix}7</id></loesche>
</xzufi.transfer>
"""


def hundesteuer_befreiung(suffix: str, prefix: str = "xz") -> str:
    """One object as its own message under another prefix than ours: the service the
    responsibility sent apart in `pvog_page` names."""
    p = prefix
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<{p}:leistung xmlns:{p}="{NS}" xzufiVersion="2.2">
  <{p}:id schemeAgencyID="L100040">L100040.LB.{suffix}6</{p}:id>
  <{p}:referenzLeiKa><code>99037003000000</code></{p}:referenzLeiKa>
  <{p}:modulText><{p}:leikaTextmodul><code>02</code></{p}:leikaTextmodul><{p}:inhalt languageCode="de">Hundesteuer Befreiung beantragen</{p}:inhalt></{p}:modulText>
  <{p}:modulKosten><{p}:kosten><{p}:betragFix>0</{p}:betragFix><{p}:beschreibung languageCode="de">Antrag auf Befreiung</{p}:beschreibung></{p}:kosten></{p}:modulKosten>
</{p}:leistung>
"""
