# ruff: noqa: E501  (XML messages: a line is an element as a feed writes it)
"""XZuFi 2.2 messages as senders we have not seen write them (decision 024, amendment
"robustness", branch xzufirobust), with Geseke and Soest content: the LeiKa reference as text
with `listURI`, German after English, text modules in codes we do not map, fees and processing
time also as prose modules, a `fristStichtag`, a processing time in two units, forms in
`modulFormular`, a validity period, an AGS padded to 12 digits, an office named by `kennung`
with `anschriftTyp`, a vendor's extension elements, HTML with a script and markup escaped twice."""

from __future__ import annotations

NS = "http://xoev.de/schemata/xzufi/2_2_0"


def gestattung(tag: str, encoding: str = "UTF-8", prefix: str = "xzufi") -> str:
    """Geseke's "Gestattung" for the Schützenfest bar (LeiKa 99025002056000) and its office."""
    p = f"{prefix}:" if prefix else ""
    xmlns = f"xmlns:{prefix}" if prefix else "xmlns"
    return f"""<?xml version="1.0" encoding="{encoding}"?>
<{p}xzufi.nachricht.schreibe {xmlns}="{NS}" xmlns:ext="urn:example:redaktionssystem:erweiterung" xzufiVersion="2.2.0" ext:export="2026-12-01">
  <{p}nachrichtenkopf><{p}nachrichtUUID>6a3f0d12-8c1e-4b7a-9d2e-{tag}00a</{p}nachrichtUUID></{p}nachrichtenkopf>
  <{p}schreibe>
    <{p}leistung ext:workflow="freigegeben">
      <{p}id schemeAgencyID="L100012" schemeAgencyName="Landesredaktion NRW">L100012.LB.{tag}1</{p}id>
      <{p}idSekundaer>GES-ORD-0815</{p}idSekundaer>
      <{p}struktur><{p}leistungsobjektID>99025002000000</{p}leistungsobjektID><{p}verrichtung><{p}verrichtungLeiKa listURI="urn:de:fim:leika:verrichtung"><code>056</code><name>Gestattung</name></{p}verrichtungLeiKa></{p}verrichtung></{p}struktur>
      <{p}referenzLeiKa listURI="urn:de:fim:leika:leistung" listVersionID="2024-06">99025002056000</{p}referenzLeiKa>
      <{p}modulText>
        <{p}inhalt languageCode="en">Temporary permit for serving alcohol</{p}inhalt>
        <{p}inhalt languageCode="de-DE">Gaststättengewerbe Gestattung</{p}inhalt>
        <{p}leikaTextmodul listURI="urn:de:xzufi:codeliste:leistungstextmodulleika"><code>02</code></{p}leikaTextmodul>
      </{p}modulText>
      <{p}modulText>
        <{p}inhalt languageCode="de">Ausschank beim Schützenfest gestatten lassen</{p}inhalt>
        <{p}leikaTextmodul><code>03</code></{p}leikaTextmodul>
      </{p}modulText>
      <{p}modulText>
        <{p}inhalt languageCode="de">Für den Ausschank von Alkohol bei einem Fest in Geseke brauchen Sie eine Gestattung.</{p}inhalt>
        <{p}leikaTextmodul><code>05</code></{p}leikaTextmodul>
      </{p}modulText>
      <{p}modulText>
        <{p}inhalt languageCode="de">&lt;p&gt;Vereine, die beim &lt;strong&gt;Schützenfest&lt;/strong&gt; Getränke ausschenken, beantragen die Gestattung beim Ordnungsamt.&lt;/p&gt;&lt;script&gt;document.location='https://evil.example/'&lt;/script&gt;&lt;style&gt;p {{ color: red }}&lt;/style&gt;&lt;p&gt;Bitte beachten Sie &amp;amp;lt;b&amp;amp;gt;die Sperrzeit&amp;amp;lt;/b&amp;amp;gt; ab 1 Uhr.&lt;/p&gt;</{p}inhalt>
        <{p}leikaTextmodul><code>06</code></{p}leikaTextmodul>
      </{p}modulText>
      <{p}modulText>
        <{p}inhalt languageCode="de">Die Gebühr (ab 20 €) richtet sich nach Dauer und Umfang des Ausschanks.</{p}inhalt>
        <{p}leikaTextmodul><code>10</code><name>Kosten</name></{p}leikaTextmodul>
      </{p}modulText>
      <{p}modulText>
        <{p}inhalt languageCode="de">Planen Sie genug Zeit vor dem Fest ein.</{p}inhalt>
        <{p}leikaTextmodul><code>12</code></{p}leikaTextmodul>
      </{p}modulText>
      <{p}modulText>
        <{p}inhalt languageCode="de">Ordnungsamt Geseke, Frau Schulte</{p}inhalt>
        <{p}leikaTextmodul><code>19</code><name>Fachlich freigegeben durch</name></{p}leikaTextmodul>
      </{p}modulText>
      <{p}modulText>
        <{p}inhalt languageCode="de">Das Rathaus ist über einen Aufzug am Seiteneingang barrierefrei erreichbar.</{p}inhalt>
        <{p}leikaTextmodul><code>31</code><name>Barrierefreiheit</name></{p}leikaTextmodul>
      </{p}modulText>
      <{p}modulKosten>
        <{p}kosten>
          <{p}typ><code>01</code><name>Verwaltungsgebühr</name></{p}typ>
          <{p}betragVon waehrung="EUR">20,00</{p}betragVon>
          <{p}betragBis waehrung="EUR">250,00</{p}betragBis>
          <{p}beschreibung languageCode="de">je Veranstaltungstag</{p}beschreibung>
        </{p}kosten>
      </{p}modulKosten>
      <{p}modulFrist>
        <{p}frist>
          <{p}typ><code>01</code><name>Antragsfrist</name></{p}typ>
          <{p}fristDauer><{p}dauer>2</{p}dauer><{p}einheit><code>Woche</code></{p}einheit></{p}fristDauer>
          <{p}beschreibung languageCode="de">vor dem Fest</{p}beschreibung>
        </{p}frist>
        <{p}frist>
          <{p}typ><code>02</code><name>Stichtag Schützenfest</name></{p}typ>
          <{p}fristStichtag><{p}stichtag>2027-05-14</{p}stichtag></{p}fristStichtag>
        </{p}frist>
      </{p}modulFrist>
      <{p}modulBearbeitungsdauer>
        <{p}bearbeitungsdauer><{p}dauer>3</{p}dauer><{p}einheit><code>d</code></{p}einheit><{p}dauerBis>2</{p}dauerBis><{p}einheitBis><code>Woche</code></{p}einheitBis></{p}bearbeitungsdauer>
      </{p}modulBearbeitungsdauer>
      <{p}modulFormular>
        <{p}formular><{p}titel languageCode="de">Antrag auf Gestattung (PDF)</{p}titel><{p}uri>https://www.geseke.de/formulare/gestattung.pdf</{p}uri></{p}formular>
      </{p}modulFormular>
      <{p}modulUrsprungsportal><{p}uri>https://www.geseke.de/</{p}uri><{p}titel>Stadt Geseke</{p}titel></{p}modulUrsprungsportal>
      <{p}gueltigkeit><{p}beginn>2026-01-01</{p}beginn><{p}ende>2027-12-31</{p}ende></{p}gueltigkeit>
      <{p}gueltigkeitGebietID>059740200000</{p}gueltigkeitGebietID>
      <{p}versionsinformation><{p}version>4</{p}version><{p}geaendertDatumZeit>2026-11-20T10:00:00+01:00</{p}geaendertDatumZeit></{p}versionsinformation>
      <{p}modulKiZusammenfassung><{p}inhalt>neu in einer künftigen Version</{p}inhalt></{p}modulKiZusammenfassung>
      <ext:redaktionsnotiz>intern: nicht veröffentlichen</ext:redaktionsnotiz>
    </{p}leistung>
  </{p}schreibe>
  <{p}schreibe>
    <{p}organisationseinheit>
      <{p}kennung schemeAgencyID="L100012">L100012.OE.{tag}2</{p}kennung>
      <{p}name><{p}name languageCode="de">Ordnungsamt Geseke {tag}</{p}name></{p}name>
      <{p}anschrift>
        <{p}anschriftTyp><code>02</code><name>Postanschrift</name></{p}anschriftTyp>
        <{p}postfach>1280</{p}postfach><{p}postleitzahl>59583</{p}postleitzahl><{p}ort>Geseke</{p}ort>
      </{p}anschrift>
      <{p}anschrift>
        <{p}anschriftTyp><code>01</code><name>Hausanschrift</name></{p}anschriftTyp>
        <{p}strasse>Bachstraße</{p}strasse><{p}hausnummer>3</{p}hausnummer><{p}postleitzahl>59590</{p}postleitzahl><{p}ort>Geseke</{p}ort>
        <{p}verwaltungspolitischeKodierung><{p}gemeindeschluessel><code>059740200000</code></{p}gemeindeschluessel></{p}verwaltungspolitischeKodierung>
      </{p}anschrift>
      <{p}kommunikation><{p}kanal><code>04</code><name>Fax</name></{p}kanal><{p}kennung>+49 2942 500-399</{p}kennung></{p}kommunikation>
      <{p}kommunikation><{p}kanal><code>02</code><name>Telefon</name></{p}kanal><{p}kennung>+49 2942 500-320</{p}kennung></{p}kommunikation>
      <{p}kommunikation><{p}kanal><code>01</code><name>E-Mail</name></{p}kanal><{p}kennung>ordnungsamt@geseke.de</{p}kennung></{p}kommunikation>
      <{p}oeffnungszeiten>Mo-Fr 8:30-12:00 Uhr, Do 14:00-17:30 Uhr</{p}oeffnungszeiten>
      <{p}zustaendigkeit>
        <{p}id>L100012.ZS.{tag}3</{p}id>
        <{p}leistungID>L100012.LB.{tag}1</{p}leistungID>
        <{p}gebietID>059740200000</{p}gebietID>
        <{p}rolle><code>01</code></{p}rolle>
      </{p}zustaendigkeit>
      <{p}parkplatzInfoNeu>Parkplatz am Rathaus</{p}parkplatzInfoNeu>
    </{p}organisationseinheit>
  </{p}schreibe>
</{p}xzufi.nachricht.schreibe>
"""
