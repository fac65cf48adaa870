"""
Configuration for train.py, sample.py and bench.py from the command line:

    python train.py config/train_shakespeare_char.py --batch_size=32 --compile=False

Every key and its one default live in the script's config dataclass. Config files are plain Python that assign
to those keys, applied in order; then each --key=value, parsed as a Python literal (ast.literal_eval) or else
kept as a string. Unknown keys and values of the wrong type are errors that name the key. --help lists every
key.
"""
import ast
import dataclasses
import difflib
import sys
import types
import typing
from typing import Any, Callable, TypeVar

T = TypeVar("T")


class UsageError(Exception):
    """Bad input from the user (config, data, checkpoint, prompt): reported as one line, without a
    traceback."""


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


def help_text(cls: type) -> str:
    lines = [f"keys of {cls.__name__} (set them in a config file or with --key=value):"]
    for f in dataclasses.fields(cls):
        typ = getattr(f.type, "__name__", None) or str(f.type)
        lines.append(f"  --{f.name}={f.default!r}  ({typ})")
    return "\n".join(lines)


def configure(cls: type[T], argv: list[str], given: set[str] | None = None) -> T:
    """Build cls (a dataclass with a default for every field) from config files and --key=value arguments.
    The keys they set are added to `given`, when passed (train.py's resume takes the rest from a
    checkpoint)."""
    given = set() if given is None else given
    types_ = {f.name: f.type for f in dataclasses.fields(cls)}
    values = {f.name: f.default for f in dataclasses.fields(cls)}
    for arg in argv:
        if arg in ("-h", "--help"):
            print(help_text(cls))
            sys.exit(0)
        if not arg.startswith("--"):  # a config file
            try:
                source = open(arg, encoding="utf-8").read()
            except OSError as e:
                raise UsageError(f"cannot read config file {arg}: {e.strerror}") from None
            scope = _Namespace(values)  # a file may read earlier values: lr_decay_iters = max_iters
            exec(compile(source, arg, "exec"), {"__builtins__": __builtins__}, scope)
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
                    raise UsageError(f"{arg}: {e}") from None
        else:
            key, eq, raw = arg[2:].partition("=")  # partition: values may contain '='
            if not eq:
                raise UsageError(f"argument {arg} has no value: write --{key}=VALUE")
            if key not in types_:
                raise _unknown(key, list(types_))
            values[key] = _check(key, _parse_cli_value(raw, types_[key]), types_[key])
            given.add(key)
    return cls(**values)


def cli(main: Callable[[list[str]], Any]) -> None:
    """Run main(sys.argv[1:]); a UsageError ends the program with its one-line message and exit code 2, Ctrl-C
    with exit code 130, both without a traceback."""
    try:
        main(sys.argv[1:])
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:  # Ctrl-C (or a second one, where a first one asks for a clean stop)
        print("interrupted", file=sys.stderr)
        sys.exit(130)
