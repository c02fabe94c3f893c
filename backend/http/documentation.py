"""What the OpenAPI document says beyond what litestar derives from the handlers: stable
operation ids, the probes' missing security, licence and tag descriptions, the outgoing ticket
webhooks (issue 18, decision 021).

Operation ids are what generated clients name their methods after (`client.listDepartments()`),
so they are part of the contract: one table, keyed by method and path, that a renamed Python
function cannot change. A route missing here falls back to its function name in camelCase;
tests/contracts/test_documentation.py fails until it is added.
"""

from __future__ import annotations

from litestar import Litestar
from litestar._openapi.plugin import OpenAPIPlugin
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.spec import (
    License,
    OpenAPI,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    PathItem,
    Schema,
    SecurityScheme,
    Tag,
)
from litestar.types import Method
from litestar.types.internal_types import PathParameterDefinition

OPERATION_IDS: dict[tuple[str, str], str] = {
    ("GET", "/healthz"): "checkLiveness",
    ("GET", "/metrics"): "getMetrics",
    ("GET", "/readyz"): "checkReadiness",
    ("GET", "/v1/agreement-terms"): "listAgreementTerms",
    ("GET", "/v1/agreements"): "listAgreements",
    ("POST", "/v1/agreements"): "createAgreement",
    ("POST", "/v1/agreements/{agreement_id}/termination"): "terminateAgreement",
    ("POST", "/v1/articles/import"): "importArticles",
    ("GET", "/v1/articles/search"): "searchArticles",
    ("GET", "/v1/articles/{article_id}"): "getArticle",
    ("GET", "/v1/calls"): "listCalls",
    ("POST", "/v1/calls"): "recordCall",
    ("POST", "/v1/calls/events"): "recordCallEvent",
    ("POST", "/v1/calls/import"): "importCalls",
    ("GET", "/v1/calls/{call_id}"): "getCall",
    ("PUT", "/v1/calls/{call_id}/outcome"): "recordCallOutcome",
    ("PUT", "/v1/calls/{call_id}/tenant"): "assignCallTenant",
    ("GET", "/v1/cost-bases"): "listCostBases",
    ("PUT", "/v1/cost-bases"): "recordCostBase",
    ("GET", "/v1/figures"): "getFigures",
    ("GET", "/v1/figures.csv"): "getFiguresCsv",
    ("POST", "/v1/identity-issuers/verify-token"): "verifyToken",
    ("POST", "/v1/invoice-runs"): "runInvoices",
    ("GET", "/v1/invoices"): "listInvoices",
    ("GET", "/v1/invoices/{invoice_id}"): "getInvoice",
    ("POST", "/v1/invoices/{invoice_id}/cancellation"): "cancelInvoice",
    ("POST", "/v1/invoices/{invoice_id}/issue"): "issueInvoice",
    ("GET", "/v1/invoices/{invoice_id}/xrechnung"): "getInvoiceXrechnung",
    ("GET", "/v1/invoices/{invoice_id}/calls"): "getInvoiceCalls",
    ("GET", "/v1/invoices/{invoice_id}/calls.csv"): "getInvoiceCallsCsv",
    ("POST", "/v1/leika-catalogue"): "importLeikaCatalogue",
    ("POST", "/v1/knowledge/xzufi-imports"): "importXzufi",
    ("GET", "/v1/knowledge/articles/{article_id}/sources"): "listArticleSectionSources",
    ("POST", "/v1/knowledge/articles/{article_id}/sources/confirm"): "confirmSourceChanges",
    ("GET", "/v1/knowledge/xzufi-transfer"): "getXzufiTransfer",
    ("PUT", "/v1/knowledge/xzufi-transfer"): "setXzufiTransfer",
    ("POST", "/v1/knowledge/xzufi-transfer/run"): "runXzufiTransfer",
    ("GET", "/v1/leika-services/{leika_key}"): "getLeikaService",
    ("GET", "/v1/me"): "getMe",
    ("POST", "/v1/rate-adoptions"): "adoptRate",
    ("POST", "/v1/rate-proposals"): "proposeRate",
    ("GET", "/v1/rate-consultation"): "getRateConsultation",
    ("POST", "/v1/tenants/{slug}/rate-decisions"): "decideRate",
    ("GET", "/v1/rate-proposal"): "getRateProposal",
    ("GET", "/v1/routing"): "getRoutingDecision",
    ("GET", "/v1/service-numbers"): "listServiceNumbers",
    ("POST", "/v1/service-numbers"): "createServiceNumber",
    ("GET", "/v1/service-numbers/{number_id}"): "getServiceNumber",
    ("PATCH", "/v1/service-numbers/{number_id}"): "updateServiceNumber",
    ("POST", "/v1/service-numbers/{number_id}/move"): "moveServiceNumber",
    ("GET", "/v1/tariffs"): "listTariffs",
    ("POST", "/v1/tariffs"): "createTariff",
    ("PUT", "/v1/tariffs/{tariff_id}"): "changeTariff",
    ("PATCH", "/v1/tariffs/{tariff_id}"): "amendTariff",
    ("GET", "/v1/tenants"): "listTenants",
    ("POST", "/v1/tenants"): "createTenant",
    ("GET", "/v1/tenants/{slug}"): "getTenant",
    ("PATCH", "/v1/tenants/{slug}"): "updateTenant",
    ("GET", "/v1/tenants/{slug}/area-codes"): "listAreaCodes",
    ("PUT", "/v1/tenants/{slug}/area-codes"): "setAreaCode",
    ("DELETE", "/v1/tenants/{slug}/area-codes/{area_code}/{ags}"): "removeAreaCode",
    ("GET", "/v1/tenants/{slug}/billing-profile"): "getBillingProfile",
    ("PUT", "/v1/tenants/{slug}/billing-profile"): "setBillingProfile",
    ("GET", "/v1/tenants/{slug}/closing-days"): "listClosingDays",
    ("DELETE", "/v1/tenants/{slug}/closing-days/{day}"): "removeClosingDay",
    ("PUT", "/v1/tenants/{slug}/closing-days/{day}"): "setClosingDay",
    ("GET", "/v1/tenants/{slug}/departments"): "listDepartments",
    ("POST", "/v1/tenants/{slug}/departments"): "addDepartment",
    ("PUT", "/v1/tenants/{slug}/departments/{department_id}"): "updateDepartment",
    ("PUT", "/v1/tenants/{slug}/figure-targets"): "setFigureTargets",
    ("GET", "/v1/tenants/{slug}/identity-issuers"): "listIdentityIssuers",
    ("POST", "/v1/tenants/{slug}/identity-issuers"): "addIdentityIssuer",
    ("DELETE", "/v1/tenants/{slug}/identity-issuers/{issuer_id}"): "removeIdentityIssuer",
    ("POST", "/v1/tenants/{slug}/identity-issuers/{issuer_id}/key-refresh"): "refreshIssuerKeys",
    ("GET", "/v1/tenants/{slug}/identity-issuers/{issuer_id}/refusals"): "listSignInRefusals",
    ("GET", "/v1/tenants/{slug}/operator-absences"): "listOperatorAbsences",
    ("POST", "/v1/tenants/{slug}/operator-absences/dated"): "addDatedOperatorAbsence",
    ("POST", "/v1/tenants/{slug}/operator-absences/weekly"): "addWeeklyOperatorAbsence",
    ("DELETE", "/v1/tenants/{slug}/operator-absences/{absence_id}"): "removeOperatorAbsence",
    ("GET", "/v1/tenants/{slug}/telephony-settings"): "getTelephonySettings",
    ("PUT", "/v1/tenants/{slug}/telephony-settings"): "setTelephonySettings",
    ("GET", "/v1/tenants/{slug}/ticket-audit"): "listTicketAudit",
    ("GET", "/v1/tenants/{slug}/ticket-routes"): "getTicketRoutes",
    ("PUT", "/v1/tenants/{slug}/ticket-routes"): "replaceTicketRoutes",
    ("GET", "/v1/tenants/{slug}/ticket-settings"): "getTicketSettings",
    ("PATCH", "/v1/tenants/{slug}/ticket-settings"): "updateTicketSettings",
    ("GET", "/v1/tenants/{slug}/webhook-deliveries"): "listWebhookDeliveries",
    ("GET", "/v1/tenants/{slug}/webhooks"): "listWebhooks",
    ("POST", "/v1/tenants/{slug}/webhooks"): "addWebhook",
    ("DELETE", "/v1/tenants/{slug}/webhooks/{endpoint_id}"): "removeWebhook",
    ("POST", "/v1/tenants/{slug}/webhooks/{endpoint_id}/resume"): "resumeWebhook",
    ("POST", "/v1/tenants/{slug}/webhooks/{endpoint_id}/secret-rotation"): "rotateWebhookSecret",
    ("GET", "/v1/tickets"): "listTickets",
    ("POST", "/v1/tickets"): "createTicket",
    ("GET", "/v1/tickets/changes"): "listTicketChanges",
    ("GET", "/v1/tickets/{ticket_id}"): "getTicket",
    ("PUT", "/v1/tickets/{ticket_id}/assignment"): "assignTicket",
    ("POST", "/v1/tickets/{ticket_id}/callback-attempts"): "recordCallbackAttempt",
    ("POST", "/v1/tickets/{ticket_id}/comments"): "addTicketComment",
    ("PUT", "/v1/tickets/{ticket_id}/department"): "changeTicketDepartment",
    ("GET", "/v1/tickets/{ticket_id}/events"): "listTicketEvents",
    ("POST", "/v1/tickets/{ticket_id}/status"): "changeTicketStatus",
    ("POST", "/v1/true-ups"): "createTrueUp",
    # The centre live (decision 029)
    ("GET", "/v1/centre"): "getCentreNow",
    ("PUT", "/v1/agent-status"): "setAgentStatus",
    ("GET", "/v1/calls/{call_id}/reassignments"): "listCallReassignments",
    # Directory (decision 023)
    ("PUT", "/v1/directory/my-presence"): "setMyPresence",
    ("GET", "/v1/forwarding"): "decideForwarding",
    ("POST", "/v1/forwarding/messages"): "takeMessage",
    ("GET", "/v1/tenants/{slug}/web-sites"): "listWebSites",
    ("POST", "/v1/tenants/{slug}/web-sites"): "registerWebSite",
    ("POST", "/v1/tenants/{slug}/web-sites/{site_id}/fetch"): "fetchWebSiteSoon",
    ("GET", "/v1/tenants/{slug}/web-pages"): "searchWebPages",
    ("POST", "/v1/tenants/{slug}/web-pages/{page_id}/article-draft"): "createArticleDraftFromWebPage",
    ("GET", "/v1/tenants/{slug}/directory/department-lines"): "listDepartmentLines",
    ("PUT", "/v1/tenants/{slug}/directory/department-lines/{department_id}"): "setDepartmentLine",
    ("GET", "/v1/tenants/{slug}/directory/people"): "listDirectoryPeople",
    ("POST", "/v1/tenants/{slug}/directory/people"): "createDirectoryPerson",
    ("GET", "/v1/tenants/{slug}/directory/people/{person_id}"): "getDirectoryPerson",
    ("PUT", "/v1/tenants/{slug}/directory/people/{person_id}"): "replaceDirectoryPerson",
    ("DELETE", "/v1/tenants/{slug}/directory/people/{person_id}"): "removeDirectoryPerson",
    ("GET", "/v1/tenants/{slug}/directory/people/{person_id}/absences"): "listPersonAbsences",
    ("POST", "/v1/tenants/{slug}/directory/people/{person_id}/absences/dated"): "addDatedPersonAbsence",
    ("POST", "/v1/tenants/{slug}/directory/people/{person_id}/absences/weekly"): "addWeeklyPersonAbsence",
    ("DELETE", "/v1/tenants/{slug}/directory/people/{person_id}/absences/{absence_id}"): "removePersonAbsence",
    ("GET", "/v1/tenants/{slug}/directory/people/{person_id}/presence"): "getPersonPresence",
    ("GET", "/v1/tenants/{slug}/directory/people/{person_id}/private-number"): "getPrivateNumber",
    ("PUT", "/v1/tenants/{slug}/directory/people/{person_id}/private-number"): "setPrivateNumber",
    ("GET", "/v1/tenants/{slug}/directory/private-number-reads"): "listPrivateNumberReads",
    ("GET", "/v1/tenants/{slug}/directory/group-membership"): "getGroupMembership",
    ("PUT", "/v1/tenants/{slug}/directory/group-membership"): "setGroupMembership",
    ("POST", "/v1/tenants/{slug}/directory/presence-events"): "recordPresenceEvent",
    ("GET", "/v1/tenants/{slug}/directory/responsibilities"): "listResponsibilities",
    ("POST", "/v1/tenants/{slug}/directory/responsibilities"): "addResponsibility",
    ("DELETE", "/v1/tenants/{slug}/directory/responsibilities/{responsibility_id}"): "removeResponsibility",
    # Open311 (decision 030): GeoReport v2 in both formats, and the town admin's configuration
    ("GET", "/open311/v2/discovery.json"): "getOpen311DiscoveryJson",
    ("GET", "/open311/v2/discovery.xml"): "getOpen311DiscoveryXml",
    ("GET", "/open311/v2/services.json"): "listOpen311ServicesJson",
    ("GET", "/open311/v2/services.xml"): "listOpen311ServicesXml",
    ("GET", "/open311/v2/services/{service_file}"): "getOpen311ServiceDefinition",
    ("GET", "/open311/v2/requests.json"): "listOpen311RequestsJson",
    ("GET", "/open311/v2/requests.xml"): "listOpen311RequestsXml",
    ("POST", "/open311/v2/requests.json"): "createOpen311RequestJson",
    ("POST", "/open311/v2/requests.xml"): "createOpen311RequestXml",
    ("GET", "/open311/v2/requests/{request_file}"): "getOpen311Request",
    ("GET", "/open311/v2/tokens/{token_file}"): "getOpen311Token",
    ("GET", "/v1/tenants/{slug}/open311-services"): "listOpen311Services",
    ("PUT", "/v1/tenants/{slug}/open311-services/{service_code}"): "setOpen311Service",
    ("DELETE", "/v1/tenants/{slug}/open311-services/{service_code}"): "removeOpen311Service",
    ("GET", "/v1/tenants/{slug}/open311-keys"): "listOpen311ApiKeys",
    ("POST", "/v1/tenants/{slug}/open311-keys"): "issueOpen311ApiKey",
    ("POST", "/v1/tenants/{slug}/open311-keys/{key_id}/revocation"): "revokeOpen311ApiKey",
    ("POST", "/v1/tenants/{slug}/directory/import"): "importDirectory",
    ("GET", "/v1/tenants/{slug}/directory/search"): "searchDirectory",
    ("GET", "/scim/v2/{slug}/ServiceProviderConfig"): "scimServiceProviderConfig",
    ("GET", "/scim/v2/{slug}/ResourceTypes"): "scimResourceTypes",
    ("GET", "/scim/v2/{slug}/Schemas"): "scimSchemas",
    ("GET", "/scim/v2/{slug}/Users"): "scimListUsers",
    ("POST", "/scim/v2/{slug}/Users"): "scimCreateUser",
    ("GET", "/scim/v2/{slug}/Users/{user_id}"): "scimGetUser",
    ("PUT", "/scim/v2/{slug}/Users/{user_id}"): "scimReplaceUser",
    ("PATCH", "/scim/v2/{slug}/Users/{user_id}"): "scimPatchUser",
    ("DELETE", "/scim/v2/{slug}/Users/{user_id}"): "scimDeleteUser",
    ("GET", "/scim/v2/{slug}/Groups"): "scimListGroups",
    ("POST", "/scim/v2/{slug}/Groups"): "scimCreateGroup",
    ("GET", "/scim/v2/{slug}/Groups/{group_id}"): "scimGetGroup",
    ("PUT", "/scim/v2/{slug}/Groups/{group_id}"): "scimReplaceGroup",
    ("PATCH", "/scim/v2/{slug}/Groups/{group_id}"): "scimPatchGroup",
    ("DELETE", "/scim/v2/{slug}/Groups/{group_id}"): "scimDeleteGroup",
}

