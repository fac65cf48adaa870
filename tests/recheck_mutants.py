"""
Rerun mutmut's survivors directly, against the tests you name (tests/README.md). mutmut 3 runs, for each
mutant, only the tests that reached the mutated function in-process when it mapped them, so two kinds of test
never see a mutant under `mutmut run`:
- tests written after that mapping (the ones written to kill the survivors);
- scripts run as subprocesses (`python train.py`, torchrun's workers): there the script is module __main__,
  and mutmut's trampolines, which look for the mutants of module `train`, run the original code.
This copies the current tests into mutants/, makes each script's __main__ block run it as a module of its own
name, checks that the tests pass with no mutant active, then runs each mutant with pytest -x, two at a time.

    mutmut run "train*"
    python tests/recheck_mutants.py "train.x_build_model*" tests/test_train.py tests/test_runs.py
    python tests/recheck_mutants.py --names=names.txt tests         # mutant names, one a line

Mutants are taken from `mutmut results` (all but the killed ones) or --names. Prints one line per mutant and
exits 1 if one survives. Not collected by pytest (its name does not start with test_).
"""
import fnmatch
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from conftest import tests_fail  # tests/ is on the path: this script is run from there

ROOT = Path(__file__).resolve().parent.parent
MUTANTS = ROOT / "mutants"
SCRIPTS = ("train", "sample", "eval", "bench")
MAIN = 'if __name__ == "__main__":\n    cli(main)\n'
BY_NAME = 'if __name__ == "__main__":\n    import {0}\n    cli({0}.main)\n'


def not_killed(pattern: str) -> list[str]:
    out = subprocess.run([sys.executable, "-m", "mutmut", "results", "--all", "true"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    pairs = [line.strip().split(": ", 1) for line in out.splitlines() if ": " in line]
    return [name for name, status in pairs if status != "killed" and fnmatch.fnmatchcase(name, pattern)]


def prepare() -> None:
    shutil.copytree(ROOT / "tests", MUTANTS / "tests", dirs_exist_ok=True)
    for script in SCRIPTS:
        path = MUTANTS / f"{script}.py"
        if path.exists() and path.read_text().endswith(MAIN):
            path.write_text(path.read_text()[:-len(MAIN)] + BY_NAME.format(script))


def killed(mutant: str, tests: list[str]) -> bool:
    """Whether the tests fail with this mutant active ('' for none)."""
    args = ["-p", "no:randomly", "-m", "not slow", *tests]
    return tests_fail(MUTANTS, args, {"MUTANT_UNDER_TEST": mutant})


def main(argv: list[str]) -> int:
    names_file = next((a.split("=", 1)[1] for a in argv if a.startswith("--names=")), None)
    rest = [a for a in argv if not a.startswith("--names=")]
    if names_file:
        names, tests = Path(names_file).read_text().split(), rest
    else:
        names, tests = not_killed(rest[0]), rest[1:]
    if not names or not tests:
        sys.exit(__doc__)
    prepare()
    if killed("", tests):
        sys.exit("the tests fail with no mutant active: mend them (or mutants/) first")
    survivors = []
    with ThreadPoolExecutor(2) as pool:
        for name, dead in pool.map(lambda name: (name, killed(name, tests)), names):
            print(name, "killed" if dead else "SURVIVED", flush=True)
            if not dead:
                survivors.append(name)
    print(f"{len(names) - len(survivors)} of {len(names)} killed")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
