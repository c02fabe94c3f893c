"""No "Did you mean …?" where introspection is off (production by default).

graphql-core appends suggestions from the schema to validation and variable errors: "Cannot
query field 'createTenan' on type 'Mutation'. Did you mean 'createTenant'?", the same for
arguments, types, input fields and enum values. Without a token and with introspection off,
that spelled the schema out name by name. graphql-core (3.3) can leave them out
(`hide_suggestions`), but strawberry passes it neither to validation nor to execution:
validation gets a rule that switches it on in the document's shared context (a read-only
property over `_hide_suggestions`; tests/api/test_suggestions.py notices if that changes),
execution an executor class that builds with it (variables are coerced there, enum values too).
"""

from __future__ import annotations

from typing import Any

from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from graphql import ASTValidationRule, ValidationContext


class HideSuggestions(ASTValidationRule):
    """Reports nothing; every rule of the same validation shares `context`, and they read
    `hide_suggestions` only while visiting, after all rules were built."""

    def __init__(self, context: ValidationContext) -> None:
        super().__init__(context)
        context._hide_suggestions = True


class ExecutionWithoutSuggestions(StrawberryGraphQLCoreExecutionContext):
    @classmethod
    def build(cls, *args: Any, **kwargs: Any) -> Any:
        kwargs["hide_suggestions"] = True
        return super().build(*args, **kwargs)
