"""TDC-RNN (Choi et al., ISMIR 2020, §3.5): a TDC dense block plus a residual recurrent branch.

``y = BN(TDC(x)); out = y + TDF(BiGRU(y))``, the GRU running over time for each channel: TDC alone has no
context across frames, the GRU adds it. Defaults are those of the authors' refactored code, where the U-Net
uses 2-D strided sampling.
"""

from .recurrent import recurrent_block_type


BLOCK = recurrent_block_type("tdc-rnn", time_distributed=True,
                             description="TDC plus a residual bidirectional-GRU branch over time")
