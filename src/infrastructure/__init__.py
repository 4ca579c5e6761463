"""Adapters: the job engine and its stores, persistence, email."""