# Open without a token: what load balancers and kubelets call, and Open311's discovery.
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/open311/v2/discovery.json", "/open311/v2/discovery.xml"})
# Prometheus' path: open, or with METRICS_TOKEN set only with that bearer secret (decision 015).
METRICS_PATH = "/metrics"
METRICS_TOKEN = SecurityScheme(
    type="http",
    scheme="bearer",
    description="METRICS_TOKEN, when the deployment sets one (not a sign-in token)",
)


def operation_id(handler: HTTPRouteHandler, method: Method, components: list[str | PathParameterDefinition]) -> str:
    """litestar's `operation_id_creator`: the id from OPERATION_IDS."""
    path = "/" + "/".join(c if isinstance(c, str) else "{" + c.name + "}" for c in components)
    known = OPERATION_IDS.get((getattr(method, "value", str(method)).upper(), path))
    if known is not None:
        return known
    first, *rest = handler.handler_name.split("_")
    return first + "".join(word.title() for word in rest)


TAGS = [
    Tag(
        name="tenants",
        description="Municipalities, their departments, service hours, closing days, "
        "identity providers and agreements with the operator.",
    ),
    Tag(
        name="telephony",
        description="Service numbers, routing decisions for dialled numbers and call records "
        "from the telephone systems.",
    ),
    Tag(
        name="centre",
        description="The centre now for supervisors and the wallboard: waiting calls, agents, today's service "
        "level and first-contact rate, callbacks due; the agents' statuses.",
    ),
    Tag(
        name="directory",
        description="A town's contact persons, their responsibilities, substitutes and presence, and the "
        "forwarding decision for the qualified transfer of a call.",
    ),
    Tag(
        name="scim",
        description="SCIM 2.0 (RFC 7643/7644) per town for its identity provider: Users are the directory's "
        "people, Groups its departments. Errors are SCIM error messages, not problem+json.",
    ),
    Tag(
        name="tickets",
        description="Concerns forwarded to a town's department with the callback deadline, "
        "their workflow, and the signed webhooks that tell partner systems about changes.",
    ),
    Tag(name="knowledge", description="Knowledge articles agents answer from, the LeiKa catalogue and search."),
    Tag(
        name="billing",
        description="Tariffs, invoices and credit notes (XRechnung), the yearly rate and the 115 figures.",
    ),
    Tag(
        name="open311",
        description="Open311 GeoReport v2 for partner towns' clients (JSON and XML; errors as GeoReport's "
        "error array), and the town admin's Open311 services and api keys.",
    ),
    Tag(
        name="operations",
        description="Probes and metrics for load balancers, Kubernetes and Prometheus; open without a token.",
    ),
]

