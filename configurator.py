"""
Configuration for train.py, sample.py and bench.py from the command line:

    python train.py config/train_shakespeare_char.py --batch_size=32 --compile=False

Every key and its one default live in the script's config dataclass. Config files are plain Python that assign
to those keys, applied in order; then each --key=value, parsed as a Python literal (ast.literal_eval) or else
kept as a string. Unknown keys and values of the wrong type are errors that name the key. --help lists every
key.

A key is defined in one place, its dataclass field: its default, the values it allows and what it does,
`batch_size: int = key(12, positive, "sequences per micro-step per process")`. A key without a range (a bool,
free text) passes None as its check: `overwrite: bool = key(False, None, "replace the run in out_dir")`.
--help shows each key's default, type, range and description. Rules that tie keys together are the
dataclass's problems() method. configure() checks both once, before a script reads data or
writes anything, and reports every problem at once, one line each: `error: <key>=<value>: <what is allowed>`.
"""
import ast
import dataclasses
import difflib
import os
import re
import shutil
import sys
import textwrap
import traceback
import types
import typing
from collections.abc import Iterable
from typing import Any, Callable, TypeVar

T = TypeVar("T")


class UsageError(Exception):
    """Bad input from the user (config, data, checkpoint, prompt): reported without a traceback, one line per
    problem (several problems may be given at once)."""

    def __init__(self, *problems: str):
        super().__init__("; ".join(problems))
        self.problems = list(problems)


@dataclasses.dataclass(frozen=True)
class Check:
    """The values one key allows: ok(value) says whether value is one, `allowed` says which in words (for
    --help and for errors, as 'must be <allowed>')."""
    ok: Callable[[Any], bool]
    allowed: str


positive = Check(lambda v: v > 0, "> 0")
non_negative = Check(lambda v: v >= 0, ">= 0")
probability = Check(lambda v: 0 <= v < 1, "in [0, 1)")  # dropout, Adam's betas: 1 would never learn
fraction = Check(lambda v: 0 < v <= 1, "in (0, 1]")


def one_of(*choices: Any) -> Check:
    return Check(lambda v: v in choices, "one of " + ", ".join(map(repr, choices)))


DTYPES = ("auto", "float32", "bfloat16", "float16")
dtype_name = one_of(*DTYPES)
# whether the device is present is checked apart (core.device_problems): a name is checked here
device_name = Check(lambda v: re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", v) is not None,
                    "'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'")


def key(default: Any, check: Check | None = None, doc: str = "") -> Any:
    """A dataclass field with its default, the values it allows (None: any value of its type) and a one-line
    description for --help. None, where the field's type allows it, is always valid: it means 'not set'."""
    return dataclasses.field(default=default, metadata={"check": check, "doc": doc})


MIN_FREE_BYTES = 2**26  # 64 MiB: less cannot hold a checkpoint of even a small model


def unwritable(path: str) -> str | None:
    """Why the directory path cannot be used to write into (it is a file, or it or the folder it would be
    made in is not writable, or its disk is full), or None. Nothing is created."""
    existing = os.path.abspath(path)
    while not os.path.exists(existing):  # the first thing that exists up the path is where makedirs starts
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        return f"{existing} is a file, not a directory: choose another path"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable: choose another path, or make it writable"
    free = shutil.disk_usage(existing).free
    if free < MIN_FREE_BYTES:
        return (f"the disk of {existing} is full ({free / 2**20:.0f} MiB free): make room or choose another "
                f"path")
    return None


def problems(cfg: Any, across: bool = True) -> list[str]:
    """Every problem with cfg's values: each key against its Check, then, if they all pass and across is
    True, cfg.problems() (rules across keys, which may assume each key's own check passed)."""
    found = []
    for f in dataclasses.fields(cfg):
        rule, value = f.metadata.get("check"), getattr(cfg, f.name)
        if rule is not None and value is not None and not rule.ok(value):
            unset = " or None" if type(None) in typing.get_args(f.type) else ""
            found.append(f"{f.name}={value!r}: must be {rule.allowed}{unset}")
    if not found and across and hasattr(cfg, "problems"):
        found = cfg.problems()
    return found


