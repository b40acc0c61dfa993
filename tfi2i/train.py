"""The one training entry point every recipe uses.

``python recipes/<name>.py [--data DIR] [--workdir DIR] [--steps N | --epochs N]
[--set key=value ...] [--resume] [--summary]`` parses into `main`, which
resolves the config, prepares the run directory and calls `fit`.

Run directory layout::

    W/config.json              resolved config (read back on --resume)
    W/checkpoints/             tf.train checkpoints (both nets, both optimizers, step, epoch)
    W/logs/                    TensorBoard scalars and image grids
    W/samples/step_XXXXXXX.png fixed evaluation pairs: inputs | outputs | y
    W/metrics.jsonl            one JSON object per logged step (+ evaluation records)
    W/eval.json                final evaluation metrics (L1, MSE, PSNR, SSIM)
    W/loss_curves.png          every loss term against the step
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import sys
import time

import numpy as np

from tfi2i import config as config_lib

log = logging.getLogger("tfi2i")


STRATEGIES = ("default", "mirrored", "multiworker")


class TrainingError(RuntimeError):
    """Training cannot start or continue (bad run directory, non-finite loss...)."""


# ------------------------------------------------------------------ CLI
def build_parser(description):
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None, help="data folder (absent: the embedded demo data set)")
    parser.add_argument("--workdir", default=None, help="run directory (default: runs/<recipe name>)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--steps", type=int, default=None, help="total training steps (counted from the start of the run)")
    group.add_argument("--epochs", type=int, default=None, help="total training epochs")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config field, e.g. --set optim.lr=1e-4 (repeatable)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --workdir from its latest checkpoint")
    parser.add_argument("--summary", action="store_true", help="print parameter counts per network as JSON and exit")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config as JSON and exit")
    parser.add_argument("--strategy", choices=STRATEGIES, default=None,
                        help="default: one device; mirrored: all local GPUs; multiworker: several machines (TF_CONFIG)")
    parser.add_argument("--mixed-precision", action="store_true", default=None,
                        help="float16 compute with loss scaling on both optimizers (float32 outputs)")
    parser.add_argument("--jit", choices=("auto", "on", "off"), default=None,
                        help="XLA for the training step (default auto: on with one GPU, off on CPU)")
    return parser


def resolve_config(cfg, args):
    """Applies --data/--steps/--epochs/--set to a recipe's config."""
    if args.data is not None:
        cfg = config_lib.replace(cfg, data={"path": args.data})
    cfg = config_lib.override(cfg, args.set)
    for flag, field in (("strategy", "strategy"), ("mixed_precision", "mixed_precision"), ("jit", "jit")):
        if getattr(args, flag, None) is not None:
            cfg = config_lib.replace(cfg, train={field: getattr(args, flag)})
    if args.steps is not None:
        cfg = config_lib.replace(cfg, train={"steps": args.steps, "epochs": 0})
    if args.epochs is not None:
        cfg = config_lib.replace(cfg, train={"epochs": args.epochs, "steps": 0})
    return cfg


def main(config_fn, build_fn=None, argv=None, description=None, demo_config_fn=None, add_arguments=None,
         after_fit=None):
    """Entry point of ``python recipes/<name>.py``.

    Args:
      config_fn: ``() -> Config``: the paper's settings; ``(args) -> Config``
        when `add_arguments` is given (e.g. ``--task`` / ``--variant``).
      build_fn: ``(Config) -> PairedGAN`` (uncompiled); default: the
        function ``cfg.builder`` names (what `tfi2i.runs.load_model` rebuilds).
      demo_config_fn: ``(Config) -> Config`` applied when no data is given
        (short schedule on the embedded demo set).
      add_arguments: ``(argparse.ArgumentParser) -> None``: the recipe's own
        flags (shown in ``--help``).
      after_fit: ``(cfg, workdir, args) -> None`` run after training (the
        chief only), e.g. a paper's benchmark protocol.
    """
    from tfi2i.pretrained import WeightsUnavailableError

    parser = build_parser(description or config_fn.__doc__)
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args(argv)
    _setup_logging()
    try:
        cfg = resolve_config(config_fn(args) if add_arguments is not None else config_fn(), args)
        if not cfg.data.path and demo_config_fn is not None:
            cfg = resolve_config(demo_config_fn(cfg), args)  # explicit --set / --steps still win
        if args.print_config:
            print(config_lib.to_json(cfg))
            return 0
        if args.summary:
            print(json.dumps(parameter_summary((build_fn or _builder(cfg))(cfg)), indent=2))
            return 0
        workdir = args.workdir or os.path.join("runs", cfg.name)
        hook = None if after_fit is None else (lambda c, w: after_fit(c, w, args))
        fit(cfg, build_fn, workdir, resume=args.resume, after_fit=hook)
    except (config_lib.ConfigError, TrainingError, ValueError, FileNotFoundError, WeightsUnavailableError) as err:
        if os.environ.get("TFI2I_DEBUG"):
            raise  # full traceback for developers
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


