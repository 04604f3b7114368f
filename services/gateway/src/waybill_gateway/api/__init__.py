"""HTTP transport: thin handlers that parse, call one service function, answer."""
