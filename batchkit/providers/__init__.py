"""The OpenAI-compatible protocol: bodies, responses, usage and error classes."""