def _builder(cfg):
    from tfi2i.runs import RunError, builder_of

    try:
        return builder_of(cfg)
    except RunError as exc:
        raise config_lib.ConfigError(str(exc)) from None


def parameter_summary(model):
    """Trainable parameter count of each network of a `PairedGAN` (PyTorch's count: no BN running stats)."""
    out = {}
    for name, net in _networks(model).items():
        out[name] = int(sum(np.prod(v.shape) for v in net.trainable_weights))
        out[f"{name}_non_trainable"] = int(sum(np.prod(v.shape) for v in net.non_trainable_weights))
    return out


def _networks(model):
    nets = {"generator": model.generator}
    discs = model.discriminators
    for i, d in enumerate(discs):
        nets["discriminator" if len(discs) == 1 else f"discriminator_{i}"] = d
    return nets


def _setup_logging():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")


# ------------------------------------------------------------------ training
def total_steps(cfg, spe):
    if cfg.train.steps:
        return int(cfg.train.steps)
    epochs = cfg.train.epochs or (cfg.optim.n_epochs + cfg.optim.n_epochs_decay)
    return int(epochs) * spe


def configure_runtime(cfg):
    """Seeds, determinism and the dtype policy (after the strategy exists)."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(cfg.train.seed)
    if cfg.train.deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.mixed_precision.set_dtype_policy("mixed_float16" if cfg.train.mixed_precision else "float32")


def make_strategy(name):
    """``default`` (one device), ``mirrored`` (all local GPUs) or ``multiworker`` (``TF_CONFIG``)."""
    import tensorflow as tf

    if name == "mirrored":
        # all local GPUs; on a host without GPUs, all logical CPU devices (one unless configured, as in the tests)
        devices = [d.name for d in tf.config.list_logical_devices("GPU")] or [
            d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    if name == "multiworker":
        if "TF_CONFIG" not in os.environ:
            raise TrainingError("train.strategy=multiworker needs the TF_CONFIG environment variable (see docs/distributed.md)")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name != "default":
        raise config_lib.ConfigError(f"train.strategy must be one of {STRATEGIES}, got '{name}'")
    return tf.distribute.get_strategy()


def is_chief(strategy):
    """True on the process that writes the run's logs, samples, evaluation and export."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


def worker_dir(workdir, strategy):
    """Where this process keeps its state: the run directory on the chief, ``W/workers/<task>`` elsewhere.

    Every worker checkpoints (saving is collective under MultiWorkerMirroredStrategy)
    and keeps its own copy, so a run resumes on clusters without a shared file system.
    """
    if is_chief(strategy):
        return workdir
    resolver = strategy.cluster_resolver
    return os.path.join(workdir, "workers", f"{resolver.task_type}_{resolver.task_id}")


