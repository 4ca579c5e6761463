"""Composition root: settings, logging, DI container, FastAPI app, CLI, recurring-job registrar."""
