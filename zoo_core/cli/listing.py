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
    # a wide console when piped, so tables are not wrapped into unreadable columns
    return Console(width=None if sys.stdout.isatty() else int(os.environ.get("COLUMNS", 160)), soft_wrap=False)


def _report_problems() -> None:
    for line in get_catalogue().warnings():
        warn(line)


def _sdr(value) -> str:
    return "-" if value is None else f"{value:.2f}"


@click.command("list")
@click.argument("patterns", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, one object per model.")
def list_command(patterns: tuple[str, ...], as_json: bool) -> None:
    """List models, optionally filtered by fnmatch PATTERNS (e.g. 'tfc*')."""
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
    table = Table(title=None, box=None, header_style="bold")
    for column, justify in [
        ("name", "left"), ("block", "left"), ("parameters", "right"), ("n_fft/hop/frames", "right"),
        ("repr", "left"), ("weights", "left"), ("paper SDR", "right"), ("plugin", "left"),
    ]:
        table.add_column(column, justify=justify, no_wrap=True)
    for row in rows:
        table.add_row(
            row["name"],
            row["block"],
            f"{row['parameters']:,}",
            f"{row['n_fft']}/{row['hop_length']}/{row['frames']}",
            row["representation"],
            row["weights"] + (f" ({len(row['variants'])})" if len(row["variants"]) > 1 else ""),
            _sdr(row["paper_sdr"]),
            row["plugin"],
        )
    console().print(table)


@click.command("info")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the entry and architecture as JSON.")
def info_command(name: str, as_json: bool) -> None:
    """Show a model's registry entry and its resolved architecture (NAME may carry :VARIANT)."""
    cat = get_catalogue()
    entry = get_entry(name, cat)
    entry.variant((name.partition(":")[2]) or None)  # validates the variant, if any
    data = {"entry": describe.entry_as_dict(entry), "architecture": describe.architecture(entry, cat)}
    data["summary"] = describe.summary(entry, cat)
    _report_problems()
    if as_json:
        click.echo(json.dumps(data, indent=2, default=str))
        return
    out = console()
    s, arch, e = data["summary"], data["architecture"], data["entry"]
    out.print(f"[bold]{escape(entry.name)}[/bold]  {escape(entry.description)}")
    out.print(escape(f"  block            {entry.block} (plugin {s['plugin']}), args {arch['block']['args']}"))
    out.print(f"  parameters       {arch['parameters']:,} trainable")
    out.print(f"  target           {entry.target}; {entry.representation} input, {entry.estimation}, "
              f"output {arch['output_activation']}")
    out.print(f"  STFT             n_fft {s['n_fft']}, hop {s['hop_length']}, {s['frames']} frames "
              f"({arch['window_samples']} samples), center={s['center']}, {s['sample_rate']} Hz")
    out.print(escape(f"  paper SDR        {_sdr(entry.paper_sdr)} dB  {entry.paper}"))
    if entry.notes:
        out.print(escape(f"  notes            {entry.notes}"))
    out.print(escape(f"  defined by       {entry.source}"))
    out.print("")
    table = Table(box=None, header_style="bold", title="architecture (frames x bins per level)", title_justify="left")
    for column in ("level", "frames x bins", "sampling (t,f)", "encoder", "decoder", "sampling params"):
        table.add_column(column, justify="right" if column != "level" else "left", no_wrap=True)
    table.add_row("first conv", f"{arch['input'][2]} x {arch['input'][1]} -> {arch['first_conv']['out'][1]}",
                  "", f"{arch['first_conv']['parameters']:,}", "", "")
    for lvl in arch["levels"]:
        table.add_row(str(lvl["level"]), f"{lvl['frames']} x {lvl['bins']}", "x".join(map(str, lvl["sampling_scale"])),
                      f"{lvl['encoder_parameters']:,}", f"{lvl['decoder_parameters']:,}",
                      f"{lvl['sampling_parameters']:,}")
    mid = arch["middle"]
    table.add_row("middle", f"{mid['frames']} x {mid['bins']}", "", f"{mid['parameters']:,}", "", "")
    table.add_row("final conv", "", "", "", f"{arch['final_conv']['parameters']:,}", "")
    out.print(table)
    out.print("")
    if entry.variants:
        vt = Table(box=None, header_style="bold", title="weights variants", title_justify="left")
        for column in ("variant", "format", "layout", "STFT override", "SDR", "origin"):
            vt.add_column(column, no_wrap=column != "origin")
        for vname, var in entry.variants.items():
            mark = " (default)" if vname == entry.default_variant else ""
            vt.add_row(escape(vname + mark), escape(var.format), escape(var.layout),
                       escape(json.dumps(dict(var.stft))) if var.stft else "", _sdr(var.paper_sdr), escape(var.origin))
        out.print(vt)
        out.print(f"  weights status: {s['weights']}")
    else:
        out.print("  no released weights")


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, one object per plugin.")
def plugins_command(as_json: bool) -> None:
    """List plugins: name, distribution and version, hooks, load errors."""
    cat = get_catalogue()
    rows = []
    for status in cat.plugins.statuses.values():
        rows.append({
            "name": status.name,
            "distribution": status.distribution,
            "version": status.version,
            "module": status.module,
            "hooks": status.hooks,
            "blocks": sorted(b.name for b in cat.blocks.values() if b.plugin == status.name),
            "models": sorted(m.name for m in cat.models.values() if m.source == status.name),
            "status": "disabled" if status.disabled else ("error" if status.error else "loaded"),
            "error": status.error,
        })
    if as_json:
        click.echo(json.dumps({"plugins": rows, "conflicts": cat.conflicts}, indent=2))
    else:
        table = Table(box=None, header_style="bold")
        for column in ("plugin", "distribution", "hooks", "provides", "status"):
            table.add_column(column, no_wrap=column != "status")
        for row in rows:
            provides = ", ".join(row["blocks"] + [f"model {m}" for m in row["models"]])
            status = row["status"] + (f": {row['error']}" if row["error"] else "")
            cells = (row["name"], f"{row['distribution']} {row['version']}".strip(), ", ".join(row["hooks"]),
                     provides, status)
            table.add_row(*map(escape, cells))
        console().print(table)
    for conflict in cat.conflicts:
        click.echo(f"error: {conflict}", err=True)
    if cat.conflicts:
        sys.exit(2)
