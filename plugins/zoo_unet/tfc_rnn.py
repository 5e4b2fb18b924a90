"""TFC-RNN: TDC-RNN with the 2-D TFC dense block in place of TDC (present in the authors' code, §3.6)."""

from .recurrent import recurrent_block_type


BLOCK = recurrent_block_type("tfc-rnn", time_distributed=False,
                             description="TFC plus a residual bidirectional-GRU branch over time")
