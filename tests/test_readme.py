"""The README's newcomer commands are the ones CI runs, and its code map lists every file."""

import pathlib
import re
import subprocess

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    command = [line for line in ci.splitlines() if "pytest" in line and not line.startswith("#")]
    assert len(command) == 1 and command[0].strip() in readme


def test_code_structure_lists_every_tracked_source_file():
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Code structure", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"`([\w./-]+\.(?:py|ipynb|md|ini|sh))`", section))
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True).stdout.split()
    if not tracked:  # not a git checkout (e.g. an sdist): nothing to compare against
        return
    wanted = {f for f in tracked if f.endswith(".py") and not f.endswith("__init__.py")}
    missing = sorted(wanted - listed)
    assert not missing, f"README 'Code structure' lacks: {missing}"
