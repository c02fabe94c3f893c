"""SCIM 2.0 (RFC 7643/7644) for a town's identity provider: Users are the directory's people,
Groups its departments (decision 027). The subset identity providers use — create, replace,
patch, delete, list with `filter=<attribute> eq "…"` and paging — in the shapes Entra ID and
Keycloak really send: capitalised ops (`"Replace"`), a patch without `path` whose value object
holds the attributes (dotted names and the enterprise extension's URN as keys), `active` as the
string "False". Attributes we do not keep are accepted and ignored, so a provider's full
profile never fails a sync; malformed requests are refused with SCIM's `scimType`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import msgspec

from auth.permissions import Operation
from backend.directory import compiled, repository
from backend.directory.provisioning import deprovision, save_person
from backend.directory.schemas import Person, PersonInput
from backend.errors import Conflict, NotFound, ValidationFailed
from backend.i18n import _l
from backend.state import UnitOfWork
from backend.structs import error_field
from backend.tenants.reach import reach

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
MAX_COUNT = 200
_FILTER = re.compile(r'^\s*([A-Za-z][\w.:]*)\s+eq\s+"((?:[^"\\]|\\.)*)"\s*$', re.IGNORECASE)
_TYPED = re.compile(r'^(emails|phoneNumbers)\[type eq "(\w+)"\]\.value$', re.IGNORECASE)
_MEMBER = re.compile(r'^members\[value eq "([^"]+)"\]$', re.IGNORECASE)
OP = Operation.DIRECTORY_PROVISION


def invalid(message: Any, scim_type: str = "invalidValue", field: str | None = None) -> ValidationFailed:
    return ValidationFailed(message, field=field, scim_type=scim_type)


# --- representation --------------------------------------------------------------------------


def user_resource(person: Person, base: str, department: str | None) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "schemas": [USER, ENTERPRISE],
        "id": str(person.id),
        "userName": person.user_name,
        "name": {"givenName": person.given_name, "familyName": person.family_name},
        "displayName": f"{person.given_name} {person.family_name}".strip(),
        "title": person.function,
        "active": person.active,
        "emails": [{"value": person.email, "type": "work", "primary": True}] if person.email else [],
        "phoneNumbers": [{"value": person.phone, "type": "work"}] if person.phone else [],
        ENTERPRISE: {"department": department} if department else {},
        "meta": {"resourceType": "User", "location": f"{base}/Users/{person.id}", "version": f'W/"{person.version}"'},
    }
    if person.external_id is not None:
        resource["externalId"] = person.external_id
    return resource


def group_resource(department_id: UUID, name: str, members: list[Person], base: str) -> dict[str, Any]:
    return {
        "schemas": [GROUP],
        "id": str(department_id),
        "displayName": name,
        "members": [
            {"value": str(p.id), "display": f"{p.given_name} {p.family_name}".strip(), "type": "User"} for p in members
        ],
        "meta": {"resourceType": "Group", "location": f"{base}/Groups/{department_id}"},
    }


def list_response(resources: list[dict[str, Any]], total: int, start: int) -> dict[str, Any]:
    return {
        "schemas": [LIST],
        "totalResults": total,
        "startIndex": start,
        "itemsPerPage": len(resources),
        "Resources": resources,
    }


def paging(start_index: int | None, count: int | None) -> tuple[int, int]:
    """RFC 7644 §3.4.2.4: a startIndex below 1 is 1, a negative count 0; we cap count."""
    return max(start_index or 1, 1), min(max(count if count is not None else 100, 0), MAX_COUNT)


def parse_filter(text: str | None, attributes: dict[str, str]) -> tuple[str, str] | None:
    """`<attribute> eq "<value>"` for the attributes providers look up by; nothing else."""
    if text is None or not text.strip():
        return None
    found = _FILTER.match(text)
    if found is None or found.group(1).lower() not in attributes:
        raise invalid(
            _l('only filters of the form {attribute} eq "value" are supported', attribute="/".join(attributes)),
            "invalidFilter",
            "filter",
        )
    value = found.group(2).replace('\\"', '"').replace("\\\\", "\\")
    return attributes[found.group(1).lower()], value


# --- users -----------------------------------------------------------------------------------


def _truthy(value: Any, field: str) -> bool:
    """Entra ID sends booleans as strings ("False")."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise invalid(_l("`{field}` must be true or false", field=field), field=field)