def distribute(strategy, ds, global_batch):
    """Splits every global batch of ``ds`` between workers and replicas, in order.

    Worker ``w`` of ``W`` takes rows ``[w*B/W, (w+1)*B/W)`` of each global batch
    and hands consecutive per-replica slices to its replicas, so the union over
    replicas is exactly the single-device batch (what the equivalence tests check).
    """
    import tensorflow as tf

    if strategy.num_replicas_in_sync == 1:
        return ds

    def dataset_fn(ctx):
        w, workers = ctx.input_pipeline_id, ctx.num_input_pipelines
        per_worker = global_batch // workers
        per_replica = ctx.get_per_replica_batch_size(global_batch)
        sliced = ds.map(lambda b: tf.nest.map_structure(lambda t: t[w * per_worker:(w + 1) * per_worker], b))
        return sliced.unbatch().batch(per_replica, drop_remainder=True).prefetch(tf.data.AUTOTUNE)

    return strategy.distribute_datasets_from_function(dataset_fn)


def use_jit(cfg, strategy):
    import tensorflow as tf

    if cfg.train.jit == "on":
        return True
    if cfg.train.jit == "off":
        return False
    if cfg.train.jit != "auto":
        raise config_lib.ConfigError(f"train.jit must be auto, on or off, got '{cfg.train.jit}'")
    return bool(tf.config.list_physical_devices("GPU")) and strategy.num_replicas_in_sync == 1  # Keras' "auto" rule


def make_optimizers(cfg, spe, restartable_g=False):
    """G's and D's Adam (``optim.adam``: `tfi2i.optimizers.TorchAdam` or Keras') on the schedule of ``optim.decay_rule``.

    With ``optim.fit_to_run`` the schedule is scaled onto the run's length
    (`total_steps`); see `tfi2i.schedules.Pix2PixLinearDecay`.
    ``restartable_g``: G's optimizer can restart mid-run (a model whose
    ``restarts_g_optimizer`` is true: pix2pixHD's ``niter_fix_global``).
    """
    from tfi2i.optimizers import make_adam
    from tfi2i.schedules import linear_decay

    fitted = total_steps(cfg, spe) if cfg.optim.fit_to_run else None

    def adam(restartable=False):
        schedule = linear_decay(cfg.optim.decay_rule, cfg.optim.lr, spe, cfg.optim.n_epochs, cfg.optim.n_epochs_decay,
                                total_steps=fitted)
        return make_adam(cfg.optim.adam, schedule, cfg.optim.beta1, cfg.optim.beta2, restartable=restartable)

    return adam(restartable_g), adam()


def schedule_warning(cfg, spe, steps):
    """One line saying how the LR schedule ends when the run's length differs from its epochs (None when it does not)."""
    n, nd = cfg.optim.n_epochs, cfg.optim.n_epochs_decay
    planned = (n + nd) * spe
    if cfg.optim.fit_to_run or steps == planned:
        return None
    from tfi2i.schedules import linear_decay

    schedule = linear_decay(cfg.optim.decay_rule, cfg.optim.lr, spe, n, nd)
    last = float(schedule(steps - 1))
    # 0-based first step of the first epoch below the base rate (pix2pix: epoch n; pix2pixHD: epoch n + 2)
    decay_from = ((max(1, n) - 1) if cfg.optim.decay_rule == "pix2pix" else n + 1) * spe
    if steps <= decay_from:
        how = f"LR stays {cfg.optim.lr:g} to the end (the decay would start at step {decay_from + 1})"
    elif last > 0:
        how = f"LR decays only to {last:.3g} ({last / cfg.optim.lr:.1%} of {cfg.optim.lr:g}) by the last step"
    else:
        how = f"LR reaches 0 at step {planned - spe + 1} and stays 0 for the last {steps - planned + spe} steps"
    return (f"LR schedule: the run has {steps} steps but optim.n_epochs + optim.n_epochs_decay = {n} + {nd} epochs "
            f"x {spe} steps = {planned} steps, so the schedule will not decay as the epochs say: {how}; "
            "set optim.fit_to_run=true to scale it onto the run")


def make_distributed_step(model, strategy, jit):
    """A `tf.function` running `model.train_step` on every replica and summing the per-replica shares."""
    import tensorflow as tf

    # autograph off: the steps use tf.cond / tf.where for data-dependent control flow, never Python `if` on a
    # tensor, and converting every function a step calls took ~18 s of each run's first trace (MSG U-Net smoke)
    step_fn = tf.function(model.train_step, jit_compile=True, autograph=False) if jit else model.train_step

    @tf.function(autograph=False)
    def distributed_step(batch):
        logs = strategy.run(step_fn, args=(batch,))
        return {k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for k, v in logs.items()}

    return distributed_step


