"""
HellaSwag's validation set (Zellers et al., 2019) for `python eval.py --mode=hellaswag`: downloads
hellaswag_val.jsonl (one example a line: "ctx", 4 "endings", the right one's index "label") beside this file.

$ python data/hellaswag/prepare.py
$ python data/hellaswag/prepare.py --out_dir=somewhere
  # then eval.py --hellaswag_path=somewhere/hellaswag_val.jsonl

Offline, download the URL below yourself and save it where the error message says.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root, so that data.common imports
from data.common import DataError, download, load_hellaswag, parse_args, run

HERE = Path(__file__).resolve().parent
URL = "https://raw.githubusercontent.com/rowanz/hellaswag/master/data/hellaswag_val.jsonl"
FILENAME = "hellaswag_val.jsonl"


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out_dir", default=HERE)
    args = parse_args(parser, argv)
    path = Path(args.out_dir) / FILENAME
    fresh = not path.exists()
    download(URL, path)  # atomic: a failure leaves no file behind
    try:
        n = len(load_hellaswag(str(path)))
        if n == 0:
            raise DataError(f"{path} holds no examples")
    except DataError:
        if fresh:  # e.g. an error page served instead of the data: remove it, so a rerun downloads again
            path.unlink()
        raise
    print(f"{path}: {n:,} examples")
    return path


if __name__ == "__main__":
    run(main)

# The validation split has 10,042 examples (HellaSwag paper); the download is about 11 MB.
