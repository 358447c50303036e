"""The interactive picker: choose a strategy, review and edit its parameters, start."""
from __future__ import annotations

from typing import Any

import questionary
from rich.console import Console

from strategies import DEFAULT
from strategies.base import Strategy


def _ask(question: questionary.Question) -> Any:
    answer = question.ask()
    if answer is None:  # Ctrl-C or Ctrl-D inside a prompt
        raise KeyboardInterrupt
    return answer


def pick(available: dict[str, type[Strategy]]) -> tuple[str, dict[str, Any]]:
    console = Console()
    names = sorted(available, key=lambda n: (n != DEFAULT, n))
    width = max(len(n) for n in names)
    choices = [questionary.Choice(f"{n:<{width}}  {available[n].description}", value=n) for n in names]
    name = _ask(questionary.select("Which strategy?", choices=choices, default=DEFAULT if DEFAULT in names else None))
    cls = available[name]
    values = {p.name: p.default for p in cls.params}
    console.print(f"[bold]{name}[/]: {cls.description}\nPress Enter to keep a default, or type a new value.")
    while True:
        for param in cls.params:
            def valid(text: str, param=param) -> bool | str:
                try:
                    param.parse(text)
                    return True
                except ValueError as exc:
                    return str(exc)

            text = _ask(questionary.text(f"{param.prompt} ({param.name}, {param.type_name})",
                                         default=param.show(values[param.name]), validate=valid))
            values[param.name] = param.parse(text)
        try:
            cls(**values)
        except ValueError as exc:
            console.print(f"[red]{exc}[/] — edit the parameters again.")
            continue
        if _ask(questionary.confirm("Start the keeper with these parameters?", default=True)):
            return name, values
