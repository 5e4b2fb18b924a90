"""TFC-RNN: TDC-RNN with the 2-D TFC dense block in place of TDC (present in the authors' code, §3.6)."""

from functools import partial

from zoo_core import BlockType, hookimpl
from zoo_core.layers import build_recurrent_block


@hookimpl
def register_blocks(register):
    register(
        BlockType(
            name="tfc-rnn",
            build=partial(build_recurrent_block, time_distributed=False),
            sampling="time-frequency",
            description="TFC plus a residual bidirectional-GRU branch over time",
        )
    )
