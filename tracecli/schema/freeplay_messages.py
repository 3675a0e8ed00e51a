"""Freeplay message and tool-schema shapes: the provider-native lists a completion may carry.

Freeplay's `RecordPayload.messages` is an `anyOf` of provider families (OpenAI chat,
Anthropic, simple `{role, content}`, Vertex/Gemini, Bedrock Converse; plus OpenAI Responses
items the SDK records). Each message is matched against the shapes in turn, like the
reference server does, so `validate` refuses a message no family accepts and names the
family the message was closest to. Message objects tolerate extra keys (provider SDK dumps
carry `annotations`, `function_call: null`, ...); the envelope models in `freeplay.py` don't.
Source: ../shared/tools/freeplay-ref/SCHEMA.md §2.2 and the spec's message schemas.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, TypeAdapter
from pydantic import ValidationError as _ValidationError


class _Open(BaseModel):
    """Provider objects: extra keys tolerated, as the SDK and the server do."""

    model_config = ConfigDict(extra="allow")


# --------------------------------------------------------------------------- OpenAI chat
class OAITextBlock(_Open):
    type: Literal["text"] = "text"
    text: StrictStr


class OAIImageURL(_Open):
    url: StrictStr
    detail: Literal["auto", "low", "high"] | None = None


class OAIImageBlock(_Open):
    type: Literal["image_url"] = "image_url"
    image_url: OAIImageURL


class OAIAudioBase64(_Open):
    data: StrictStr
    format: Literal["wav", "mp3"]


class OAIAudioBlock(_Open):
    type: Literal["input_audio"] = "input_audio"
    input_audio: OAIAudioBase64


class OAIFile(_Open):
    filename: StrictStr
    file_data: StrictStr


class OAIFileBlock(_Open):
    type: Literal["file"] = "file"
    file: OAIFile


class OAIRefusalBlock(_Open):
    type: Literal["refusal"] = "refusal"
    refusal: StrictStr


OAIBlock = OAITextBlock | OAIImageBlock | OAIAudioBlock | OAIFileBlock


class OAIFunction(_Open):
    name: StrictStr
    arguments: StrictStr  # a JSON-encoded string, as OpenAI returns it


class OAIToolCall(_Open):
    id: StrictStr
    type: Literal["function"] = "function"
    function: OAIFunction


class OAIAudio(_Open):
    id: StrictStr
    data: StrictStr | None = None
    transcript: StrictStr | None = None


class OpenAISystemMessage(_Open):
    role: Literal["system"]
    content: StrictStr


class OpenAIDeveloperMessage(_Open):
    role: Literal["developer"]
    content: StrictStr | list[OAITextBlock]


class OpenAIUserMessage(_Open):
    role: Literal["user"]
    content: StrictStr | list[OAIBlock]


class OpenAIAssistantMessage(_Open):
    role: Literal["assistant"]
    content: StrictStr | list[OAIBlock] | OAIRefusalBlock | None = None
    name: StrictStr | None = None
    audio: OAIAudio | None = None
    refusal: StrictStr | None = None
    tool_calls: list[OAIToolCall] | None = None


class OpenAIToolMessage(_Open):
    role: Literal["tool"]
    content: StrictStr | list[OAIBlock]
    tool_call_id: StrictStr


# --------------------------------------------------------------------------- Anthropic
class AnthBase64Source(_Open):
    type: Literal["base64"] = "base64"
    data: StrictStr
    media_type: StrictStr


class AnthURLSource(_Open):
    type: Literal["url"] = "url"
    url: StrictStr


class AnthTextBlock(_Open):
    type: Literal["text"] = "text"
    text: StrictStr


class AnthImageBlock(_Open):
    type: Literal["image"] = "image"
    source: AnthBase64Source | AnthURLSource


class AnthDocumentBlock(_Open):
    type: Literal["document"] = "document"
    source: AnthBase64Source | AnthURLSource


class AnthToolUseBlock(_Open):
    type: Literal["tool_use"] = "tool_use"
    id: StrictStr
    name: StrictStr
    input: Any


class AnthToolResultBlock(_Open):
    type: Literal["tool_result"] = "tool_result"
    tool_use_id: StrictStr
    content: StrictStr | list[AnthTextBlock | AnthImageBlock]
    is_error: StrictBool | None = None


AnthBlock = (
    AnthTextBlock | AnthImageBlock | AnthDocumentBlock | AnthToolUseBlock | AnthToolResultBlock
)


class AnthropicMessage(_Open):
    role: Literal["user", "assistant"]
    content: StrictStr | list[AnthBlock]


class SimpleProviderMessage(_Open):
    role: Literal["system", "user", "assistant"]
    content: StrictStr


# --------------------------------------------------------------------------- Vertex / Gemini
class VxInlineData(_Open):
    mimeType: StrictStr
    data: StrictStr


class VxFunctionCall(_Open):
    name: StrictStr
    args: dict[str, Any]


class VxFunctionResponse(_Open):
    name: StrictStr
    response: Any


class VxTextPart(_Open):
    text: StrictStr


class VxInlineDataPart(_Open):
    inlineData: VxInlineData


class VxFunctionCallPart(_Open):
    functionCall: VxFunctionCall
    thoughtSignature: StrictStr | None = None


class VxFunctionResponsePart(_Open):
    functionResponse: VxFunctionResponse


class VertexMessage(_Open):
    role: Literal["model", "user"] = "user"
    parts: list[VxTextPart | VxInlineDataPart | VxFunctionCallPart | VxFunctionResponsePart]


# --------------------------------------------------------------------------- Bedrock Converse
class BrSource(_Open):
    bytes: StrictStr  # base64, as the SDK encodes it


class BrImageContent(_Open):
    format: StrictStr
    source: BrSource


class BrDocumentContent(_Open):
    format: StrictStr
    name: StrictStr
    source: BrSource


class BrTextBlock(_Open):
    text: StrictStr


class BrJsonBlock(_Open):
    json_: Any = Field(alias="json")


class BrImageBlock(_Open):
    image: BrImageContent


class BrDocumentBlock(_Open):
    document: BrDocumentContent


class BrToolUse(_Open):
    toolUseId: StrictStr
    name: StrictStr
    input: Any


class BrToolUseBlock(_Open):
    toolUse: BrToolUse


class BrToolResult(_Open):
    toolUseId: StrictStr
    content: list[BrTextBlock | BrJsonBlock | BrImageBlock | BrDocumentBlock]
    status: Literal["success", "error"] | None = None


class BrToolResultBlock(_Open):
    toolResult: BrToolResult


class BedrockConverseMessage(_Open):
    role: Literal["user", "assistant"]
    content: list[
        BrTextBlock
        | BrJsonBlock
        | BrImageBlock
        | BrDocumentBlock
        | BrToolUseBlock
        | BrToolResultBlock
    ]


# --------------------------------------------------------------------------- OpenAI Responses
class RespContentPart(_Open):
    type: Literal[
        "input_text", "output_text", "input_image", "input_file", "refusal", "summary_text"
    ]


class RespMessage(_Open):
    type: Literal["message"] | None = None
    role: Literal["user", "assistant", "system", "developer"]
    content: StrictStr | list[RespContentPart]


class RespFunctionCall(_Open):
    type: Literal["function_call"]
    call_id: StrictStr
    name: StrictStr
    arguments: StrictStr


class RespFunctionCallOutput(_Open):
    type: Literal["function_call_output"]
    call_id: StrictStr
    output: Any


class RespReasoning(_Open):
    type: Literal["reasoning"]


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
class OpenAIToolFunction(_Open):
    name: StrictStr
    description: StrictStr  # the spec requires it
    parameters: Any


class OpenAITool(_Open):
    type: Literal["function"]
    function: OpenAIToolFunction


class AnthropicTool(_Open):
    name: StrictStr
    description: StrictStr
    input_schema: Any


class VertexTool(_Open):
    functionDeclarations: list[OpenAIToolFunction]


class OpenAIResponsesTool(_Open):
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
_TOOL_LIST: TypeAdapter[Any] = TypeAdapter(ToolSchema)


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
