"""Open311 GeoReport v2 (decision 030): a town's services, its partner systems' api keys, and
the requests partner clients (Klarschiff, Mark-a-Spot) hand to the town's departments.

Two kinds of Structs live here: the configuration the town admin keeps over our own REST and
GraphQL (camelCase like every other payload), and the GeoReport wire records, whose names are
the specification's (snake_case, `rename=None`), rendered as JSON or XML by the controller.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated
from uuid import UUID

import msgspec

from backend.structs import LINES, Input, Schema

ServiceCode = Annotated[str, msgspec.Meta(pattern=r"^[0-9]{1,14}$", description="LeiKa key of the service")]
ServiceName = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Description = Annotated[str, msgspec.Meta(max_length=2000), LINES]
Keyword = Annotated[str, msgspec.Meta(min_length=1, max_length=60, pattern=r"^[^,]+$")]
AttributeCode = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,60}$")]
KeyDescription = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class Datatype(StrEnum):
    """GeoReport's attribute datatypes."""

    STRING = "string"
    NUMBER = "number"
    DATETIME = "datetime"
    TEXT = "text"
    SINGLEVALUELIST = "singlevaluelist"
    MULTIVALUELIST = "multivaluelist"


class AttributeValue(Input, frozen=True):
    key: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class ServiceAttribute(Input, frozen=True):
    """One question of a service definition (`variable` false: an informational text)."""

    code: AttributeCode
    datatype: Datatype
    description: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
    required: bool = False
    variable: bool = True
    order: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 1
    datatype_description: Annotated[str, msgspec.Meta(max_length=500)] = ""
    values: Annotated[list[AttributeValue], msgspec.Meta(max_length=100)] = []


class Open311ServiceInput(Input, frozen=True):
    """A service the town accepts Open311 requests for (replaced whole)."""

    service_name: ServiceName
    description: Description = ""
    keywords: Annotated[list[Keyword], msgspec.Meta(max_length=30)] = []
    group: Annotated[str, msgspec.Meta(max_length=200)] = ""
    department_id: UUID | None = None  # None: the town's responsibility table decides by the key
    attributes: Annotated[list[ServiceAttribute], msgspec.Meta(max_length=50)] = []


class Open311Service(Schema, frozen=True):
    tenant_id: UUID
    service_code: str
    service_name: str
    description: str
    keywords: list[str]
    group: str
    department_id: UUID | None
    attributes: list[ServiceAttribute]
    updated_at: datetime


class ApiKeyInput(Input, frozen=True):
    description: KeyDescription  # which partner system, e.g. "Klarschiff Soest"


class ApiKey(Schema, frozen=True):
    """A partner system's api key, without the key: only its first characters identify it."""

    tenant_id: UUID
    id: UUID
    key_prefix: str
    description: str
    created_by: str
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyIssued(Schema, frozen=True):
    """Shown once, when issued: only a hash is kept."""

    api_key: ApiKey
    key: str


# --- the GeoReport wire records ------------------------------------------------------------


class Status(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class Submission(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    """A POST to `requests`, as the specification names its fields (form fields or JSON)."""

    service_code: ServiceCode
    lat: Annotated[float, msgspec.Meta(ge=-90, le=90)] | None = None
    long: Annotated[float, msgspec.Meta(ge=-180, le=180)] | None = None
    address_string: Annotated[str, msgspec.Meta(min_length=1, max_length=500)] | None = None
    address_id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    email: Annotated[str, msgspec.Meta(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)] | None = None
    device_id: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    account_id: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    first_name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] | None = None
    last_name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)] | None = None
    phone: Annotated[str, msgspec.Meta(min_length=2, max_length=40)] | None = None
    description: Annotated[str, msgspec.Meta(max_length=4000)] | None = None
    media_url: Annotated[str, msgspec.Meta(pattern=r"^https?://\S+$", max_length=2000)] | None = None
    attribute: dict[str, str | list[str]] = {}


class RequestQuery(msgspec.Struct, frozen=True):
    """GET `requests`: by ids (then nothing else counts), or by service, status and dates."""

    ids: tuple[int, ...] = ()
    service_codes: tuple[str, ...] = ()
    statuses: tuple[Status, ...] = ()
    start: datetime | None = None
    end: datetime | None = None


class GeoReportCreated(msgspec.Struct, frozen=True):
    service_request_id: str
    token: str
    service_notice: str
    account_id: str | None = None


class GeoReportToken(msgspec.Struct, frozen=True):
    service_request_id: str
    token: str


class GeoReportRequest(msgspec.Struct, frozen=True):
    """A request as GET answers it: no personal data (no description, name, e-mail, phone)."""

    service_request_id: str
    status: Status
    status_notes: str
    service_name: str
    service_code: str
    agency_responsible: str
    service_notice: str
    requested_datetime: str
    updated_datetime: str
    expected_datetime: str
    address: str | None
    address_id: str | None
    lat: float | None
    long: float | None
    media_url: str | None
    token: str


class GeoReportService(msgspec.Struct, frozen=True):
    """An entry of GET `services`."""

    service_code: str
    service_name: str
    description: str
    metadata: bool  # true: a service definition lists attributes to ask
    type: str  # "realtime": the request id comes back at once
    keywords: str  # comma-separated
    group: str


class GeoReportAttributeValue(msgspec.Struct, frozen=True):
    key: str
    name: str


class GeoReportAttribute(msgspec.Struct, frozen=True):
    variable: bool
    code: str
    datatype: str
    required: bool
    datatype_description: str
    order: int
    description: str
    values: list[GeoReportAttributeValue]


class GeoReportServiceDefinition(msgspec.Struct, frozen=True):
    """GET `services/{service_code}`."""

    service_code: str
    attributes: list[GeoReportAttribute]


class GeoReportEndpoint(msgspec.Struct, frozen=True):
    specification: str
    url: str
    changeset: str
    type: str
    formats: list[str]


class GeoReportDiscovery(msgspec.Struct, frozen=True):
    changeset: str
    contact: str
    key_service: str
    endpoints: list[GeoReportEndpoint]


class GeoReportError(msgspec.Struct, frozen=True):
    """One entry of GeoReport's error array; `code` is the HTTP status."""

    code: int
    description: str


class RequestRecord(msgspec.Struct, frozen=True):
    """What the facade stores beside a ticket (open311_requests)."""

    tenant_id: UUID
    ticket_id: UUID
    number: int
    service_code: str
    token: UUID
    address_string: str | None
    address_id: str | None
    lat: Decimal | None
    long: Decimal | None
    media_url: str | None
    requested_at: datetime
