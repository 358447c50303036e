"""The interactive picker: choose a strategy, review and edit its parameters, start.

Every answer is checked as it is typed, by the same Param that checks `--param` and config
files: a value out of bounds, not among the choices, or naming a market the run doesn't have
is refused with that one line and asked again.
"""
from __future__ import annotations

from typing import Any

import questionary
from rich.console import Console
from rich.markup import escape

from strategies import DEFAULT
from strategies.base import Strategy
from strategies.params import Param


def _ask(question: questionary.Question) -> Any:
    answer = question.ask()
    if answer is None:  # Ctrl-C or Ctrl-D inside a prompt
        raise KeyboardInterrupt
    return answer


def _label(param: Param) -> str:
    detail = [param.name, param.type_name, param.valid]
    if param.per_market:
        detail.append("per market, e.g. 5,SOL-PERP=3")
    return f"{param.prompt} ({', '.join(detail)})"


def _choose(available: dict[str, type[Strategy]], markets: list[str], console: Console) -> type[Strategy]:
    names = sorted(available, key=lambda n: (n != DEFAULT, n))
    width = max(len(n) for n in names)
    choices = [questionary.Choice(f"{n:<{width}}  {available[n].description}", value=n) for n in names]
    while True:
        name = _ask(questionary.select("Which strategy?", choices=choices, default=DEFAULT if DEFAULT in names else None))
        try:
            available[name].check_markets(markets)
            return available[name]
        except ValueError as exc:
            console.print(f"[red]{escape(str(exc))}[/] — choose another, or restart with other --markets.")


def _ask_param(param: Param, current: Any, markets: list[str]) -> Any:
    if param.choices:
        return _ask(questionary.select(_label(param), choices=[param.show(c) for c in param.choices],
                                       default=param.show(current)))

    def valid(text: str) -> bool | str:
        try:
            param.parse(text, markets)
            return True
        except ValueError as exc:
            return str(exc)

    return _ask(questionary.text(_label(param), default=param.show(current), validate=valid))


def pick(available: dict[str, type[Strategy]], markets: list[str]) -> tuple[str, dict[str, Any]]:
    console = Console()
    cls = _choose(available, markets, console)
    values = {p.name: p.initial for p in cls.params}
    console.print(f"[bold]{cls.name}[/]: {escape(cls.description)}\nPress Enter to keep a default, or type a new value.")
    while True:
        for param in cls.params:
            values[param.name] = param.parse(_ask_param(param, values[param.name], markets), markets)
        try:
            cls(markets=markets, **values)
        except ValueError as exc:
            console.print(f"[red]{escape(str(exc))}[/] — edit the parameters again.")
            continue
        if _ask(questionary.confirm("Start the keeper with these parameters?", default=True)):
            return cls.name, values
