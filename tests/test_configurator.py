import dataclasses
import importlib

import pytest

from configurator import UsageError, configure, help_text, key, positive, probability


@dataclasses.dataclass
class Cfg:
    batch_size: int = 12
    dropout: float = 0.1
    compile: bool = True
    out_dir: str = "out"
    peak: float | None = None
    tag: str | None = None
    max_iters: int = 100
    lr_decay_iters: int = 100


def test_defaults_and_cli_values():
    cfg = configure(Cfg, [])
    assert cfg == Cfg()
    cfg = configure(Cfg, ["--batch_size=32", "--dropout=0", "--compile=False", "--out_dir=runs/a=b",
                          "--peak=3e12"])
    assert cfg.batch_size == 32 and cfg.dropout == 0.0 and type(cfg.dropout) is float
    assert cfg.compile is False and cfg.out_dir == "runs/a=b" and cfg.peak == 3e12


@pytest.mark.parametrize("raw,expected", [("True", True), ("False", False), ("true", True), ("false", False)])
def test_booleans(raw, expected):
    assert configure(Cfg, [f"--compile={raw}"]).compile is expected


def test_strings_keep_the_text_and_none():
    assert configure(Cfg, ["--out_dir=123"]).out_dir == "123"
    assert configure(Cfg, ["--tag=None", "--peak=None"]).tag is None
    assert configure(Cfg, ["--tag=x"]).tag == "x"


def test_unknown_cli_key_suggests():
    with pytest.raises(UsageError, match=r"unknown config key 'batchsize' \(did you mean 'batch_size'\?\)"):
        configure(Cfg, ["--batchsize=3"])
    with pytest.raises(UsageError, match="unknown config key 'zzz'"):
        configure(Cfg, ["--zzz=3"])


def test_type_mismatch_names_key_and_types():
    with pytest.raises(UsageError, match="'batch_size' expects int, got float 3.5"):
        configure(Cfg, ["--batch_size=3.5"])
    with pytest.raises(UsageError, match="'compile' expects bool, got str 'yes'"):
        configure(Cfg, ["--compile=yes"])
    with pytest.raises(UsageError, match="'batch_size' expects int, got bool True"):
        configure(Cfg, ["--batch_size=True"])
    with pytest.raises(UsageError, match="'peak' expects float | None, got str 'fast'"):
        configure(Cfg, ["--peak=fast"])


def test_missing_value():
    with pytest.raises(UsageError, match="has no value"):
        configure(Cfg, ["--batch_size"])


def test_config_file(tmp_path):
    f = tmp_path / "c.py"
    f.write_text("import math\n"
                 "max_iters = 2000\n"
                 "lr_decay_iters = max_iters\n"
                 "_helper = 3\n"
                 "batch_size = 2 ** 4\n")
    cfg = configure(Cfg, [str(f), "--batch_size=8"])  # later arguments win
    assert (cfg.max_iters, cfg.lr_decay_iters, cfg.batch_size) == (2000, 2000, 8)


def test_config_file_errors(tmp_path):
    f = tmp_path / "bad.py"
    f.write_text("dropuot = 0.2\n")
    with pytest.raises(UsageError,
                       match=r"bad.py: unknown config key 'dropuot' \(did you mean 'dropout'\?\)"):
        configure(Cfg, [str(f)])
    f.write_text("batch_size = '12'\n")
    with pytest.raises(UsageError, match="bad.py: config key 'batch_size' expects int, got str"):
        configure(Cfg, [str(f)])
    with pytest.raises(UsageError, match="cannot read config file"):
        configure(Cfg, [str(tmp_path / "missing.py")])


