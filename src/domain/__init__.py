"""The service's business: entities, domain ports and job handlers. Standard library only."""
