"""
Tiny Shakespeare at the character level: vocabulary = the sorted unique characters of the text, the first 90%
of the characters train and the last 10% val. Writes train.bin, val.bin and meta.json beside this file.

$ python data/shakespeare_char/prepare.py                        # downloads input.txt beside this file first
$ python data/shakespeare_char/prepare.py --input=path/to/input.txt --out_dir=somewhere
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root, so that data.common imports
from data.common import Tokenizer, prepare_text_file, run

HERE = Path(__file__).resolve().parent
URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"


def main(argv: list[str] | None = None) -> dict:
    return prepare_text_file(argv, __doc__, HERE, URL, Tokenizer.from_text)


if __name__ == "__main__":
    run(main)

# Measured on Tiny Shakespeare's input.txt (1,115,394 characters, all ASCII, so also 1,115,394 bytes):
# vocab_size 65, dtype uint16
# train.bin 1,003,854 tokens (2,007,708 bytes), val.bin 111,540 tokens (223,080 bytes)
