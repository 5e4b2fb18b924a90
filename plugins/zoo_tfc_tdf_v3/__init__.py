"""TFC-TDF-UNet v3 (Kim, Lee, Jung, SDX 2023), the network of the MDX23C models.

`network` holds the spectrogram-image network, `convert` maps the reference checkpoints' names onto it.
Not registered with the plugin system yet.
"""
