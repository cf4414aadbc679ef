"""Terminal views (Rich renderables, Rich imported lazily), the explanation of a step as
lines of text, and the JSON payloads of results."""
