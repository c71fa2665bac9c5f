"""From-scratch NumPy implementations: the code the reader learns from."""
