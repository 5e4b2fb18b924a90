"""Make the example's weights: a short `zoo train` run on the real MUSDB18 clip, then copy them into the package.

    python make_weights.py CLIP.stem.mp4 WORKDIR [--steps N]

The clip's first 80% becomes the training track and the rest the validation track (two folders of stem WAVs),
so validation hears audio training did not. Needs this plugin installed (``pip install .``). Prints the
``[models.bandsplit-tiny.variants.clip]`` table to paste into models.toml.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import soundfile

from zoo_core.hashing import file_digests

STEMS = ("mixture", "drums", "bass", "other", "vocals")  # the streams of a MUSDB18 .stem.mp4, in order
WEIGHTS = Path(__file__).resolve().parent / "zoo_bandsplit_example" / "bandsplit-tiny-clip.safetensors"


def split_clip(clip: Path, root: Path, train_share: float = 0.8) -> str:
    """``root/train-part/`` and ``root/valid-part/`` with one WAV per stem; returns the validation track's name."""
    with av.open(str(clip)) as container:
        streams = {}
        for index, stem in enumerate(STEMS):
            stream = container.streams.audio[index]
            container.seek(0)
            streams[stem] = np.concatenate([f.to_ndarray() for f in container.decode(stream)], axis=1).T
            rate = stream.rate
    cut = int(train_share * min(len(s) for s in streams.values()))
    for name, part in (("train-part", slice(0, cut)), ("valid-part", slice(cut, None))):
        (root / name).mkdir(parents=True, exist_ok=True)
        for stem, samples in streams.items():
            soundfile.write(root / name / f"{stem}.wav", samples[part].astype(np.float32), rate, subtype="FLOAT")
    return "valid-part"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clip", type=Path)
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--steps", type=int, default=600)
    args = parser.parse_args()
    tracks = args.workdir / "tracks"
    valid = split_clip(args.clip, tracks)
    run = args.workdir / "run"
    subprocess.run(
        ["zoo", "train", "bandsplit-tiny", "--musdb", str(tracks), "-o", str(run), "--run", "clip",
         "--valid-track", valid, "--steps", str(args.steps), "--valid-every", str(max(args.steps // 6, 1)),
         "--patience", "0", "--workers", "0", "--device", "cpu", "--seed", "0"],
        check=True,
    )
    shutil.copyfile(run / "model.safetensors", WEIGHTS)
    git_sha1, sha256 = file_digests(WEIGHTS)
    print("[models.bandsplit-tiny.variants.clip]")
    print(f'file = "{WEIGHTS.name}"\ngit_sha1 = "{git_sha1}"\nsha256 = "{sha256}"\nbytes = {WEIGHTS.stat().st_size}')
    print('format = "safetensors"\nlayout = "svs-zoo"')
    print(f"# the run's card: {run / 'card.toml'}", file=sys.stderr)


if __name__ == "__main__":
    main()
