"""`keeper strategies`: what can run, and what each one takes."""
from __future__ import annotations

from rich.console import Console
from rich.table import Table

import strategies


def print_strategies() -> None:
    console = Console()
    for name, cls in sorted(strategies.discover().items()):
        default = " (default)" if name == strategies.DEFAULT else ""
        console.print(f"[bold]{name}[/]{default}: {cls.description}")
        table = Table(box=None, padding=(0, 2), show_header=True, header_style="dim")
        for column in ("parameter", "type", "default", "meaning"):
            table.add_column(column)
        for p in cls.params:
            table.add_row(p.name, p.type_name, p.show(p.default) or '""', p.prompt)
        console.print(table)
        console.print()
