"""The tool of tools.md's default-format example, shared by the tool tests."""

from __future__ import annotations

from typing import Any

DELIVERY_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_delivery_date",
        "description": "Get the delivery date for a customer's order",
        "parameters": {
            "type": "object",
            "properties": {"order_id": {"type": "string"}},
            "required": ["order_id"],
        },
    },
}
