"""FLOPs of one forward pass of a Keras model, counted per layer from its actual shapes.

    from tfi2i.flops import count_flops
    g = global_generator({"x": 35, "instances": 1}, ngf=64, n_downsample=4)
    count_flops(g, {"x": (1024, 2048, 35), "instances": (1024, 2048, 1)})      # int
    total, rows = count_flops(g, {...}, breakdown=True)                          # + one row per layer
    print(format_breakdown(rows))

**Convention.** FLOPs = 2 x multiply-accumulates (MACs) of one forward pass at
batch 1 (``batch`` changes it), the convention of the papers that compare
image-to-image generators by TFLOPs (e.g. MSG U-Net's 3.32 TFLOPs for
pix2pixHD at 2048x1024). Input shapes are H x W x C (channels last), without the
batch axis; a model with several inputs takes a dict keyed by input name.

Counted, from each layer's input and output shapes:

* ``Conv1D/2D/3D``: output positions x kernel size x ``C_in / groups`` x
  ``filters`` (a stride-``s`` conv counts its output positions only, so the
  stride divides the cost; dilation does not change it);
* ``Conv1D/2D/3DTranspose``: *input* positions x kernel size x ``C_in`` x
  ``filters`` (every input pixel scatters a full kernel; the cropping of
  ``padding`` / ``output_padding`` is ignored, as PyTorch's and TF's
  implementations compute those products too);
* ``DepthwiseConv1D/2D``: output positions x kernel size x ``C_in`` x
  ``depth_multiplier``; ``SeparableConv1D/2D``: that plus the pointwise
  ``C_in * depth_multiplier -> filters`` 1x1 conv at the output positions;
* ``Dense``: ``prod(input shape[:-1])`` x
  ``C_in`` x ``units``;
* nested models (functional or ``Sequential``) are walked into, so a layer
  shared by two calls is counted once per call.

Not counted (element-wise or nearly so, each O(H W C) against a conv's
O(H W C_in C_out k^2); under 1 % of the pix2pix-family generators here: at
2048x1024 every uncounted layer output plus one bias add per conv output of
pix2pixHD's global generators and local enhancer totals 0.08-0.16 % of the
counted FLOPs in *elements*, so < 1 % even at 6 FLOPs per element):
bias additions, normalization (batch / instance / group / layer norm),
activations, padding, cropping, pooling and resizing, additions and
concatenations, dropout, the VGG input mapping and any custom element-wise
layer. A layer that is none of the above but *contains* conv or dense
sublayers (a subclassed layer or model, which has no graph to walk) cannot be
counted from shapes, nor can a layer with a ``kernel`` that is not one of
`COUNTED_LAYERS` (``EinsumDense``, a custom conv): both are reported in
``uncounted`` and, with ``strict=True`` (the default), raise `FlopsError`
instead of silently under-counting.

The walk replays the functional graph with Keras' shape inference
(``compute_output_spec``) through ``Functional._run_through_graph``, a private
Keras 3 method (checked with Keras 3.15); ``Sequential`` models are walked
layer by layer.

**Why an analytic count, not TF's profiler.** ``tf.compat.v1.profiler``
(``ProfileOptionBuilder.float_operation()``) counts the ops of a traced graph,
and only where every shape is static: the model has to be traced (and its
variables frozen into constants) at the exact size, once per size. It knows op
types, not layers, so there is no per-layer breakdown, and its total mixes in
whichever element-wise ops have a registered FLOP statistic (``Mul``,
``AddV2``, ``BiasAdd``, ``Rsqrt``, ``Sub``: batch norm and biases) while
others (``Relu``, ``LeakyRelu``, ``Tanh``) count zero, so the element-wise
share it adds is neither complete nor zero. Counting from the layers' shapes
follows one stated convention, needs no graph trace at full size (the walk uses
Keras' shape inference only: a 2048x1024 pix2pixHD count takes ~20 ms and no
memory) and gives the breakdown. Checked on a small U-Net (``unet_128``,
ngf 8, 128x128, batch norm; ``tests/test_flops.py::test_profiler_agrees_on_convs``):
the profiler's ``Conv2D`` (18,481,152) and ``Conv2DBackpropInput`` (the
transposed convs, 36,831,232) FLOPs equal ours exactly, i.e. it uses the same
output-positions and input-positions conventions; its total, 55,549,808, is
0.43 % above ours (55,312,384): the batch-norm arithmetic and bias adds.
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import keras
from keras import tree

__all__ = ["COUNTED_LAYERS", "FlopsError", "LayerFlops", "count_flops", "flops_by_layer", "format_breakdown"]


class FlopsError(ValueError):
    """The model holds conv/dense weights inside a layer the shape walk cannot see into."""


@dataclasses.dataclass(frozen=True)
class LayerFlops:
    """One counted call of a layer: ``path`` (nested models joined by ``/``), class, shapes (with batch), FLOPs."""

    path: str
    kind: str
    input_shape: tuple
    output_shape: tuple
    flops: int


_L = keras.layers
#: The layer classes whose FLOPs are counted (subclasses included).
COUNTED_LAYERS = (_L.Conv1D, _L.Conv2D, _L.Conv3D, _L.Conv1DTranspose, _L.Conv2DTranspose, _L.Conv3DTranspose,
                  _L.DepthwiseConv1D, _L.DepthwiseConv2D, _L.SeparableConv1D, _L.SeparableConv2D, _L.Dense)


def _channel_axis(layer):
    return 1 if getattr(layer, "data_format", "channels_last") == "channels_first" else -1


def _spatial(shape, layer):
    shape = tuple(shape)
    return shape[2:] if _channel_axis(layer) == 1 else shape[1:-1]


def _prod(values):
    return int(math.prod(int(v) for v in values))


def _layer_flops(layer, in_shape, out_shape):
    """MACs x 2 of one call of a counted layer; None if the layer is not one of them."""
    L = keras.layers
    cin = int(in_shape[_channel_axis(layer)])
    batch = int(in_shape[0])
    if isinstance(layer, (L.SeparableConv1D, L.SeparableConv2D)):
        pos = batch * _prod(_spatial(out_shape, layer))
        dm = int(layer.depth_multiplier)
        return 2 * pos * (_prod(layer.kernel_size) * cin * dm + cin * dm * int(layer.filters))
    if isinstance(layer, (L.DepthwiseConv1D, L.DepthwiseConv2D)):
        pos = batch * _prod(_spatial(out_shape, layer))
        return 2 * pos * _prod(layer.kernel_size) * cin * int(layer.depth_multiplier)
    if isinstance(layer, (L.Conv1DTranspose, L.Conv2DTranspose, L.Conv3DTranspose)):
        pos = batch * _prod(_spatial(in_shape, layer))
        return 2 * pos * _prod(layer.kernel_size) * cin * int(layer.filters)
    if isinstance(layer, (L.Conv1D, L.Conv2D, L.Conv3D)):
        pos = batch * _prod(_spatial(out_shape, layer))
        groups = int(getattr(layer, "groups", 1) or 1)
        return 2 * pos * _prod(layer.kernel_size) * (cin // groups) * int(layer.filters)
    if isinstance(layer, L.Dense):
        return 2 * _prod(tuple(in_shape)[:-1]) * int(in_shape[-1]) * int(layer.units)
    return None


def _hides_counted_layers(layer):
    """True when a non-container layer has conv/dense sublayers (a subclassed block): its cost is invisible here."""
    subs = layer._flatten_layers(include_self=False, recursive=True)
    if any(isinstance(s, COUNTED_LAYERS + (keras.Model,)) for s in subs):
        return True
    try:  # a matrix-multiplying layer not in COUNTED_LAYERS (EinsumDense, a custom conv)
        return getattr(layer, "kernel", None) is not None
    except (AttributeError, ValueError):
        return False


def _spec(shape, dtype="float32"):
    return keras.KerasTensor(tuple(int(v) for v in shape), dtype=dtype)


class _Walker:
    def __init__(self):
        self.rows = []
        self.uncounted = []

    def model(self, model, inputs, prefix):
        if isinstance(model, keras.Sequential):
            h = tree.flatten(inputs)[0]  # one input
            for layer in model.layers:
                h = self.call(layer, prefix, (h,), {})
            return h
        if not hasattr(model, "_run_through_graph") or not getattr(model, "_nodes_by_depth", None):
            raise FlopsError(f"{prefix or model.name}: only functional and Sequential models can be walked "
                             f"(a subclassed model has no graph to read shapes from)")
        flat = tree.flatten(inputs)
        return model._run_through_graph(flat, operation_fn=lambda op: self._bind(op, prefix))

    def _bind(self, op, prefix):
        return lambda *args, **kwargs: self.call(op, prefix, args, kwargs)

    def call(self, op, prefix, args, kwargs):
        path = f"{prefix}{op.name}"
        if isinstance(op, keras.Model):
            return self.model(op, args[0], prefix=f"{path}/")
        kwargs = {k: v for k, v in kwargs.items() if k != "training"}
        out = op.compute_output_spec(*args, **kwargs)
        first_in = tree.flatten(args)[0] if tree.flatten(args) else None
        first_out = tree.flatten(out)[0]
        flops = None
        if isinstance(op, COUNTED_LAYERS):
            flops = _layer_flops(op, first_in.shape, first_out.shape)
        if flops is not None:
            self.rows.append(LayerFlops(path, type(op).__name__, tuple(first_in.shape), tuple(first_out.shape), flops))
        elif isinstance(op, keras.layers.Layer) and _hides_counted_layers(op):
            self.uncounted.append(path)
        return out


def _input_specs(model, input_shapes, batch):
    """KerasTensors in ``model.inputs`` order from H x W x C shapes (a dict by input name, or one shape).

    The names are the keys of a dict-input model (``model.input``), else the `keras.Input` names.
    """
    struct = model.input
    by_name = dict(struct) if isinstance(struct, dict) else {t.name: t for t in model.inputs}
    names = list(by_name)
    if not isinstance(input_shapes, dict):
        if len(names) != 1:
            raise ValueError(f"{model.name} has inputs {names}: give input_shapes as a dict by name")
        input_shapes = {names[0]: input_shapes}
    missing = [n for n in names if n not in input_shapes]
    extra = [n for n in input_shapes if n not in by_name]
    if missing or extra:
        raise ValueError(f"{model.name} has inputs {names}; input_shapes is missing {missing}, has unknown {extra}")
    specs = {}
    for name, t in by_name.items():
        shape = (batch, *input_shapes[name])
        declared = tuple(t.shape)
        if len(declared) != len(shape) or any(d is not None and d != s for d, s in zip(declared[1:], shape[1:])):
            raise ValueError(f"input {name!r} is declared {declared}, got {shape}")
        specs[id(t)] = _spec(shape, t.dtype)
    return [specs[id(t)] for t in model.inputs]


def flops_by_layer(model, input_shapes, batch=1, strict=True):
    """``(rows, uncounted)``: one `LayerFlops` per counted layer call in graph order, and the paths not seen into.

    Arguments as `count_flops`. Only conv / dense layers give rows (the others cost no counted FLOPs).
    """
    walker = _Walker()
    walker.model(model, _input_specs(model, input_shapes, batch), prefix="")
    if walker.uncounted:
        msg = (f"{model.name}: layers {walker.uncounted} hold conv/dense sublayers the shape walk cannot see into; "
               "their FLOPs are not counted")
        if strict:
            raise FlopsError(msg)
        warnings.warn(msg, stacklevel=2)
    return walker.rows, walker.uncounted


def count_flops(model, input_shapes, batch=1, breakdown=False, strict=True):
    """FLOPs (2 x MACs) of one forward pass of `model` (module docstring: what is and is not counted).

    Args:
      model: a functional or ``Sequential`` Keras model (nested models are walked into).
      input_shapes: ``(H, W, C)`` for a one-input model, else ``{input name: (H, W, C)}``,
        e.g. ``{"x": (1024, 2048, 35), "instances": (1024, 2048, 1)}``. Any
        ``None`` of the model's declared input shape is set from here; fixed
        dimensions must agree.
      batch: the batch size (default 1).
      breakdown: also return the per-layer rows (`LayerFlops`; `format_breakdown` prints them).
      strict: raise `FlopsError` when a layer hides conv/dense sublayers that
        cannot be counted (else warn and count the rest).

    Returns:
      the total as an ``int``; ``(total, rows)`` when `breakdown`.

    Building the symbolic model and this count are cheap (shape inference
    only; nothing runs at the given size).
    """
    rows, _ = flops_by_layer(model, input_shapes, batch=batch, strict=strict)
    total = sum(r.flops for r in rows)
    return (total, rows) if breakdown else total


def format_breakdown(rows, top=None):
    """A text table of `rows` (largest first when `top` is given, else graph order) with shares of the total."""
    total = sum(r.flops for r in rows) or 1
    shown = sorted(rows, key=lambda r: -r.flops)[:top] if top else rows
    width = max([len(r.path) for r in shown] + [5])
    lines = [f"{'layer':<{width}}  {'kind':<16} {'output':<22} {'GFLOPs':>10} {'share':>7}"]
    for r in shown:
        lines.append(f"{r.path:<{width}}  {r.kind:<16} {str(r.output_shape[1:]):<22} {r.flops / 1e9:>10.3f} "
                     f"{100 * r.flops / total:>6.2f}%")
    lines.append(f"{'total':<{width}}  {'':<16} {'':<22} {sum(r.flops for r in rows) / 1e9:>10.3f} "
                 f"({len(rows)} layer calls)")
    return "\n".join(lines)
