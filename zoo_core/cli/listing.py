"""`zoo list`, `zoo info`, `zoo plugins`: what the zoo holds."""

from __future__ import annotations

import json
import os
import sys

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .. import describe
from ..registry import get_catalogue, get_entry, list_models
from ..registry.schema import DEFAULT_SDR_SET
from .messages import warn


class Output:
    """Where `zoo list` and `zoo info` print, so that no name or number is ever cut.

    On a terminal, its width: text wraps at word boundaries, and a table that needs more is printed at its full
    width (the terminal wraps the lines; rich would shorten cells with "…"). Piped, ``$COLUMNS`` (80 when
    unset) only chooses which columns `zoo list` shows: every line is printed whole, tables at full width.
    """

    def __init__(self) -> None:
        self.terminal = sys.stdout.isatty()
        self.console = Console(soft_wrap=not self.terminal, width=None if self.terminal else _columns())
        self.width = self.console.width

    def line(self, text: str = "") -> None:
        self.console.print(text, markup=False, highlight=False)

    def table(self, table: Table) -> None:
        width = max(self.width, Console(width=1 << 16).measure(table).maximum)
        Console(width=width, soft_wrap=False, force_terminal=self.terminal or None).print(table)


def _columns() -> int:
    try:
        return max(int(os.environ.get("COLUMNS", "")), 1)
    except ValueError:
        return 80


def _report_problems() -> None:
    for line in get_catalogue().warnings():
        warn(line)


def _sdr(value) -> str:
    return "-" if value is None else f"{value:.2f}"


WIDE = 110  # columns from which `zoo list` also shows stems and plugins
_GAP = 2  # spaces after each column of `zoo list`
_RIGHT = ("parameters", "stft", "SDR")  # right-aligned columns


def _network(row: dict) -> str:
    """``architecture/block``, or the architecture alone when its block carries its name."""
    if not row["block"] or row["block"] == row["architecture"]:
        return row["architecture"]
    return f"{row['architecture']}/{row['block']}"


def _sdr_legend(rows: list[dict]) -> str:
    """Which test set each SDR in the table was measured on: the most common set, then the exceptions."""
    sets: dict[str, list[str]] = {}
    for row in rows:
        if row["paper_sdr"] is not None:
            sets.setdefault(row["paper_sdr_set"], []).append(row["name"])
    if not sets:
        return ""
    common, *others = sorted(sets, key=lambda name: (-len(sets[name]), name != DEFAULT_SDR_SET))
    exceptions = [f"{', '.join(sets[name])}: {name}" for name in others]
    if len(exceptions) > 1:  # one line per other set: a single line outgrew 80 columns
        return "\n".join([f"SDR: vocals, dB, on {common}, except"] + [f"  {line}" for line in exceptions])
    return f"SDR: vocals, dB, on {common}" + (f" ({exceptions[0]})" if exceptions else "")