def _text(value: Any, field: str) -> str | None:
    if value is None or isinstance(value, str):
        return value.strip() if isinstance(value, str) and value.strip() else None
    raise invalid(_l("`{field}` must be text", field=field), field=field)


def _typed_value(items: Any, field: str) -> str | None:
    """The work (else primary, else first) value of a multi-valued attribute."""
    if items is None:
        return None
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise invalid(_l("`{field}` must be a list of objects", field=field), field=field)
    chosen = next((i for i in items if i.get("type") == "work"), None) or next(
        (i for i in items if i.get("primary") in (True, "true", "True")), None
    )
    chosen = chosen or (items[0] if items else None)
    return _text(chosen.get("value"), field) if chosen else None


class _Draft:
    """A person as SCIM changes it: the attributes we keep, by their place in PersonInput."""

    def __init__(self, person: Person | None, department: str | None) -> None:
        self.values: dict[str, Any] = {}
        if person is not None:
            self.values = {
                k: v for k, v in msgspec.to_builtins(person).items() if k not in ("tenantId", "id", "version")
            }
        self.department = department  # the enterprise extension's department name …
        self.department_given = False  # … and whether this request named one (or removed it)
        self.new = person is None  # a new user needs a userName; people made here may have none

    def set(self, attribute: str, value: Any) -> None:
        """One attribute by its SCIM name (case-insensitive, as RFC 7643 §2.1 says)."""
        name = attribute.lower()
        setters: dict[str, Callable[[Any], None]] = {
            "username": lambda v: self.values.__setitem__("userName", _text(v, "userName")),
            "externalid": lambda v: self.values.__setitem__("externalId", _text(v, "externalId")),
            "active": lambda v: self.values.__setitem__("active", _truthy(v, "active")),
            "title": lambda v: self.values.__setitem__("function", _text(v, "title") or ""),
            "name.givenname": lambda v: self.values.__setitem__("givenName", _text(v, "name.givenName") or ""),
            "name.familyname": lambda v: self.values.__setitem__("familyName", _text(v, "name.familyName")),
            "emails": lambda v: self.values.__setitem__("email", _typed_value(v, "emails")),
            "phonenumbers": lambda v: self.values.__setitem__("phone", _typed_value(v, "phoneNumbers")),
            "displayname": self._display_name,
            "name": self._name,
            ENTERPRISE.lower(): self._enterprise,
            f"{ENTERPRISE}:department".lower(): self._department,
        }
        typed = _TYPED.match(attribute)
        if typed:
            key = "email" if typed.group(1).lower() == "emails" else "phone"
            if typed.group(2).lower() == "work" or not self.values.get(key):
                self.values[key] = _text(value, typed.group(1))
            return
        setter = setters.get(name)
        if setter is not None:
            setter(value)

    def _display_name(self, value: Any) -> None:
        text = _text(value, "displayName")
        if text and not self.values.get("familyName"):  # only a fallback for a missing name
            given, _, family = text.rpartition(" ")
            self.values.update(givenName=given, familyName=family)

    def _name(self, value: Any) -> None:
        if not isinstance(value, dict):
            raise invalid(_l("`{field}` must be an object", field="name"), field="name")
        for key, item in value.items():
            self.set(f"name.{key}", item)

    def _enterprise(self, value: Any) -> None:
        if isinstance(value, dict) and "department" in value:
            self._department(value["department"])

    def _department(self, value: Any) -> None:
        self.department, self.department_given = _text(value, "department"), True

    def apply(self, resource: dict[str, Any]) -> None:
        for key, value in resource.items():
            if key not in ("schemas", "id", "meta"):
                self.set(key, value)

    def to_input(self, departments: dict[str, UUID]) -> PersonInput:
        values = dict(self.values)
        if self.department_given and self.department is None:
            values["departmentId"] = None
        elif self.department_given and self.department is not None and self.department.casefold() in departments:
            values["departmentId"] = str(departments[self.department.casefold()])
        # A department name the town does not have changes nothing: Groups place people.
        if not values.get("familyName"):
            values["familyName"] = values.get("userName")  # a provider that sends no name at all
        if self.new and not values.get("userName"):
            raise invalid(_l("a user needs a userName"), field="userName")
        try:
            return msgspec.convert(values, PersonInput)
        except msgspec.ValidationError as error:
            field = error_field(error)
            raise invalid(_l("`{field}` is not valid", field=field or "user"), field=field) from None


