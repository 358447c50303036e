"""`keeper strategies`: what can run, and what each one takes."""
from __future__ import annotations

from rich.console import Console
from rich.table import Table

import strategies


def print_strategies() -> None:
    console = Console()
    for name, cls in sorted(strategies.discover().items()):
        default = " (default)" if name == strategies.DEFAULT else ""
        needs = f" Needs: {' and '.join(cls.needs)} market." if cls.needs else ""
        console.print(f"[bold]{name}[/]{default}: {cls.description}{needs}", highlight=False)
        table = Table(box=None, padding=(0, 1), show_header=True, header_style="dim")
        table.add_column("parameter", no_wrap=True)
        table.add_column("default")
        table.add_column("valid", ratio=2)
        table.add_column("meaning", ratio=3)
        for p in cls.params:
            valid = f"{p.type_name}, {p.valid}" + (", per market" if p.per_market else "")
            table.add_row(p.name, p.show(p.default) or '""', valid, p.prompt)
        console.print(table)
        console.print()
