"""The job engine: client, worker, scheduler and state machine over a store port."""
