"""The provider simulator: an OpenAI-compatible server for tests, demo and benchmarks."""
