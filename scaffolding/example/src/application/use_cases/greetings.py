"""An example use case: the request returns at once, the greeting is sent by a job."""

from __future__ import annotations

from application.jobs import JobId, JobService
from domain.greetings import GreetingJobs


class GreetSomeone:
    def __init__(self, jobs: JobService) -> None:
        self._jobs = jobs

    async def __call__(self, name: str) -> JobId:
        return await self._jobs.options(unique_key=f"greet:{name}").enqueue(GreetingJobs.send, name)
