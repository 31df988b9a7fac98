"""Mutation testing of the pure core with mutmut (`make mutation`; README "Mutation testing").

Each module of `[tool.farm-mutation.modules]` in pyproject.toml is mutated on its own, in a copy of
the tree under build/mutation/<module>/, and its mutants run against that module's fast unit tests
only (the test files listed for it; mutmut runs, for each mutant, those of them that call the mutated
function). Prints the score per module and every surviving mutant's diff; mutants listed in
tests/mutation/equivalents.txt (behaviour-preserving, with the reason) are left out of the score.

    python tests/mutation/run.py                       # every module, every mutant
    python tests/mutation/run.py --sample 25           # 25 mutants per module, fixed seed: a CI step
    python tests/mutation/run.py farm/version.py       # one module

Exit 1 when a module scores below the goal (`goal` in the same table), 2 on a usage error.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / "build" / "mutation"
EQUIVALENTS = Path(__file__).resolve().parent / "equivalents.txt"
COPY = ("farm", "workers", "tests", "config")
# mutmut's exit codes (mutmut/stats.py): what counts as detected, as undetected, as not run.
DETECTED = {"killed", "timeout", "caught by type check", "segfault", "suspicious"}
UNDETECTED = {"survived", "no tests"}


@dataclass
class Result:
    module: str
    statuses: dict[str, str]                       # mutant name -> mutmut status
    diffs: dict[str, str] = field(default_factory=dict)  # survivors only
    equivalent: dict[str, str] = field(default_factory=dict)  # survivor -> why
    seconds: float = 0.0

    @property
    def counted(self) -> list[str]:
        return [m for m, s in self.statuses.items()
                if s in DETECTED | UNDETECTED and m not in self.equivalent]

    @property
    def killed(self) -> int:
        return sum(1 for m in self.counted if self.statuses[m] in DETECTED)

    @property
    def survivors(self) -> list[str]:
        return [m for m in self.counted if self.statuses[m] in UNDETECTED]

    @property
    def score(self) -> float:
        return 100.0 * self.killed / len(self.counted) if self.counted else 100.0


def load_config() -> tuple[dict[str, list[str]], float, set[str]]:
    doc = tomllib.loads((ROOT / "pyproject.toml").read_text())
    table = doc["tool"]["farm-mutation"]
    return ({m: list(t) for m, t in table["modules"].items()}, float(table.get("goal", 90)),
            set(table.get("fresh_import", [])))


def diff_key(diff: str) -> str:
    """A mutant's identity that survives renumbering: its function and the lines it changes."""
    changed = [ln[1:].strip() for ln in diff.splitlines()
               if ln[:1] in "+-" and not ln.startswith(("+++", "---"))]
    return hashlib.sha256("\n".join(changed).encode()).hexdigest()[:12]


def function_of(mutant: str) -> str:
    return re.sub(r"__mutmut_\d+$", "", mutant)


def load_equivalents() -> dict[tuple[str, str], str]:
    """`<function> <diff key>  why` lines (the key printed next to each survivor)."""
    out: dict[tuple[str, str], str] = {}
    for n, line in enumerate(EQUIVALENTS.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 2)
        if len(parts) < 3:
            sys.exit(f"{EQUIVALENTS}:{n}: expected '<function> <diff key> <why>'")
        out[(parts[0], parts[1])] = parts[2]
    return out


def workdir(module: str) -> Path:
    return WORK / module.replace("/", "_").removesuffix(".py")


def prepare(module: str, tests: list[str], fresh: bool) -> Path:
    """A fresh copy of the tree whose pyproject tells mutmut to mutate `module` against `tests`."""
    work = workdir(module)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", ".hypothesis", ".pytest_cache")
    for name in COPY:
        shutil.copytree(ROOT / name, work / name, ignore=ignore, symlinks=True)
    files = sorted({f for pattern in tests for f in glob.glob(pattern, root_dir=ROOT)})
    if not files:
        sys.exit(f"pyproject.toml [tool.farm-mutation.modules]: no test file matches {tests} for {module}")
    text = (ROOT / "pyproject.toml").read_text()
    text += ("\n# written by tests/mutation/run.py for this module\n"
             f"only_mutate = {json.dumps([module])}\n"
             f"pytest_add_cli_args_test_selection = {json.dumps(files)}\n")
    if fresh:
        # Code that runs at import time (helper schemas built by factories) is mutated only if each
        # mutant imports the module afresh: fork from a server that has not imported it.
        text += 'process_isolation = "forkserver"\nforkserver_warmup = "none"\n'
    # the [tool.mutmut] table is last in pyproject.toml, so these keys land in it
    assert text.rfind("[tool.mutmut]") > text.rfind("[tool.farm-mutation"), \
        "[tool.mutmut] must be the last table"
    (work / "pyproject.toml").write_text(text)
    return work


def mutmut(work: Path, *args: str, jobs: int) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "mutmut", *args]
    if args[0] == "run":
        cmd[4:4] = ["--max-children", str(jobs)]
    return subprocess.run(cmd, cwd=work, capture_output=True, text=True,
                          env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})


