"""
Mutation testing by hand, for what mutmut 3 does not reach: functions decorated with @torch.no_grad(), and
code that runs only under DDP (in torchrun's processes). Each line below is broken on its own in a copy of the
repository, and the tests that guard it must fail.

    python tests/mutate_by_hand.py        # about 10 minutes on 2 cores; exit status 1 if one survives
    python tests/mutate_by_hand.py test_runs.py   # only the mutations that file guards

Not collected by pytest (its name does not start with test_). See tests/mutants.md.
"""
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from conftest import SHARED, tests_fail  # tests/ is on the path: this script is run from there

ROOT = Path(__file__).resolve().parent.parent

# (file, a piece of code found exactly once, what it becomes, the tests that must notice)
MUTATIONS = [
    ("model.py", "nxt = nxt.masked_fill(done[:, None], stop_token)", "pass", "test_model.py test_sample.py"),
    ("model.py", "if stop_token is not None and done.all():", "if False:", "test_model.py test_sample.py"),
    ("model.py", "logits[:, -1, :self.config.real_vocab_size]", "logits[:, -1, :]",
     "test_model.py test_sample.py"),
    ("model.py", "logits = self.decode(nxt, cache)", "logits = self.decode(torch.zeros_like(nxt), cache)",
     "test_model.py"),
    ("model.py", "cache.pos = torch.tensor(cache.pos, device=idx.device)", "pass", "test_model.py"),
    ("model.py", "(idx.size(1) + max_new_tokens + 63) // 64 * 64", "idx.size(1) + max_new_tokens - 1",
     "test_model.py"),
    ("core.py", "choice = min(best, key=best.get)", "choice = max(best, key=best.get)", "test_model.py"),
    ("model.py", "if not use_cache or idx.size(1) > bs:", "if not use_cache:", "test_model.py"),
    ("model.py", "math.sqrt(8 / math.pi)", "math.sqrt(2 / math.pi)", "test_model.py"),
    ("train.py", "get_batch(self.data[split],", 'get_batch(self.data["train"],', "test_train.py"),
    ("train.py", "model.eval()\n        out = {}", "out = {}", "test_train.py"),
    ("train.py", "(total[0] / total[1]).item()\n        model.train()", "(total[0] / total[1]).item()",
     "test_train.py"),
    ("train.py", "torch.Generator(device=self.device).manual_seed(self.cfg.seed)", "None", "test_train.py"),
    ("train.py", "generator=generator).tolist()\n        model.train()", "generator=generator).tolist()",
     "test_train.py"),
    ("train.py", "self.tokenizer.decode(row[hidden:])", "self.tokenizer.decode(row)", "test_train.py"),
    ("core.py", "logits[..., :model.config.real_vocab_size].float()", "logits.float()", "test_eval.py"),
    ("core.py", "(total / (y != -1).sum(dim=1))", "(total / y.size(1))", "test_eval.py"),
    ("model.py", 'scores.masked_fill(~mask, float("-inf"))', "scores", "test_eval.py test_arch.py"),
    ("model.py", " / math.sqrt(q.size(-1))  # (B, nh, Tq, Tk)", "", "test_eval.py test_arch.py"),
    # the architecture keys (tests/test_arch.py)
    ("model.py", "torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)",
     "torch.cat((x1 * cos + x2 * sin, x2 * cos - x1 * sin), dim=-1)", "test_arch.py"),
    ("model.py", "angles = pos.float()[:, None] * inv_freq[None, :]",
     "angles = pos.float()[:, None] * inv_freq[None, :] / 2", "test_arch.py"),
    ("model.py", "q, k = rotate(self.q_norm(q), rope), rotate(self.k_norm(k), rope)",
     "q, k = rotate(self.q_norm(q), rope), rotate(k, rope)", "test_arch.py"),
    ("model.py", "return F.silu(gate) * up", "return F.silu(up) * gate", "test_arch.py"),
    ("model.py", "return F.relu(x).square()", "return F.relu(x)", "test_arch.py"),
    ("model.py", "return logits if c is None else c * torch.tanh(logits / c)", "return logits",
     "test_arch.py"),
    ("model.py", "enable_gqa=self.n_kv_head != self.n_head", "enable_gqa=False", "test_arch.py"),
    ("model.py", "k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)",
     "k, v = k.repeat(1, rep, 1, 1), v.repeat(1, rep, 1, 1)", "test_arch.py"),
    ("model.py", "return nn.RMSNorm(dim, eps=config.norm_eps)", "return nn.RMSNorm(dim, eps=1e-5)",
     "test_arch.py"),
    ("model.py", "            self.transformer.wte.weight = self.lm_head.weight  #",
     "            pass  #", "test_arch.py"),
    ("model.py", "(8 * self.n_embd // 3 + 63) // 64 * 64", "(8 * self.n_embd // 3 + 31) // 32 * 32",
     "test_arch.py"),
    ("model.py", "mlp = (3 if c.mlp == \"swiglu\" else 2) * c.n_embd * c.mlp_width",
     "mlp = 2 * c.n_embd * c.mlp_width", "test_arch.py"),
    ("model.py", '"mlp.c_fc": ["mlp.gate_proj", "mlp.up_proj"]',
     '"mlp.c_fc": ["mlp.up_proj", "mlp.gate_proj"]', "test_arch.py"),
    ("model.py", "qk_norm=cfg.model_type == \"qwen3\"", "qk_norm=False", "test_arch.py"),
    ("core.py", "differ += [f\"n_kv_head={config.n_kv_head!r}\"] * (config.kv_heads != config.n_head)",
     "pass", "test_arch.py"),
    ("train.py", "(math.log(2) * self.bytes[split])", "(math.log(3) * self.bytes[split])", "test_train.py"),
    ("train.py", 'out[f"{split}_loss"] * tokens /', 'out[f"{split}_loss"] * (tokens - 1) /', "test_train.py"),
    ("model.py", "else 4 * self.n_embd", "else 3 * self.n_embd", "test_model.py"),
    ("model.py", "        if self.mlp_hidden is not None:\n            return self.mlp_hidden\n", "",
     "test_arch.py"),
    ("bench.py", "* len(x[i:i + 256])", "* 256", "test_promises.py"),
    # under DDP only, which runs in torchrun's processes, where mutmut's test mapping does not reach
    ("train.py", "if isinstance(model, DDP) and not last", "if isinstance(model, DDP) and last",
     "test_train.py::test_ddp_equals_one_process"),
    ("train.py", "train_loss /= dist.get_world_size()", "train_loss *= dist.get_world_size()",
     "test_train.py::test_ddp_equals_one_process"),
    # a run's out_dir (what happens around the loop runs in subprocesses, where mutmut does not follow)
    ("core.py", "fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)", "pass", "test_runs.py"),
    ("core.py", "    if not held or overwrite:\n        return", "    if True:\n        return",
     "test_runs.py"),
    ("core.py", "        intact = not verify or checksum(ckpt) == stored", "        intact = True",
     "test_runs.py"),
    ("core.py", 'r["iter"] < iter_num or', 'r["iter"] <= iter_num or', "test_runs.py"),
    ("core.py", 'kept = [line if line.endswith("\\n") else line + "\\n" for line',
     "kept = [line for line", "test_runs.py"),
    ("core.py", "        if signalled:\n            raise KeyboardInterrupt",
     "        if False:\n            pass", "test_runs.py"),
    ("core.py", '        if os.path.isfile(meta_path):', "        if False:", "test_runs.py"),
    ("train.py", "                if self.stop_requested():\n                    raise Interrupted",
     "                pass", "test_runs.py"),
    ("train.py", "    keys = {f.name for f in fields(TrainConfig)} - set(COMMAND_KEYS) - given",
     "    keys = set()", "test_runs.py"),
    ("train.py", "    if ckpt is None or ckpt[\"iter_num\"] < cfg.max_iters or cfg.eval_only:",
     "    if True:", "test_runs.py"),
    ("train.py", "        check_finite(\"loss\", record[\"loss\"], iter_num, cfg.out_dir)", "        pass",
     "test_train.py"),
]


def run(copy: Path, tests: str) -> bool:
    """Whether the tests fail (the mutant is killed)."""
    args = ["-m", "not slow", *(f"tests/{t}" for t in tests.split())]
    return tests_fail(copy, args, {"SHARED_DATA": str(SHARED)}, timeout=900)


def main() -> int:
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    survivors = 0
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "repo"
        for name in files:
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, copy / name)
        chosen = [(i, m) for i, m in enumerate(MUTATIONS) if len(sys.argv) < 2 or sys.argv[1] in m[3]]
        for i, (name, old, new, tests) in chosen:  # with an argument, only the mutations those tests guard
            source = (copy / name).read_text(encoding="utf-8")
            if source.count(old) != 1:
                print(f"#{i} {name}: the line to break is no longer there: {old.strip()[:70]!r}")
                survivors += 1
                continue
            (copy / name).write_text(source.replace(old, new), encoding="utf-8")
            try:
                killed = run(copy, tests)
            finally:
                (copy / name).write_text(source, encoding="utf-8")
            survivors += not killed
            print(f"#{i} {'killed' if killed else 'SURVIVED'}: {name}: {old.strip()[:60]!r}", flush=True)
    print(f"{len(chosen) - survivors} of {len(chosen)} killed")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
