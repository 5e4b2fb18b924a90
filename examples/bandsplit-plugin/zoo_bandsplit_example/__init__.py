"""An example svs-zoo plugin with a network family that is not a U-Net, shipping a model and its weights.

It registers the architecture ``band-split`` (`network`: bands of bins, GRUs across time and across bands,
complex masks per band) and the models of ``models.toml`` beside this file. The weights file of the model's
variant is package data: its entry names the file and its hashes, and ``register_models`` points the variant's
URL at the installed copy (a ``file:`` URL, which svs-zoo reads in place, offline too, and verifies like any
download). svs-zoo finds the plugin through the entry point in pyproject.toml; nothing in svs-zoo changes.
"""

from dataclasses import replace
from pathlib import Path

from zoo_core import Architecture, hookimpl
from zoo_core.registry import entries_from_toml

from . import network

HERE = Path(__file__).resolve().parent


@hookimpl
def register_architectures(register):
    register(
        Architecture(
            name="band-split",
            build=network.build,
            uses_blocks=False,
            describe=network.describe,
            description="bands of bins, GRUs across time and bands, complex mask per band (BSRNN-like, example)",
            # written in Python that TorchScript cannot compile: its TorchScript export traces it
            torchscript="trace",
            unsupported={"aoti": "torch.export specialises the sequence length of its GRU across time, so the "
                                 "number of frames cannot stay dynamic"},
        )
    )


@hookimpl
def register_models(register):
    for entry in entries_from_toml(HERE / "models.toml"):
        variants = {name: replace(v, url=(HERE / v.file).as_uri()) for name, v in entry.variants.items()}
        register(replace(entry, variants=variants))
