"""Use cases and the ports they call. Depends on `domain` only."""