async def _department_names(uow: UnitOfWork, tenant_id: UUID) -> tuple[dict[str, UUID], dict[UUID, str]]:
    lines = await repository.department_lines(uow.conn, tenant_id)
    return {line.name.casefold(): line.department_id for line in lines.values()}, {
        line.department_id: line.name for line in lines.values()
    }


async def _user(uow: UnitOfWork, tenant_id: UUID, person: Person, base: str) -> dict[str, Any]:
    _, names = await _department_names(uow, tenant_id)
    return user_resource(person, base, names.get(person.department_id) if person.department_id else None)


async def _person(uow: UnitOfWork, tenant_id: UUID, user_id: str) -> Person:
    try:
        person_id = UUID(user_id)
    except ValueError:
        raise NotFound(_l("person not found")) from None
    return await repository.get_person(uow.conn, tenant_id, person_id)


async def list_users(
    uow: UnitOfWork, tenant_slug: str, base: str, filter: str | None, start_index: int | None, count: int | None
) -> dict[str, Any]:
    tenant = await reach(uow, tenant_slug, OP)
    wanted = parse_filter(filter, {"username": "user_name", "externalid": "external_id", "id": "id"})
    start, size = paging(start_index, count)
    if wanted is None:
        people = await repository.list_people(uow.conn, tenant.id)
    elif wanted[0] == "id":
        people = [p for p in await repository.list_people(uow.conn, tenant.id) if str(p.id) == wanted[1].lower()]
    else:
        found = await repository.find_person_by(uow.conn, tenant.id, wanted[0], wanted[1])
        people = [found] if found else []
    _, names = await _department_names(uow, tenant.id)
    page = people[start - 1 : start - 1 + size]
    resources = [user_resource(p, base, names.get(p.department_id) if p.department_id else None) for p in page]
    return list_response(resources, len(people), start)


async def get_user(uow: UnitOfWork, tenant_slug: str, base: str, user_id: str) -> dict[str, Any]:
    tenant = await reach(uow, tenant_slug, OP)
    return await _user(uow, tenant.id, await _person(uow, tenant.id, user_id), base)


def _body(resource: Any) -> dict[str, Any]:
    if not isinstance(resource, dict):
        raise invalid(_l("the body must be a JSON object"), "invalidSyntax")
    return resource


async def create_user(uow: UnitOfWork, tenant_slug: str, base: str, resource: Any) -> dict[str, Any]:
    tenant = await reach(uow, tenant_slug, OP)
    draft = _Draft(None, None)
    draft.apply(_body(resource))
    departments, _ = await _department_names(uow, tenant.id)
    data = draft.to_input(departments)
    person = await _saved(uow, tenant.id, uuid4(), data, new=True)
    return await _user(uow, tenant.id, person, base)


async def _saved(uow: UnitOfWork, tenant_id: UUID, person_id: UUID, data: PersonInput, *, new: bool) -> Person:
    try:
        return await save_person(uow, tenant_id, person_id, data, OP, new=new)
    except Conflict as error:
        raise Conflict(error.message, field=getattr(error, "field", None), scim_type="uniqueness") from None


async def replace_user(uow: UnitOfWork, tenant_slug: str, base: str, user_id: str, resource: Any) -> dict[str, Any]:
    """PUT: the attributes we keep as the resource says; ones it leaves out are cleared (RFC
    7644 §3.5.1), except the subject and the substitutes, which SCIM does not know."""
    tenant = await reach(uow, tenant_slug, OP)
    current = await _person(uow, tenant.id, user_id)
    draft = _Draft(None, None)
    draft.values = {"subject": current.subject, "substituteIds": [str(s) for s in current.substitute_ids]}
    draft.apply(_body(resource))
    departments, _ = await _department_names(uow, tenant.id)
    if not draft.department_given:  # without the extension the department stays as it is
        draft.values["departmentId"] = str(current.department_id) if current.department_id else None
    person = await _saved(uow, tenant.id, current.id, draft.to_input(departments), new=False)
    return await _user(uow, tenant.id, person, base)


