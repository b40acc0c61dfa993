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
    W/lock                     pid and host of the training process (while it runs; `tfi2i.run_lock`)
    W/resumes.jsonl            one record per resume that changed a setting (key: [old, new])
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import errno
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
    group.add_argument("--steps", type=config_lib.cli_int(1, "omit --steps for the recipe's schedule"), default=None,
                       help="total training steps (counted from the start of the run), >= 1")
    group.add_argument("--epochs", type=config_lib.cli_int(1, "omit --epochs for the recipe's schedule"), default=None,
                       help="total training epochs, >= 1")
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


def resolve_config(cfg, args, validate=True):
    """Applies --data/--steps/--epochs/--set to a recipe's config (then its cross-field checks, unless not `validate`)."""
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
    # cross-field checks (crop fits, size multiples), once every override is applied
    return config_lib.validate(cfg) if validate else cfg


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
        cfg = resolve_config(config_fn(args) if add_arguments is not None else config_fn(), args, validate=False)
        if not cfg.data.path and demo_config_fn is not None:
            cfg = resolve_config(demo_config_fn(cfg), args, validate=False)  # explicit --set / --steps still win
        cfg = config_lib.validate(cfg)  # a --set that fits the demo's sizes is checked against those
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


#: Config keys a resumed run may change (``--steps``/``--set``): how long it trains, how often it logs, samples and
#: checkpoints, how it runs and how it is evaluated. A key ending in "." covers its whole section. Everything
#: else (data, networks, loss weights, optimizer, seed, the builder, a paper's own sections) must stay as
#: config.json has it.
RESUME_SAFE = (
    "name", "train.steps", "train.epochs", "train.log_every", "train.sample_every", "train.checkpoint_every",
    "train.keep_checkpoints", "train.jit", "train.mixed_precision", "train.strategy", "train.deterministic",
    "train.eval_at_end", "train.export_at_end", "train.init_from", "data.eval_path", "data.eval_split",
    "data.num_samples", "data.validate", "data.tfds_data_dir", "data.tfds_manual_dir", "eval.",
)


def config_changes(saved, cfg):
    """``{key: (old, new)}`` for every leaf where ``cfg`` differs from ``saved`` (dotted keys, JSON values).

    ``data.path`` values naming the same folder (``runs/x`` and ``./runs/x/``) are no change.
    """
    old, new = _flat(json.loads(config_lib.to_json(saved))), _flat(json.loads(config_lib.to_json(cfg)))
    missing = "(absent)"
    changes = {k: (old.get(k, missing), new.get(k, missing)) for k in sorted(set(old) | set(new))
               if old.get(k, missing) != new.get(k, missing)}
    if "data.path" in changes and len({_same_folder(p) for p in changes["data.path"]}) == 1:
        del changes["data.path"]
    return changes


def _same_folder(path):
    """A local folder's real path (``tfds:`` names and empty paths as they are)."""
    if not isinstance(path, str) or not path or path.startswith("tfds:"):
        return path
    return os.path.realpath(path)


def _flat(values, prefix=""):
    out = {}
    for key, value in values.items():
        if isinstance(value, dict) and value:
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def resume_safe(key):
    """True when a resumed run may change config key ``key`` (see `RESUME_SAFE`)."""
    return any(key == k or (k.endswith(".") and key.startswith(k)) for k in RESUME_SAFE)


def check_resume_changes(workdir, saved, cfg):
    """The changes ``cfg`` makes to the saved config of a resumed run; a `TrainingError` listing any unsafe one."""
    changes = config_changes(saved, cfg)
    unsafe = {k: v for k, v in changes.items() if not resume_safe(k)}
    if unsafe:
        lines = "\n".join(f"  {k}: {json.dumps(a)} -> {json.dumps(b)}" for k, (a, b) in unsafe.items())
        raise TrainingError(
            f"--resume: these settings differ from the run in {workdir} (its config.json) and may not change in a "
            f"resumed run:\n{lines}\nResume with the run's own --data and --set values (what may change: --steps, "
            "--epochs, logging, sample and checkpoint cadence, evaluation settings), or start a new run in another "
            f"--workdir (--set train.init_from={workdir} starts it from this run's weights)")
    return changes


def _record_resume(workdir, changes):
    """Logs the settings a resume changed and appends them to ``W/resumes.jsonl`` (config.json gets the new values)."""
    if not changes:
        return
    log.info("--resume: changed settings (recorded in config.json and resumes.jsonl): %s",
             ", ".join(f"{k} {json.dumps(a)} -> {json.dumps(b)}" for k, (a, b) in changes.items()))
    _append_jsonl(os.path.join(workdir, "resumes.jsonl"), {
        "time": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "changed": {k: [a, b] for k, (a, b) in changes.items()}})


