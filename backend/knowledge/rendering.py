"""Markdown to sanitised, semantic HTML for agents' browsers and screen readers.

Editors write Markdown (raw HTML from imported content is allowed in), markdown-it-py renders
it, and nh3 (ammonia) keeps only an allow-list of semantic tags: no scripts, no event handlers,
no `javascript:` links, no layout tables, no images. A last pass over the clean tree fixes what
screen readers stumble on: headings never skip a level and sit below the section heading, and
every link has a text.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

import lxml.html
import nh3
import phonenumbers
from markdown_it import MarkdownIt

from backend.knowledge.schemas import Contact, Link, OpeningHours, Sections

ALLOWED_TAGS = frozenset(
    {
        "p",
        "br",
        "strong",
        "em",
        "b",
        "i",
        "ul",
        "ol",
        "li",
        "a",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "blockquote",
        "code",
        "pre",
        "abbr",
        "dl",
        "dt",
        "dd",
    }
)
ARTICLE_TAGS = ALLOWED_TAGS | {"article", "section"}
ALLOWED_ATTRIBUTES = {"a": {"href", "hreflang"}, "abbr": {"title"}, "ol": {"start"}}
ARTICLE_ATTRIBUTES = {**ALLOWED_ATTRIBUTES, "section": {"aria-labelledby"}, "h2": {"id"}, "article": {"lang"}}
URL_SCHEMES = frozenset({"http", "https", "mailto", "tel"})
# Link texts that say nothing when a screen reader lists the page's links.
VAGUE_LINK_TEXTS = frozenset(
    {
        "hier",
        "hier klicken",
        "klicken sie hier",
        "link",
        "mehr",
        "weiter",
        "weiterlesen",
        "mehr erfahren",
        "details",
        "click here",
        "here",
    }
)
WEEKDAYS = ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag")
# The order agents read an article in, and the German section headings.
SECTION_TITLES: tuple[tuple[str, str], ...] = (
    ("description", "Beschreibung"),
    ("documents", "Erforderliche Unterlagen"),
    ("fees", "Gebühren"),
    ("processing_time", "Bearbeitungsdauer"),
    ("deadlines", "Fristen"),
    ("responsible_office", "Zuständige Stelle"),
    ("opening_hours", "Öffnungszeiten"),
    ("contacts", "Kontakt"),
    ("online_service", "Online-Dienst"),
    ("forms", "Formulare"),
    ("legal_basis", "Rechtsgrundlage"),
)

_markdown = MarkdownIt("commonmark", {"html": True, "linkify": False, "typographer": False})
_markdown.disable("image")
_cleaner = nh3.Cleaner(
    tags=set(ALLOWED_TAGS),
    attributes={k: set(v) for k, v in ALLOWED_ATTRIBUTES.items()},
    url_schemes=set(URL_SCHEMES),
    link_rel="noopener noreferrer",
    strip_comments=True,
)
_article_cleaner = nh3.Cleaner(
    tags=set(ARTICLE_TAGS),
    attributes={k: set(v) for k, v in ARTICLE_ATTRIBUTES.items()},
    url_schemes=set(URL_SCHEMES),
    link_rel="noopener noreferrer",
    strip_comments=True,
)


def e164(number: str) -> str | None:
    """The number in E.164 (for tel: links), None when it is not a valid German number."""
    try:
        parsed = phonenumbers.parse(number, "DE")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


@dataclass
class Rendered:
    html: str
    warnings: list[str] = field(default_factory=list)


def _serialise_children(root: lxml.html.HtmlElement) -> str:
    parts = [html.escape(root.text or "", quote=False)]
    parts.extend(lxml.html.tostring(child, encoding="unicode") for child in root)
    return "".join(parts)


def _fix_tree(root: lxml.html.HtmlElement, base_level: int, warnings: list[str]) -> None:
    """Headings: first at `base_level`, never more than one level deeper than the one before.
    Links: an empty text becomes the address; vague texts are reported."""
    headings = [el for el in root.iter() if isinstance(el.tag, str) and re.fullmatch(r"h[1-6]", el.tag)]
    if headings:
        shift = base_level - min(int(h.tag[1]) for h in headings)
        previous = base_level - 1
        for heading in headings:
            level = min(int(heading.tag[1]) + shift, previous + 1, 6)
            level = max(level, base_level)
            heading.tag = f"h{level}"
            previous = level
    for link in root.iter("a"):
        text = " ".join(link.text_content().split())
        href = link.get("href")
        if href is None:
            link.drop_tag()  # an anchor without a target is no link
            continue
        if not text:
            link.text = re.sub(r"^(https?://|mailto:|tel:)", "", href)
            warnings.append(f"a link without text was given its address as text: {link.text}")
        elif text.lower().strip(".:!") in VAGUE_LINK_TEXTS:
            warnings.append(f"link text {text!r} does not say where it goes")


def markdown_to_html(source: str, base_level: int = 3) -> Rendered:
    """One Markdown text as safe HTML; its headings start at `base_level`."""
    if not source.strip():
        return Rendered("")
    dirty = _markdown.render(source)
    clean = _cleaner.clean(dirty)
    root = lxml.html.fragment_fromstring(clean, create_parent="div")
    warnings: list[str] = []
    if "<table" in dirty.lower():
        warnings.append("tables are not shown; write the content as a list")
    if "<img" in dirty.lower() or re.search(r"!\[[^\]]*\]\(", source):
        warnings.append("images are not shown; describe what they show in the text")
    _fix_tree(root, base_level, warnings)
    return Rendered(_serialise_children(root).strip(), warnings)


def clean_inline(text: str) -> str:
    """Plain text for HTML: escaped."""
    return html.escape(text, quote=True)


def _opening_hours_html(hours: list[OpeningHours], note: str) -> str:
    by_day: dict[int, list[str]] = {}
    for interval in sorted(hours, key=lambda h: (h.weekday, h.opens)):
        by_day.setdefault(interval.weekday, []).append(f"{interval.opens}–{interval.closes} Uhr")
    items = "".join(
        f"<dt>{WEEKDAYS[day - 1]}</dt><dd>{' und '.join(spans)}</dd>" for day, spans in sorted(by_day.items())
    )
    out = f"<dl>{items}</dl>" if items else ""
    if note.strip():
        out += markdown_to_html(note).html
    return out


def _contact_html(contact: Contact) -> str:
    bits = []
    if contact.phone:
        number = e164(contact.phone)
        label = clean_inline(contact.phone)
        bits.append(f'Telefon <a href="tel:{number}">{label}</a>' if number else f"Telefon {label}")
    if contact.email:
        email = clean_inline(contact.email)
        bits.append(f'E-Mail <a href="mailto:{email}">{email}</a>')
    if contact.url:
        url = clean_inline(contact.url)
        bits.append(f'Internet <a href="{url}">{clean_inline(re.sub(r"^https?://", "", contact.url))}</a>')
    return (
        f"<li>{clean_inline(contact.label)}: {', '.join(bits)}</li>"
        if bits
        else f"<li>{clean_inline(contact.label)}</li>"
    )


def _link_html(link: Link) -> str:
    return f'<a href="{clean_inline(link.url)}">{clean_inline(link.title)}</a>'


def section_html(name: str, sections: Sections) -> Rendered:
    """The body of one section (without its heading); empty when the section is empty."""
    value = getattr(sections, name)
    if name == "opening_hours":
        return Rendered(_opening_hours_html(sections.opening_hours, sections.opening_hours_note))
    if name == "contacts":
        return Rendered("<ul>" + "".join(_contact_html(c) for c in value) + "</ul>" if value else "")
    if name == "online_service":
        return Rendered(f"<p>{_link_html(value)}</p>" if value else "")
    if name == "forms":
        return Rendered("<ul>" + "".join(f"<li>{_link_html(f)}</li>" for f in value) + "</ul>" if value else "")
    return markdown_to_html(value, base_level=3)


def article_html(title: str, summary: str, sections: Sections) -> Rendered:
    """The whole article: h1 title, summary, one h2 section per filled section, in reading order."""
    warnings: list[str] = []
    parts = [f'<article lang="de"><h1>{clean_inline(title)}</h1>']
    if summary.strip():
        parts.append(f"<p>{clean_inline(summary)}</p>")
    for name, heading in SECTION_TITLES:
        body = section_html(name, sections)
        warnings.extend(body.warnings)
        if body.html:
            anchor = "abschnitt-" + name.replace("_", "-")
            parts.append(f'<section aria-labelledby="{anchor}"><h2 id="{anchor}">{heading}</h2>{body.html}</section>')
    parts.append("</article>")
    clean = _article_cleaner.clean("".join(parts))
    return Rendered(clean, list(dict.fromkeys(warnings)))


# Elements that start and end a block of speakable text. Containers (lists, quotes, sections)
# are here too, so that text loose inside them never runs into the items next to it.
_BLOCK_TAGS = frozenset(
    {"p", "li", "h1", "h2", "h3", "h4", "h5", "h6", "dt", "dd", "pre", "blockquote", "ul", "ol", "dl"}
    | {"article", "section", "div"}
)
_HEADING_TAGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})


def _spoken_link(link: lxml.html.HtmlElement) -> str:
    """A web link's text, with its address when the text does not already show it (the
    listener cannot follow the link, but may need to read the address out to the caller)."""
    label = " ".join(link.text_content().split())
    address = re.sub(r"^https?://", "", link.get("href", "")).rstrip("/")
    return label if address in label else f"{label} (Adresse: {address})"


def html_text_blocks(fragment: str) -> list[str]:
    """The text of a clean HTML fragment, one entry per block (paragraph, list item, heading …).

    One walk in document order collects inline text into the current block and closes it at
    the start and end of every block element, so each piece of text is read exactly once: a
    paragraph inside a list item or quote is that item's text, a nested list item is a block of
    its own, and text after a nested list continues as a block of its own. Headings end in ":".
    """
    if not fragment.strip():
        return []
    root = lxml.html.fragment_fromstring(fragment, create_parent="div")
    blocks: list[str] = []
    pending: list[str] = []

    def flush(heading: bool = False) -> None:
        text = " ".join("".join(pending).split())
        pending.clear()
        if text:
            blocks.append(text + (":" if heading and not text.endswith(":") else ""))

    def walk(element: lxml.html.HtmlElement) -> None:
        tag = element.tag if isinstance(element.tag, str) else None  # comments have no text to read
        block = tag in _BLOCK_TAGS
        if block:
            flush()
        if tag == "a" and element.get("href", "").startswith(("http://", "https://")):
            pending.append(_spoken_link(element))
        else:
            if tag == "br":
                pending.append(" ")  # a line break separates words; it does not end the block
            if tag is not None:
                pending.append(element.text or "")
            for child in element:
                walk(child)
        if block:
            flush(heading=tag in _HEADING_TAGS)
        pending.append(element.tail or "")

    walk(root)
    return blocks
