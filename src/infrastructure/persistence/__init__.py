"""Adapters of the domain's repository ports."""
