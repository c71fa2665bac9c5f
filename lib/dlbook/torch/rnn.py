"""PyTorch twins of `dlbook.np.rnn`: the same names, on `torch.nn.RNN`, `torch.nn.LSTM` and `torch.nn.GRU`
(one layer, time-major, with biases, the vanilla RNN with tanh).

What differs from the NumPy twin:
- the parameters live in a torch module instead of an `RNNParams`. `to_torch(params, kind)` builds the
  module holding a NumPy parameter set, and `from_torch(module)` reads one back (`grad=True`: its
  gradients, after a backward pass), so both twins can start from, and be compared on, the same numbers;
- the forward functions return the outputs and the final state alone. Autograd computes the gradients
  (`out.backward(dout)` fills `x.grad`, `h0.grad` and the module's `.grad`), so there are no
  `*_backward` functions. Truncated backpropagation through time is `state = state.detach()` between
  chunks (`h.detach()`, or `(h.detach(), c.detach())` for an LSTM);
- states are (N, H), as in the NumPy twin: these functions add and remove torch's leading num_layers axis;
- `clip_grad_norm(parameters, max_norm)` takes the parameters holding the gradients (or the module),
  scales their `.grad` in place with `torch.nn.utils.clip_grad_norm_`, and returns those gradients and
  the total norm, as the NumPy twin returns its clipped gradients and the total norm.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch

from dlbook._validation import require_positive

# The names shared by both twins, and the checks of a NumPy parameter set, are defined once, in the NumPy twin.
from dlbook.np.rnn import GATE_ORDER, KINDS, RNNParams, _check_params, _require_kind
from dlbook.np.rnn import init_params as init_numpy_params

__all__ = [
    "GATE_ORDER",
    "KINDS",
    "RNNParams",
    "clip_grad_norm",
    "from_torch",
    "gru",
    "gru_step",
    "init_params",
    "kind_of",
    "lstm",
    "lstm_step",
    "rnn",
    "rnn_step",
    "to_torch",
]

RNNModule = torch.nn.RNN | torch.nn.LSTM | torch.nn.GRU
_MODULES = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}


# ---- moving parameters between the twins ----------------------------------------------------------


def kind_of(module: object) -> str:
    """The kind ("rnn", "lstm" or "gru") of a module the NumPy twin can stand in for, or a clear error for
    any other: more than one layer, bidirectional, without biases, an LSTM with projections, a ReLU RNN."""
    kind = next((name for name, cls in _MODULES.items() if isinstance(module, cls)), None)
    if kind is None:
        raise TypeError(f"module must be a torch.nn.RNN, torch.nn.LSTM or torch.nn.GRU, got {type(module).__name__}")
    unsupported = {
        "num_layers": (module.num_layers, 1),
        "bidirectional": (module.bidirectional, False),
        "bias": (module.bias, True),
        "proj_size": (module.proj_size, 0),
    }
    if kind == "rnn":
        unsupported["nonlinearity"] = (module.nonlinearity, "tanh")
    for name, (value, supported) in unsupported.items():
        if value != supported:
            raise ValueError(
                f"the NumPy twin has one {kind} layer with {name}={supported!r}; the module has {name}={value!r}"
            )
    return kind


def to_torch(params: RNNParams, kind: str) -> RNNModule:
    """A `torch.nn.RNN`, `LSTM` or `GRU` (one layer, time-major) holding a copy of the NumPy parameters.

    params: an RNNParams (or a dict of its fields) for `kind`, float32 or float64; the module gets
    their dtype. Nothing is drawn from torch's random generator: the module is built on the "meta"
    device, where its own initialisation touches no numbers, and then filled with params.
    """
    kind = _require_kind(kind)
    params = _check_params(params, kind)
    features, hidden = params.weight_ih.shape[1], params.weight_hh.shape[1]
    dtype = torch.from_numpy(params.weight_ih).dtype
    module = _MODULES[kind](features, hidden, device="meta", dtype=dtype).to_empty(device="cpu")
    with torch.no_grad():
        for name, value in zip(RNNParams._fields, params, strict=True):
            getattr(module, f"{name}_l0").copy_(torch.from_numpy(np.ascontiguousarray(value)))
    return module


def from_torch(module: RNNModule, *, grad: bool = False) -> RNNParams:
    """The parameters of a one-layer `torch.nn.RNN`, `LSTM` or `GRU` as an RNNParams of NumPy copies
    (their dtype kept), or, with grad=True, their gradients `.grad` (after a backward pass)."""
    kind_of(module)
    arrays = []
    for name in RNNParams._fields:
        tensor = getattr(module, f"{name}_l0")
        if grad:
            if tensor.grad is None:
                raise ValueError(f"{name}_l0.grad is None: run a backward pass through the module first")
            tensor = tensor.grad
        arrays.append(tensor.detach().cpu().clone().numpy())
    return RNNParams(*arrays)


def init_params(
    kind: str, input_size: int, hidden_size: int, rng: np.random.Generator, dtype: type = np.float64
) -> RNNModule:
    """The module of `kind` holding exactly the weights `dlbook.np.rnn.init_params` draws with the same
    arguments (torch's initialisation, uniform(-1/sqrt(H), 1/sqrt(H)), drawn from the NumPy rng)."""
    return to_torch(init_numpy_params(kind, input_size, hidden_size, rng, dtype), kind)


# ---- forward ------------------------------------------------------------------------------------


def _tensor(value: object) -> torch.Tensor:
    return value if isinstance(value, torch.Tensor) else torch.as_tensor(value)


def _layers(h: object) -> torch.Tensor:
    """(N, H) -> torch's (num_layers = 1, N, H)."""
    return _tensor(h).unsqueeze(0)


def _require_module(module: object, kind: str) -> None:
    if kind_of(module) != kind:
        raise TypeError(f"module must be a torch.nn.{_MODULES[kind].__name__}, got {type(module).__name__}")
    if module.batch_first:
        raise ValueError("module must be time-major (batch_first=False), as x is (T, N, D)")


def rnn(x: torch.Tensor, h0: torch.Tensor | None, module: torch.nn.RNN) -> tuple[torch.Tensor, torch.Tensor]:
    """x: (T, N, D), h0: (N, H) or None (zeros) -> out (T, N, H), h_T (N, H)."""
    _require_module(module, "rnn")
    out, h_n = module(_tensor(x), None if h0 is None else _layers(h0))
    return out, h_n[0]


def lstm(
    x: torch.Tensor, state0: tuple[torch.Tensor, torch.Tensor] | None, module: torch.nn.LSTM
) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """x: (T, N, D), state0: (h0, c0), each (N, H), or None (zeros) -> out (T, N, H), (h_T, c_T)."""
    _require_module(module, "lstm")
    out, (h_n, c_n) = module(_tensor(x), None if state0 is None else (_layers(state0[0]), _layers(state0[1])))
    return out, (h_n[0], c_n[0])


def gru(x: torch.Tensor, h0: torch.Tensor | None, module: torch.nn.GRU) -> tuple[torch.Tensor, torch.Tensor]:
    """x: (T, N, D), h0: (N, H) or None (zeros) -> out (T, N, H), h_T (N, H)."""
    _require_module(module, "gru")
    out, h_n = module(_tensor(x), None if h0 is None else _layers(h0))
    return out, h_n[0]


def rnn_step(x: torch.Tensor, h: torch.Tensor, module: torch.nn.RNN) -> torch.Tensor:
    """One step: x (N, D), h (N, H) -> h' (N, H); the module run on a sequence of length 1."""
    return rnn(_tensor(x).unsqueeze(0), h, module)[1]


def lstm_step(
    x: torch.Tensor, h: torch.Tensor, c: torch.Tensor, module: torch.nn.LSTM
) -> tuple[torch.Tensor, torch.Tensor]:
    """One step: x (N, D), h and c (N, H) -> h', c' (N, H); the module run on a sequence of length 1."""
    return lstm(_tensor(x).unsqueeze(0), (h, c), module)[1]


def gru_step(x: torch.Tensor, h: torch.Tensor, module: torch.nn.GRU) -> torch.Tensor:
    """One step: x (N, D), h (N, H) -> h' (N, H); the module run on a sequence of length 1."""
    return gru(_tensor(x).unsqueeze(0), h, module)[1]


# ---- gradient clipping --------------------------------------------------------------------------


def clip_grad_norm(
    parameters: Iterable[torch.Tensor] | torch.nn.Module, max_norm: float
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """`torch.nn.utils.clip_grad_norm_` (norm 2): scale the `.grad` of the parameters (or of a module's
    parameters) in place by min(1, max_norm / (total_norm + 1e-6)).

    Returns the gradients (the parameters' `.grad` tensors, now clipped; parameters without a gradient
    are skipped) and total_norm, the norm of all of them together before clipping, a 0-d tensor.
    """
    max_norm = require_positive("max_norm", max_norm)
    if isinstance(parameters, torch.nn.Module):
        parameters = parameters.parameters()
    with_grad = [parameter for parameter in parameters if parameter.grad is not None]
    total_norm = torch.nn.utils.clip_grad_norm_(with_grad, max_norm)
    return [parameter.grad for parameter in with_grad], total_norm
