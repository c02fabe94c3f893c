"""GraphQL limits: depth, aliases, tokens, and a simple cost estimate.

Cost: every field costs 1; a field taking `first` multiplies what is below it by `first`
(default 50 when absent), so `tenants(first: 100) { departments { name } }` costs ~200. The
multiplier is clamped to [1, max page size]: what a client asks for cannot make the estimate
smaller than one item per field (a negative `first` once switched the limit off), and no page
is larger than the cap.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from graphql.validation import NoSchemaIntrospectionCustomRule
from strawberry.extensions import (
    AddValidationRules,
    MaxTokensLimiter,
    ParserCache,
    SchemaExtension,
    ValidationCache,
)
from strawberry.extensions.max_aliases import create_validator as alias_validator
from strawberry.extensions.query_depth_limiter import create_validator as depth_validator

from backend.api.suggestions import HideSuggestions
from backend.errors import ErrorCode, QueryTooComplex
from backend.i18n import _l
from backend.settings import Settings
from graphql import (
    ASTValidationRule,
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
    VariableNode,
)

DEFAULT_PAGE = 50


class ErrorReportingParserCache(ParserCache):
    """ParserCache, but a document that does not parse is left to strawberry's own parse.

    ParserCache parses before its hook yields, outside strawberry's error handling, so a syntax
    error (the token limit's, too) skipped the ErrorCodes extension and lost `extensions.code`.
    """

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        # On failure strawberry parses again, where errors are reported (and coded) as usual.
        with contextlib.suppress(GraphQLError):
            context.graphql_document = self.cached_parse_document(context.query, **context.parse_options)
        yield


def _first(field: FieldNode, variables: dict[str, Any], max_page: int) -> int | None:
    """The field's `first` as a cost multiplier, within [1, max_page] whatever the client sent."""
    for argument in field.arguments or ():
        if argument.name.value != "first":
            continue
        requested = DEFAULT_PAGE
        if isinstance(argument.value, IntValueNode):
            requested = int(argument.value.value)
        elif isinstance(argument.value, VariableNode):
            value = variables.get(argument.value.name.value)
            if isinstance(value, int) and not isinstance(value, bool):
                requested = value
        return max(1, min(requested, max_page))
    return None


def cost_rule(max_cost: int, max_page: int) -> type[ValidationRule]:
    class CostLimit(ValidationRule):
        def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
            context: ValidationContext = self.context
            cost = self._cost(node.selection_set, context, set())
            if cost > max_cost:
                # The message is translated per request (ErrorCodes): validation results are cached.
                too_complex = QueryTooComplex(
                    _l("query cost {cost} exceeds the limit of {limit}; ask for fewer items", cost=cost, limit=max_cost)
                )
                context.report_error(
                    GraphQLError(
                        str(too_complex.message),
                        node,
                        original_error=too_complex,
                        extensions={"code": ErrorCode.QUERY_TOO_COMPLEX.value, "cost": cost},
                    )
                )

        def _cost(self, selection_set: SelectionSetNode | None, context: ValidationContext, seen: set[str]) -> int:
            if selection_set is None:
                return 0
            total = 0
            for selection in selection_set.selections:
                if isinstance(selection, FieldNode):
                    below = self._cost(selection.selection_set, context, seen)
                    first = _first(selection, {}, max_page)
                    total += 1 + below * (first if first is not None else 1)
                elif isinstance(selection, InlineFragmentNode):
                    total += self._cost(selection.selection_set, context, seen)
                elif isinstance(selection, FragmentSpreadNode):
                    name = selection.name.value
                    fragment = context.get_fragment(name)
                    if fragment is not None and name not in seen:
                        total += self._cost(fragment.selection_set, context, seen | {name})
            return total

    return CostLimit


def limit_extensions(settings: Settings) -> list[Callable[[], SchemaExtension]]:
    """Factories: strawberry builds fresh extension instances for every operation.

    The validation rules are built once, here: the validation cache keys on the rule classes,
    and strawberry's limiter extensions would make new classes for every request (no hits)."""
    limits = settings.graphql
    rules: list[type[ASTValidationRule]] = [
        depth_validator(limits.max_depth, None),
        alias_validator(limits.max_aliases),
        cost_rule(limits.max_cost, limits.max_page_size),
    ]
    if not settings.graphql_introspection:
        # Suggestions would spell out what introspection hides (backend/api/suggestions.py).
        rules += [NoSchemaIntrospectionCustomRule, HideSuggestions]
    return [
        # Parsing and validating the same operation again is wasted work: front ends send a
        # handful of documents over and over. Validation here does not depend on variables.
        lambda: ErrorReportingParserCache(maxsize=512),
        lambda: MaxTokensLimiter(max_token_count=limits.max_tokens),
        lambda: AddValidationRules(rules),
        lambda: ValidationCache(maxsize=512),
    ]
