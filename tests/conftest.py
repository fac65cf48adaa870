"""Shared test setup: the repo on sys.path, offline HF/tiktoken, and small random-weight HF GPT-2 directories."""
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# ../shared/data beside the checkout holds Tiny Shakespeare and tiktoken's GPT-2 BPE files (see README, Tests)
SHARED = Path(os.environ.get("SHARED_DATA", ROOT.parent / "shared" / "data"))
if (SHARED / "tiktoken-cache").is_dir():
    os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(SHARED / "tiktoken-cache"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never download: models are built with random weights
os.environ.setdefault("WANDB_MODE", "disabled")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes minutes (deselect with -m 'not slow')")


@pytest.fixture(scope="session")
def shakespeare_text() -> str:
    path = SHARED / "tinyshakespeare" / "input.txt"
    if not path.exists():
        pytest.skip(f"{path} not found: set SHARED_DATA to a folder holding tinyshakespeare/input.txt")
    return path.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def make_hf_dir(tmp_path_factory):
    """make_hf_dir(**GPT2Config kwargs) -> directory of a random-weight GPT2LMHeadModel written by save_pretrained."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel
    from transformers.utils import logging
    logging.set_verbosity_error()
    logging.disable_progress_bar()

    def make(seed: int = 0, **kwargs) -> str:
        kwargs = {"n_embd": 64, "n_layer": 2, "n_head": 4, "n_positions": 64, "vocab_size": 100,
                  "bos_token_id": None, "eos_token_id": None, **kwargs}
        torch.manual_seed(seed)
        path = tmp_path_factory.mktemp("hf")
        GPT2LMHeadModel(GPT2Config(**kwargs)).save_pretrained(path)
        return str(path)
    return make
