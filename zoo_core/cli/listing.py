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
from . import warn


def console() -> Console:
    """The terminal's width, or $COLUMNS (80 when unset) when piped: tables fit a standard terminal."""
    return Console(width=None if sys.stdout.isatty() else int(os.environ.get("COLUMNS", 80)), soft_wrap=False)


def _report_problems() -> None:
    for line in get_catalogue().warnings():
        warn(line)


def _sdr(value) -> str:
    return "-" if value is None else f"{value:.2f}"


WIDE = 110  # columns from which `zoo list` also shows stems and plugins


def _network(row: dict) -> str:
    """``unet/tdc`` (architecture/block), or the architecture alone when its block carries its name."""
    if not row["block"] or row["block"] == row["architecture"]:
        return row["architecture"]
    return f"{row['architecture']}/{row['block']}"


@click.command("list", short_help="List the models: network, size, STFT, weights, SDR.")
@click.argument("patterns", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, one object per model.")
def list_command(patterns: tuple[str, ...], as_json: bool) -> None:
    """List models, optionally filtered by fnmatch PATTERNS (e.g. 'tfc*').

    Columns: architecture/block, trainable parameters, n_fft/hop of the STFT, the weights here (cached
    variants of those known), paper SDR (vocals, MUSDB18 test); on a wide terminal also the stems and the
    plugin. --json has every field.
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
        return
    out = console()
    wide = out.width >= WIDE  # an 80-column terminal gets the essential columns, never a cut number
    columns = [("name", "left"), ("network", "left"), ("parameters", "right"), ("stft", "right")]
    columns += [("stems", "left")] if wide else []
    columns += [("weights", "left"), ("SDR", "right")] + ([("plugin", "left")] if wide else [])
    table = Table(title=None, box=None, header_style="bold", pad_edge=False, padding=(0, 2, 0, 0))
    for column, justify in columns:
        table.add_column(column, justify=justify, no_wrap=True)
    for row in rows:
        cells = [row["name"], _network(row), f"{row['parameters']:,}", f"{row['n_fft']}/{row['hop_length']}"]
        cells += [",".join(row["stems"])] if wide else []
        cells += [row["weights"], _sdr(row["paper_sdr"])] + ([row["plugin"]] if wide else [])
        table.add_row(*cells)
    console().print(table)


@click.command("info", short_help="Show a model's entry, architecture and weights.")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the entry and architecture as JSON.")
def info_command(name: str, as_json: bool) -> None:
    """Show a model's registry entry and its resolved architecture (NAME may carry :VARIANT)."""
    cat = get_catalogue()
    entry = get_entry(name, cat)
    entry.variant((name.partition(":")[2]) or None)  # validates the variant, if any
    data = {"entry": entry.as_json(), "architecture": describe.architecture(entry, cat)}
    data["summary"] = describe.summary(entry, cat)
    _report_problems()
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
        return
    out = console()
    s, arch = data["summary"], data["architecture"]
    lines = [
        f"{entry.name}  {entry.description}",
        f"  architecture     {arch['name']} (plugin {arch['plugin']}), options {arch['options']}",
    ]
    if arch["block"]:
        lines.append(f"  block            {arch['block']['name']} (plugin {arch['block']['plugin']}), args {arch['block']['args']}")
    lines += [
        f"  parameters       {arch['parameters']:,} trainable",
        f"  stems            {', '.join(entry.stems)}; {entry.representation} input, {entry.estimation}",
        f"  STFT             n_fft {s['n_fft']}, hop {s['hop_length']}, {s['frames']} frames "
        f"({arch['window_samples']} samples), center={s['center']}, {s['bins']} bins, {s['sample_rate']} Hz",
        f"  paper SDR        {_sdr(entry.paper_sdr)} dB  {entry.paper}",
    ]
    if entry.notes:
        lines.append(f"  notes            {entry.notes}")
    lines.append(f"  defined by       {entry.source}")
    for line in lines:
        out.print(line, markup=False, highlight=False)
    out.print("")
    if "levels" in arch:
        out.print(_levels_table(arch))
        out.print("")
    if entry.variants:
        vt = Table(box=None, header_style="bold", title="weights variants", title_justify="left")
        for column in ("variant", "format", "layout", "STFT override", "SDR", "origin"):
            vt.add_column(column, no_wrap=column not in ("origin", "STFT override"), overflow="fold")
        for vname, var in entry.variants.items():
            mark = " (default)" if vname == entry.default_variant else ""
            vt.add_row(escape(vname + mark), escape(var.format), escape(var.layout),
                       escape(json.dumps(dict(var.stft))) if var.stft else "", _sdr(var.paper_sdr), escape(var.origin))
        out.print(vt)
    out.print(f"  weights here: {s['weights']}", markup=False, highlight=False)


def _levels_table(arch: dict) -> Table:
    table = Table(box=None, header_style="bold", title="levels (frames x bins)", title_justify="left")
    for column in ("level", "frames x bins", "scale", "encoder", "decoder", "sampling"):
        table.add_column(column, justify="right" if column != "level" else "left", no_wrap=True)
    first = arch["first_conv"]
    table.add_row("first conv", f"-> {first['out'][1]} bins", "", f"{first['parameters']:,}", "", "")
    for lvl in arch["levels"]:
        table.add_row(str(lvl["level"]), f"{lvl['frames']} x {lvl['bins']}", "x".join(map(str, lvl["sampling_scale"])),
                      f"{lvl['encoder_parameters']:,}", f"{lvl['decoder_parameters']:,}",
                      f"{lvl['sampling_parameters']:,}")
    mid = arch["middle"]
    table.add_row("middle", f"{mid['frames']} x {mid['bins']}", "", f"{mid['parameters']:,}", "", "")
    table.add_row("final conv", "", "", "", f"{arch['final_conv']['parameters']:,}", "")
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
