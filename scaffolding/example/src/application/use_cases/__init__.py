"""Use cases: the commands the service accepts, each starting background work through the
job port."""

from application.use_cases.greetings import GreetSomeone

__all__ = ["GreetSomeone"]
