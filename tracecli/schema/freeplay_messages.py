"""Freeplay message and tool-schema shapes: the provider-native lists a completion may carry.

Freeplay's `RecordPayload.messages` is an `anyOf` of provider families (OpenAI chat,
Anthropic, simple `{role, content}`, Vertex/Gemini, Bedrock Converse; plus OpenAI Responses
items the SDK records). Each message is matched against the shapes in turn, like the
reference server does, so `validate` refuses a message no family accepts and names the
family the message was closest to. Message objects tolerate extra keys (provider SDK dumps
carry `annotations`, `function_call: null`, ...); the envelope models in `freeplay.py` don't.
The message models themselves are in `provider_messages.py`; the tool-schema models are here.
Source: ../shared/tools/freeplay-ref/SCHEMA.md §2.2 and the spec's message schemas.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, StrictStr, TypeAdapter
from pydantic import ValidationError as _ValidationError

from tracecli.schema.provider_messages import (
    AnthropicMessage,
    BedrockConverseMessage,
    OpenAIAssistantMessage,
    OpenAIDeveloperMessage,
    OpenAISystemMessage,
    OpenAIToolMessage,
    OpenAIUserMessage,
    ProviderObject,
    RespFunctionCall,
    RespFunctionCallOutput,
    RespMessage,
    RespReasoning,
    SimpleProviderMessage,
    VertexMessage,
)

# (label, model) in the order the reference server tries them; the label's first part is
# the provider family.
MESSAGE_SHAPES: tuple[tuple[str, type[BaseModel]], ...] = (
    ("openai.system", OpenAISystemMessage),
    ("openai.developer", OpenAIDeveloperMessage),
    ("openai.user", OpenAIUserMessage),
    ("openai.assistant", OpenAIAssistantMessage),
    ("openai.tool", OpenAIToolMessage),
    ("simple", SimpleProviderMessage),
    ("anthropic", AnthropicMessage),
    ("vertex", VertexMessage),
    ("bedrock", BedrockConverseMessage),
    ("openai_responses.message", RespMessage),
    ("openai_responses.function_call", RespFunctionCall),
    ("openai_responses.function_call_output", RespFunctionCallOutput),
    ("openai_responses.reasoning", RespReasoning),
)
_SELECTORS = ("role", "type")


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _is_union_tag(str(part)):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out


# pydantic names union members in error locations ("content.str", "content.list[...]",
# "parts.0.VxTextPart"); those are not fields of the message.
_UNION_NOISE = frozenset({"str", "none", "bool", "int", "float"})


def _is_union_tag(part: str) -> bool:
    return part in _UNION_NOISE or "[" in part or part[:1].isupper() or part.startswith("function-")


def classify_message(msg: Any) -> tuple[str | None, str]:
    """(shape label, "") when a family accepts the message, else (None, why not)."""
    if not isinstance(msg, dict):
        return None, "must be a message object"
    near: list[tuple[str, list[Any]]] = []
    for label, model in MESSAGE_SHAPES:
        try:
            model.model_validate(msg)
            return label, ""
        except _ValidationError as exc:
            errors = exc.errors(include_url=False)
            # A shape whose role/type literal did not match is not the one the writer meant.
            if not any(len(e["loc"]) == 1 and e["loc"][0] in _SELECTORS for e in errors):
                near.append((label, errors))
    if near:
        want = _likely_family(msg)
        label, errors = next((n for n in near if family(n[0]) == want), near[0])
        return None, f"matches no Freeplay message shape ({_explain(label, errors)})"
    return None, (
        f"matches no Freeplay message shape: role={msg.get('role')!r}"
        + (f", type={msg.get('type')!r}" if "type" in msg else "")
        + " (roles: system, developer, user, assistant, tool; Gemini: user, model)"
    )


_ANTHROPIC_BLOCKS = frozenset({"tool_use", "tool_result", "image", "document"})
_BEDROCK_BLOCKS = frozenset({"toolUse", "toolResult", "json", "image", "document"})


def _likely_family(msg: dict[str, Any]) -> str:
    """The family a broken message was probably meant to be, to explain it in its terms."""
    if "parts" in msg:
        return "vertex"
    if "type" in msg:
        return "openai_responses"
    content = msg.get("content")
    if isinstance(content, list):
        blocks = [b for b in content if isinstance(b, dict)]
        if any(b.get("type") in _ANTHROPIC_BLOCKS for b in blocks):
            return "anthropic"
        if any("type" not in b and _BEDROCK_BLOCKS & b.keys() for b in blocks):
            return "bedrock"
    return "openai"


def _explain(label: str, errors: list[Any]) -> str:
    # Drop the union members whose block "type" did not match: they were not meant. What is
    # left and went deepest is the real problem.
    wrong = {
        e["loc"][:-1]
        for e in errors
        if e["type"] == "literal_error"
        and e["loc"]
        and e["loc"][-1] == "type"
        and len(e["loc"]) > 1
    }
    kept = [e for e in errors if not any(e["loc"][: len(w)] == w for w in wrong)] or errors
    err = max(kept, key=lambda e: len(e["loc"]))
    where = _loc(err["loc"])
    errors = kept
    same = [e for e in errors if _loc(e["loc"]) == where]
    if err["type"] == "missing":
        text = "required field is missing"
    elif len(same) > 1:
        text = f"has the wrong type (got {_kind(err.get('input'))})"
    else:
        text = err["msg"]
    name = label.replace(".", " ")
    return f"as {name} message: {where}: {text}" if where else f"as {name} message: {text}"


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", str: "a string", list: "a list", dict: "an object"}.get(
        type(value), type(value).__name__
    )


def family(label: str) -> str:
    return label.split(".", 1)[0]


# --------------------------------------------------------------------------- tool schemas
class OpenAIToolFunction(ProviderObject):
    name: StrictStr
    description: StrictStr  # the spec requires it
    parameters: Any


class OpenAITool(ProviderObject):
    type: Literal["function"]
    function: OpenAIToolFunction


class AnthropicTool(ProviderObject):
    name: StrictStr
    description: StrictStr
    input_schema: Any


class VertexTool(ProviderObject):
    functionDeclarations: list[OpenAIToolFunction]


class OpenAIResponsesTool(ProviderObject):
    type: Literal["function"]
    name: StrictStr
    parameters: Any
    description: StrictStr | None = None


ToolSchema = Annotated[
    list[OpenAITool] | list[AnthropicTool] | list[VertexTool] | list[OpenAIResponsesTool],
    "one provider family per list",
]
TOOL_SHAPES: tuple[tuple[str, type[BaseModel]], ...] = (
    ("openai", OpenAITool),
    ("anthropic", AnthropicTool),
    ("vertex", VertexTool),
    ("openai_responses", OpenAIResponsesTool),
)
# built on first use, not at import (start-up time: see schema/weave.py)
_TOOL_LIST: TypeAdapter[Any] = TypeAdapter(ToolSchema, config=ConfigDict(defer_build=True))


def check_tool_schema(tools: Any) -> list[tuple[str, str]]:
    """(relative field, message) for a tool_schema list that no single family accepts."""
    if not isinstance(tools, list):
        return [("", "must be a list of tool definitions or null")]
    try:
        _TOOL_LIST.validate_python(tools)
        return []
    except _ValidationError:
        pass
    problems: list[tuple[str, str]] = []
    families: set[str] = set()
    for i, tool in enumerate(tools):
        fits = [name for name, model in TOOL_SHAPES if _fits(model, tool)]
        if fits:
            families.add(fits[0])
            continue
        problems.append((f"[{i}]", _tool_problem(tool)))
    if not problems and len(families) > 1:
        problems.append(("", f"mixes tool formats {sorted(families)}: use one provider per list"))
    return problems or [("", "matches no Freeplay tool format")]


def _fits(model: type[BaseModel], value: Any) -> bool:
    try:
        model.model_validate(value)
        return True
    except _ValidationError:
        return False


def _tool_problem(tool: Any) -> str:
    if not isinstance(tool, dict):
        return "must be a tool definition object"
    fn = tool.get("function") if tool.get("type") == "function" else tool
    if isinstance(fn, dict) and "name" in fn and not isinstance(fn.get("description"), str):
        return (
            "a tool needs a string 'description' (Freeplay's schema requires it; "
            'add "description": "" if there is none)'
        )
    return (
        "matches no Freeplay tool format: OpenAI {type: function, function: {name, "
        "description, parameters}}, Anthropic {name, description, input_schema} or "
        "Vertex {functionDeclarations: [...]}"
    )
