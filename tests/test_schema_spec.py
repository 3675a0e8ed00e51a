"""The pydantic models against the OpenAPI text in ../shared/spec, so a drift is caught.

Each spec file holds an OpenAPI document inside a ```` fence. For every schema there that
we model, the property names, the required list, which properties are nullable, and each
property's basic type (string / date-time / integer / object of X / array of X / any / a
reference) must match the model's own JSON Schema (which is what FastAPI would publish
for it, the way the spec was made).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from tests.conftest import require_shared
from tracecli.schema import weave

SPEC_FILES = {
    "complete": "000_40b87e46ce1bb642.txt",
    "end": "001_7ebdd3824b44baf3.txt",
    "upsert_batch": "002_7cfeafee0f58cf4b.txt",
}
# (spec file, schema name) -> model; every schema of those documents that a record can hold
MODELS: dict[tuple[str, str], type[BaseModel]] = {
    ("complete", "CallsUpsertCompleteReq"): weave.CallsUpsertCompleteReq,
    ("complete", "CompletedCallSchemaForInsert"): weave.CompletedCallSchemaForInsert,
    ("complete", "SummaryInsertMap"): weave.SummaryInsertMap,
    ("complete", "LLMUsageSchema"): weave.LLMUsageSchema,
    ("end", "CallEndReq"): weave.CallEndReq,
    ("end", "EndedCallSchemaForInsert"): weave.EndedCallSchemaForInsert,
    ("end", "SummaryInsertMap"): weave.SummaryInsertMap,
    ("end", "LLMUsageSchema"): weave.LLMUsageSchema,
    ("upsert_batch", "CallCreateBatchReq"): weave.CallCreateBatchReq,
    ("upsert_batch", "CallBatchStartMode"): weave.CallBatchStartMode,
    ("upsert_batch", "CallBatchEndMode"): weave.CallBatchEndMode,
    ("upsert_batch", "CallStartReq"): weave.CallStartReq,
    ("upsert_batch", "CallEndReq"): weave.CallEndReq,
    ("upsert_batch", "CallStartRes"): weave.CallStartRes,
    ("upsert_batch", "CallCreateBatchRes"): weave.CallCreateBatchRes,
    ("upsert_batch", "StartedCallSchemaForInsert"): weave.StartedCallSchemaForInsert,
    ("upsert_batch", "EndedCallSchemaForInsert"): weave.EndedCallSchemaForInsert,
    ("upsert_batch", "SummaryInsertMap"): weave.SummaryInsertMap,
    ("upsert_batch", "LLMUsageSchema"): weave.LLMUsageSchema,
}
# Known, deliberate differences (../shared/spec/README.md): the upsert_batch reference
# predates the optional started_at of an end, which the current server accepts.
EXTRA_IN_MODEL = {("upsert_batch", "EndedCallSchemaForInsert"): {"started_at"}}


def openapi(name: str) -> dict[str, Any]:
    text = (require_shared("spec") / SPEC_FILES[name]).read_text(encoding="utf-8")
    m = re.search(r"^````yaml[^\n]*\n(.*?)^````", text, re.S | re.M)
    assert m, f"{SPEC_FILES[name]}: no ````yaml fence"
    doc = yaml.safe_load(m.group(1))
    return doc["components"]["schemas"]


def shape(prop: dict[str, Any]) -> Any:
    """A property's basic type, comparable between the spec and a pydantic JSON Schema."""
    if "$ref" in prop:
        return ("ref", prop["$ref"].rsplit("/", 1)[-1])
    if "anyOf" in prop:
        return ("anyOf", tuple(sorted(map(repr, (shape(p) for p in prop["anyOf"])))))
    t = prop.get("type")
    if t is None:
        return ("any",)
    if t == "string":
        return ("string", prop.get("format"))
    if t == "object":
        extra = prop.get("additionalProperties")
        names = prop.get("propertyNames")
        return (
            "object",
            shape(extra) if isinstance(extra, dict) and extra else extra,
            shape(names) if names else None,
        )
    if t == "array":
        return ("array", shape(prop.get("items", {})))
    return (t,)


def nullable(prop: dict[str, Any]) -> bool:
    return any(p.get("type") == "null" for p in prop.get("anyOf", []))


def model_schema(model: type[BaseModel], name: str) -> dict[str, Any]:
    full = model.model_json_schema(ref_template="#/components/schemas/{model}")
    return full if full.get("title") == name else full["$defs"][name]


CASES = sorted(MODELS, key=lambda k: (k[0], k[1]))


@pytest.mark.parametrize("key", CASES, ids=lambda k: f"{k[0]}:{k[1]}")
def test_model_matches_the_openapi_spec(key: tuple[str, str]) -> None:
    doc, name = key
    spec = openapi(doc)[name]
    mine = model_schema(MODELS[key], name)
    spec_props = spec.get("properties", {})
    my_props = {
        k: v for k, v in mine.get("properties", {}).items() if k not in EXTRA_IN_MODEL.get(key, ())
    }
    assert sorted(my_props) == sorted(spec_props), "property names"
    assert sorted(mine.get("required", [])) == sorted(spec.get("required", [])), "required"
    for prop, sp in spec_props.items():
        assert nullable(my_props[prop]) == nullable(sp), f"{prop}: nullable"
        assert shape(my_props[prop]) == shape(sp), f"{prop}: type"
    if "additionalProperties" in spec:
        assert mine.get("additionalProperties", True) == spec["additionalProperties"]


def test_every_modelled_schema_of_the_spec_is_checked() -> None:
    """A schema the spec adds (or renames) must get a model, or be listed as not ours."""
    not_records = {"HTTPValidationError", "ValidationError", "CallsUpsertCompleteRes"}
    not_records |= {"CallEndRes"}
    for doc in SPEC_FILES:
        names = set(openapi(doc)) - not_records
        assert names == {n for d, n in MODELS if d == doc}, doc


def test_trace_status_values() -> None:
    assert {s.value for s in weave.TraceStatus} == {
        "success",
        "error",
        "running",
        "descendant_error",
    }


def test_unknown_keys_follow_the_server() -> None:
    """CallStartReq, CallEndReq and CallCreateBatchReq refuse them; call schemas keep them."""
    for model in (weave.CallStartReq, weave.CallEndReq, weave.CallCreateBatchReq):
        assert model.model_config.get("extra") == "forbid", model.__name__
    for model in (
        weave.StartedCallSchemaForInsert,
        weave.EndedCallSchemaForInsert,
        weave.CompletedCallSchemaForInsert,
        weave.SummaryInsertMap,
        weave.LLMUsageSchema,
        weave.CallsUpsertCompleteReq,
    ):
        assert model.model_config.get("extra") == "allow", model.__name__


def test_spec_files_are_where_the_readme_says() -> None:
    readme = (require_shared("spec") / "README.md").read_text(encoding="utf-8")
    for name in SPEC_FILES.values():
        assert name in readme
        assert Path(require_shared("spec", name)).is_file()
