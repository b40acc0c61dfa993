"""Issue 15, cases 11-13: numbers that make no sense are refused up front, downloads trust only clean archives.

11. ``--steps`` / ``--epochs`` below 1 are usage errors, every bounded config
    field refuses values outside its range (with the range in the message).
12. A training crop larger than the resized image, or not a multiple of the
    generator's size multiple (a U-Net's ``2**depth``), is refused when the
    config is resolved, with the nearest valid values.
13. ``tfi2i download`` records an archive's digest only after it extracted
    cleanly, deletes a rejected archive, and pins a known digest with
    ``--sha256`` (no network: archives are built here and served as file://).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import pathlib
import tarfile

import pytest

from tfi2i import config as C
from tfi2i import train

REPO = pathlib.Path(__file__).resolve().parents[1]


def resolve(*argv, cfg=None):
    """`train.resolve_config` of the default (pix2pix, unet_256, load 286, crop 256) config under CLI `argv`."""
    args = train.build_parser("test").parse_args(list(argv))
    return train.resolve_config(cfg if cfg is not None else C.Config(), args)


def sets(*items):
    """``("a=1", "b=2")`` -> ``["--set", "a=1", "--set", "b=2"]``."""
    return [a for item in items for a in ("--set", item)]


# ----------------------------------------------------------------------------- 11: --steps / --epochs
@pytest.mark.parametrize("argv", [["--steps", "0"], ["--steps", "-5"], ["--epochs", "-1"], ["--epochs", "0"]])
def test_steps_and_epochs_below_one_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        train.build_parser("test").parse_args(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {argv[0]}: must be an integer >= 1" in err and f"got {int(argv[1])}" in err
    assert "omit" in err  # says how to get the recipe's own schedule


def test_steps_flag_still_takes_positive_values_and_words_are_usage_errors(capsys):
    assert resolve("--steps", "7").train.steps == 7
    assert resolve("--epochs", "3").train == C.replace(C.Config(), train={"epochs": 3}).train
    with pytest.raises(SystemExit):
        train.build_parser("test").parse_args(["--steps", "ten"])
    assert "expected an integer >= 1, got 'ten'" in capsys.readouterr().err


def test_main_exits_2_for_steps_zero_instead_of_training_the_full_schedule(capsys):
    with pytest.raises(SystemExit) as exc:
        train.main(C.Config, argv=["--steps", "0", "--print-config"])
    assert exc.value.code == 2 and "--steps: must be an integer >= 1" in capsys.readouterr().err


# ----------------------------------------------------------------------------- 11: bounded fields
BAD_FIELDS = [
    ("data.batch_size=0", "data.batch_size must be an integer >= 1"),
    ("data.batch_size=-2", "data.batch_size must be an integer >= 1"),
    ("data.num_samples=0", "data.num_samples must be an integer >= 1"),
    ("data.load_size=-1", "data.load_size must be an int >= 0"),
    ("data.crop_size=0", "data.crop_size must be an int >= 1"),
    ("data.crop_size=0,256", "data.crop_size must be an int >= 1"),
    ("data.pyramid_levels=-1", "data.pyramid_levels must be an integer >= 0"),
    ("data.hole_size=-4", "data.hole_size must be an integer >= 0"),
    ("data.sr_factor=0", "data.sr_factor must be an integer >= 1"),
    ("optim.lr=0", r"optim.lr must be a number > 0"),
    ("optim.lr=-1e-4", r"optim.lr must be a number > 0"),
    ("optim.lr=nan", r"optim.lr must be a number > 0 .*got nan"),
    ("optim.lr=inf", r"optim.lr must be a number > 0 .*got inf"),
    ("optim.beta1=1", r"optim.beta1 must be a number in \[0, 1\)"),
    ("optim.beta1=-0.1", r"optim.beta1 must be a number in \[0, 1\)"),
    ("optim.beta2=1.5", r"optim.beta2 must be a number in \[0, 1\)"),
    ("optim.n_epochs=-1", "optim.n_epochs must be an integer >= 0"),
    ("optim.n_epochs_decay=-3", "optim.n_epochs_decay must be an integer >= 0"),
    ("loss.weights.l1=-1", "loss.weights.l1 must be a number >= 0"),
    ("loss.weights.g_gan=nan", "loss.weights.g_gan must be a number >= 0"),
    ("loss.feature_weights=1,-1", r"loss.feature_weights\[1\] must be a number >= 0"),
    ("generator.ngf=0", "generator.ngf must be an integer >= 1"),
    ("generator.dropout=1", r"generator.dropout must be a number in \[0, 1\)"),
    ("generator.output_channels=0", "generator.output_channels must be an integer >= 1"),
    ("discriminator.ndf=0", "discriminator.ndf must be an integer >= 1"),
    ("discriminator.n_layers=-1", "discriminator.n_layers must be an integer >= 0"),
    ("train.steps=-5", "train.steps must be an integer >= 0"),
    ("train.epochs=-1", "train.epochs must be an integer >= 0"),
    ("train.log_every=0", "train.log_every must be an integer >= 1"),
    ("train.sample_every=0", "train.sample_every must be an integer >= 1"),
    ("train.checkpoint_every=0", "train.checkpoint_every must be an integer >= 1"),
    ("train.keep_checkpoints=0", "train.keep_checkpoints must be an integer >= 1"),
    ("train.seed=-1", r"train.seed must be an integer in \[0, 4294967295\]"),
]


@pytest.mark.parametrize("item,message", BAD_FIELDS, ids=[b[0] for b in BAD_FIELDS])
def test_out_of_range_fields_are_refused_with_the_range(item, message):
    cfg = C.Config(loss=C.LossConfig(weights={"l1": 100.0, "g_gan": 1.0}, feature_weights=[1.0, 1.0]))
    with pytest.raises(C.ConfigError, match=message):
        C.override(cfg, [item])


def test_boundary_values_are_accepted():
    cfg = C.Config(loss=C.LossConfig(weights={"l1": 100.0}))
    out = C.override(cfg, ["optim.beta1=0", "generator.dropout=0", "loss.weights.l1=0", "train.steps=0",
                           "data.load_size=0", "data.batch_size=1", "discriminator.n_layers=0", "optim.lr=1"])
    assert (out.optim.beta1, out.generator.dropout, out.loss.weights["l1"], out.optim.lr) == (0.0, 0.0, 0.0, 1.0)


def test_config_json_with_a_bad_value_is_refused_too():
    values = json.loads(C.to_json(C.Config()))
    values["data"]["batch_size"] = 0
    with pytest.raises(C.ConfigError, match="data.batch_size must be an integer >= 1"):
        C.load(values)
    with pytest.raises(C.ConfigError, match="data.batch_size"):
        C.DataConfig(batch_size=True)  # a bool is not a count


def test_main_reports_a_bad_field_as_one_error_line(capsys):
    assert train.main(C.Config, argv=sets("data.batch_size=0") + ["--print-config"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: data.batch_size must be an integer >= 1") and err.count("\n") == 1


def test_a_schedule_of_zero_epochs_is_refused_when_it_sets_the_run_length():
    with pytest.raises(C.ConfigError, match="would train 0 steps"):
        resolve(*sets("optim.n_epochs=0", "optim.n_epochs_decay=0"))
    assert resolve("--steps", "5", *sets("optim.n_epochs=0", "optim.n_epochs_decay=0")).train.steps == 5


def test_cli_int_reads_and_refuses():
    parse = C.cli_int(1, "omit it for the default")
    assert parse("12") == 12
    with pytest.raises(argparse.ArgumentTypeError, match=r"must be an integer >= 1 \(omit it for the default\), got 0"):
        parse("0")


# ----------------------------------------------------------------------------- 12: crop vs load, size multiples
def test_crop_larger_than_load_is_refused_with_both_fixes():
    with pytest.raises(C.ConfigError) as err:
        resolve(*sets("data.crop_size=512"))
    msg = str(err.value)
    assert "data.crop_size=512 is larger than data.load_size=286" in msg
    # the suggested crop is the largest that fits and suits the 8-level U-Net (a multiple of 256)
    assert "data.crop_size=256 or smaller" in msg and "data.load_size=512 or larger" in msg
    with pytest.raises(C.ConfigError, match="data.crop_size=286 or smaller"):  # no size multiple known: the load
        C.validate(C.replace(C.Config(builder="tfi2i.toys:build_multiscale"), data={"crop_size": 512}))


def test_set_order_does_not_matter_for_cross_field_rules():
    cfg = resolve(*sets("data.crop_size=512", "data.load_size=572"))  # crop > 286 until load_size is applied
    assert (cfg.data.crop_size, cfg.data.load_size) == (512, 572)
    cfg = resolve(*sets("data.crop_size=64", "generator.name=unet_6", "data.load_size=72"))
    assert cfg.data.crop_size == 64


def test_rectangular_crop_larger_than_load():
    with pytest.raises(C.ConfigError, match=r"data.crop_size=256,512 is larger than data.load_size=286,286.*"
                                            r"data.crop_size=256,256 or smaller.*data.load_size=286,512 or larger"):
        resolve(*sets("data.crop_size=256,512"))
    cfg = C.replace(C.Config(), data={"resize_or_crop": "scale_width_and_crop", "load_size": (286, 300),
                                      "crop_size": (256, 512)})
    with pytest.raises(C.ConfigError, match="crop_size width 512 is larger than the data.load_size width 300.*"
                                            "a crop width of 256 or less"):
        C.validate(cfg)


def test_crop_not_a_multiple_of_the_unet_names_the_nearest_valid_sizes():
    with pytest.raises(C.ConfigError) as err:
        resolve(*sets("data.crop_size=250"))
    msg = str(err.value)
    assert ("data.crop_size=250 must be a multiple of 256 for pix2pix's 8-level U-Net (generator.name=unet_256): "
            "use data.crop_size=256") in msg
    with pytest.raises(C.ConfigError, match=r"data.crop_size=300 must be a multiple of 256 .*use data.crop_size=256 "
                                            r"or 512"):
        resolve(*sets("data.crop_size=300", "data.load_size=572"))
    with pytest.raises(C.ConfigError, match=r"multiple of 64 for pix2pix's 6-level U-Net \(generator.name=unet_6\): "
                                            r"use data.crop_size=64 or 128"):
        resolve(*sets("generator.name=unet_6", "data.crop_size=100", "data.load_size=128"))


def test_rectangular_crop_not_a_multiple():
    with pytest.raises(C.ConfigError, match=r"data.crop_size=250,512 must be a multiple of 256 .*"
                                            r"use data.crop_size=256,512 \(height,width\)"):
        resolve(*sets("data.crop_size=250,512", "data.load_size=286,572"))
    assert resolve(*sets("data.crop_size=256,512", "data.load_size=286,572")).data.crop_hw == (256, 512)


def test_size_multiple_asks_each_model_its_own_factor():
    from tfi2i.pix2pixhd import HDSection, Pix2PixHDConfig

    assert C.size_multiple(C.Config())[0] == 256
    assert C.size_multiple(C.replace(C.Config(), generator={"name": "unet_128"}))[0] == 128
    assert C.size_multiple(C.Config(builder="tfi2i.pan:build"))[0] == 256
    hd = Pix2PixHDConfig(builder="tfi2i.pix2pixhd:build")
    assert C.size_multiple(hd)[0] == 2 ** hd.hd.n_downsample_global
    local = Pix2PixHDConfig(builder="tfi2i.pix2pixhd:build", hd=HDSection(netG="local"))
    assert C.size_multiple(local)[0] == 2 ** (local.hd.n_downsample_global + local.hd.n_local_enhancers)
    assert C.size_multiple(C.Config(builder="tfi2i.toys:build_multiscale")) is None  # no contract(cfg): unchecked


def test_pix2pixhd_scale_width_and_none_modes_check_what_the_generator_sees():
    from tfi2i.pix2pixhd import Pix2PixHDConfig

    data = C.DataConfig(resize_or_crop="scale_width", load_size=(500, 1000), crop_size=(512, 1024))
    cfg = Pix2PixHDConfig(builder="tfi2i.pix2pixhd:build", data=data)
    with pytest.raises(C.ConfigError, match=r"data.load_size width 1000 must be a multiple of 16 .*"
                                            r"use a width of 992 or 1008"):
        C.validate(cfg)
    cfg = C.replace(cfg, data={"resize_or_crop": "none", "size_multiple": 8})
    with pytest.raises(C.ConfigError, match=r"data.size_multiple=8 must be a multiple of 16 .*data.size_multiple=16"):
        C.validate(cfg)
    assert C.validate(C.replace(cfg, data={"size_multiple": 32})) is not None


def test_main_reports_a_bad_crop_as_one_error_line(capsys):
    assert train.main(C.Config, argv=sets("data.crop_size=250") + ["--print-config"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: data.crop_size=250 must be a multiple of 256") and err.count("\n") == 1


# ----------------------------------------------------------------------------- 13: downloads
NAME = "facades"
GOOD = {"train/1.jpg": b"\xff\xd8 one" * 20, "val/1.jpg": b"\xff\xd8 two" * 20}


def _archive(path: pathlib.Path, files=GOOD, evil: str | None = None) -> bytes:
    """A tar.gz of ``facades/<files>``, plus a regular member named `evil` (e.g. a path escape)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for rel, data in files.items():
            info = tarfile.TarInfo(f"{NAME}/{rel}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if evil is not None:
            info = tarfile.TarInfo(evil)
            info.size = 4
            tar.addfile(info, io.BytesIO(b"evil"))
    return path.read_bytes()


@pytest.fixture
def site(tmp_path):
    """(folder served as file://, its URL, the download root)."""
    folder = tmp_path / "srv"
    folder.mkdir()
    return folder, folder.as_uri(), tmp_path / "root"


def _dl(root, url, **kwargs):
    from tfi2i.data.download import download

    return download(NAME, root, base_url=url, progress=False, **kwargs)


def _record(root):
    return root / f"{NAME}.tar.gz.sha256.json"


def test_rejected_download_is_deleted_and_never_trusted(site, tmp_path):
    from tfi2i.data.download import DownloadError

    folder, url, root = site
    _archive(folder / f"{NAME}.tar.gz", evil="../escaped.txt")
    with pytest.raises(DownloadError) as err:
        _dl(root, url)
    msg = str(err.value)
    assert "refusing to extract" in msg and "'..' component" in msg and "was deleted" in msg and "\n" not in msg
    assert sorted(p.name for p in root.iterdir()) == []  # no archive, no record, no part file, no data set
    assert not (tmp_path / "escaped.txt").exists()

    # the server is fixed: the good archive installs and is the one recorded (before: a digest mismatch against
    # the malicious archive's recorded digest)
    good = _archive(folder / f"{NAME}.tar.gz")
    path = _dl(root, url)
    assert (path / "train" / "1.jpg").read_bytes() == GOOD["train/1.jpg"]
    assert json.loads(_record(root).read_text())["sha256"] == hashlib.sha256(good).hexdigest()


def test_rejected_manual_archive_and_a_poisoned_record_are_deleted(site):
    from tfi2i.data.download import DownloadError

    _, url, root = site
    evil = _archive(root / f"{NAME}.tar.gz", evil="/tmp/tfi2i-hardening-abs.txt")
    # what the old version left behind: the rejected archive with its digest recorded as trusted
    _record(root).write_text(json.dumps({"sha256": hashlib.sha256(evil).hexdigest()}))
    with pytest.raises(DownloadError, match="absolute path.*was deleted"):
        _dl(root, url)
    assert not (root / f"{NAME}.tar.gz").exists() and not _record(root).exists()


def test_corrupt_download_is_deleted(site):
    from tfi2i.data.download import DownloadError

    folder, url, root = site
    (folder / f"{NAME}.tar.gz").write_bytes(b"not a tarball" * 10)
    with pytest.raises(DownloadError, match="cannot read archive.*was deleted"):
        _dl(root, url)
    assert sorted(p.name for p in root.iterdir()) == []


def test_digest_recorded_only_after_a_clean_extraction(site, monkeypatch):
    from tfi2i.data import download as dl

    folder, url, root = site
    good = _archive(folder / f"{NAME}.tar.gz")

    def disk_full(*args, **kwargs):
        raise dl.DownloadError("failed to extract (No space left on device); nothing was installed")

    monkeypatch.setattr(dl, "_extract", disk_full)
    with pytest.raises(dl.DownloadError, match="No space left"):
        _dl(root, url)
    assert (root / f"{NAME}.tar.gz").read_bytes() == good  # not the archive's fault: kept, for the next try
    assert not _record(root).exists()  # but not trusted yet
    monkeypatch.undo()
    _dl(root, url)
    assert json.loads(_record(root).read_text())["sha256"] == hashlib.sha256(good).hexdigest()


def test_pinned_digest_refuses_any_other_archive(site):
    from tfi2i.data.download import DownloadError

    folder, url, root = site
    good = hashlib.sha256(_archive(tmp := folder / "good.tar.gz")).hexdigest()
    tmp.unlink()
    other = _archive(folder / f"{NAME}.tar.gz", files={"train/x.jpg": b"someone else's"})
    with pytest.raises(DownloadError, match=f"expected {good} \\(--sha256\\), got {hashlib.sha256(other).hexdigest()}"):
        _dl(root, url, sha256=good)
    assert sorted(p.name for p in root.iterdir()) == []


def test_cli_prints_the_digest_trusted_on_first_use_and_how_to_pin_it(site, capsys):
    from tfi2i.data.download import add_parser

    folder, url, root = site
    digest = hashlib.sha256(_archive(folder / f"{NAME}.tar.gz")).hexdigest()
    parser = argparse.ArgumentParser(prog="tfi2i")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["download", NAME, "--root", str(root), "--base-url", url, "--no-progress"])
    assert args.func(args) == 0
    out, err = capsys.readouterr()
    assert out.strip() == str(root / NAME)
    assert "trusted on first use" in err and f"--sha256 {digest}" in err
    assert args.func(args) == 0  # already recorded: no note
    assert "trusted on first use" not in capsys.readouterr().err


def test_readme_says_how_to_pin_a_digest():
    readme = (REPO / "README.md").read_text()
    paragraph = readme[readme.index("* **`tfi2i download`**"):].split("\n\n", 1)[0]
    assert "--sha256" in paragraph and "trusted on first use" in paragraph and "deleted" in paragraph
