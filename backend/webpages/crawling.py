"""Fetching a town's site politely (decision 025): robots.txt, conditional requests, a pause
between requests, only the allowed hosts, size and time limits, HTML only; the main text taken
out with trafilatura.

Everything goes through the outbound client it is given (`outbound.outbound_client`, decision
014): the policy is applied to each connection, redirects are followed here, hop by hop, so a
redirect to a host outside the site is refused before it is requested. No database here: the
worker reads what it needs first and writes the result after, holding no connection meanwhile.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import urllib.robotparser
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import urldefrag, urljoin, urlsplit

import httpx
import lxml.etree
import lxml.html
import structlog
import trafilatura
from trafilatura.settings import Document

from backend.webpages.repository import KnownPage, PageContent
from backend.webpages.schemas import WebSite
from outbound import refusal_of

log = structlog.get_logger("webpages.crawl")

# robots.txt groups name us by this token; the User-Agent header carries it too (RFC 9309 §2.2.1).
ROBOTS_TOKEN = "Buergerservice"
USER_AGENT = f"{ROBOTS_TOKEN}/1.0 (Seitenabruf fuer das Servicecenter; robots.txt wird beachtet)"
HTML_TYPES = ("text/html", "application/xhtml+xml")
MAX_REDIRECTS = 3
MAX_SITEMAPS = 10  # children of a sitemap index read per round


@dataclass(frozen=True, slots=True)
class CrawlLimits:
    delay_seconds: float = 1.0  # between two requests to one host, unless robots.txt asks for more
    max_bytes: int = 2_000_000  # a page larger than this is skipped, not cut
    timeout_seconds: float = 10.0  # per request, whole body included
    max_pages: int = 200  # per site and round
    max_depth: int = 2  # links followed from the start URLs


class Outcome(StrEnum):
    NEW = "new"
    CHANGED = "changed"
    UNCHANGED = "unchanged"
    GONE = "gone"  # 404 or 410: marked, drops out of search
    SKIPPED = "skipped"  # not HTML, too large, no text, refused by robots.txt or host rules
    FAILED = "failed"  # the site did not answer usably this time; the stored page stays


@dataclass(frozen=True, slots=True)
class PageResult:
    url: str
    outcome: Outcome
    content: PageContent | None = None
    problem: str | None = None


@dataclass
class CrawlResult:
    pages: list[PageResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class Refused(Exception):
    """A URL this crawl will not fetch (another host, robots.txt, too large, not HTML …)."""


class Failed(Exception):
    """The site did not answer usably (connection, timeout, status 5xx …)."""


@dataclass(frozen=True, slots=True)
class Answer:
    url: str  # after redirects
    status: int
    headers: httpx.Headers
    body: bytes


def host_of(url: str) -> str:
    return urlsplit(url).netloc.lower()


def normalised(url: str) -> str:
    return urldefrag(url)[0]


def extract(html: bytes | str, url: str) -> tuple[str, str] | None:
    """Title and main text of a page (navigation, footers and boilerplate left out)."""
    document = trafilatura.bare_extraction(html, url=url, with_metadata=True, favor_recall=True)
    if not isinstance(document, Document):
        return None
    text = (document.text or "").strip()
    return ((document.title or "").strip(), text) if text else None


def content_hash(title: str, text: str) -> str:
    # The extracted text, not the bytes: a new banner or session token in the markup is no change.
    return hashlib.sha256(f"{title}\n{text}".encode()).hexdigest()


class Crawler:
    def __init__(
        self,
        http: httpx.AsyncClient,
        site: WebSite,
        limits: CrawlLimits,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.http = http
        self.site = site
        self.limits = limits
        self.sleep = sleep
        self.hosts = {host_of(site.base_url), *(h.lower() for h in site.allowed_hosts)}
        self.robots: dict[str, urllib.robotparser.RobotFileParser] = {}
        self.robots_unread: set[str] = set()  # hosts whose robots.txt could not be read
        self.last_request: dict[str, float] = {}

    # ------------------------------------------------------------------ politeness
    async def _pause(self, host: str) -> None:
        robots = self.robots.get(host)
        delay = max(self.limits.delay_seconds, float((robots and robots.crawl_delay(ROBOTS_TOKEN)) or 0))
        last = self.last_request.get(host)
        if last is not None and delay > 0:
            wait = last + delay - time.monotonic()
            if wait > 0:
                await self.sleep(wait)
        self.last_request[host] = time.monotonic()

    async def _robots(self, url: str) -> urllib.robotparser.RobotFileParser:
        host = host_of(url)
        if host in self.robots:
            return self.robots[host]
        parser = urllib.robotparser.RobotFileParser()
        robots_url = f"{urlsplit(url).scheme}://{host}/robots.txt"
        try:
            answer = await self._request(robots_url, {}, check_robots=False)
        except Failed:
            answer = None  # a refusal (host, address) is this URL's refusal too: it propagates
        if answer is not None and 200 <= answer.status < 300:
            parser.parse(answer.body.decode("utf-8", "replace").splitlines())
        elif answer is not None and 400 <= answer.status < 500:
            parser.parse([])  # no robots.txt: everything may be fetched (RFC 9309 §2.3.1.3)
        else:
            parser.parse(["User-agent: *", "Disallow: /"])  # unreachable: nothing may be (§2.3.1.4)
            self.robots_unread.add(host)
        self.robots[host] = parser
        return parser

    # ------------------------------------------------------------------ one request
    async def _request(self, url: str, headers: dict[str, str], *, check_robots: bool = True) -> Answer:
        """GET with redirects followed here, each hop checked (host, robots.txt), the body
        read up to the size limit, the whole within the time limit."""
        for _ in range(MAX_REDIRECTS + 1):
            host = host_of(url)
            if host not in self.hosts:
                raise Refused(f"host {host} is not allowed for this site")
            if check_robots and not (await self._robots(url)).can_fetch(ROBOTS_TOKEN, url):
                unread = host in self.robots_unread
                raise Refused("robots.txt could not be read" if unread else "robots.txt disallows it")
            await self._pause(host)
            try:
                async with asyncio.timeout(self.limits.timeout_seconds):
                    answer = await self._read(url, headers)
            except TimeoutError:
                raise Failed("no answer within the time limit") from None
            except httpx.HTTPError as error:
                refusal = refusal_of(error)
                if refusal is not None:
                    raise Refused(f"address not allowed for outbound requests ({refusal.reason})") from None
                raise Failed(f"request failed ({type(error).__name__})") from None
            if answer.status in (301, 302, 303, 307, 308) and "location" in answer.headers:
                target = normalised(urljoin(url, answer.headers["location"]))
                if host_of(target) not in self.hosts:
                    raise Refused(f"redirects to {host_of(target)}, which is not allowed for this site")
                url = target
                continue
            return answer
        raise Failed("too many redirects")

    async def _read(self, url: str, headers: dict[str, str]) -> Answer:
        request_headers = {"User-Agent": USER_AGENT, "Accept": "text/html,application/xhtml+xml;q=0.9,*/*;q=0.1"}
        async with self.http.stream("GET", url, headers={**request_headers, **headers}) as response:
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self.limits.max_bytes:
                raise Refused(f"larger than {self.limits.max_bytes} bytes")
            body = bytearray()
            if 200 <= response.status_code < 300:
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > self.limits.max_bytes:
                        raise Refused(f"larger than {self.limits.max_bytes} bytes")
            return Answer(url, response.status_code, response.headers, bytes(body))

    # ------------------------------------------------------------------ the site
    async def _sitemap(self, url: str, result: CrawlResult, depth: int = 0) -> list[str]:
        try:
            answer = await self._request(url, {})
        except (Refused, Failed) as error:
            result.problems.append(f"{url}: {error}")
            return []
        if answer.status != 200:
            result.problems.append(f"{url}: status {answer.status}")
            return []
        # No entities, no network, no huge trees: a sitemap is input from outside (decision 019).
        parser = lxml.etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
        try:
            root = lxml.etree.fromstring(answer.body, parser=parser)
        except lxml.etree.XMLSyntaxError:
            result.problems.append(f"{url}: not a readable sitemap")
            return []
        locations = [(loc.text or "").strip() for loc in root.iter("{*}loc")]
        if lxml.etree.QName(root).localname == "sitemapindex" and depth == 0:
            urls: list[str] = []
            for child in locations[:MAX_SITEMAPS]:
                urls += await self._sitemap(child, result, depth + 1)
            return urls
        return [normalised(u) for u in locations if u.startswith(("http://", "https://"))]

    def _links(self, answer: Answer) -> list[str]:
        try:
            document = lxml.html.fromstring(answer.body)
        except (lxml.etree.ParserError, ValueError):
            return []
        links = []
        for anchor in document.iter("a"):
            href = anchor.get("href")
            if not href:
                continue
            target = normalised(urljoin(answer.url, href))
            if target.startswith(("http://", "https://")) and host_of(target) in self.hosts:
                links.append(target)
        return links

    async def _page(self, url: str, known: KnownPage | None) -> tuple[PageResult, Answer | None]:
        headers = {}
        if known is not None and not known.gone:
            if known.etag:
                headers["If-None-Match"] = known.etag
            if known.last_modified:
                headers["If-Modified-Since"] = known.last_modified
        try:
            answer = await self._request(url, headers)
        except Refused as error:
            return PageResult(url, Outcome.SKIPPED, problem=str(error)), None
        except Failed as error:
            return PageResult(url, Outcome.FAILED, problem=str(error)), None
        if answer.status == 304 and known is not None:
            return PageResult(url, Outcome.UNCHANGED), None
        if answer.status in (404, 410):
            return PageResult(url, Outcome.GONE, problem=f"status {answer.status}"), None
        if answer.status != 200:
            return PageResult(url, Outcome.FAILED, problem=f"status {answer.status}"), None
        media = answer.headers.get("content-type", "").split(";")[0].strip().lower()
        if media not in HTML_TYPES:
            return PageResult(url, Outcome.SKIPPED, problem=f"not HTML ({media or 'no type'})"), None
        extracted = await asyncio.to_thread(extract, answer.body, answer.url)
        if extracted is None:
            return PageResult(url, Outcome.SKIPPED, problem="no main text found"), answer
        title, text = extracted
        content = PageContent(
            url=url,
            title=title,
            text=text,
            content_hash=content_hash(title, text),
            etag=answer.headers.get("etag"),
            last_modified=answer.headers.get("last-modified"),
        )
        if known is None:
            outcome = Outcome.NEW
        elif known.content_hash == content.content_hash and not known.gone:
            outcome = Outcome.UNCHANGED
        else:
            outcome = Outcome.CHANGED
        return PageResult(url, outcome, content), answer

    async def crawl(self, known: dict[str, KnownPage]) -> CrawlResult:
        """One round over the site: the sitemap's pages, the start URLs and the pages they link
        to (breadth first, to `max_depth`), and every page stored before (to see it vanish)."""
        result = CrawlResult()
        queue: list[tuple[str, int]] = []
        if self.site.sitemap_url:
            queue += [(u, self.limits.max_depth) for u in await self._sitemap(self.site.sitemap_url, result)]
        queue += [(normalised(u), 0) for u in self.site.start_urls]
        queue += [(u, self.limits.max_depth) for u in known]
        seen: set[str] = set()
        while queue and len(seen) < self.limits.max_pages:
            url, depth = queue.pop(0)
            if url in seen:
                continue
            seen.add(url)
            page, answer = await self._page(url, known.get(url))
            result.pages.append(page)
            if page.problem and page.outcome in (Outcome.SKIPPED, Outcome.FAILED):
                result.problems.append(f"{url}: {page.problem}")
            if answer is not None and depth < self.limits.max_depth:
                queue += [(link, depth + 1) for link in self._links(answer) if link not in seen]
        log.info(
            "web_site_crawled",
            site_id=str(self.site.id),
            pages=len(result.pages),
            outcomes=_counts(p.outcome for p in result.pages),
        )
        return result


def _counts(outcomes: Iterable[Outcome]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome.value] = counts.get(outcome.value, 0) + 1
    return counts
