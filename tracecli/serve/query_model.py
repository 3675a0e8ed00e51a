"""weave's call-query model (`weave.trace_server.interface.query`), for validation only.

weave's server reads a calls query's `query` with these pydantic models, so a body whose
`query` is not of their shape (`{}`, `{"$expr": {}}`, `$not` with two operands, a `$literal`
list of plain values, an unknown `$convert` type) is its 422 naming where, before any SQL;
serve answered some of them with a 400 and `{}` with every call. The store compiles the
query itself (`tracecli.store.query`); these models only decide 422 or not, as weave's do.
"""

from __future__ import annotations

from typing import Literal, Union

from pydantic import BaseModel, ConfigDict, Field

_ALIASED = ConfigDict(populate_by_name=True)


class LiteralOperation(BaseModel):
    model_config = _ALIASED

    literal_: (
        str | int | float | bool | dict[str, LiteralOperation] | list[LiteralOperation] | None
    ) = Field(alias="$literal")


class GetFieldOperator(BaseModel):
    model_config = _ALIASED

    get_field_: str = Field(alias="$getField")


class ConvertSpec(BaseModel):
    input: Operand
    to: Literal["double", "string", "int", "bool", "exists"]


class ConvertOperation(BaseModel):
    model_config = _ALIASED

    convert_: ConvertSpec = Field(alias="$convert")


class AndOperation(BaseModel):
    model_config = _ALIASED

    and_: list[Operand] = Field(alias="$and")


class OrOperation(BaseModel):
    model_config = _ALIASED

    or_: list[Operand] = Field(alias="$or")


class NotOperation(BaseModel):
    model_config = _ALIASED

    not_: tuple[Operand] = Field(alias="$not")


class EqOperation(BaseModel):
    model_config = _ALIASED

    eq_: tuple[Operand, Operand] = Field(alias="$eq")


class GtOperation(BaseModel):
    model_config = _ALIASED

    gt_: tuple[Operand, Operand] = Field(alias="$gt")


class LtOperation(BaseModel):
    model_config = _ALIASED

    lt_: tuple[Operand, Operand] = Field(alias="$lt")


class GteOperation(BaseModel):
    model_config = _ALIASED

    gte_: tuple[Operand, Operand] = Field(alias="$gte")


class LteOperation(BaseModel):
    model_config = _ALIASED

    lte_: tuple[Operand, Operand] = Field(alias="$lte")


class InOperation(BaseModel):
    model_config = _ALIASED

    in_: tuple[Operand, list[Operand]] = Field(alias="$in")


class ContainsSpec(BaseModel):
    input: Operand
    substr: Operand
    case_insensitive: bool | None = False


class ContainsOperation(BaseModel):
    model_config = _ALIASED

    contains_: ContainsSpec = Field(alias="$contains")


Operation = Union[  # noqa: UP007 - a runtime alias pydantic resolves by name
    AndOperation,
    OrOperation,
    NotOperation,
    EqOperation,
    GtOperation,
    LtOperation,
    GteOperation,
    LteOperation,
    InOperation,
    ContainsOperation,
]
Operand = Union[LiteralOperation, GetFieldOperator, ConvertOperation, Operation]  # noqa: UP007


class Query(BaseModel):
    """A calls query's `query`: one `$expr` (any other key is a 422, as at weave)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    expr_: Operation = Field(alias="$expr")


for _model in (
    LiteralOperation,
    ConvertSpec,
    ConvertOperation,
    AndOperation,
    OrOperation,
    NotOperation,
    EqOperation,
    GtOperation,
    LtOperation,
    GteOperation,
    LteOperation,
    InOperation,
    ContainsSpec,
    ContainsOperation,
    Query,
):
    _model.model_rebuild()
