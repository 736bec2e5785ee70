"""HTTP APIs the node serves beside JSON-RPC (the OpenAI-compatible inference API)."""
