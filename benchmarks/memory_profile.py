"""Per-op memory profile of one TensorFlow call: which tensors are live when the allocator peaks.

With TF's BFC allocator serving CPU tensors (``machine.TENSOR_PEAK_ENV``,
read before TensorFlow is imported), TensorFlow's profiler records every
allocation and deallocation of the call (``MemoryAllocation`` /
``MemoryDeallocation`` events: op, kind of buffer, shape, bytes, the
allocator's bytes in use after it). `profile` runs a call under the profiler
and replays those events in time order; `summary` reports the moment the
allocator's bytes in use peak, the tensors live then that the call made,
grouped by the op that made them, and the bytes held from before the call
(weights, optimizer slots, inputs). This is the per-op view a GPU's
memory profile gives, on a CPU, for the training steps in
``bench_pix2pixhd.py`` and ``bench_msg_unet.py`` (``--memory-profile``).

    from memory_profile import profile, summary
    print(summary(profile(lambda: step(data), "/tmp/prof")))
"""

import glob
import os
import shutil

MB = 2 ** 20


def add_arguments(parser):
    """The two memory flags of the benchmarks that run TF children (``--tensor-peak``, ``--memory-profile DIR``)."""
    parser.add_argument("--tensor-peak", action="store_true",
                        help="TF children allocate tensors with TF's BFC allocator and report its peak "
                             "(peak_tensor_mb)")
    parser.add_argument("--memory-profile", default=None, metavar="DIR",
                        help="profile one more training step's allocations (trace under DIR; implies --tensor-peak): "
                             "JSON memory_profile, the tensors live at the allocator's peak by op (memory_profile.py)")


def child_env(args):
    """The environment of a TF child for those flags (``machine.TENSOR_PEAK_ENV`` added), or None (inherit)."""
    from machine import TENSOR_PEAK_ENV

    return {**os.environ, **TENSOR_PEAK_ENV} if args.tensor_peak or args.memory_profile else None


def _stats(event, stat_metadata):
    out = {}
    for s in event.stats:
        name = stat_metadata[s.metadata_id].name
        which = s.WhichOneof("value")
        out[name] = stat_metadata[s.ref_value].name if which == "ref_value" else getattr(s, which) if which else None
    return out


def load_events(logdir):
    """The allocator events of the newest ``*.xplane.pb`` under ``logdir``, in time order (dicts)."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    paths = sorted(glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True), key=os.path.getmtime)
    if not paths:
        raise FileNotFoundError(f"no profiler trace (*.xplane.pb) under {logdir}")
    space = xplane_pb2.XSpace()
    with open(paths[-1], "rb") as f:
        space.ParseFromString(f.read())
    events = []
    for plane in space.planes:
        for line in plane.lines:
            for ev in line.events:
                kind = plane.event_metadata[ev.metadata_id].name
                if kind not in ("MemoryAllocation", "MemoryDeallocation"):
                    continue
                st = _stats(ev, plane.stat_metadata)
                events.append({"t_ps": line.timestamp_ns * 1000 + ev.offset_ps, "alloc": kind == "MemoryAllocation",
                               "addr": st.get("addr"), "bytes": st.get("allocation_bytes") or 0,
                               "in_use": st.get("bytes_allocated") or 0, "op": st.get("tf_op") or "(unnamed)",
                               "region": st.get("region_type") or "", "shape": st.get("shape") or "",
                               "allocator": st.get("allocator_name") or ""})
    events.sort(key=lambda e: e["t_ps"])
    return events


def replay(events):
    """``(peak bytes in use, tensors made during the call and live at that moment)``."""
    live, peak, at_peak = {}, -1, {}
    for e in events:
        if e["alloc"]:
            live[e["addr"]] = e
        else:
            live.pop(e["addr"], None)  # a buffer made before the call: not in `live`
        if e["in_use"] > peak:
            peak, at_peak = e["in_use"], dict(live)
    return peak, list(at_peak.values())


def summary(events, top=20):
    """JSON-ready: the peak, what the call had made and still held then (by op, by kind), the rest held before."""
    peak, live = replay(events)
    made = sum(e["bytes"] for e in live)
    by_op, by_region, by_scope = {}, {}, {}
    for e in live:
        scope = e["op"].removeprefix("gradient_tape/").split("/")[0]
        by_scope[scope] = by_scope.get(scope, 0.0) + e["bytes"] / MB
        key = e["op"]
        entry = by_op.setdefault(key, {"op": key, "mb": 0.0, "tensors": 0, "shapes": {}})
        entry["mb"] += e["bytes"] / MB
        entry["tensors"] += 1
        entry["shapes"][e["shape"]] = entry["shapes"].get(e["shape"], 0) + 1
        by_region[e["region"] or "?"] = by_region.get(e["region"] or "?", 0.0) + e["bytes"] / MB
    ops = sorted(by_op.values(), key=lambda v: -v["mb"])
    for entry in ops:
        entry["shapes"] = dict(sorted(entry["shapes"].items(), key=lambda kv: -kv[1])[:3])
    start = events[0]["in_use"] - (events[0]["bytes"] if events[0]["alloc"] else -events[0]["bytes"]) if events else 0
    return {"events": len(events), "peak_mb": peak / MB, "in_use_at_start_mb": start / MB,
            "made_by_the_call_live_at_peak_mb": made / MB, "held_from_before_mb": (peak - made) / MB,
            "live_at_peak_by_kind_mb": dict(sorted(by_region.items(), key=lambda kv: -kv[1])),
            # the op's first name scope (its network: G, each D, VGG; a gradient's under the forward op's)
            "live_at_peak_by_scope_mb": dict(sorted(by_scope.items(), key=lambda kv: -kv[1])[:top]),
            "live_at_peak_top_ops": ops[:top], "ops_live_at_peak": len(ops)}


def profile(fn, logdir):
    """Runs ``fn()`` once under TensorFlow's profiler (a fresh ``logdir``) and returns its allocator events."""
    import tensorflow as tf

    shutil.rmtree(logdir, ignore_errors=True)
    tf.profiler.experimental.start(logdir)
    try:
        fn()
    finally:
        tf.profiler.experimental.stop()
    events = load_events(logdir)
    if not events:
        raise RuntimeError("the profiler recorded no allocations: run with TF_CPU_ALLOCATOR_USE_BFC=true "
                           "(machine.TENSOR_PEAK_ENV) set before TensorFlow is imported")
    return events
