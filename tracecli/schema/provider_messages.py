"""The provider-native message shapes a Freeplay completion may carry, as pydantic models:
OpenAI chat, Anthropic, simple `{role, content}`, Vertex/Gemini, Bedrock Converse, and the
OpenAI Responses items the SDK records. Objects tolerate extra keys, as provider SDK dumps
carry them. Source: ../shared/tools/freeplay-ref/SCHEMA.md §2.2 and the spec's message
schemas; `freeplay_messages` matches a message against them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr


class ProviderObject(BaseModel):
    """Provider objects: extra keys tolerated, as the SDK and the server do."""

    # built on first use, not at import (start-up time: see schema/weave.py)
    model_config = ConfigDict(extra="allow", defer_build=True)


# --------------------------------------------------------------------------- OpenAI chat
class OAITextBlock(ProviderObject):
    type: Literal["text"] = "text"
    text: StrictStr


class OAIImageURL(ProviderObject):
    url: StrictStr
    detail: Literal["auto", "low", "high"] | None = None


class OAIImageBlock(ProviderObject):
    type: Literal["image_url"] = "image_url"
    image_url: OAIImageURL


class OAIAudioBase64(ProviderObject):
    data: StrictStr
    format: Literal["wav", "mp3"]


class OAIAudioBlock(ProviderObject):
    type: Literal["input_audio"] = "input_audio"
    input_audio: OAIAudioBase64


class OAIFile(ProviderObject):
    filename: StrictStr
    file_data: StrictStr


class OAIFileBlock(ProviderObject):
    type: Literal["file"] = "file"
    file: OAIFile


class OAIRefusalBlock(ProviderObject):
    type: Literal["refusal"] = "refusal"
    refusal: StrictStr


OAIBlock = OAITextBlock | OAIImageBlock | OAIAudioBlock | OAIFileBlock


class OAIFunction(ProviderObject):
    name: StrictStr
    arguments: StrictStr  # a JSON-encoded string, as OpenAI returns it


class OAIToolCall(ProviderObject):
    id: StrictStr
    type: Literal["function"] = "function"
    function: OAIFunction


class OAIAudio(ProviderObject):
    id: StrictStr
    data: StrictStr | None = None
    transcript: StrictStr | None = None


class OpenAISystemMessage(ProviderObject):
    role: Literal["system"]
    content: StrictStr


class OpenAIDeveloperMessage(ProviderObject):
    role: Literal["developer"]
    content: StrictStr | list[OAITextBlock]


class OpenAIUserMessage(ProviderObject):
    role: Literal["user"]
    content: StrictStr | list[OAIBlock]


class OpenAIAssistantMessage(ProviderObject):
    role: Literal["assistant"]
    content: StrictStr | list[OAIBlock] | OAIRefusalBlock | None = None
    name: StrictStr | None = None
    audio: OAIAudio | None = None
    refusal: StrictStr | None = None
    tool_calls: list[OAIToolCall] | None = None


class OpenAIToolMessage(ProviderObject):
    role: Literal["tool"]
    content: StrictStr | list[OAIBlock]
    tool_call_id: StrictStr


# --------------------------------------------------------------------------- Anthropic
class AnthBase64Source(ProviderObject):
    type: Literal["base64"] = "base64"
    data: StrictStr
    media_type: StrictStr


class AnthURLSource(ProviderObject):
    type: Literal["url"] = "url"
    url: StrictStr


class AnthTextBlock(ProviderObject):
    type: Literal["text"] = "text"
    text: StrictStr


class AnthImageBlock(ProviderObject):
    type: Literal["image"] = "image"
    source: AnthBase64Source | AnthURLSource


class AnthDocumentBlock(ProviderObject):
    type: Literal["document"] = "document"
    source: AnthBase64Source | AnthURLSource


class AnthToolUseBlock(ProviderObject):
    type: Literal["tool_use"] = "tool_use"
    id: StrictStr
    name: StrictStr
    input: Any


class AnthToolResultBlock(ProviderObject):
    type: Literal["tool_result"] = "tool_result"
    tool_use_id: StrictStr
    content: StrictStr | list[AnthTextBlock | AnthImageBlock]
    is_error: StrictBool | None = None


AnthBlock = (
    AnthTextBlock | AnthImageBlock | AnthDocumentBlock | AnthToolUseBlock | AnthToolResultBlock
)


class AnthropicMessage(ProviderObject):
    role: Literal["user", "assistant"]
    content: StrictStr | list[AnthBlock]


class SimpleProviderMessage(ProviderObject):
    role: Literal["system", "user", "assistant"]
    content: StrictStr


# --------------------------------------------------------------------------- Vertex / Gemini
class VxInlineData(ProviderObject):
    mimeType: StrictStr
    data: StrictStr


class VxFunctionCall(ProviderObject):
    name: StrictStr
    args: dict[str, Any]


class VxFunctionResponse(ProviderObject):
    name: StrictStr
    response: Any


class VxTextPart(ProviderObject):
    text: StrictStr


class VxInlineDataPart(ProviderObject):
    inlineData: VxInlineData


class VxFunctionCallPart(ProviderObject):
    functionCall: VxFunctionCall
    thoughtSignature: StrictStr | None = None


class VxFunctionResponsePart(ProviderObject):
    functionResponse: VxFunctionResponse


class VertexMessage(ProviderObject):
    role: Literal["model", "user"] = "user"
    parts: list[VxTextPart | VxInlineDataPart | VxFunctionCallPart | VxFunctionResponsePart]


# --------------------------------------------------------------------------- Bedrock Converse
class BrSource(ProviderObject):
    bytes: StrictStr  # base64, as the SDK encodes it


class BrImageContent(ProviderObject):
    format: StrictStr
    source: BrSource


class BrDocumentContent(ProviderObject):
    format: StrictStr
    name: StrictStr
    source: BrSource


class BrTextBlock(ProviderObject):
    text: StrictStr


class BrJsonBlock(ProviderObject):
    json_: Any = Field(alias="json")


class BrImageBlock(ProviderObject):
    image: BrImageContent


class BrDocumentBlock(ProviderObject):
    document: BrDocumentContent


class BrToolUse(ProviderObject):
    toolUseId: StrictStr
    name: StrictStr
    input: Any


class BrToolUseBlock(ProviderObject):
    toolUse: BrToolUse


class BrToolResult(ProviderObject):
    toolUseId: StrictStr
    content: list[BrTextBlock | BrJsonBlock | BrImageBlock | BrDocumentBlock]
    status: Literal["success", "error"] | None = None


class BrToolResultBlock(ProviderObject):
    toolResult: BrToolResult


class BedrockConverseMessage(ProviderObject):
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
class RespContentPart(ProviderObject):
    type: Literal[
        "input_text", "output_text", "input_image", "input_file", "refusal", "summary_text"
    ]


class RespMessage(ProviderObject):
    type: Literal["message"] | None = None
    role: Literal["user", "assistant", "system", "developer"]
    content: StrictStr | list[RespContentPart]


class RespFunctionCall(ProviderObject):
    type: Literal["function_call"]
    call_id: StrictStr
    name: StrictStr
    arguments: StrictStr


class RespFunctionCallOutput(ProviderObject):
    type: Literal["function_call_output"]
    call_id: StrictStr
    output: Any


class RespReasoning(ProviderObject):
    type: Literal["reasoning"]
