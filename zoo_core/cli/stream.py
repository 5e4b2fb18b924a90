"""`zoo stream`: live separation from standard input to standard output (raw PCM, or a WAV stream in).

    ffmpeg -i song.mp3 -f f32le -ac 2 -ar 44100 - | zoo stream | ffplay -f f32le -ar 44100 -ch_layout stereo -

Standard output carries audio only; every message goes to standard error. The output is aligned with the
input (the stream's leading silence of one latency is not written): output frame i is the estimate of input
frame i, and it leaves once input frame i + latency has arrived.
"""

from __future__ import annotations

import os
from typing import Optional

import click

from ..errors import ZooError
from ..pcm import FORMATS, RAW_FORMATS, PcmInput, StreamFormat, write_all
from .options import RunSettings, separation_options

PIPE_EXAMPLE = "ffmpeg -i song.mp3 -f f32le -ac 2 -ar 44100 - | zoo stream | ffplay -f f32le -ar 44100 -ch_layout stereo -"


def stream_stems(model, names: Optional[list[str]]) -> list[str]:
    """The stems to write, in the order named (each one's channels follow the previous one's). Default: the
    karaoke track (accompaniment = mixture − vocals) of any model with a vocals stem, else the model's first."""
    from ..separation import choose_stems
    from ..stems import ACCOMPANIMENT, available_stems

    available = available_stems(model.stems)
    if not names:
        return [ACCOMPANIMENT if ACCOMPANIMENT in available else available[0]]
    choose_stems(model, names)  # unknown names are an error
    return list(dict.fromkeys(names))


@click.command("stream", short_help="Separate live audio from standard input to standard output.")
@separation_options(live=True)
@click.option("--latency", type=float, default=None, metavar="SECONDS",
              help="Keep the latency at most this long by using shorter segments (less context: lower quality; "
                   "see docs/live-and-catalogues.md). Not with --segment.")
@click.option("--input-format", "raw_format", type=click.Choice(RAW_FORMATS), default=None,
              help="Sample format of raw PCM on standard input (a WAV stream's header says its own) [default: f32le].")
@click.option("--format", "old_format", type=click.Choice(RAW_FORMATS), default=None, hidden=True)  # the old name, still read
@click.option("--rate", type=int, default=44100, show_default=True,
              help="Sample rate of raw PCM input; other rates than the model's are resampled (soxr) and back.")
@click.option("--channels", type=int, default=2, show_default=True, help="Channels of raw PCM input: 1 or 2.")
@click.option("--stems", "stem_list", metavar="NAME,...",
              help="Stems to write, several interleaved as extra channels in the order given "
                   "[default: accompaniment (karaoke: mixture - vocals) for a model with vocals, else its first stem].")
@click.option("--output-format", type=click.Choice(RAW_FORMATS), default="f32le", show_default=True,
              help="Sample format written on standard output (rate and channels per stem: the input's).")
@click.option("-q", "--quiet", is_flag=True, help="No start-up line on standard error.")
def stream_command(run: RunSettings, latency: Optional[float], raw_format: Optional[str], old_format: Optional[str],
                   rate: int, channels: int, stem_list: Optional[str], output_format: str, quiet: bool) -> None:
    """Separate audio arriving on standard input and write the chosen stem(s) on standard output as raw PCM,
    as it arrives: a karaoke track live from any player or capture tool.

    Input is raw PCM (--input-format, --rate, --channels) or a WAV stream (detected by its RIFF header). The latency
    is fixed: one segment at the model's rate (1.46 s for the default model), plus the resamplers' delay at
    other rates; --latency trades quality for less. A reader that goes away (a closed pipe) ends the stream
    quietly. Example:

        ffmpeg -i song.mp3 -f f32le -ac 2 -ar 44100 - | zoo stream | ffplay -f f32le -ar 44100 -ch_layout stereo -
    """
    from ..separation import model_label
    from ..stream import StreamingSeparator, options_for_latency
    from ..loading import load
    from .runner import check_segment
    from .separate import parse_stems

    raw_format = _input_format(raw_format, old_format)
    if latency is not None and run.separation.segment is not None:
        raise ZooError("--latency and --segment both set the segment; give one of them")
    if rate < 1:
        raise ZooError(f"--rate must be a positive number of samples per second, got {rate}")
    if channels not in (1, 2):
        raise ZooError(f"--channels {channels}: only mono and stereo are supported")
    if os.isatty(0):
        raise ZooError(f"standard input is a terminal; pipe audio into zoo stream, e.g. {PIPE_EXAMPLE}")
    if os.isatty(1):
        raise ZooError("standard output is a terminal; pipe zoo stream into a player or a file")
    names = parse_stems(stem_list)
    model = load(run.model, device=run.device, precision=run.precision)
    check_segment(model, run.separation)  # before reading any input; --latency only shortens the segment
    stems = stream_stems(model, names)
    source = PcmInput(0, StreamFormat(FORMATS[raw_format], rate, channels))
    fmt = source.format
    options = run.separation
    if latency is not None:
        options = options_for_latency(model, latency, fmt.sample_rate, options)
    separator = StreamingSeparator(model, fmt.sample_rate, fmt.channels, options)
    if not quiet:
        segment, overlap = options.geometry(model)
        click.echo(
            f"zoo stream: {model_label(model)}, {fmt.describe()}{' (WAV)' if source.is_wav else ''} in, "
            f"{'+'.join(stems)} as {output_format} out; latency {separator.latency_seconds:.3f} s "
            f"(segment {segment / model.sample_rate:.3f} s, overlap {overlap / model.sample_rate:.3f} s)",
            err=True,
        )
    try:
        _pump(source, separator, stems, FORMATS[output_format])
    except BrokenPipeError:  # the player or pipe reader went away: that ends a stream, it is not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)  # so that nothing tries to flush into the closed pipe at exit
        os.close(devnull)


def _input_format(given: Optional[str], old: Optional[str]) -> str:
    """--input-format, or the older --format (which `zoo separate` uses for the output container) with a notice."""
    from .messages import warn

    if old is not None:
        if given is not None:
            raise ZooError("--format is the old name of --input-format; give only --input-format")
        warn("zoo stream --format is deprecated; use --input-format (the same values)")
        return old
    return given or "f32le"


def _pump(source: PcmInput, separator, stems: list[str], output) -> None:
    """Push every block that arrives and write what comes out, leaving out the stream's leading silence."""
    import numpy as np

    to_skip = separator.latency
    received = 0

    def emit(estimates) -> None:
        nonlocal to_skip
        frames = np.concatenate([estimates[stem] for stem in stems], axis=1)
        skipped = min(to_skip, frames.shape[0])
        to_skip -= skipped
        if skipped < frames.shape[0]:
            write_all(1, output.encode(frames[skipped:]))

    for block in source.blocks():
        received += block.shape[0]
        emit(separator.push(block))
    if not received:
        raise ZooError("standard input: no audio arrived")
    emit(separator.flush())