def prepare_workdir(workdir, cfg, resume):
    """Creates the run directory or checks it can be resumed; returns the config to use."""
    cfg_path = os.path.join(workdir, "config.json")
    has_run = os.path.exists(cfg_path)
    if resume:
        if not has_run:
            raise TrainingError(f"--resume: {workdir} holds no run (no config.json); start it without --resume")
        saved = config_lib.load(json.load(open(cfg_path)))
        # keep the saved run's settings; the length of training and how it runs (strategy, XLA,
        # mixed precision) follow this invocation
        now = cfg.train
        cfg = dataclasses.replace(saved, train=dataclasses.replace(
            saved.train, steps=now.steps, epochs=now.epochs, strategy=now.strategy, jit=now.jit,
            mixed_precision=now.mixed_precision))
    else:
        ckpt_dir = os.path.join(workdir, "checkpoints")
        if os.path.isdir(ckpt_dir) and os.listdir(ckpt_dir):
            raise TrainingError(
                f"{workdir} already holds a run with checkpoints; pass --resume to continue it or choose another --workdir"
            )
        if os.path.exists(os.path.join(workdir, "metrics.jsonl")):
            os.remove(os.path.join(workdir, "metrics.jsonl"))  # a previous attempt that never checkpointed
    os.makedirs(workdir, exist_ok=True)
    from tfi2i.visualize import atomic_write_bytes

    atomic_write_bytes(cfg_path, config_lib.to_json(cfg).encode())
    return cfg