def _operations(body: Any) -> list[dict[str, Any]]:
    operations = _body(body).get("Operations", _body(body).get("operations"))
    if not isinstance(operations, list) or not operations or not all(isinstance(o, dict) for o in operations):
        raise invalid(_l("a PATCH needs a list of Operations"), "invalidSyntax", "Operations")
    for operation in operations:
        if str(operation.get("op", "")).lower() not in ("add", "replace", "remove"):
            raise invalid(_l("op must be add, replace or remove"), "invalidSyntax", "op")
        if str(operation["op"]).lower() == "remove" and not operation.get("path"):
            raise invalid(_l("a remove needs a path"), "noTarget", "path")
    return operations


async def patch_user(uow: UnitOfWork, tenant_slug: str, base: str, user_id: str, body: Any) -> dict[str, Any]:
    tenant = await reach(uow, tenant_slug, OP)
    operations = _operations(body)
    current = await _person(uow, tenant.id, user_id)
    departments, names = await _department_names(uow, tenant.id)
    draft = _Draft(current, names.get(current.department_id) if current.department_id else None)
    for operation in operations:
        path, value = operation.get("path"), operation.get("value")
        if str(operation["op"]).lower() == "remove":
            value = False if str(path).lower() == "active" else None
        if path:
            draft.set(str(path), value)
        elif isinstance(value, dict):
            draft.apply(value)
        else:
            raise invalid(_l("without a path, the value must be an object of attributes"), "invalidSyntax", "value")
    person = await _saved(uow, tenant.id, current.id, draft.to_input(departments), new=False)
    return await _user(uow, tenant.id, person, base)


async def delete_user(uow: UnitOfWork, tenant_slug: str, user_id: str) -> None:
    """The person leaves the directory: their open tickets go back to the queue first."""
    tenant = await reach(uow, tenant_slug, OP)
    person = await _person(uow, tenant.id, user_id)
    await deprovision(uow, tenant.id, person.id, OP, delete=True)


# --- groups (departments) ----------------------------------------------------------------------


async def _group(uow: UnitOfWork, tenant_id: UUID, group_id: str) -> tuple[UUID, str]:
    try:
        department_id = UUID(group_id)
    except ValueError:
        raise NotFound(_l("department not found")) from None
    lines = await repository.department_lines(uow.conn, tenant_id)
    if department_id not in lines:
        raise NotFound(_l("department not found"))
    return department_id, lines[department_id].name


async def _group_resource(uow: UnitOfWork, tenant_id: UUID, department_id: UUID, base: str) -> dict[str, Any]:
    department_id, name = await _group(uow, tenant_id, str(department_id))
    people = [p for p in await repository.list_people(uow.conn, tenant_id) if p.department_id == department_id]
    return group_resource(department_id, name, people, base)


async def list_groups(
    uow: UnitOfWork, tenant_slug: str, base: str, filter: str | None, start_index: int | None, count: int | None
) -> dict[str, Any]:
    tenant = await reach(uow, tenant_slug, OP)
    wanted = parse_filter(filter, {"displayname": "name", "id": "id", "externalid": "name"})
    start, size = paging(start_index, count)
    lines = list((await repository.department_lines(uow.conn, tenant.id)).values())
    if wanted is not None:
        attribute, value = wanted
        lines = [
            line
            for line in lines
            if (
                str(line.department_id) == value.lower()
                if attribute == "id"
                else line.name.casefold() == value.casefold()
            )
        ]
    people = await repository.list_people(uow.conn, tenant.id)
    page = lines[start - 1 : start - 1 + size]
    resources = [
        group_resource(
            line.department_id, line.name, [p for p in people if p.department_id == line.department_id], base
        )
        for line in page
    ]
    return list_response(resources, len(lines), start)


async def get_group(uow: UnitOfWork, tenant_slug: str, base: str, group_id: str) -> dict[str, Any]:
    tenant = await reach(uow, tenant_slug, OP)
    department_id, _ = await _group(uow, tenant.id, group_id)
    return await _group_resource(uow, tenant.id, department_id, base)


def _member_ids(value: Any) -> list[UUID]:
    items = value if isinstance(value, list) else [value]
    ids = []
    for item in items:
        raw = item.get("value") if isinstance(item, dict) else None
        try:
            ids.append(UUID(str(raw)))
        except ValueError:
            raise invalid(_l("a member is named by its id as value"), field="members") from None
    return ids


