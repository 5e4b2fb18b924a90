"""TDC-RNN (Choi et al., ISMIR 2020, §3.5): a TDC dense block plus a residual recurrent branch.

``y = BN(TDC(x)); out = y + TDF(BiGRU(y))``, the GRU running over time for each channel: TDC alone has no
context across frames, the GRU adds it. Defaults are those of the authors' refactored code, where the U-Net
uses 2-D strided sampling.
"""

from functools import partial

from zoo_core import BlockType, hookimpl
from zoo_core.layers import build_recurrent_block


@hookimpl
def register_blocks(register):
    register(
        BlockType(
            name="tdc-rnn",
            build=partial(build_recurrent_block, time_distributed=True),
            sampling="time-frequency",
            description="TDC plus a residual bidirectional-GRU branch over time",
        )
    )