def check(cfg: Any) -> None:
    """A UsageError listing every problem with cfg's values, if there is one."""
    found = problems(cfg)
    if found:
        raise UsageError(*found)


def _check(key: str, value: Any, typ: Any) -> Any:
    """value if it fits the field type typ (int is accepted for float), else a UsageError naming the key."""
    options = typing.get_args(typ) or (typ,)  # int | None -> (int, NoneType)
    for opt in options:
        if opt is type(None) and value is None:
            return None
        if opt is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if opt in (int, str, bool) and type(value) is opt:  # exact: True is not an int here
            return value
    names = " | ".join("None" if o is type(None) else o.__name__ for o in options)
    raise UsageError(f"config key '{key}' expects {names}, got {type(value).__name__} {value!r}")


def _parse_cli_value(raw: str, typ: Any) -> Any:
    if raw == "None" and type(None) in typing.get_args(typ):
        return None
    if str in (typing.get_args(typ) or (typ,)):
        return raw  # a string key takes the text as typed: --wandb_run_name=123 is '123'
    if raw.lower() in ("true", "false") and bool in (typing.get_args(typ) or (typ,)):
        return raw.lower() == "true"
    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return raw


class _Namespace(dict):
    """A config file's local namespace, remembering the names the file assigns."""

    def __init__(self, values: dict):
        super().__init__(values)
        self.assigned: set[str] = set()

    def __setitem__(self, key: str, value: Any) -> None:
        self.assigned.add(key)
        super().__setitem__(key, value)


def _unknown(key: str, known: list[str]) -> UsageError:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return UsageError(f"unknown config key '{key}'{hint}; --help lists them all")


def closest(word: str, options: Iterable[str], n: int = 3) -> list[str]:
    """Up to n of options that look like word: the closest by difflib first, then those that start with it
    (the default out_dir 'out' suggests 'out-shakespeare-char', which difflib finds too far)."""
    options = sorted(set(options))
    close = difflib.get_close_matches(word, options, n=n)
    return (close + [o for o in options if word and o.startswith(word) and o not in close])[:n]


def did_you_mean(options: list[str]) -> str:
    """' did you mean A, B or C?' for a message, or '' when there is nothing to suggest."""
    if not options:
        return ""
    return " did you mean " + (" or ".join(options) if len(options) < 3 else
                               ", ".join(options[:-1]) + " or " + options[-1]) + "?"


# this repository's config files, suggested for a config file path that does not exist
CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "config")


def _config_files_near(path: str) -> list[str]:
    """Config files (*.py) named like path's file, in path's own folder and in CONFIG_DIR, each written as the
    user would type it (relative to the current folder when under it)."""
    shown = {}  # file name -> how to write it, the path's own folder first
    for folder in (os.path.dirname(path), CONFIG_DIR):
        if not os.path.isdir(folder or "."):
            continue
        for name in sorted(os.listdir(folder or ".")):
            full = os.path.join(folder, name)
            rel = os.path.relpath(full)
            if name.endswith(".py") and os.path.isfile(full):
                shown.setdefault(name, full if folder != CONFIG_DIR or rel.startswith(os.pardir) else rel)
    return [shown[name] for name in closest(os.path.basename(path), shown)]


def help_text(cls: type) -> str:
    """Two lines a key, to fit 110 columns whatever the length of the default: `--key=default  (type; range)`,
    then its description, indented under it."""
    lines = [f"keys of {cls.__name__} (set them in a config file or with --key=value):"]
    for f in dataclasses.fields(cls):
        typ = getattr(f.type, "__name__", None) or str(f.type)
        rule = f.metadata.get("check")
        lines.append(f"  --{f.name}={f.default!r}  ({typ}{'; ' + rule.allowed if rule else ''})")
        if f.metadata.get("doc"):
            lines += textwrap.wrap(f.metadata["doc"], 110, initial_indent=" " * 6, subsequent_indent=" " * 6)
    return "\n".join(lines)


