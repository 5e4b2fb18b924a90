"""TDC-RNN (Choi et al., ISMIR 2020, §3.5): a TDC dense block plus a residual recurrent branch.

``y = BN(TDC(x)); out = y + TDF(BiGRU(y))``, the GRU running over time for each channel: TDC alone has no
context across frames, the GRU adds it. Defaults are those of the authors' refactored code, where the U-Net
uses 2-D strided sampling.
"""

from zoo_core import hookimpl
from zoo_core.layers import recurrent_block_type


@hookimpl
def register_blocks(register):
    register(recurrent_block_type("tdc-rnn", time_distributed=True,
                                  description="TDC plus a residual bidirectional-GRU branch over time"))