# The licence the API description is published under (EUPL-1.2, the EU's licence for public
# administrations' software); the service's own terms are the operator's agreement with each town.
LICENSE = License(name="EUPL-1.2", identifier="EUPL-1.2")


XML = "text/xml"


def _formats_by_suffix(path: str, item: PathItem) -> None:
    """Routes that answer in the format their path ends with (Open311's `requests.xml`, and
    `requests/{request_file}` for `123.json` or `123.xml`): litestar documents one media type,
    JSON; an `.xml` path answers XML only, a `{…_file}` path either."""
    either = path.endswith("_file}")
    if not path.endswith(".xml") and not either:
        return
    for operation in (item.get, item.post):
        for response in (operation.responses or {}).values() if operation is not None else ():
            if isinstance(response, OpenAPIResponse) and response.content:
                xml = OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING, description="the same, as XML"))
                response.content = {**response.content, XML: xml} if either else {XML: xml}


def complete(document: OpenAPI) -> None:
    """What litestar cannot say: the probes need no token (`security: []`; litestar drops an
    empty list as if nothing was said, and the document's readers then assume the bearer)."""
    for path, item in (document.paths or {}).items():
        _formats_by_suffix(path, item)
        if path in PUBLIC_PATHS and item.get is not None:
            item.get.security = []
        if path == METRICS_PATH and item.get is not None:
            item.get.security = [{}, {"metricsToken": []}]  # either: open, or the secret when set
            if document.components is not None:
                schemes = document.components.security_schemes or {}
                document.components.security_schemes = {**schemes, "metricsToken": METRICS_TOKEN}


def document_completely(app: Litestar) -> None:
    """Have `complete` run whenever litestar builds the document (on first use, so starting the
    app stays as fast as it was). The plugin instance (slotted) becomes a subclass of whatever
    class it has now, so other hooks done the same way before this one keep running."""
    plugin = app.plugins.get(OpenAPIPlugin)
    base = type(plugin)

    def _build_openapi(self: OpenAPIPlugin) -> OpenAPI:
        document = base._build_openapi(self)
        complete(document)
        return document

    plugin.__class__ = type(f"Completed{base.__name__}", (base,), {"__slots__": (), "_build_openapi": _build_openapi})