def prepare_workdir(workdir, cfg, resume):
    """Creates the run directory or checks it can be resumed; returns the config to use.

    On resume the invocation's config is compared with ``config.json``: keys
    of `RESUME_SAFE` may change (logged, recorded in ``resumes.jsonl`` and in
    the rewritten ``config.json``), any other difference is a `TrainingError`
    listing each key with its old and new value.
    """
    cfg_path = os.path.join(workdir, "config.json")
    has_run = os.path.exists(cfg_path)
    changes = {}
    if resume:
        if not has_run:
            raise TrainingError(f"--resume: {workdir} holds no run (no config.json); start it without --resume")
        try:
            saved = config_lib.load(json.load(open(cfg_path)))
        except ValueError as exc:  # JSONDecodeError and ConfigError
            raise TrainingError(f"--resume: {cfg_path} is not a readable config: {exc}") from None
        changes = check_resume_changes(workdir, saved, cfg)
    else:
        ckpt_dir = os.path.join(workdir, "checkpoints")
        if os.path.isdir(ckpt_dir) and os.listdir(ckpt_dir):
            raise TrainingError(
                f"{workdir} already holds a run with checkpoints; pass --resume to continue it or choose another --workdir"
            )
        for name in ("metrics.jsonl", "resumes.jsonl"):  # a previous attempt that never checkpointed
            if os.path.exists(os.path.join(workdir, name)):
                os.remove(os.path.join(workdir, name))
    os.makedirs(workdir, exist_ok=True)
    from tfi2i.visualize import atomic_write_bytes

    with _writing("config.json", workdir):
        atomic_write_bytes(cfg_path, config_lib.to_json(cfg).encode())
        _record_resume(workdir, changes)
    return cfg


def fit(cfg, build_fn=None, workdir=None, resume=False, after_fit=None):
    """Trains `build_fn(cfg)` per `cfg`, writing everything into `workdir`. Returns the final logs.

    ``build_fn`` defaults to the function ``cfg.builder`` names; a different
    one (a test's model) trains, but `tfi2i.runs.load_model` will rebuild the
    run with ``cfg.builder`` (a warning says so). `after_fit` ``(cfg,
    workdir)`` runs on the chief after evaluation and export. The run
    directory is locked (`tfi2i.run_lock`) from start to end: a second
    trainer on it is a `TrainingError` naming the holder.
    """
    if workdir is None:
        raise TrainingError("fit needs a run directory (workdir)")
    if build_fn is None:
        build_fn = _builder(cfg)
    elif config_lib.qualified_name(build_fn) != cfg.builder:
        log.warning("training with %s, but config.json records builder %s: evaluate/export/translate will rebuild "
                    "the run with the latter", config_lib.qualified_name(build_fn), cfg.builder)
    from tfi2i.run_lock import RunLock, RunLockError

    strategy = make_strategy(cfg.train.strategy)  # first: MultiWorkerMirroredStrategy must precede other TF work
    own_dir = worker_dir(workdir, strategy)
    try:
        with _writing("lock file", own_dir):
            lock = RunLock(own_dir).acquire()
    except RunLockError as exc:
        raise TrainingError(str(exc)) from None
    try:
        return _fit_locked(cfg, build_fn, workdir, own_dir, strategy, resume, after_fit)
    finally:
        lock.release()  # on every exit, exceptions included


