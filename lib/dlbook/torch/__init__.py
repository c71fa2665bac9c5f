"""PyTorch twins of `dlbook.np`: the same names and signatures, on the tools the reader will use."""
