"""German town web sites served from a real HTTP server on 127.0.0.1, in a thread.

Host names are told apart by the Host header (the crawl client's resolver sends www.geseke.de,
www.soest.de and www.kreis-soest.de to this server), so a redirect to another host, robots.txt
per host and cross-tenant sites are real HTTP, offline. Pages answer ETag / Last-Modified and
304 to a matching conditional request; every request is logged with its headers.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.support.servers import free_port

DEMO = Path(__file__).parents[2] / "backend" / "webpages" / "demo_pages" / "geseke"


@dataclass
class Resource:
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    status: int = 200
    location: str | None = None
    declare_length: bool = True


@dataclass
class Seen:
    host: str
    path: str
    headers: dict[str, str]
    status: int


def page(title: str, heading: str, *paragraphs: str, links: tuple[str, ...] = ()) -> bytes:
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    anchors = "".join(f'<a href="{href}">{href}</a> ' for href in links)
    return (
        f'<!DOCTYPE html><html lang="de"><head><meta charset="utf-8"><title>{title}</title></head><body>'
        f'<nav><a href="/">Startseite</a> | <a href="/rathaus/">Rathaus</a></nav>'
        f"<main><h1>{heading}</h1>{body}<p>{anchors}</p></main><footer>Impressum · Datenschutz</footer></body></html>"
    ).encode()


@dataclass
class TownSites:
    port: int = field(default_factory=free_port)
    sites: dict[str, dict[str, Resource]] = field(default_factory=dict)  # host name → path → resource
    seen: list[Seen] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    def url(self, host: str, path: str = "/") -> str:
        return f"http://{host}:{self.port}{path}"

    def requests(self, host: str | None = None) -> list[Seen]:
        with self._lock:
            return [s for s in self.seen if host is None or s.host == host]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        sites = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                host = (self.headers.get("host") or "").rsplit(":", 1)[0]
                resource = sites.sites.get(host, {}).get(self.path.split("?")[0])
                status = 404 if resource is None else resource.status
                headers: list[tuple[str, str]] = []
                body = b"<html><body><h1>Seite nicht gefunden</h1></body></html>"
                if resource is not None:
                    body = resource.body
                    etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
                    if resource.status == 200:
                        headers += [("ETag", etag), ("Last-Modified", "Mon, 30 Nov 2026 08:00:00 GMT")]
                        if self.headers.get("if-none-match") == etag:
                            status, body = 304, b""
                    if resource.location:
                        headers.append(("Location", resource.location))
                with sites._lock:
                    sites.seen.append(Seen(host, self.path, {k.lower(): v for k, v in self.headers.items()}, status))
                self.send_response(status)
                self.send_header("Content-Type", resource.content_type if resource else "text/html")
                if resource is None or resource.declare_length:
                    self.send_header("Content-Length", str(len(body)))
                for name, value in headers:
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def start(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def geseke_site(sites: TownSites, host: str, other_host: str) -> dict[str, Resource]:
    """Stadt Geseke's site: the shipped demo pages and the awkward ones a crawl meets."""
    paths = {
        "/buergerbuero.html": "buergerbuero.html",
        "/leben/abfall/sperrmuell.html": "sperrmuell.html",
        "/rathaus/steuern/hundesteuer.html": "hundesteuer.html",
    }
    site = {path: Resource((DEMO / name).read_bytes()) for path, name in paths.items()}
    listed = [
        *paths,
        "/intern/personalrat.html",
        "/umzug.html",
        "/haushaltsplan.html",
        "/satzung-abfall.pdf",
        "/veranstaltungen.html",
        "/altes-angebot.html",
    ]
    sitemap = "".join(f"<url><loc>{sites.url(host, p)}</loc></url>" for p in listed)
    site.update(
        {
            "/robots.txt": Resource(b"User-agent: *\nDisallow: /intern/\n", "text/plain"),
            "/sitemap.xml": Resource(
                (
                    '<?xml version="1.0" encoding="UTF-8"?>'
                    f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{sitemap}</urlset>'
                ).encode(),
                "application/xml",
            ),
            "/intern/personalrat.html": Resource(
                page("Personalrat", "Personalrat intern", "Nur für Beschäftigte der Stadtverwaltung Geseke.")
            ),
            "/umzug.html": Resource(b"", status=301, location=sites.url(other_host, "/umzug.html")),
            # A huge page, without Content-Length: the limit must hold while reading.
            "/haushaltsplan.html": Resource(
                page(
                    "Haushaltsplan",
                    "Haushaltsplan 2027",
                    *(["Produktbereich Finanzen, Ansatz 1.234.567 Euro."] * 40_000),
                ),
                declare_length=False,
            ),
            "/satzung-abfall.pdf": Resource(b"%PDF-1.7\n% Abfallsatzung der Stadt Geseke\n", "application/pdf"),
            "/veranstaltungen.html": Resource(
                page(
                    "Veranstaltungen",
                    "Veranstaltungen in Geseke",
                    "Der Hellweg-Markt findet am Samstag, 12. Dezember, auf dem Marktplatz statt.",
                )
            ),
            "/altes-angebot.html": Resource(
                page(
                    "Altkleidersammlung",
                    "Altkleidersammlung",
                    "Die Altkleidersammlung des Bauhofs findet jeden ersten Montag im Monat statt.",
                )
            ),
        }
    )
    return site