def _fit_locked(cfg, build_fn, run_dir, workdir, strategy, resume, after_fit):
    """`fit`'s body, run while this process holds the lock of ``workdir`` (this worker's run directory)."""
    import tensorflow as tf

    from tfi2i.checkpoint import TrainingState, model_objects, remove_stale_temp
    from tfi2i.data import pipeline

    chief = is_chief(strategy)
    cfg = prepare_workdir(workdir, cfg, resume)
    remove_stale_temp(os.path.join(workdir, "checkpoints"))
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
            with _writing("metrics", workdir, state):
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
                                                     limit=data_cfg.num_samples)), "evaluation data", workdir,
                           source=eval_src)
    writer = tf.summary.create_file_writer(os.path.join(workdir, "logs")) if chief else tf.summary.create_noop_writer()
    log.info("training %s from step %d to %d (%s strategy, %d replicas, XLA %s, %s)", cfg.name, start, steps,
             cfg.train.strategy, strategy.num_replicas_in_sync, "on" if jit else "off",
             "mixed_float16" if cfg.train.mixed_precision else "float32")

    progress = _progress(start, steps, disable=not chief)
    window, window_start, last = [], time.perf_counter(), {}
    step = start
    check_weights = WeightCheck(model)  # runs at checkpoint time only, never inside the training step
    try:
        while step < steps:
            batch = _next_batch(iterator, f"training data at step {step + 1}", workdir, source=train_src)
            logs = {k: float(v) for k, v in step_fn(batch).items()}
            bad = [k for k, v in logs.items() if not math.isfinite(v)]
            if bad:
                raise TrainingError(
                    f"non-finite loss term(s) {bad} at step {step + 1} ({', '.join(f'{k}={logs[k]}' for k in bad)}); "
                    f"stopped; {_last_good_clause(state, workdir)}"
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
                with _writing(f"metrics of step {step}", workdir, state, check_weights):
                    if chief:
                        _append_jsonl(metrics_path, record)
                    with writer.as_default(step=step):
                        for k, v in mean.items():
                            tf.summary.scalar(f"train/{k}", v)
                        tf.summary.scalar("train/lr", lr)
                        tf.summary.scalar("train/images_per_sec", rate)
                window, window_start = [], time.perf_counter()
            if chief and (step % cfg.train.sample_every == 0 or step == steps):
                with _writing(f"samples of step {step}", workdir, state, check_weights):
                    write_samples(model, samples, workdir, step, writer)
            if step % cfg.train.checkpoint_every == 0 or step == steps:
                save_checkpoint(state, check_weights, step, step // spe, workdir)  # epochs completed
    except BaseException:
        progress.close()
        with contextlib.suppress(Exception):  # the error in flight is the one to report
            writer.flush()
        raise
    progress.close()
    with _writing("TensorBoard logs", workdir, state, check_weights):
        writer.flush()

    if not chief:
        log.info("worker done: %s", workdir)
        return last
    _after_training(cfg, model, train_src, eval_src, data_cfg, workdir, run_dir, metrics_path, step,
                    lambda what: _writing(what, workdir, state, check_weights))
    if after_fit is not None:
        after_fit(cfg, run_dir)
    log.info("done: %s", workdir)
    return last


def _after_training(cfg, model, train_src, eval_src, data_cfg, workdir, run_dir, metrics_path, step, writing):
    """The chief's end of a run: the model's own step, evaluation, loss curves, export.

    ``writing(what)``: the context (`_writing`) its file writes run in.
    """
    if hasattr(model, "after_training"):  # e.g. pix2pixHD's feature clusters (encode_features.py), before evaluation
        model.after_training(workdir, train_src, data_cfg)
    if cfg.train.eval_at_end:
        from tfi2i.model_eval import evaluate_model

        results = evaluate_model(model, eval_src, data_cfg, out_dir=None, mode=cfg.eval.mode, seed=cfg.eval.seed)
        results["mode"] = cfg.eval.mode
        results["step"] = step
        from tfi2i.visualize import atomic_write_bytes

        with writing("evaluation results"):
            _append_jsonl(metrics_path, {"split": "eval", **results})
            atomic_write_bytes(os.path.join(workdir, "eval.json"), json.dumps(results, indent=2).encode())
        log.info("evaluation on %d pairs: %s", results["num_images"],
                 ", ".join(f"{k}={results[k]:.4g}" for k in ("l1", "mse", "psnr", "ssim") if k in results))
    from tfi2i.visualize import plot_loss_curves

    with writing("loss curves"):
        plot_loss_curves(metrics_path, os.path.join(workdir, "loss_curves.png"))
    if cfg.train.export_at_end:
        from tfi2i.export import export_run

        with writing("export"):
            log.info("exported the generator for TF Serving: %s", export_run(run_dir))


# ------------------------------------------------------------------ checkpoints: weights check, full disk
class WeightCheck:
    """Finds non-finite values in a model's variables: every network's weights (batch-norm moving statistics
    included) and both optimizers' state. Run only when a checkpoint is due."""

    def __init__(self, model):
        self.model = model

    def variables(self):
        """The float variables checked, collected anew each time (an optimizer may add slots mid-run)."""
        seen, out = set(), []
        nets = [self.model.generator, *self.model.discriminators,
                *dict(getattr(self.model, "extra_networks", None) or {}).values()]
        for owner in nets + [self.model.g_optimizer, self.model.d_optimizer]:
            for v in getattr(owner, "variables", []):
                if id(v) not in seen and _dtype_name(v) in _FLOAT_BYTES:
                    seen.add(id(v))
                    out.append(v)
        return out

    def __call__(self):
        """Paths of the variables holding inf or NaN ([] when all are finite).

        Read into NumPy, one variable at a time (~0.2 s for the ~800 variables
        of a GAN and its Adam slots here): cheaper than tracing a function
        (~2 s) over a set that changes when an optimizer builds its slots.
        """
        return [getattr(v, "path", v.name) for v in self.variables() if not np.isfinite(np.asarray(v)).all()]

    def nbytes(self):
        """Bytes of the checked variables (about one checkpoint without the optimizer's integer counters)."""
        return int(sum(int(np.prod(v.shape)) * _FLOAT_BYTES[_dtype_name(v)] for v in self.variables()))


_FLOAT_BYTES = {"float16": 2, "bfloat16": 2, "float32": 4, "float64": 8}


def _dtype_name(variable):
    """``"float32"`` for a Keras or a tf variable."""
    dtype = variable.dtype
    return str(getattr(dtype, "name", dtype))


def save_checkpoint(state, check_weights, step, epoch, workdir):
    """Writes the checkpoint of ``step`` after checking every weight is finite.

    Non-finite weights: a `TrainingError`, nothing written. A full disk: a
    `TrainingError` naming the run directory and the space needed; the
    partial files of this checkpoint are removed and the previous one stays
    the latest.
    """
    bad = check_weights()
    if bad:
        raise TrainingError(
            f"non-finite weights at step {step}: {len(bad)} of {len(check_weights.variables())} variables hold inf "
            f"or NaN ({', '.join(bad[:5])}{', ...' if len(bad) > 5 else ''}); stopped without writing checkpoint "
            f"{step}; {_last_good_clause(state, workdir)}. Lower optim.lr or check the data, then start again")
    try:
        with _writing(f"checkpoint of step {step}", workdir, state, check_weights):
            state.save(step, epoch)
    except TrainingError:
        _remove_partial_checkpoint(state, step)
        raise


def _remove_partial_checkpoint(state, step):
    """Deletes what a failed write of checkpoint ``step`` left (its temp folder; its files unless it completed)."""
    import shutil

    prefix = os.path.join(state.manager.directory, f"ckpt-{step}")
    shutil.rmtree(prefix + "_temp", ignore_errors=True)
    if prefix not in state.manager.checkpoints:
        for path in [p for p in os.listdir(state.manager.directory) if p.startswith(f"ckpt-{step}.")]:
            with contextlib.suppress(OSError):
                os.remove(os.path.join(state.manager.directory, path))


def _last_good_clause(state, workdir):
    """``the last good checkpoint, W/checkpoints/ckpt-N (step N), is kept`` or that none was written."""
    good = state.last_good()
    if good is None:
        return f"no checkpoint was written in {workdir}/checkpoints before (nothing to resume from)"
    return f"the last good checkpoint, {good[0]} (step {good[1]}), is kept"


def _is_disk_full(exc):
    """True for "no space left" / "quota exceeded": an OSError, or TensorFlow's ResourceExhaustedError saying so
    (TF maps ENOSPC to RESOURCE_EXHAUSTED; its out-of-memory errors, "OOM when allocating", are not disk errors)."""
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    import tensorflow as tf

    text = str(getattr(exc, "message", "") or exc).lower()
    return isinstance(exc, tf.errors.ResourceExhaustedError) and ("space" in text or "quota" in text)


@contextlib.contextmanager
def _writing(what, workdir, state=None, check_weights=None):
    """Turns a full disk while writing ``what`` into one `TrainingError` (run directory, free space, space needed)."""
    try:
        yield
    except Exception as exc:
        if isinstance(exc, TrainingError) or not _is_disk_full(exc):
            raise
        raise TrainingError(_disk_full_message(workdir, what, state, _space_needed(state, check_weights))) from exc


def _space_needed(state, check_weights):
    """Bytes a checkpoint takes: the last one written, else the size of the checked variables."""
    from tfi2i.checkpoint import checkpoint_bytes

    good = state.last_good() if state is not None else None
    if good is not None and (size := checkpoint_bytes(good[0])):
        return size
    return check_weights.nbytes() if check_weights is not None else 0


def _disk_full_message(workdir, what, state, needed):
    import shutil

    try:
        free = _size(shutil.disk_usage(workdir).free)
    except OSError:
        free = "unknown"
    need = f"; at least {_size(needed)} free are needed to write a checkpoint" if needed else ""
    kept = _last_good_clause(state, workdir).replace("is kept", "is intact") if state is not None else (
        "nothing was changed")
    return (f"disk full: no space left on the device of {workdir} while writing the {what} ({free} free{need}); "
            f"stopped; {kept}. Free some space, then continue with --resume")


def _size(nbytes):
    """``"54.2 MB"``."""
    if nbytes < 1000:
        return f"{nbytes:.0f} B"
    for unit in ("KB", "MB", "GB", "TB"):
        nbytes /= 1000
        if nbytes < 1000 or unit == "TB":
            return f"{nbytes:.1f} {unit}"


def _lr(optimizer):
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    lr = inner.learning_rate
    return lr(inner.iterations) if callable(lr) else lr


def _next_batch(iterator, what, workdir, source=None):
    """``next(iterator)``; a bad file tf.data finds (label ids out of range, ...) becomes a `TrainingError`.

    TF's own decoder errors (``jpeg::Uncompress failed``) carry no file name; then
    ``source.validate()`` (one full check pass, only after a failure) finds the file.
    """
    import tensorflow as tf

    try:
        return next(iterator)
    except tf.errors.InvalidArgumentError as exc:
        detail = _readable(exc.message)
        if source is not None and "tfi2i:" not in str(exc.message):
            from tfi2i.data.images import DataError

            try:
                source.validate()
            except DataError as bad:
                detail = f"{detail} ({bad})"
            except Exception:  # the check itself failed: keep TF's message
                pass
        raise TrainingError(f"bad {what}: {detail}; checkpoints in {workdir}/checkpoints are kept") from None


def _readable(message):
    """The assertion's own words from a TF error message, without the graph dump and brackets."""
    text = str(message)
    if "assertion failed:" in text:
        text = text.split("assertion failed:", 1)[1]
    text = text.splitlines()[0] if text.strip() else "(no message)"
    return " ".join(part.strip(" []") for part in text.split("] [")).strip()[:1000]


def _truncate_jsonl(path, step):
    """Drops the records of steps after `step` (a resumed run trains them again).

    A torn last line (the process was killed while appending it) is dropped
    with a warning; a line that is not a JSON object elsewhere is a
    `TrainingError` naming the file and the line.
    """
    if not os.path.exists(path):
        return
    from tfi2i.visualize import atomic_write_bytes

    kept = [line + "\n" for line, record in _read_jsonl(path) if record.get("step", 0) <= step]
    atomic_write_bytes(path, "".join(kept).encode())


def _read_jsonl(path):
    """``(line, record)`` of each line of a ``metrics.jsonl``-style file; a torn last line is dropped with a warning."""
    with open(path, "rb") as f:
        lines = f.read().decode("utf-8", errors="replace").split("\n")
    numbered = [(i + 1, line) for i, line in enumerate(lines) if line.strip()]
    records = []
    for n, (lineno, line) in enumerate(numbered):
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError(f"a JSON {type(record).__name__}, not an object")
        except ValueError as exc:
            if n == len(numbered) - 1:
                log.warning("%s: dropped its torn last line %d (%r...), left by a run killed while writing it",
                            path, lineno, line[:60])
                break
            raise TrainingError(f"{path}, line {lineno}: not a JSON record ({exc}); fix or delete that line "
                                "and resume again") from None
        records.append((line.rstrip("\r"), record))
    return records


def _append_jsonl(path, record):
    """Appends one JSON line (on a line of its own, even after a torn last line)."""
    line = json.dumps(record) + "\n"
    with open(path, "a+b") as f:
        if f.tell() > 0:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                line = "\n" + line
        f.write(line.encode())


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

    # one example at a time: a batch of full-size samples through G at once held 4 GB more than the training step
    # itself for pix2pixHD 512p (its 2 pairs at 1024x512); every model samples with training=False, per example
    count = int(tf.nest.flatten(samples)[0].shape[0])
    parts = [model.sample_panels(tf.nest.map_structure(lambda t, i=i: t[i:i + 1], samples)) for i in range(count)]
    panels = [(name, np.concatenate([np.asarray(part[k][1]) for part in parts])) for k, (name, _) in enumerate(parts[0])]
    arrays = [p for _, p in panels]
    rows = [[a[i] for a in arrays] for i in range(arrays[0].shape[0])]
    grid = image_grid(rows)
    save_png(os.path.join(workdir, "samples", f"step_{step:07d}.png"), grid)
    if writer is not None:
        with writer.as_default(step=step):
            tf.summary.image("samples/grid", grid[None], max_outputs=1,
                             description=" | ".join(name for name, _ in panels))
    return grid