def fit(cfg, build_fn=None, workdir=None, resume=False, after_fit=None):
    """Trains `build_fn(cfg)` per `cfg`, writing everything into `workdir`. Returns the final logs.

    ``build_fn`` defaults to the function ``cfg.builder`` names; a different
    one (a test's model) trains, but `tfi2i.runs.load_model` will rebuild the
    run with ``cfg.builder`` (a warning says so). `after_fit` ``(cfg,
    workdir)`` runs on the chief after evaluation and export.
    """
    if workdir is None:
        raise TrainingError("fit needs a run directory (workdir)")
    if build_fn is None:
        build_fn = _builder(cfg)
    elif config_lib.qualified_name(build_fn) != cfg.builder:
        log.warning("training with %s, but config.json records builder %s: evaluate/export/translate will rebuild "
                    "the run with the latter", config_lib.qualified_name(build_fn), cfg.builder)
    import tensorflow as tf

    from tfi2i.checkpoint import TrainingState, model_objects
    from tfi2i.data import pipeline

    strategy = make_strategy(cfg.train.strategy)  # first: MultiWorkerMirroredStrategy must precede other TF work
    chief = is_chief(strategy)
    run_dir, workdir = workdir, worker_dir(workdir, strategy)
    cfg = prepare_workdir(workdir, cfg, resume)
    configure_runtime(cfg)
    from tfi2i.data.open import open_data

    train_src, eval_src, data_cfg = open_data(cfg)
    cfg = dataclasses.replace(cfg, data=data_cfg)
    global_batch = data_cfg.batch_size
    if global_batch % strategy.num_replicas_in_sync:
        raise TrainingError(f"data.batch_size {global_batch} is not divisible by {strategy.num_replicas_in_sync} replicas")
    spe = pipeline.steps_per_epoch(len(train_src), global_batch)
    steps = total_steps(cfg, spe)
    log.info("train: %s | eval: %s | %d steps per epoch, %d steps in all", train_src.describe(), eval_src.describe(), spe, steps)
    if (warning := schedule_warning(cfg, spe, steps)) is not None:
        log.warning(warning)

    with strategy.scope():
        model = build_fn(cfg)
        g_opt, d_opt = make_optimizers(cfg, spe, restartable_g=bool(getattr(model, "restarts_g_optimizer", False)))
        model.compile(g_optimizer=g_opt, d_optimizer=d_opt)
        state = TrainingState(
            os.path.join(workdir, "checkpoints"), keep=cfg.train.keep_checkpoints, **model_objects(model),
            g_optimizer=model.g_optimizer, d_optimizer=model.d_optimizer,
        )
    start = 0
    metrics_path = os.path.join(workdir, "metrics.jsonl")
    if resume:
        restored = state.restore_latest()
        if restored is None and state.manager.checkpoints:
            raise TrainingError(f"--resume: no readable checkpoint in {workdir}/checkpoints")
        if restored is None:
            log.warning("--resume: the run stopped before its first checkpoint was complete; starting from step 0")
        else:
            start = int(state.step.numpy())
            log.info("resumed from %s at step %d (epoch %d)", restored, start, start // spe)
        if chief:
            _truncate_jsonl(metrics_path, start)  # records of steps after the checkpoint are trained again
    if start >= steps:
        log.info("run already at step %d >= %d requested steps; nothing to train", start, steps)
        return {}
    if start == 0 and cfg.train.init_from:
        from tfi2i.warm_start import WarmStartError, warm_start

        try:
            warm_start(model, cfg.train.init_from)
        except WarmStartError as exc:
            raise TrainingError(str(exc)) from None

    ds, _ = pipeline.train_dataset(train_src, data_cfg, cfg.train.seed, start_step=start)
    iterator = iter(distribute(strategy, ds, global_batch))
    jit = use_jit(cfg, strategy)
    step_fn = make_distributed_step(model, strategy, jit)
    samples = _next_batch(iter(pipeline.eval_dataset(eval_src, data_cfg, batch_size=data_cfg.num_samples,
                                                     limit=data_cfg.num_samples)), "evaluation data", workdir)
    writer = tf.summary.create_file_writer(os.path.join(workdir, "logs")) if chief else tf.summary.create_noop_writer()
    log.info("training %s from step %d to %d (%s strategy, %d replicas, XLA %s, %s)", cfg.name, start, steps,
             cfg.train.strategy, strategy.num_replicas_in_sync, "on" if jit else "off",
             "mixed_float16" if cfg.train.mixed_precision else "float32")

    progress = _progress(start, steps, disable=not chief)
    window, window_start, last = [], time.perf_counter(), {}
    step = start
    try:
        while step < steps:
            batch = _next_batch(iterator, f"training data at step {step + 1}", workdir)
            logs = {k: float(v) for k, v in step_fn(batch).items()}
            bad = [k for k, v in logs.items() if not math.isfinite(v)]
            if bad:
                raise TrainingError(
                    f"non-finite loss term(s) {bad} at step {step + 1} ({', '.join(f'{k}={logs[k]}' for k in bad)}); "
                    f"stopped; the last good checkpoint in {workdir}/checkpoints is kept"
                )
            step += 1
            window.append(logs)
            last = logs
            progress.update(1)
            if step % cfg.train.log_every == 0 or step == steps:
                elapsed = time.perf_counter() - window_start
                mean = {k: float(np.mean([w[k] for w in window])) for k in logs}
                rate = len(window) * global_batch / max(elapsed, 1e-9)
                lr = float(_lr(model.g_optimizer))
                progress.set_postfix({**{k: f"{v:.3g}" for k, v in mean.items() if k.endswith("total") or k in ("l1",)},
                                      "img/s": f"{rate:.2f}"}, refresh=False)
                record = {"split": "train", "step": step, "epoch": (step - 1) // spe, **mean, "lr": lr, "images_per_sec": rate}
                if chief:
                    _append_jsonl(metrics_path, record)
                with writer.as_default(step=step):
                    for k, v in mean.items():
                        tf.summary.scalar(f"train/{k}", v)
                    tf.summary.scalar("train/lr", lr)
                    tf.summary.scalar("train/images_per_sec", rate)
                window, window_start = [], time.perf_counter()
            if chief and (step % cfg.train.sample_every == 0 or step == steps):
                write_samples(model, samples, workdir, step, writer)
            if step % cfg.train.checkpoint_every == 0 or step == steps:
                state.save(step, step // spe)  # epochs completed
    finally:
        progress.close()
        writer.flush()

    if not chief:
        log.info("worker done: %s", workdir)
        return last
    if hasattr(model, "after_training"):  # e.g. pix2pixHD's feature clusters (encode_features.py), before evaluation
        model.after_training(workdir, train_src, data_cfg)
    if cfg.train.eval_at_end:
        from tfi2i.model_eval import evaluate_model

        results = evaluate_model(model, eval_src, data_cfg, out_dir=None, mode=cfg.eval.mode, seed=cfg.eval.seed)
        results["mode"] = cfg.eval.mode
        results["step"] = step
        _append_jsonl(metrics_path, {"split": "eval", **results})
        from tfi2i.visualize import atomic_write_bytes

        atomic_write_bytes(os.path.join(workdir, "eval.json"), json.dumps(results, indent=2).encode())
        log.info("evaluation on %d pairs: %s", results["num_images"],
                 ", ".join(f"{k}={results[k]:.4g}" for k in ("l1", "mse", "psnr", "ssim") if k in results))
    from tfi2i.visualize import plot_loss_curves

    plot_loss_curves(metrics_path, os.path.join(workdir, "loss_curves.png"))
    if cfg.train.export_at_end:
        from tfi2i.export import export_run

        log.info("exported the generator for TF Serving: %s", export_run(run_dir))
    if after_fit is not None:
        after_fit(cfg, run_dir)
    log.info("done: %s", workdir)
    return last


def _lr(optimizer):
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    lr = inner.learning_rate
    return lr(inner.iterations) if callable(lr) else lr


def _next_batch(iterator, what, workdir):
    """``next(iterator)``; a bad file tf.data finds (label ids out of range, ...) becomes a `TrainingError`."""
    import tensorflow as tf

    try:
        return next(iterator)
    except tf.errors.InvalidArgumentError as exc:
        raise TrainingError(f"bad {what}: {_readable(exc.message)}; checkpoints in {workdir}/checkpoints "
                            "are kept") from None


def _readable(message):
    """The assertion's own words from a TF error message, without the graph dump and brackets."""
    text = str(message)
    if "assertion failed:" in text:
        text = text.split("assertion failed:", 1)[1]
    text = text.splitlines()[0] if text.strip() else "(no message)"
    return " ".join(part.strip(" []") for part in text.split("] [")).strip()[:1000]


def _truncate_jsonl(path, step):
    """Drops the records of steps after `step` (a resumed run trains them again)."""
    if not os.path.exists(path):
        return
    from tfi2i.visualize import atomic_write_bytes

    lines = [line for line in open(path) if line.strip() and json.loads(line).get("step", 0) <= step]
    atomic_write_bytes(path, "".join(lines).encode())


def _append_jsonl(path, record):
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def _progress(start, total, disable=False):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=start, disable=disable, unit="step", dynamic_ncols=True, smoothing=0.1, file=sys.stderr,
                mininterval=0.5 if sys.stderr.isatty() else 30)  # logs to files stay short


def write_samples(model, samples, workdir, step, writer=None):
    """Saves the fixed evaluation pairs as a grid, one row per pair, PNG and TensorBoard.

    The columns are the model's `sample_panels` (its inputs as pictures,
    every named output, the target; PAN adds the high-frequency maps ``h_k``
    of output and target).
    """
    import tensorflow as tf

    from tfi2i.visualize import image_grid, save_png

    panels = model.sample_panels(samples)
    arrays = [np.asarray(p) for _, p in panels]
    rows = [[a[i] for a in arrays] for i in range(arrays[0].shape[0])]
    grid = image_grid(rows)
    save_png(os.path.join(workdir, "samples", f"step_{step:07d}.png"), grid)
    if writer is not None:
        with writer.as_default(step=step):
            tf.summary.image("samples/grid", grid[None], max_outputs=1,
                             description=" | ".join(name for name, _ in panels))
    return grid
