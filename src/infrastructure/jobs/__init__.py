"""Job adapters: the engine (memory and SQL stores) and, later, dramatiq."""