async def _set_members(
    uow: UnitOfWork, tenant_id: UUID, department_id: UUID, add: list[UUID], drop: list[UUID]
) -> None:
    unknown = set(add) - await repository.existing_people(uow.conn, tenant_id, add)
    if unknown:
        raise invalid(_l("no person with this id in the town's directory"), field="members")
    await repository.move_people(uow.conn, tenant_id, add, department_id)
    await repository.leave_department(uow.conn, tenant_id, drop, department_id)


async def create_group(uow: UnitOfWork, tenant_slug: str, base: str, resource: Any) -> dict[str, Any]:
    tenant = await reach(uow, tenant_slug, OP)
    compiled.changed(uow)
    body = _body(resource)
    name = _text(body.get("displayName"), "displayName")
    if not name or len(name) > 200:
        raise invalid(_l("a group needs a displayName of up to 200 characters"), field="displayName")
    department_id = uuid4()
    uow.after_commit(uow.app.tenant_changed)  # departments are part of the routing table
    try:
        async with uow.conn.transaction():
            await repository.insert_department(uow.conn, tenant.id, department_id, name)
    except asyncpg.UniqueViolationError:
        raise Conflict(
            _l("the town has a department of this name"), field="displayName", scim_type="uniqueness"
        ) from None
    await _set_members(uow, tenant.id, department_id, _member_ids(body.get("members") or []), [])
    return await _group_resource(uow, tenant.id, department_id, base)


async def replace_group(uow: UnitOfWork, tenant_slug: str, base: str, group_id: str, resource: Any) -> dict[str, Any]:
    tenant = await reach(uow, tenant_slug, OP)
    compiled.changed(uow)
    department_id, name = await _group(uow, tenant.id, group_id)
    body = _body(resource)
    await _rename(uow, tenant.id, department_id, _text(body.get("displayName"), "displayName") or name)
    wanted = _member_ids(body.get("members") or [])
    now = [p.id for p in await repository.list_people(uow.conn, tenant.id) if p.department_id == department_id]
    await _set_members(uow, tenant.id, department_id, wanted, [p for p in now if p not in wanted])
    return await _group_resource(uow, tenant.id, department_id, base)


async def _rename(uow: UnitOfWork, tenant_id: UUID, department_id: UUID, name: str) -> None:
    if len(name) > 200:
        raise invalid(_l("a group needs a displayName of up to 200 characters"), field="displayName")
    uow.after_commit(uow.app.tenant_changed)
    try:
        async with uow.conn.transaction():
            await repository.rename_department(uow.conn, tenant_id, department_id, name)
    except asyncpg.UniqueViolationError:
        raise Conflict(
            _l("the town has a department of this name"), field="displayName", scim_type="uniqueness"
        ) from None


async def patch_group(uow: UnitOfWork, tenant_slug: str, base: str, group_id: str, body: Any) -> dict[str, Any]:
    tenant = await reach(uow, tenant_slug, OP)
    compiled.changed(uow)
    operations = _operations(body)
    department_id, _ = await _group(uow, tenant.id, group_id)
    for operation in operations:
        op, path, value = str(operation["op"]).lower(), str(operation.get("path") or ""), operation.get("value")
        member = _MEMBER.match(path)
        if member:  # Entra ID: remove members[value eq "<id>"]
            await _set_members(uow, tenant.id, department_id, [], _member_ids({"value": member.group(1)}))
        elif path.lower() == "members":
            ids = _member_ids(value or [])
            if op == "remove":
                await _set_members(uow, tenant.id, department_id, [], ids)
            else:
                if op == "replace":
                    people = await repository.list_people(uow.conn, tenant.id)
                    now = [p.id for p in people if p.department_id == department_id]
                    await _set_members(uow, tenant.id, department_id, [], [p for p in now if p not in ids])
                await _set_members(uow, tenant.id, department_id, ids, [])
        elif path.lower() == "displayname" or (not path and isinstance(value, dict)):
            name = value if path else (value or {}).get("displayName")
            if name is not None:
                await _rename(uow, tenant.id, department_id, _text(name, "displayName") or "")
            if not path and isinstance(value, dict) and "members" in value:
                await _set_members(uow, tenant.id, department_id, _member_ids(value["members"]), [])
    return await _group_resource(uow, tenant.id, department_id, base)


