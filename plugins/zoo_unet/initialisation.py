"""Initial weights of a U-Net trained from scratch, as the authors' refactored code set them.

Every parameter with two or more dimensions (convolution, linear and GRU weight matrices) is drawn
Xavier-normal when the U-Net's output activation is identity, sigmoid or tanh, Kaiming-normal when it is
ReLU-like. One-dimensional parameters (biases, BatchNorm scale and shift) keep PyTorch's defaults.
"""

from __future__ import annotations

from torch import nn

XAVIER_ACTIVATIONS = ("identity", "sigmoid", "tanh")


def initialise(unet: nn.Module) -> None:
    xavier = unet.config.output_activation in XAVIER_ACTIVATIONS
    for parameter in unet.parameters():
        if parameter.dim() >= 2:
            if xavier:
                nn.init.xavier_normal_(parameter)
            else:
                nn.init.kaiming_normal_(parameter)
