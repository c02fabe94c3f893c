"""GeoReport v2 on the wire: the same records as JSON or as the XML the specification shows
(`<services><service>…`, `<service_requests><request>…`, `<errors><error>…`), written by lxml.
No rules here: the controller picks the format from the path's suffix."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

import msgspec
from lxml import etree


class Format(StrEnum):
    JSON = "json"
    XML = "xml"


MEDIA_TYPES = {Format.JSON: "application/json; charset=utf-8", Format.XML: "text/xml; charset=utf-8"}

# What a list's elements are called inside their parent, where the specification says.
_ITEM_NAMES = {
    "services": "service",
    "service_requests": "request",
    "errors": "error",
    "attributes": "attribute",
    "values": "value",
    "endpoints": "endpoint",
    "formats": "format",
}


def format_of(path: str) -> Format | None:
    """`.json` or `.xml` at the end of the path (of its last segment for `requests/{id}.xml`)."""
    for fmt in Format:
        if path.endswith("." + fmt.value):
            return fmt
    return None


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _append(parent: etree._Element, name: str, value: object) -> None:
    element = etree.SubElement(parent, name)
    if value is None:
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            _append(element, key, item)
    elif isinstance(value, list | tuple):
        child = _ITEM_NAMES.get(name, "item")
        for item in value:
            _append(element, child, item)
    else:
        element.text = _text(value)


def to_xml(root: str, content: Sequence[Any] | Mapping[str, Any]) -> bytes:
    """`root` holding the list's items (named after `root`) or the mapping's fields."""
    element = etree.Element(root)
    if isinstance(content, Mapping):
        for key, value in content.items():
            _append(element, key, value)
    else:
        for item in content:
            _append(element, _ITEM_NAMES[root], item)
    return bytes(etree.tostring(element, xml_declaration=True, encoding="utf-8"))


def plain(value: Any) -> Any:
    """Structs as dicts with the specification's names (they are declared in snake_case)."""
    return msgspec.to_builtins(value)


def render(fmt: Format, root: str, content: Any) -> bytes:
    """JSON: the list (or object) itself; XML: wrapped in `root`."""
    data = plain(content)
    if fmt is Format.JSON:
        return msgspec.json.encode(data)
    return to_xml(root, data)


def errors(fmt: Format, status: int, description: str) -> bytes:
    """GeoReport's error array: `[{"code": 400, "description": "…"}]`."""
    return render(fmt, "errors", [{"code": status, "description": description}])
