"""vimae: the Variational InfoMax AutoEncoder and the VAE family it is measured against."""

__version__ = "0.1.0"
