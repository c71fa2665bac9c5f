"""dlbook: the shared library of "From Gradients to Giants".

Each idea lives twice, with the same names and signatures:

- `dlbook.np.<topic>`: written from scratch in NumPy, the version the book teaches from;
- `dlbook.torch.<topic>`: the PyTorch twin, the version a practitioner uses.

`tests/` proves that the two agree. Shared helpers: `dlbook.runtime` (seeds, device),
`dlbook.data` (generated data sets), `dlbook.viz` (figures).
"""

__version__ = "0.1.0"