@click.command("list", short_help="List the models: network, size, STFT, weights, SDR.")
@click.argument("patterns", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, one object per model.")
def list_command(patterns: tuple[str, ...], as_json: bool) -> None:
    """List models, optionally filtered by fnmatch PATTERNS (e.g. 'mdx*').

    Columns: architecture/block, trainable parameters, n_fft/hop of the STFT, the weights here (cached
    variants of those known), the paper's vocals SDR in dB on the test set each model names (MUSDB18 test
    for the ISMIR 2020 models, MUSDB18-HQ test for mdx23c-musdb18; the line under the table says which,
    --json's paper_sdr_set too); on a wide terminal also the stems and the plugin. --json has every field.
    """
    cat = get_catalogue()
    names = list_models(list(patterns), cat)
    rows = [describe.summary(get_entry(name, cat), cat) for name in names]
    _report_problems()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo(f"no model matches {' '.join(patterns)!r}")
        _list_ensembles(Output(), patterns)
        return
    out = Output()
    wide = out.width >= WIDE  # a standard 80-column terminal gets the essential columns
    cells = {
        "name": [row["name"] for row in rows],
        "network": [_network(row) for row in rows],
        "parameters": [f"{row['parameters']:,}" for row in rows],
        "stft": [f"{row['n_fft']}/{row['hop_length']}" for row in rows],
        "stems": [",".join(row["stems"]) for row in rows],
        "weights": [row["weights"] for row in rows],
        "SDR": [_sdr(row["paper_sdr"]) for row in rows],
        "plugin": [row["plugin"] for row in rows],
    }
    shown = list(cells) if wide else ["name", "network", "parameters", "stft", "weights", "SDR"]
    width = lambda names: sum(max(len(n), *map(len, cells[n])) + _GAP for n in names)  # noqa: E731
    if width(shown) > out.width and not wide:  # nothing is cut: the STFT (in zoo info) gives way first
        shown.remove("stft")
    table = Table(title=None, box=None, header_style="bold", pad_edge=False, padding=(0, _GAP, 0, 0))
    for column in shown:
        table.add_column(column, justify="right" if column in _RIGHT else "left", no_wrap=True)
    for index in range(len(rows)):
        table.add_row(*(escape(cells[column][index]) for column in shown))
    out.table(table)
    legend = _sdr_legend(rows)
    if legend:
        out.line(legend)
    _list_ensembles(out, patterns)


def _list_ensembles(out: Output, patterns: tuple[str, ...]) -> None:
    """The named ensembles (`zoo_core.ensemble.store`): name, rule, members, and the fitted gain."""
    import fnmatch

    from ..ensemble.store import named_ensembles

    found = {n: t for n, t in named_ensembles().items() if not patterns or any(fnmatch.fnmatchcase(n, p) for p in patterns)}
    if not found:
        return
    table = Table(title=None, box=None, header_style="bold", pad_edge=False, padding=(0, 2, 0, 0))
    for column in ("ensemble", "rule", "members", "gain (dB)"):
        table.add_column(column, no_wrap=True)
    for name, entry in sorted(found.items()):
        gains = entry.get("gain_db") or {}
        gain = ", ".join(f"{stem} {value:+.3f}" for stem, value in gains.items()) if isinstance(gains, dict) else "-"
        table.add_row(*map(escape, [name, str(entry.get("rule", "avg-wave")), ", ".join(entry["members"]), gain or "-"]))
    out.line()
    out.table(table)


# what every architecture's description holds (`zoo_core.describe.architecture`); anything else is what the
# architecture's own ``describe`` reports
_COMMON_KEYS = ("name", "plugin", "options", "input", "output", "block", "estimation", "parameters", "parts",
                "window_samples")


@click.command("info", short_help="Show a model's entry, architecture and weights.")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the entry and architecture as JSON.")
def info_command(name: str, as_json: bool) -> None:
    """Show a model's registry entry and its resolved architecture (NAME may carry :VARIANT)."""
    from ..registry import build_model

    cat = get_catalogue()
    entry = get_entry(name, cat)
    entry.variant((name.partition(":")[2]) or None)  # validates the variant, if any
    model = build_model(entry, catalogue=cat)  # built once: a large model takes seconds to initialise
    data = {"entry": entry.as_json(), "architecture": describe.architecture(entry, cat, model)}
    data["summary"] = describe.summary(entry, cat, model)
    _report_problems()
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
        return
    out = Output()
    s, arch = data["summary"], data["architecture"]
    lines = [
        f"{entry.name}  {entry.description}",
        f"  architecture     {arch['name']} (plugin {arch['plugin']}), options {arch['options']}",
    ]
    if arch["block"]:
        lines.append(f"  block            {arch['block']['name']} (plugin {arch['block']['plugin']}), args {arch['block']['args']}")
    details = {key: value for key, value in arch.items() if key not in _COMMON_KEYS}
    # what the architecture's describe() reports: lists of records become tables, the rest one line
    tables = {key: details.pop(key) for key in [k for k, v in details.items() if _is_table(v)]}
    lines.append(f"  parameters       {arch['parameters']:,} trainable")
    if details:
        lines.append("  network          " + ", ".join(f"{key} {_plain(value)}" for key, value in details.items()))
    lines += [
        f"  stems            {', '.join(entry.stems)}; {entry.representation} input, {entry.estimation}",
        f"  STFT             n_fft {s['n_fft']}, hop {s['hop_length']}, {s['frames']} frames "
        f"({arch['window_samples']} samples), center={s['center']}, {s['bins']} bins, {s['sample_rate']} Hz",
        f"  paper SDR        {_sdr(entry.paper_sdr)} dB"
        + (f" (vocals, {entry.paper_sdr_set})" if entry.paper_sdr is not None else "") + f"  {entry.paper}",
    ]
    if entry.notes:
        lines.append(f"  notes            {entry.notes}")
    lines.append(f"  defined by       {entry.source}")
    for line in lines:
        out.line(line)
    out.line()
    for title, rows in tables.items():
        out.table(_rows_table(title, rows))
        out.line()
    if entry.variants:
        vt = Table(box=None, header_style="bold", title="weights variants", title_justify="left")
        for column in ("variant", "format", "layout", "STFT override", "SDR", "origin"):
            vt.add_column(column, no_wrap=column not in ("origin", "STFT override"), overflow="fold")
        for vname, var in entry.variants.items():
            mark = " (default)" if vname == entry.default_variant else ""
            vt.add_row(escape(vname + mark), escape(var.format), escape(var.layout),
                       escape(json.dumps(dict(var.stft))) if var.stft else "", _sdr(var.paper_sdr), escape(var.origin))
        out.table(vt)
    out.line(f"  weights here: {s['weights']}")


def _plain(value) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _cell(value) -> str:
    """A table cell: counts with thousands separators, lists as ``a x b``, the rest as text."""
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, list) and all(isinstance(item, int) for item in value):
        return " x ".join(map(str, value))
    return _plain(value)


