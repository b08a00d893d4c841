"""An MCP `tools/call` result (or its failure) as the `ToolOutcome` the tool loop gives the model."""

from __future__ import annotations

import json

import mcp_types as mt

from openlms.services.mcp.types import ToolOutcome

MAX_RESULT_CHARS = 1_000_000  # absurd sizes only: the tool loop cuts results to the context


def from_result(tool: str, result: mt.CallToolResult) -> ToolOutcome:
    """The tool's text content joined (other content described), ok False when the tool reported an
    error (`isError`)."""
    text = capped(tool, _content_text(result))
    if result.is_error:
        return ToolOutcome(ok=False, output=text or f"The tool {tool} failed.", error=text or "tool error")
    return ToolOutcome(ok=True, output=text)


def timed_out(tool: str, seconds: float) -> ToolOutcome:
    message = f"The tool {tool} did not answer within {seconds:g} s."
    return ToolOutcome(ok=False, output=message, error=f"{message} (the mcp_tool_timeout_s setting)")


def failed(tool: str, why: str) -> ToolOutcome:
    """A call that could not be made or did not finish (server down, crashed, refused)."""
    return ToolOutcome(ok=False, output=f"The tool {tool} could not be called: {why}", error=why)


def capped(tool: str, text: str) -> str:
    if len(text) <= MAX_RESULT_CHARS:
        return text
    return (
        text[:MAX_RESULT_CHARS]
        + f"\n[openlms: the result of {tool} was cut from {len(text)} to {MAX_RESULT_CHARS} characters]"
    )


def _content_text(result: mt.CallToolResult) -> str:
    parts = [_block_text(block) for block in result.content]
    if not parts and result.structured_content is not None:
        return json.dumps(result.structured_content, ensure_ascii=False)
    return "\n".join(parts)


def _block_text(block: mt.ContentBlock) -> str:
    if isinstance(block, mt.TextContent):
        return block.text
    if isinstance(block, mt.ImageContent):
        return f"[image: {block.mime_type}]"
    if isinstance(block, mt.AudioContent):
        return f"[audio: {block.mime_type}]"
    if isinstance(block, mt.ResourceLink):
        return f"[resource link: {block.uri}]"
    if isinstance(block, mt.EmbeddedResource):
        resource = block.resource
        if isinstance(resource, mt.TextResourceContents):
            return resource.text
        return f"[resource: {resource.uri} ({resource.mime_type or 'binary'})]"
    return f"[{getattr(block, 'type', 'content')}]"