async def delete_group(uow: UnitOfWork, tenant_slug: str, group_id: str) -> None:
    """A department is never deleted (tickets keep naming it): it is closed and its people leave it."""
    tenant = await reach(uow, tenant_slug, OP)
    compiled.changed(uow)
    department_id, _ = await _group(uow, tenant.id, group_id)
    members = [p.id for p in await repository.list_people(uow.conn, tenant.id) if p.department_id == department_id]
    await repository.leave_department(uow.conn, tenant.id, members, department_id)
    await repository.close_department(uow.conn, tenant.id, department_id)
    uow.after_commit(uow.app.tenant_changed)


# --- discovery (RFC 7644 §4) ---------------------------------------------------------------------


async def service_provider_config(uow: UnitOfWork, tenant_slug: str, base: str) -> dict[str, Any]:
    await reach(uow, tenant_slug, OP)
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "documentationUri": f"{base}/../../../docs",
        "patch": {"supported": True},
        "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
        "filter": {"supported": True, "maxResults": MAX_COUNT},
        "changePassword": {"supported": False},
        "sort": {"supported": False},
        "etag": {"supported": False},
        "authenticationSchemes": [
            {
                "type": "oauthbearertoken",
                "name": "OAuth Bearer Token",
                "description": "a client-credentials token of the town's issuer with the scope directory:provision",
                "primary": True,
            }
        ],
        "meta": {"resourceType": "ServiceProviderConfig", "location": f"{base}/ServiceProviderConfig"},
    }


async def resource_types(uow: UnitOfWork, tenant_slug: str, base: str) -> dict[str, Any]:
    await reach(uow, tenant_slug, OP)
    types: list[dict[str, Any]] = [
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
            "id": "User",
            "name": "User",
            "endpoint": "/Users",
            "description": "a contact person of the town's directory",
            "schema": USER,
            "schemaExtensions": [{"schema": ENTERPRISE, "required": False}],
            "meta": {"resourceType": "ResourceType", "location": f"{base}/ResourceTypes/User"},
        },
        {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
            "id": "Group",
            "name": "Group",
            "endpoint": "/Groups",
            "description": "a department of the town",
            "schema": GROUP,
            "meta": {"resourceType": "ResourceType", "location": f"{base}/ResourceTypes/Group"},
        },
    ]
    return list_response(types, len(types), 1)


def _attribute(name: str, kind: str = "string", **more: Any) -> dict[str, Any]:
    return {
        "name": name,
        "type": kind,
        "multiValued": False,
        "required": False,
        "caseExact": False,
        "mutability": "readWrite",
        "returned": "default",
        "uniqueness": "none",
        **more,
    }


async def schemas(uow: UnitOfWork, tenant_slug: str, base: str) -> dict[str, Any]:
    """What we keep of each schema (attributes not listed are accepted and ignored)."""
    await reach(uow, tenant_slug, OP)
    value = [_attribute("value"), _attribute("type"), _attribute("primary", "boolean")]
    found: list[dict[str, Any]] = [
        {
            "id": USER,
            "name": "User",
            "attributes": [
                _attribute("userName", required=True, uniqueness="server"),
                _attribute("name", "complex", subAttributes=[_attribute("givenName"), _attribute("familyName")]),
                _attribute("displayName"),
                _attribute("title"),
                _attribute("active", "boolean"),
                _attribute("emails", "complex", multiValued=True, subAttributes=value),
                _attribute("phoneNumbers", "complex", multiValued=True, subAttributes=value),
            ],
        },
        {"id": ENTERPRISE, "name": "EnterpriseUser", "attributes": [_attribute("department")]},
        {
            "id": GROUP,
            "name": "Group",
            "attributes": [
                _attribute("displayName", required=True, uniqueness="server"),
                _attribute("members", "complex", multiValued=True, subAttributes=[_attribute("value")]),
            ],
        },
    ]
    for schema in found:
        schema["schemas"] = ["urn:ietf:params:scim:schemas:core:2.0:Schema"]
        schema["meta"] = {"resourceType": "Schema", "location": f"{base}/Schemas/{schema['id']}"}
    return list_response(found, len(found), 1)