def _run_config_file(path: str, scope: dict) -> None:
    """exec a config file with scope as its namespace; a file that cannot be read, parsed or run is a
    UsageError naming the file and line, without a traceback."""
    try:
        source = open(path, encoding="utf-8").read()
    except (OSError, UnicodeDecodeError) as e:
        hint = did_you_mean(_config_files_near(path)) if isinstance(e, FileNotFoundError) else ""
        raise UsageError(f"cannot read config file {path}: {getattr(e, 'strerror', None) or e}"
                         f"{';' if hint else ''}{hint}") from None
    try:
        code = compile(source, path, "exec")
    except SyntaxError as e:
        raise UsageError(f"{path} line {e.lineno}: {e.msg}") from None
    try:
        exec(code, {"__builtins__": __builtins__}, scope)
    except Exception as e:
        # the deepest frame in the file itself is the line that failed
        line = [fr.lineno for fr in traceback.extract_tb(e.__traceback__) if fr.filename == path][-1]
        raise UsageError(f"{path} line {line}: {type(e).__name__}: {e}") from None


def configure(cls: type[T], argv: list[str], given: set[str] | None = None) -> T:
    """Build cls (a dataclass with a default for every field) from config files and --key=value arguments,
    and check its values (problems()). Every problem found is reported at once, as one UsageError. The keys
    the files and arguments set are added to `given`, when passed (train.py's resume takes the rest from a
    checkpoint)."""
    given = set() if given is None else given
    types_ = {f.name: f.type for f in dataclasses.fields(cls)}
    values = {f.name: f.default for f in dataclasses.fields(cls)}
    found = []  # problems, one line each; a key that has one keeps its earlier value meanwhile
    for arg in argv:
        if arg in ("-h", "--help"):
            print(help_text(cls))
            sys.exit(0)
        if not arg.startswith("--"):  # a config file
            scope = _Namespace(values)  # a file may read earlier values: lr_decay_iters = max_iters
            try:
                _run_config_file(arg, scope)
            except UsageError as e:
                found.append(str(e))
                continue
            for key in sorted(scope.assigned & scope.keys()):
                value = scope[key]
                if key.startswith("_") or isinstance(value, (types.ModuleType, types.FunctionType, type)):
                    continue  # __builtins__, and helpers a config file may define or import
                try:
                    if key not in types_:
                        raise _unknown(key, list(types_))
                    values[key] = _check(key, value, types_[key])
                    given.add(key)  # assigned by the file, even to the value it had
                except UsageError as e:
                    found.append(f"{arg}: {e}")
        else:
            key, eq, raw = arg[2:].partition("=")  # partition: values may contain '='
            try:
                if not eq:
                    raise UsageError(f"argument {arg} has no value: write --{key}=VALUE")
                if key not in types_:
                    raise _unknown(key, list(types_))
                values[key] = _check(key, _parse_cli_value(raw, types_[key]), types_[key])
                given.add(key)
            except UsageError as e:
                found.append(str(e))
    cfg = cls(**values)
    # rules across keys only when every value read is one the user meant: a value left out by an error above
    # would be blamed for a rule it does not break
    found += problems(cfg, across=not found)
    if found:
        raise UsageError(*found)
    return cfg


def cli(main: Callable[[list[str]], Any]) -> None:
    """Run main(sys.argv[1:]); a UsageError ends the program with one line `error: ...` per problem and exit
    code 2, Ctrl-C with exit code 130, both without a traceback."""
    try:
        main(sys.argv[1:])
    except UsageError as e:
        for problem in e.problems or [str(e)]:
            print(f"error: {problem}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:  # Ctrl-C (or a second one, where a first one asks for a clean stop)
        print("interrupted", file=sys.stderr)
        sys.exit(130)
