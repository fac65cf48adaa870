"""
Tiny Shakespeare with GPT-2's BPE (tiktoken): the text is one document, so its ids are <|endoftext|> followed
by the encoded text; the first 90% of the tokens train and the last 10% val. Writes train.bin, val.bin and
meta.json beside this file.

$ python data/shakespeare/prepare.py                             # downloads input.txt beside this file first
$ python data/shakespeare/prepare.py --input=path/to/input.txt --out_dir=somewhere
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root, so that data.common imports
from data.common import Tokenizer, prepare_text_file, run

HERE = Path(__file__).resolve().parent
URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"


def main(argv: list[str] | None = None) -> dict:
    return prepare_text_file(argv, __doc__, HERE, URL, lambda text: Tokenizer.gpt2())


if __name__ == "__main__":
    run(main)

# Measured (same input.txt): the text is 338,025 GPT-2 tokens, plus the leading <|endoftext|>: 338,026
# vocab_size 50257, eot_token 50256, dtype uint16
# train.bin 304,223 tokens (608,446 bytes), val.bin 33,803 tokens (67,606 bytes) (Splitting the characters
# 90/10 first and encoding each part, with no eot, as nanoGPT does, gives 301,966 and 36,059 tokens: measured
# too.)