def widen_test_mapping(work: Path, module: str) -> None:
    """Run every selected test for every mutant of `module`. mutmut maps a function to the tests that
    called it; a factory called while the module is imported (string(), number(), one_of()...) is
    mapped to no test or to an arbitrary one, though every test uses the closures it built."""
    path = work / "mutants" / "mutmut-stats.json"
    stats = json.loads(path.read_text())
    by_function = stats["tests_by_mangled_function_name"]
    every = sorted({test for tests in by_function.values() for test in tests})
    prefix = module.removesuffix(".py").replace("/", ".") + "."
    functions = {function_of(name) for name in statuses(work, module)}
    for f in functions:
        by_function[f] = every
    assert all(f.startswith(prefix) for f in functions)
    path.write_text(json.dumps(stats))


def statuses(work: Path, module: str) -> dict[str, str]:
    from mutmut.stats import status_by_exit_code

    meta = json.loads((work / "mutants" / (module + ".meta")).read_text())
    return {name: status_by_exit_code[code] for name, code in meta["exit_code_by_key"].items()}


def run_module(module: str, tests: list[str], fresh: bool, sample: int | None, seed: int, jobs: int,
               equivalents: dict[tuple[str, str], str]) -> Result:
    start = time.monotonic()
    work = prepare(module, tests, fresh)
    names: list[str] = []
    if sample is not None or fresh:
        # generate the mutants (and the test mapping) without running any
        first = mutmut(work, "run", "no-such-mutant-", jobs=jobs)
        if not (work / "mutants" / (module + ".meta")).exists():
            sys.exit(f"mutmut failed on {module}:\n{first.stdout[-3000:]}\n{first.stderr[-3000:]}")
    if fresh:
        widen_test_mapping(work, module)
    if sample is not None:
        every = sorted(statuses(work, module))
        names = sorted(random.Random(f"{seed}:{module}").sample(every, min(sample, len(every))))
    proc = mutmut(work, "run", *names, jobs=jobs)
    meta = work / "mutants" / (module + ".meta")
    if not meta.exists():
        sys.exit(f"mutmut failed on {module}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    (work / "sample.json").write_text(json.dumps(names))
    return collect(module, work, equivalents, time.monotonic() - start)


def collect(module: str, work: Path, equivalents: dict[tuple[str, str], str], seconds: float = 0.0) -> Result:
    """The results of the last run in `work` (its sample only, if it was sampled)."""
    found = statuses(work, module)
    names = json.loads((work / "sample.json").read_text())
    if names:
        found = {m: found[m] for m in names}
    result = Result(module, found, seconds=seconds)
    for m, status in found.items():
        if status in UNDETECTED:
            shown = mutmut(work, "show", m, jobs=1).stdout
            result.diffs[m] = "\n".join(ln for ln in shown.splitlines() if not ln.startswith("# "))
            why = equivalents.get((function_of(m), diff_key(result.diffs[m])))
            if why is not None:
                result.equivalent[m] = why
    return result


def report(results: list[Result], goal: float, sampled: bool) -> bool:
    print("\n| module | mutants | killed | survived | equivalent | score |")
    print("|---|---|---|---|---|---|")
    ok = True
    for r in results:
        flag = "" if r.score >= goal else f"  < {goal:g} %"
        ok = ok and not flag
        print(f"| {r.module} | {len(r.counted) + len(r.equivalent)} | {r.killed} | {len(r.survivors)} | "
              f"{len(r.equivalent)} | {r.score:.1f} %{flag} |")
    print(f"\n({'sampled' if sampled else 'full'} run, goal {goal:g} %; "
          f"{sum(r.seconds for r in results):.0f} s)")
    for r in results:
        for m in r.survivors:
            print(f"\n--- survived: {m}\n    equivalents.txt key: {function_of(m)} {diff_key(r.diffs[m])}")
            print(r.diffs[m])
    return ok


def main(argv: list[str] | None = None) -> int:
    modules, goal, fresh = load_config()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("modules", nargs="*",
                    help="modules to mutate (default: all of [tool.farm-mutation.modules])")
    ap.add_argument("--sample", type=int, help="mutants per module, picked with a fixed seed")
    ap.add_argument("--seed", type=int, default=19)
    ap.add_argument("--jobs", type=int, default=2, help="mutants run at once (mutmut --max-children)")
    ap.add_argument("--json", type=Path, help="also write the results to this file")
    ap.add_argument("--report", action="store_true",
                    help="no run: report the last run's results again (after editing equivalents.txt)")
    args = ap.parse_args(argv)
    unknown = [m for m in args.modules if m not in modules]
    if unknown:
        print(f"not in pyproject.toml [tool.farm-mutation.modules]: {', '.join(unknown)}", file=sys.stderr)
        return 2
    equivalents = load_equivalents()
    results = []
    for module in args.modules or list(modules):
        print(f"== {module}", flush=True)
        if args.report:
            work = workdir(module)
            if not (work / "sample.json").exists():
                print(f"   no finished run in {work}", file=sys.stderr)
                return 2
            results.append(collect(module, work, equivalents))
        else:
            results.append(run_module(module, modules[module], module in fresh, args.sample, args.seed,
                                      args.jobs, equivalents))
        r = results[-1]
        print(f"   {r.killed}/{len(r.counted)} killed, {len(r.equivalent)} equivalent: {r.score:.1f} % "
              f"({r.seconds:.0f} s)", flush=True)
    sampled = any(json.loads((workdir(r.module) / "sample.json").read_text()) for r in results)
    ok = report(results, goal, sampled)
    if args.json:
        args.json.write_text(json.dumps([{"module": r.module, "score": round(r.score, 1), "killed": r.killed,
                                          "counted": len(r.counted), "equivalent": sorted(r.equivalent),
                                          "survived": r.survivors} for r in results], indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
