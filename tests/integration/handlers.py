from __future__ import annotations


class Notes:
    written: list[str] = []  # noqa: RUF012

    def write(self, text: str) -> None:
        Notes.written.append(text)
