"""The README's evaluation commands run as written: PAN's FCN score and Modified Pix2Pix's Table 1.

The commands are read from the README's first ``bash`` block of the PAN section: the two training runs, the
segmenter and the evaluation with the paper's Table 1. Each gets tiny-size options appended (argparse: the last
value of an option wins), nothing else changes: same folders, same flags, same run names.
"""

import importlib.util
import pathlib
import shlex

import pytest

from tests.test_segmenter import write_cityscapes_like

REPO = pathlib.Path(__file__).resolve().parents[1]

#: Appended to each command so it runs in seconds; the README's own arguments are untouched.
TINY = {
    "recipes/pan_cityscapes.py": ["--steps", "1"] + [a for kv in (
        "generator.name=unet_6", "generator.ngf=4", "discriminator.ndf=4", "discriminator.n_layers=1",
        "loss.feature_weights=1,1", "data.load_size=72", "data.crop_size=64", "data.num_samples=2",
        "train.log_every=1", "train.export_at_end=false") for a in ("--set", kv)],
    "segmenter": ["--weights", "none", "--steps", "1", "--size", "64", "--batch-size", "1", "--fc-units", "8",
                  "--no-progress"],
    "recipes/modified_pix2pix_day2night.py": ["--steps", "1"] + [a for kv in (
        "generator.name=unet_6", "generator.ngf=4", "discriminator.ndf=4", "discriminator.n_layers=1",
        "data.load_size=72", "data.crop_size=64", "data.batch_size=1", "data.num_samples=1", "train.log_every=1",
        "train.export_at_end=false") for a in ("--set", kv)],
    "evaluate": ["--no-progress"],
}


def readme_commands(section="## PAN with a feature pyramid"):
    """The command lines of the first bash block of a README section (comments dropped)."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    body = text.split(section, 1)[1].split("\n## ", 1)[0]
    block = body.split("```bash\n", 1)[1].split("```", 1)[0]
    return [shlex.split(line, comments=True) for line in block.splitlines() if line.strip()]


def run_command(argv):
    """``python recipes/X.py ...`` -> the recipe's ``main``; ``tfi2i ...`` -> `tfi2i.cli.main`; the exit status."""
    if argv[:1] == ["python"]:
        spec = importlib.util.spec_from_file_location("_readme_recipe", REPO / argv[1])
        recipe = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(recipe)
        return recipe.main(argv[2:] + TINY[argv[1]])
    assert argv[0] == "tfi2i", argv
    from tfi2i.cli import main

    return main(argv[1:] + TINY[argv[1]])


@pytest.mark.slow
def test_pan_fcn_score_commands_run_as_written(tmp_path, monkeypatch, capsys):
    commands = readme_commands()
    fcn = [c for c in commands if "datasets/cityscapes" in c or c[0] == "tfi2i"]
    assert [c[:2] for c in fcn] == [["python", "recipes/pan_cityscapes.py"]] * 2 + [["tfi2i", "segmenter"],
                                                                                    ["tfi2i", "evaluate"]]
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "datasets" / "cityscapes"  # photo (A) | colour labels (B), as the pix2pix release
    write_cityscapes_like(root / "train", 2, 64, 0)
    write_cityscapes_like(root / "val", 2, 64, 1)
    for argv in fcn:
        assert run_command(argv) == 0, shlex.join(argv)
    evaluate = fcn[-1]
    out = tmp_path / evaluate[evaluate.index("--out") + 1]
    report = (out / "report.md").read_text(encoding="utf-8")
    printed = capsys.readouterr().out
    assert "FCN per-pixel acc." in report and "| pan_cityscapes_no_low | 2 |" in report  # our rows, FCN score
    for text in (report, printed):  # and Table 1 in the paper's layout, each run beside the row it reproduces
        table = text.split("### Table 1: FCN scores, Cityscapes labels -> photo", 1)[1].split("###", 1)[0]
        rows = [line for line in table.splitlines() if line.startswith("| ")]
        assert rows[0] == "| Loss |  | Per-pixel acc. | Per-class acc. | Class IOU |"
        assert rows[2] == "| without conditional adversarial loss | paper | 0.42 | 0.10 | 0.07 |"
        low = rows.index("| without adversarial loss on low-frequency feature maps | paper | 0.71 | 0.25 | 0.18 |")
        assert rows[low + 1].startswith("|  | ours: pan_cityscapes_no_low | ")
        assert rows[-2] == "| completed model | paper | 0.74 | 0.26 | 0.19 |"
        assert rows[-1].startswith("|  | ours: pan_cityscapes | ")


@pytest.mark.slow
def test_modified_pix2pix_table1_commands_run_as_written(tmp_path, monkeypatch, capsys):
    commands = readme_commands("## Modified Pix2Pix (day -> night)")
    assert commands[0][:3] == ["tfi2i", "download", "night2day"]  # network: replaced by a local folder below
    table1 = [c for c in commands if "datasets/night2day" in c and c[0] == "python"] + [
        c for c in commands if c[:2] == ["tfi2i", "evaluate"]]
    assert [c[:2] for c in table1] == [["python", "recipes/modified_pix2pix_day2night.py"]] * 2 + [
        ["tfi2i", "evaluate"]]
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "datasets" / "night2day"  # side-by-side pairs with train/ and test/ splits
    write_cityscapes_like(root / "train", 2, 64, 0)
    write_cityscapes_like(root / "test", 2, 64, 1)
    for argv in table1:
        assert run_command(argv) == 0, shlex.join(argv)
    evaluate = table1[-1]
    report = (tmp_path / evaluate[evaluate.index("--out") + 1] / "report.md").read_text(encoding="utf-8")
    table = report.split("### Table 1: day -> night", 1)[1].split("###", 1)[0]
    head = next(line for line in table.splitlines() if line.startswith("| "))
    assert "Original Pix2Pix cGAN: paper" in head and "Original Pix2Pix cGAN: ours: modified_pix2pix_day2night_pix2pix" in head
    assert "Modified Pix2Pix cGAN: ours: modified_pix2pix_day2night" in head
    assert "| PSNR | 26.77" in table or "| PSNR | 26.766" in table
