"""OpenAI Responses API: POST /v1/responses (stateless create, streamed or not, function tools)."""
