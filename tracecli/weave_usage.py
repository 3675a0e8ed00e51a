"""The token counts of a Weave call's usage, once for the wings that read or write them.

Weave's server reads `summary.usage` as a map of model → `LLMUsageSchema`, eight
`int | None` counts (weave 0.52.42, `trace_server_interface.py`), and writes all eight, in
this order, for a call made from an OpenTelemetry span. The call schema's fast path
(`schema/`), the embedded store's integer reading of a summary (`store/`) and the span
mapping (`otel/`) all need the names; `schema/` and `store/` share a layer and may not
import each other, so the list lives here, in the base. tests/test_startup.py holds it
equal to `schema.weave.LLMUsageSchema`'s fields.
"""

from __future__ import annotations

USAGE_FIELDS = (
    *("prompt_tokens", "input_tokens", "completion_tokens", "output_tokens", "requests"),
    *("total_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"),
)