def _is_table(value) -> bool:
    """A list of flat records: what `zoo info` can show as a table."""
    return isinstance(value, list) and bool(value) and all(isinstance(item, dict) for item in value)


def _rows_table(title: str, rows: list[dict]) -> Table:
    table = Table(box=None, header_style="bold", title=title, title_justify="left")
    columns = list(dict.fromkeys(key for row in rows for key in row))
    for column in columns:
        table.add_column(escape(str(column)), no_wrap=True)
    for row in rows:
        table.add_row(*(escape(_cell(row.get(column, ""))) for column in columns))
    return table


@click.command("plugins", short_help="List plugins and what each provides.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, one object per plugin.")
def plugins_command(as_json: bool) -> None:
    """List plugins: distribution and version, hooks, what each provides, load errors."""
    cat = get_catalogue()
    rows = []
    for status in cat.plugins.statuses.values():
        rows.append({
            "name": status.name,
            "distribution": status.distribution,
            "version": status.version,
            "module": status.module,
            "hooks": status.hooks,
            "architectures": sorted(a.name for a in cat.architectures.values() if a.plugin == status.name),
            "blocks": sorted(b.name for b in cat.blocks.values() if b.plugin == status.name),
            "models": sorted(m.name for m in cat.models.values() if m.source == status.name),
            "status": "disabled" if status.disabled else ("error" if status.error else "loaded"),
            "error": status.error,
        })
    if as_json:
        click.echo(json.dumps({"plugins": rows, "conflicts": cat.conflicts}, indent=2))
    else:
        for row in rows:  # two lines per plugin: readable at any width, nothing cut
            origin = f"{row['distribution']} {row['version']}".strip() or "not installed"
            status = row["status"] + (f": {row['error']}" if row["error"] else "")
            provides = [f"architecture {a}" for a in row["architectures"]] + [f"block {b}" for b in row["blocks"]]
            provides += [f"model {m}" for m in row["models"]]
            click.echo(f"{row['name']} ({origin}): {status}")
            click.echo(f"    hooks: {', '.join(row['hooks']) or '-'}; provides: {', '.join(provides) or '-'}")
    for conflict in cat.conflicts:
        click.echo(f"error: {conflict}", err=True)
    if cat.conflicts:
        sys.exit(2)