def test_help_lists_every_key(capsys):
    with pytest.raises(SystemExit) as e:
        configure(Cfg, ["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.strip() == help_text(Cfg)
    for f in dataclasses.fields(Cfg):
        assert f"--{f.name}={f.default!r}" in out


@dataclasses.dataclass
class Ranged:
    batch_size: int = key(12, positive)
    dropout: float = key(0.0, probability)
    n_head: int = key(4, positive)
    n_embd: int = key(32, positive)

    def problems(self) -> list[str]:
        wrong = self.n_embd % self.n_head
        return [f"n_head={self.n_head}: must divide n_embd={self.n_embd}"] if wrong else []


def test_ranges_and_rules_every_problem_at_once():
    assert Ranged.batch_size == 12 and configure(Ranged, []) == Ranged()
    with pytest.raises(UsageError) as e:
        configure(Ranged, ["--batch_size=0", "--dropout=1", "--typo=1"])
    assert e.value.problems == ["unknown config key 'typo'; --help lists them all",
                                "batch_size=0: must be > 0", "dropout=1.0: must be in [0, 1)"]
    with pytest.raises(UsageError) as e:  # rules across keys once every key is in its range
        configure(Ranged, ["--n_head=3"])
    assert e.value.problems == ["n_head=3: must divide n_embd=32"]
    assert "  --dropout=0.0  (float; in [0, 1))" in help_text(Ranged).splitlines()


def test_config_file_line_errors(tmp_path):
    f = tmp_path / "c.py"
    f.write_text("batch_size = 4\nx = [\n")
    with pytest.raises(UsageError, match=rf"^{f} line 2: '\[' was never closed$"):
        configure(Ranged, [str(f)])
    f.write_text("batch_size = 4\n\ndef half(n):\n    return n / zero\n\nn_head = half(8)\n")
    with pytest.raises(UsageError, match=rf"^{f} line 4: NameError: name 'zero' is not defined$"):
        configure(Ranged, [str(f)])


@dataclasses.dataclass
class Limits:
    steps: int = key(10, positive)
    limit: int | None = key(None, positive)
    n_head: int = 2
    n_embd: int = 4
    flag: bool = False

    def problems(self) -> list[str]:
        return [] if self.n_embd % self.n_head == 0 else [f"n_head={self.n_head}: must divide n_embd"]


def test_problems_are_listed_one_each_and_rules_across_keys_wait_for_good_values(tmp_path):
    assert str(UsageError("a", "b")) == "a; b" and UsageError("a", "b").problems == ["a", "b"]
    with pytest.raises(UsageError) as e:
        configure(Limits, ["--limit=0"])
    assert e.value.problems == ["limit=0: must be > 0 or None"]
    with pytest.raises(UsageError) as e:  # a key that failed keeps its default: no rule is judged on it
        configure(Limits, ["--bogus=1", "--n_head=3"])
    assert len(e.value.problems) == 1 and "unknown config key 'bogus'" in e.value.problems[0]
    with pytest.raises(UsageError, match=r"config key 'steps' expects int, got NoneType None"):
        configure(Limits, ["--steps=None"])
    with pytest.raises(UsageError, match=r"config key 'limit' expects int \| None, got str 'x'"):
        configure(Limits, ["--limit=x"])
    with pytest.raises(UsageError, match=r"cannot read config file .*missing.py: No such file or directory"):
        configure(Limits, [str(tmp_path / "missing.py")])


def test_given_names_the_keys_set_by_files_and_flags(tmp_path):
    conf = tmp_path / "c.py"
    conf.write_text("limit = steps * 2  # reads steps, sets limit\nflag = False  # the value it had\n")
    given = set()
    cfg = configure(Limits, [str(conf), "--n_head=4"], given)
    assert given == {"limit", "flag", "n_head"} and cfg.limit == 20


def test_help_shows_types_and_ranges(capsys):
    with pytest.raises(SystemExit) as e:
        configure(Limits, ["-h"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "  --limit=None  (int | None; > 0)\n" in out and "  --flag=False  (bool)\n" in out
    assert "  --steps=10  (int; > 0)\n" in out


def test_optional_text_keys_take_the_text_as_typed():
    @dataclasses.dataclass
    class Out:
        output: str | None = None
    assert configure(Out, ["--output=123"]).output == "123"
    assert configure(Out, ["--output=None"]).output is None


def test_check_and_cli(capsys, monkeypatch):
    from configurator import check, cli
    with pytest.raises(UsageError, match="steps=0: must be > 0"):
        check(Limits(steps=0))
    check(Limits())

    def interrupted(argv):
        raise KeyboardInterrupt
    monkeypatch.setattr("sys.argv", ["x.py"])
    with pytest.raises(SystemExit) as e:
        cli(interrupted)
    assert e.value.code == 130 and capsys.readouterr().err == "interrupted\n"


def test_rules_across_keys_are_checked_by_check_and_unreadable_files_are_named(tmp_path):
    import os
    from configurator import check, unwritable
    with pytest.raises(UsageError, match="n_head=3: must divide n_embd"):
        check(Limits(n_head=3))
    # a process's /proc folder refuses writes to everyone, root included (mode bits do not stop root)
    assert "is not writable" in unwritable(f"/proc/{os.getpid()}/run")
    assert unwritable(str(tmp_path / "new" / "run")) is None
    latin = tmp_path / "latin.py"
    latin.write_bytes(b"tag = '\xe9'\n")  # not UTF-8
    with pytest.raises(UsageError, match=r"cannot read config file .*latin.py: .*codec can't decode"):
        configure(Limits, [str(latin)])


def test_a_full_disk_is_refused_up_front(tmp_path, monkeypatch):
    import collections
    import shutil
    from configurator import unwritable
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(2**30, 2**30 - 2**20, 2**20))
    assert unwritable(str(tmp_path / "run")) == (f"the disk of {tmp_path} is full (1 MiB free): make room or "
                                                 f"choose another path")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(2**30, 0, 2**30))
    assert unwritable(str(tmp_path / "run")) is None


@pytest.mark.parametrize("cls", ["train.TrainConfig", "sample.SampleConfig", "eval.EvalConfig",
                                 "bench.BenchConfig"])
def test_every_script_key_has_a_description(cls):
    """Each key says what it does, in the one place it is defined: its field's key(..., doc)."""
    module, name = cls.split(".")
    config = getattr(importlib.import_module(module), name)  # imported here: the others need no torch
    undescribed = [f.name for f in dataclasses.fields(config) if not f.metadata.get("doc", "").strip()]
    assert undescribed == [], f"give these keys of {name} a description: key(default, check, '...')"


def test_help_puts_each_description_under_its_key():
    """key(default, check, doc): the description goes on the lines under the key, wrapped to 110 columns; a
    key without one (key(default, check), or a plain default) is a line alone."""
    @dataclasses.dataclass
    class Documented:
        steps: int = key(10, positive, "optimizer steps")
        flag: bool = key(False, None, "a flag, " + "described at length " * 8)
        bare: int = key(3, positive)
        plain: str = "x"
    assert Documented.steps == 10 and configure(Documented, ["--flag=True"]).flag is True
    lines = help_text(Documented).splitlines()
    assert lines[1:3] == ["  --steps=10  (int; > 0)", "      optimizer steps"]
    assert lines[3] == "  --flag=False  (bool)"
    assert lines[-2:] == ["  --bare=3  (int; > 0)", "  --plain='x'  (str)"]
    wrapped = lines[4:-2]
    assert len(wrapped) == 2 and all(line.startswith("      ") and len(line) <= 110 for line in wrapped)
    assert " ".join(line.strip() for line in wrapped) == "a flag, " + ("described at length " * 8).strip()
