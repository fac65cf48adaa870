"""The data preparers, offline, on small local data (and on Tiny Shakespeare from ../shared/data)."""
import io
import json
import os
import pickle
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest

import data.common as common
from data.common import DataError, Tokenizer, load_meta, prepare_documents, write_bins
from data.custom.prepare import main as custom_main
from data.fineweb_edu import prepare as fineweb_edu
from data.openwebtext import prepare as owt
from data.openwebtext.prepare import main as owt_main
from data.shakespeare.prepare import main as shakespeare_main
from data.shakespeare_char import prepare as shakespeare_char
from data.tinystories.prepare import main as tinystories_main
from data.wikitext.prepare import articles, main as wikitext_main

ROOT = Path(__file__).resolve().parent.parent
EOT = "<|endoftext|>"
DOCS = ["The cat sat.", "Ünïcödé → 文字 ok", "third <|endoftext|> literal", "", "a\nb\n", "last one!"]


@pytest.fixture(autouse=True)
def hf_cache_in_tmp(tmp_path, monkeypatch):
    """Keep the datasets cache of json/parquet loads out of the user's home."""
    import datasets
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf_cache"))


def read_bins(out_dir) -> tuple[dict, np.ndarray, np.ndarray]:
    meta = load_meta(out_dir)
    train, val = (np.memmap(Path(out_dir) / f"{s}.bin", dtype=meta["dtype"], mode="r")
                  for s in ("train", "val"))
    assert train.dtype == val.dtype == np.dtype(meta["dtype"])
    assert (len(train), len(val)) == (meta["train_tokens"], meta["val_tokens"])
    return meta, train, val


def decoded(out_dir) -> tuple[str, str]:
    meta, train, val = read_bins(out_dir)
    tok = Tokenizer.from_meta(meta)
    return tok.decode(train), tok.decode(val)


def files_in(path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(Path(path).iterdir())}


# -----------------------------------------------------------------------------
# Tiny Shakespeare, the real thing

def test_shakespeare_char(shakespeare_text, tmp_path):
    (tmp_path / "input.txt").write_text(shakespeare_text, encoding="utf-8")
    meta = shakespeare_char.main([f"--input={tmp_path / 'input.txt'}", f"--out_dir={tmp_path / 'out'}"])
    assert meta == load_meta(tmp_path / "out")
    assert ((meta["tokenizer"], meta["vocab_size"], meta["dtype"], meta["eot_token"])
            == ("char", 65, "uint16", None))
    assert meta["chars"] == sorted(set(shakespeare_text))
    assert (meta["train_tokens"], meta["val_tokens"]) == (1_003_854, 111_540)  # 90/10 of 1,115,394 characters
    train, val = decoded(tmp_path / "out")
    assert train == shakespeare_text[:1_003_854] and val == shakespeare_text[1_003_854:]


def test_shakespeare_bpe(shakespeare_text, tmp_path):
    (tmp_path / "input.txt").write_text(shakespeare_text, encoding="utf-8")
    meta = shakespeare_main([f"--input={tmp_path / 'input.txt'}", f"--out_dir={tmp_path}"])
    assert ((meta["tokenizer"], meta["vocab_size"], meta["dtype"], meta["eot_token"])
            == ("gpt2", 50257, "uint16", 50256))
    assert "chars" not in meta
    # one document: <|endoftext|> + 338,025 text tokens, split 90/10 by tokens
    assert (meta["train_tokens"], meta["val_tokens"]) == (304_223, 33_803)
    _, train, val = read_bins(tmp_path)
    ids = np.concatenate([train, val])
    assert ids[0] == 50256 and (ids == 50256).sum() == 1
    assert Tokenizer.gpt2().decode(ids) == EOT + shakespeare_text
    # cut between tokens
    assert Tokenizer.gpt2().decode(train) + Tokenizer.gpt2().decode(val) == EOT + shakespeare_text


def test_script_runs_from_any_cwd_and_errors_in_one_line(tmp_path):
    text = "hello world\n" * 20
    (tmp_path / "in.txt").write_text(text, encoding="utf-8")
    script = ROOT / "data" / "shakespeare_char" / "prepare.py"
    ok = subprocess.run([sys.executable, str(script), "--input=in.txt", "--out_dir=out"], cwd=tmp_path,
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "".join(decoded(tmp_path / "out")) == text
    bad = subprocess.run([sys.executable, str(ROOT / "data" / "custom" / "prepare.py"),
                          "--input=missing.txt"], cwd=tmp_path, capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == ["error: input file missing.txt not found"]


# -----------------------------------------------------------------------------
# tokenizers

def test_char_unknown_characters_are_listed():
    tok = Tokenizer.char(list("abc \n"))
    assert tok.encode("cab \n") == [2, 0, 1, 3, 4]
    with pytest.raises(ValueError) as e:
        tok.encode("abc xyz é\t")
    msg = str(e.value)
    for c in "xyzé\t":
        assert repr(c) in msg
    assert "'a'" not in msg and "5 character(s)" in msg


def test_char_vocab_in_any_order():
    tok = Tokenizer.char(["z", "a", "\n", "m"])
    assert tok.encode("a\nzm") == [1, 2, 0, 3]
    assert tok.decode([1, 2, 0, 3]) == "a\nzm"


def test_decode_skips_ids_the_tokenizer_cannot_decode():
    char = Tokenizer.char(list("abc"))
    assert char.decode([0, 1, 3, 63, 2, -1]) == "abc"  # 3..63: rows of a model vocab padded to 64
    gpt2 = Tokenizer.gpt2()
    ids = gpt2.encode("hello world")
    assert gpt2.decode(ids + [50257, 50303] + [50256]) == "hello world" + EOT  # 50257..50303 pad 50304
    assert gpt2.decode(np.array([50300, *ids], dtype=np.uint16)) == "hello world"


def test_gpt2_eot_only_where_inserted():
    gpt2 = Tokenizer.gpt2()
    assert gpt2.encode("a<|endoftext|>b").count(50256) == 1  # prompts may start a new document
    assert 50256 not in gpt2.encode("a<|endoftext|>b", allow_eot=False)
    # inside a document it is plain text; only the separator is eot
    doc = gpt2.encode_document("a <|endoftext|> b")
    assert doc[0] == 50256 and (doc == 50256).sum() == 1 and gpt2.decode(doc) == EOT + "a <|endoftext|> b"


def test_tokenizer_pickles_as_its_definition():  # datasets.map sends it to worker processes
    for tok in (Tokenizer.gpt2(), Tokenizer.char(list("xy"))):
        again = pickle.loads(pickle.dumps(tok))
        assert again.meta() == tok.meta() and again.encode("xyyx") == tok.encode("xyyx")


def test_tokenizer_meta_and_its_checks():
    assert Tokenizer.gpt2().meta() == {"tokenizer": "gpt2", "vocab_size": 50257, "dtype": "uint16",
                                       "eot_token": 50256}
    assert Tokenizer.char(list("ba")).meta() == {"tokenizer": "char", "vocab_size": 2, "dtype": "uint16",
                                                 "chars": ["b", "a"], "eot_token": None}
    with pytest.raises(DataError, match=r"^meta vocab_size 5 != 2 of its char tokenizer$"):
        Tokenizer.from_meta({"tokenizer": "char", "vocab_size": 5, "chars": ["b", "a"]})
    doc = Tokenizer.gpt2().encode_document("hi")
    assert doc.dtype == np.uint16 and doc.tolist() == [50256, *Tokenizer.gpt2().encode("hi")]  # as stored
    char = Tokenizer.char(list("ab"))
    assert char.decode(i for i in (1, 0, 7, -1)) == "ba"  # any iterable; ids outside the vocab skipped


MULTIBYTE = "To be, or café: 5€ naïve 😀 straße 日本\n"  # 1- to 4-byte characters in UTF-8


def test_token_bytes_add_up_to_the_texts_utf8_bytes():
    """Tokenizer.token_bytes summed over a text's ids is the length of the text in UTF-8, for char and BPE
    (whose byte-level tokens cut characters like the emoji); <|endoftext|> and padded ids count nothing."""
    for tok in (Tokenizer.from_text(MULTIBYTE), Tokenizer.gpt2()):
        table = tok.token_bytes()
        assert table.shape == (tok.vocab_size,) and table.dtype == np.int64
        for text in (MULTIBYTE, "😀", "€€", "é"):
            ids = tok.encode_document(text)  # gpt2: with the <|endoftext|> the dataset puts first
            assert table[ids].sum() == len(text.encode("utf-8")), (tok.kind, text, ids)
        padded = tok.token_bytes(tok.vocab_size + 64)  # a model vocab padded past the tokenizer's
        assert np.array_equal(padded[:tok.vocab_size], table) and not padded[tok.vocab_size:].any()
    gpt2 = Tokenizer.gpt2()
    assert gpt2.token_bytes()[gpt2.eot_token] == 0 and len(gpt2.encode("😀")) > 1  # the emoji is cut
    assert Tokenizer.char(["a", "\ud800"]).token_bytes().tolist() == [1, 3]  # a lone surrogate, as written


@pytest.mark.parametrize("chars,problem", [
    ([], "a non-empty list of single characters"), (["a", "bc"], "a non-empty list of single characters"),
    (["a", 1], "a non-empty list of single characters"), (["a", "b", "a"], "must not repeat characters")])
def test_a_char_vocabulary_is_checked(chars, problem):
    with pytest.raises(DataError, match=f"^a char vocabulary (must be )?{problem}$"):
        Tokenizer.char(chars)


def test_tiktoken_failure_says_how_to_fix_it(monkeypatch):
    import tiktoken

    def offline(name):
        raise ConnectionError("no network")
    monkeypatch.setattr(tiktoken, "get_encoding", offline)
    with pytest.raises(DataError) as e:
        common._tiktoken_gpt2()
    assert str(e.value) == ("could not load tiktoken's gpt2 BPE files (ConnectionError: no network); connect "
                            "once to cache them, or set TIKTOKEN_CACHE_DIR to a folder that holds them")


def test_hellaswag_file_with_blank_lines(tmp_path):
    example = {"ctx": "A", "endings": ["a", "b", "c", "d"], "label": 2}
    line = json.dumps(example)
    (tmp_path / "h.jsonl").write_text(f"{line}\n\n  \n{line}\n", encoding="utf-8")
    assert common.load_hellaswag(tmp_path / "h.jsonl") == [example, example]  # blank lines are skipped
    assert common.load_hellaswag(tmp_path / "h.jsonl", limit=1) == [example]


def test_dtype_for_and_unknown_tokenizer():
    assert ([common.dtype_for(n) for n in (65, 50257, 65536, 65537)]
            == ["uint16", "uint16", "uint16", "uint32"])
    with pytest.raises(DataError, match="unknown tokenizer 'bpe'"):
        Tokenizer.from_meta({"tokenizer": "bpe", "vocab_size": 3})


# -----------------------------------------------------------------------------
# writing

def test_char_vocab_over_65536_is_uint32(tmp_path):
    chars = [chr(0x10000 + i) for i in range(70_000)]  # supplementary planes: valid UTF-8, no surrogates
    text = "".join(chars) + "".join(reversed(chars[-1000:]))
    (tmp_path / "big.txt").write_text(text, encoding="utf-8")
    meta = custom_main([f"--input={tmp_path / 'big.txt'}", "--tokenizer=char", f"--out_dir={tmp_path}"])
    assert (meta["vocab_size"], meta["dtype"]) == (70_000, "uint32")
    _, train, val = read_bins(tmp_path)
    assert train.dtype == np.uint32 and int(np.concatenate([train, val]).max()) == 69_999
    assert "".join(decoded(tmp_path)) == text


def test_split_ratio_by_tokens(tmp_path):
    text = "".join(chr(ord("a") + i % 26) for i in range(1000))
    (tmp_path / "t.txt").write_text(text, encoding="utf-8")
    meta = custom_main([f"--input={tmp_path / 't.txt'}", "--tokenizer=char", "--val_fraction=0.25",
                        f"--out_dir={tmp_path / 'out'}"])
    assert (meta["train_tokens"], meta["val_tokens"]) == (750, 250)
    assert decoded(tmp_path / "out") == (text[:750], text[750:])


def test_folder_of_txt_files_one_document_each(tmp_path):
    for i, doc in enumerate(DOCS):
        (tmp_path / "docs" / ("sub" if i % 2 else "")).mkdir(parents=True, exist_ok=True)
        (tmp_path / "docs" / ("sub" if i % 2 else "") / f"{i}.txt").write_text(doc, encoding="utf-8")
    paths = sorted((("sub/" if i % 2 else "") + f"{i}.txt", doc) for i, doc in enumerate(DOCS))
    in_order = [doc for _, doc in paths if doc]
    custom_main([f"--input={tmp_path / 'docs'}", f"--out_dir={tmp_path / 'bpe'}"])
    # the empty file is skipped
    assert "".join(decoded(tmp_path / "bpe")) == "".join(EOT + d for d in in_order)
    custom_main([f"--input={tmp_path / 'docs'}", "--tokenizer=char", f"--out_dir={tmp_path / 'char'}"])
    assert "".join(decoded(tmp_path / "char")) == "".join(in_order)  # char: documents are just concatenated


def test_failed_write_leaves_previous_files_intact(tmp_path):
    tok = Tokenizer.char(list("abc"))
    prepare_documents(["abcabcabca"], tok, tmp_path)
    before = files_in(tmp_path)

    def failing_chunks():  # tokenization that breaks after some ids were written to the new train.bin
        yield np.array([0, 1, 2], dtype=np.uint16)
        tok.encode("abc?")
    with pytest.raises(ValueError, match="'\\?'"):
        write_bins(tmp_path, tok, {"train": (9, failing_chunks()),
                                   "val": (1, [np.array([0], dtype=np.uint16)])})
    with pytest.raises(ValueError, match="'\\?'"):  # the new train.bin was complete, but is not used either
        write_bins(tmp_path, tok, {"train": (9, [np.zeros(9, dtype=np.uint16)]),
                                   "val": (5, failing_chunks())})
    # an id that does not fit the vocabulary is never written
    with pytest.raises(DataError, match="out of range"):
        write_bins(tmp_path, tok, {"train": (2, [np.array([0, 3], dtype=np.uint16)]),
                                   "val": (1, [np.array([0])])})
    with pytest.raises(ValueError, match="'d'"):  # a document with a character outside a given vocabulary
        prepare_documents(["abc", "abd"], tok, tmp_path)
    assert files_in(tmp_path) == before  # same files, same bytes, no temp files left


def test_prepare_documents_splits_or_says_why_not(tmp_path, capsys):
    tok = Tokenizer.char(list("ab"))
    for bad in (0, 1, 1.5):
        with pytest.raises(DataError, match=f"^val_fraction must be between 0 and 1, not {bad}$"):
            prepare_documents(["abab"], tok, tmp_path, val_fraction=bad)
    for docs, fraction, n in (([], 0.1, 0), (["a"], 0.1, 1), (["ab"] * 5, 1e-20, 10)):  # nothing in val
        with pytest.raises(DataError, match=f"^{n} tokens are too few to split into train and val with "
                                            f"val_fraction={fraction}$"):
            prepare_documents(docs, tok, tmp_path, val_fraction=fraction)
    assert not os.listdir(tmp_path)
    meta = prepare_documents(["ab"], tok, tmp_path, val_fraction=0.5)  # the fewest tokens that split
    assert (meta["train_tokens"], meta["val_tokens"]) == (1, 1)
    assert capsys.readouterr().out == f"wrote {tmp_path}: 1 train and 1 val tokens, char vocab 2 (uint16)\n"
    prepare_documents(["ab"] * 999, tok, tmp_path)
    assert capsys.readouterr().err == ""  # a bar only for 1000 documents or more
    prepare_documents(["ab"] * 1000, tok, tmp_path)
    bar = capsys.readouterr().err
    assert "tokenizing: 100%" in bar and "1000/1000" in bar and "doc/s" in bar


def test_load_meta_errors(tmp_path):
    with pytest.raises(DataError, match="meta.json not found: run python .*prepare.py"):
        load_meta(tmp_path)
    (tmp_path / "meta.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(DataError, match="malformed"):
        load_meta(tmp_path)
    prepare_documents(["abcabcabca"], Tokenizer.char(list("abc")), tmp_path)
    meta = load_meta(tmp_path)
    assert (meta["train_tokens"], meta["val_tokens"]) == (9, 1)
    (tmp_path / "meta.json").write_text(json.dumps({**meta, "dtype": "uint32"}), encoding="utf-8")
    with pytest.raises(DataError, match="dtype 'uint32' does not fit"):
        load_meta(tmp_path)
    (tmp_path / "meta.json").write_text(json.dumps({**meta, "train_tokens": 8}), encoding="utf-8")
    with pytest.raises(DataError, match="train.bin has 18 bytes, meta says 16"):
        load_meta(tmp_path)
    (tmp_path / "meta.json").write_text(json.dumps({**meta, "val_tokens": 2}), encoding="utf-8")
    with pytest.raises(DataError, match="val.bin has 2 bytes, meta says 4"):
        load_meta(tmp_path)
    (tmp_path / "meta.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(DataError) as e:
        load_meta(tmp_path)
    assert str(e.value).startswith(f"{tmp_path / 'meta.json'} is malformed (Expecting property name")
    hint = f"run python data/custom/prepare.py --input=... --out_dir={tmp_path} again"
    assert str(e.value).endswith(f"): {hint}")


def test_write_bins_refuses_an_empty_split_and_shows_progress_on_big_ones(tmp_path, capsys, monkeypatch):
    tok = Tokenizer.char(list("ab"))
    with pytest.raises(DataError, match="^the val split is empty$"):
        write_bins(tmp_path, tok, {"train": (2, [np.array([0, 1])]), "val": (0, [])})
    assert not os.listdir(tmp_path)
    monkeypatch.setattr(common, "CHUNK_TOKENS", 64)  # a bar from this many tokens on
    n = common.CHUNK_TOKENS
    write_bins(tmp_path, tok, {"train": (n, [np.zeros(n, dtype=np.uint16)]), "val": (1, [np.array([1])])})
    err = capsys.readouterr().err
    assert "writing train.bin: 100%" in err and "writing val.bin" not in err


GOOD_META = {"tokenizer": "char", "vocab_size": 3, "dtype": "uint16", "eot_token": None, "train_tokens": 9,
             "val_tokens": 1, "chars": ["a", "b", "c"]}


@pytest.mark.parametrize("meta,problem", [
    ([1, 2], "not a JSON object"),
    ({"tokenizer": "char", "dtype": "uint16"}, "missing vocab_size, eot_token, train_tokens, val_tokens"),
    ({**GOOD_META, "tokenizer": "bpe"}, "unknown tokenizer 'bpe'"),
    ({**GOOD_META, "vocab_size": 0, "chars": []}, "vocab_size must be a positive integer, not 0"),
    ({**GOOD_META, "train_tokens": -1}, "train_tokens must be a positive integer, not -1"),
    ({**GOOD_META, "val_tokens": 2.0}, "val_tokens must be a positive integer, not 2.0"),
    ({**GOOD_META, "val_tokens": True}, "val_tokens must be a positive integer, not True"),
    ({**GOOD_META, "dtype": "uint32"}, "dtype 'uint32' does not fit vocab_size 3 (expected 'uint16')"),
    ({**GOOD_META, "chars": ["a", "b"]}, "char meta needs 'chars', a list of vocab_size characters"),
    ({**GOOD_META, "chars": "abc"}, "char meta needs 'chars', a list of vocab_size characters"),
])
def test_a_malformed_meta_json_is_named_exactly(tmp_path, meta, problem):
    (tmp_path / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    hint = "run python data/custom/prepare.py --input=... --out_dir="
    with pytest.raises(DataError) as e:
        load_meta(tmp_path)
    assert str(e.value) == f"{tmp_path / 'meta.json'} is malformed ({problem}): {hint}{tmp_path} again"
    (tmp_path / "meta.json").write_text(json.dumps(GOOD_META), encoding="utf-8")
    assert load_meta(tmp_path) == GOOD_META  # and the one it was made from is fine


def test_characters_outside_the_vocabulary_are_listed():
    tok = Tokenizer.char(list("ab"))
    with pytest.raises(DataError, match=r"^2 character\(s\) not in the vocabulary: '\?', 'c'$"):
        tok.encode("abc?c")
    unknown = [chr(0x100 + i) for i in range(51)]  # 50 are shown, then how many more
    with pytest.raises(DataError) as e:
        tok.encode("".join(unknown))
    assert str(e.value) == (f"51 character(s) not in the vocabulary: {', '.join(map(repr, unknown[:50]))} "
                            f"and 1 more")
    with pytest.raises(DataError) as e:
        tok.encode("".join(unknown[:50]))
    assert str(e.value) == f"50 character(s) not in the vocabulary: {', '.join(map(repr, unknown[:50]))}"
    with pytest.raises(DataError, match="and 1 more$"):
        tok.encode("".join(unknown[:50]) + "\ud800")  # a lone surrogate (as file names can hold) is reported
    lone = Tokenizer.char(["a", "\ud800"])  # and can even be a vocabulary character
    assert lone.encode("a\ud800") == [0, 1]


def test_bad_inputs_are_one_line_errors(tmp_path):
    (tmp_path / "empty.txt").write_text("", encoding="utf-8")
    for argv, match in [([f"--input={tmp_path / 'nope.txt'}"], "not found"),
                        ([f"--input={tmp_path / 'empty.txt'}"], "is empty"),
                        ([f"--input={tmp_path / 'empty.txt'}", "--tokenizer=bpe"], "unknown tokenizer 'bpe'"),
                        ([f"--input={tmp_path}"], "no text in")]:
        with pytest.raises(DataError, match=match) as e:
            custom_main(argv + [f"--out_dir={tmp_path / 'out'}"])
        assert "\n" not in str(e.value)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


# -----------------------------------------------------------------------------
# downloads

def test_download_failure_says_what_and_where(tmp_path):
    dest = tmp_path / "sub" / "input.txt"
    with pytest.raises(DataError) as e:
        common.download("http://127.0.0.1:9/x", dest, timeout=5)
    assert ("http://127.0.0.1:9/x" in str(e.value) and str(dest.resolve()) in str(e.value)
            and "\n" not in str(e.value))
    assert not any((tmp_path / "sub").iterdir())


class BrokenResponse(io.BytesIO):
    def read(self, n=-1):
        if self.tell() > 0:
            raise ConnectionResetError("connection dropped")
        return super().read(4)


def test_download_interrupted_leaves_nothing_then_succeeds(tmp_path, monkeypatch):
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: BrokenResponse(b"partial data"))
    with pytest.raises(DataError, match="ConnectionResetError"):
        common.download("https://example.com/input.txt", tmp_path / "input.txt")
    assert list(tmp_path.iterdir()) == []
    # shakespeare_char downloads beside itself (here: tmp_path) when there is no --input
    monkeypatch.setattr(urllib.request, "urlopen",
                        lambda url, timeout: io.BytesIO(b"To be, or not to be\n" * 10))
    monkeypatch.setattr(shakespeare_char, "HERE", tmp_path)
    meta = shakespeare_char.main([])
    assert (tmp_path / "input.txt").read_bytes() == b"To be, or not to be\n" * 10
    assert meta["vocab_size"] == len(set("To be, or not to be\n"))
    assert "".join(decoded(tmp_path)) == "To be, or not to be\n" * 10


# -----------------------------------------------------------------------------
# Hugging Face datasets, local

def test_hf_held_out_val_in_parallel_and_in_chunks(tmp_path, monkeypatch):
    from datasets import Dataset
    docs = [f"document {i}: " + "word " * (i % 7) for i in range(40)]
    Dataset.from_dict({"story": docs, "id": list(range(40))}).save_to_disk(str(tmp_path / "ds"))
    monkeypatch.setattr(common, "CHUNK_TOKENS", 16)  # many small chunks
    meta = custom_main([f"--input={tmp_path / 'ds'}", "--text_column=story", "--val_fraction=0.2",
                        "--num_proc=2", "--seed=7", f"--out_dir={tmp_path / 'out'}"])
    train, val = decoded(tmp_path / "out")
    train_docs, val_docs = train.split(EOT)[1:], val.split(EOT)[1:]
    assert train.startswith(EOT) and val.startswith(EOT)
    assert len(val_docs) == 8 and sorted(train_docs + val_docs) == sorted(docs)
    assert train_docs == [d for d in docs if d not in val_docs]  # both keep the original order
    assert val_docs == [d for d in docs if d in val_docs]
    assert (meta["train_tokens"] + meta["val_tokens"]
            == sum(len(Tokenizer.gpt2().encode_document(d)) for d in docs))
    with pytest.raises(DataError, match="no column 'text': the dataset has 'story', 'id'"):
        custom_main([f"--input={tmp_path / 'ds'}", f"--out_dir={tmp_path / 'out2'}"])


def test_hf_data_file_helpers(tmp_path):
    """A data file's builder by its extension (compressed too), patterns rooted at a dataset folder or hub id,
    and local patterns that must match a file."""
    for name, builder in (("a.jsonl.gz", "json"), ("a.txt.zst", "text"), ("a.json.bz2", "json"),
                          ("a.csv.xz", "csv"), ("A.PARQUET", "parquet"), ("x/train-*.arrow", "arrow")):
        assert common._builder(name) == builder, name
    with pytest.raises(DataError) as e:
        common._builder("a.gz.bin")
    assert str(e.value) == ("can't tell the format of a.gz.bin: expected one of .parquet, .json, .jsonl, "
                            ".txt, .csv, .arrow")
    assert common._rooted("data/*.parquet", "/r") == ["/r/data/*.parquet"]
    assert common._rooted(["a.json", "/abs/b.json", "hf://datasets/x/c.json"], "/r") == \
        ["/r/a.json", "/abs/b.json", "hf://datasets/x/c.json"]
    assert common._rooted({"train": "a.json", "validation": ["b.json", "/abs/c.json"]}, "/r") == \
        {"train": ["/r/a.json"], "validation": ["/r/b.json", "/abs/c.json"]}
    (tmp_path / "sub" / "deep").mkdir(parents=True)
    (tmp_path / "sub" / "deep" / "x.json").write_text("{}", encoding="utf-8")
    (tmp_path / "folder.json").mkdir()
    root = str(tmp_path)
    common._check_matches([f"{root}/**/*.json", "hf://datasets/x/*.json"], root)  # ** spans folders
    common._check_matches({"train": [f"{root}/sub/deep/x.json"]}, root)
    splits = {"train": [f"{root}/sub/**/x.json"], "validation": [f"{root}/no/*.json"]}
    for files, missing in ((splits, "no/*.json"), ([f"{root}/folder.json"], "folder.json")):  # no folders
        with pytest.raises(DataError) as e:
            common._check_matches(files, root)
        assert str(e.value) == f"{root} holds no {missing}"


def test_hf_tokens_are_read_in_chunks_of_about_chunk_tokens(monkeypatch):
    from datasets import Dataset
    tokenized = Dataset.from_dict({"ids": [[i, i + 1] for i in range(0, 20, 2)], "len": [2] * 10})
    for chunk_tokens, sizes in ((2, [2] * 10), (4, [4] * 5), (100, [20])):
        monkeypatch.setattr(common, "CHUNK_TOKENS", chunk_tokens)
        chunks = list(common._chunks(tokenized, 20))
        assert [len(c) for c in chunks] == sizes and np.concatenate(chunks).tolist() == list(range(20))


def test_hf_tokenizing_processes_and_a_seeded_val_split(tmp_path, monkeypatch):
    """--num_proc processes tokenize each split of more than one document, under a 'tokenizing <split>'
    bar; one process (no pool) otherwise. --seed picks the held-out documents: the same seed, the same
    split."""
    from datasets import Dataset
    docs = [f"document {i}" for i in range(40)]
    Dataset.from_dict({"text": docs}).save_to_disk(str(tmp_path / "ds"))
    Dataset.from_dict({"text": docs[:2]}).save_to_disk(str(tmp_path / "two"))
    maps, real_map = [], Dataset.map
    monkeypatch.setattr(Dataset, "map", lambda ds, *a, **k: maps.append(
        (len(ds), k["num_proc"], k["desc"], k["remove_columns"])) or real_map(ds, *a, **k))
    for name, num_proc, expected in (("ds", 2, [(38, 2), (2, 2)]), ("ds", 1, [(38, None), (2, None)]),
                                     ("two", 2, [(1, None), (1, None)])):
        maps.clear()
        custom_main([f"--input={tmp_path / name}", f"--num_proc={num_proc}", "--val_fraction=0.05",
                     "--seed=7", f"--out_dir={tmp_path / f'{name}-{num_proc}'}"])
        assert [(n, p) for n, p, _, _ in maps] == expected
        assert [(d, c) for _, _, d, c in maps] == [("tokenizing train", ["text"]),
                                                   ("tokenizing val", ["text"])]
    again = tmp_path / "again"
    custom_main([f"--input={tmp_path / 'ds'}", "--num_proc=1", "--val_fraction=0.05", "--seed=7",
                 f"--out_dir={again}"])
    assert decoded(again) == decoded(tmp_path / "ds-1")
    custom_main([f"--input={tmp_path / 'ds'}", "--num_proc=1", "--val_fraction=0.05", "--seed=8",
                 f"--out_dir={tmp_path / 'other'}"])
    assert decoded(tmp_path / "other") != decoded(tmp_path / "ds-1")


def test_hf_load_dataset_passes_split_config_and_processes_on(tmp_path, monkeypatch):
    """load_dataset over local data: a save_to_disk DatasetDict gives the split asked for (or says which
    there are); a data file, a folder and data_files in a folder are read by datasets.load_dataset with the
    split, config and num_proc given."""
    import datasets
    from datasets import Dataset, DatasetDict
    DatasetDict({"train": Dataset.from_dict({"text": ["a", "b"]}),
                 "validation": Dataset.from_dict({"text": ["c"]})}).save_to_disk(str(tmp_path / "saved"))
    assert isinstance(common.load_dataset(str(tmp_path / "saved")), DatasetDict)
    assert common.load_dataset(str(tmp_path / "saved"), split="validation")["text"] == ["c"]
    with pytest.raises(DataError) as e:
        common.load_dataset(str(tmp_path / "saved"), split="test")
    assert str(e.value) == f"{tmp_path / 'saved'} has no split 'test'; it has train, validation"
    (tmp_path / "files").mkdir()
    for split, docs in (("train", ["a", "b"]), ("val", ["c"])):
        with open(tmp_path / "files" / f"{split}.jsonl", "w", encoding="utf-8") as f:
            f.writelines(json.dumps({"text": d}) + "\n" for d in docs)
    calls, real = [], datasets.load_dataset
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: calls.append((a, k)) or real(*a, **k))
    one = common.load_dataset(str(tmp_path / "files" / "val.jsonl"), split="train", num_proc=1)
    assert one["text"] == ["c"] and calls[-1][1]["num_proc"] == 1
    folder = common.load_dataset(str(tmp_path / "files"), "default", split="train", num_proc=1)
    assert folder["text"] == ["a", "b"]  # datasets takes val.jsonl for the validation split
    assert calls[-1] == ((str(tmp_path / "files"), "default"), {"split": "train", "num_proc": 1})
    named = common.load_dataset(str(tmp_path / "files"),
                                data_files={"train": "train.jsonl", "val": "val.jsonl"})
    assert named["train"]["text"] == ["a", "b"] and named["val"]["text"] == ["c"]
    with pytest.raises(DataError, match=r"^\./nowhere\.jsonl not found$"):
        common.load_dataset("./nowhere.jsonl")


def test_hf_load_dataset_from_the_hub_and_its_errors(tmp_path, monkeypatch):
    """A hub id goes to datasets.load_dataset as it is (here a fake: no network), data_files under
    hf://datasets/<id>, read by the builder of the first pattern; its failures become one-line errors that
    say what to do, and other errors are not disguised."""
    import datasets
    calls, raises = [], []

    def fake(*args, **kwargs):
        calls.append((args, kwargs))
        if raises:
            raise raises.pop()
        return "loaded"
    monkeypatch.setattr(datasets, "load_dataset", fake)
    assert common.load_dataset("owner/name", "cfg", split="train", num_proc=3) == "loaded"
    assert calls[-1] == (("owner/name", "cfg"), {"split": "train", "num_proc": 3})
    common.load_dataset("owner/name", "cfg", split="train", num_proc=3,
                        data_files={"train": ["data/a.parquet", "b.json"], "validation": "v.parquet"})
    root = "hf://datasets/owner/name"
    assert calls[-1] == (("parquet",), {"data_files": {"train": [f"{root}/data/a.parquet", f"{root}/b.json"],
                                                        "validation": [f"{root}/v.parquet"]},
                                         "split": "train", "num_proc": 3})
    raises.append(datasets.exceptions.DatasetNotFoundError("no such dataset"))
    with pytest.raises(DataError) as e:
        common.load_dataset("owner/gone")
    assert str(e.value).startswith("'owner/gone' is no local path and could not be loaded from the Hugging "
                                   "Face hub (DatasetNotFoundError: no such dataset); run this where")
    raises.append(RuntimeError("Dataset scripts are no longer supported, but found name.py"))
    with pytest.raises(DataError, match="^'owner/name' is a script dataset, which datasets>=4 no longer"):
        common.load_dataset("owner/name")
    for error in (RuntimeError("something else"), ConnectionError("reset")):
        raises.append(error)  # a local folder that exists: not a hub problem, and not hidden
        with pytest.raises(type(error), match=str(error)):
            common.load_dataset(str(tmp_path))
    raises.append(ValueError("bad pattern"))
    with pytest.raises(DataError, match=rf"^could not load '{tmp_path}' \(ValueError: bad pattern\)$"):
        common.load_dataset(str(tmp_path))


def test_hf_data_files_argument_is_parsed(monkeypatch):
    """--data_files: 'a,b' is a list of patterns, 'split=glob,...' a dict (split at the first '='; a value
    may hold '='), a mix is a list; --config and --num_proc go along."""
    from types import SimpleNamespace
    calls = []
    monkeypatch.setattr(common, "load_dataset", lambda *a, **k: calls.append((a, k)))
    args = SimpleNamespace(dataset="owner/name", config="cfg", num_proc=3, default_dataset=None,
                           default_data_files=None, data_files=None)
    by_split = {"train": "t/x=1.json", "validation": "v.json"}
    for given, parsed in ((None, None), ("a/*.json,b.json", ["a/*.json", "b.json"]),
                          ("train=t/x=1.json,validation=v.json", by_split),
                          ("train=t.json,v.json", ["train=t.json", "v.json"])):
        common.load_source(SimpleNamespace(**{**vars(args), "data_files": given}))
        assert calls[-1] == (("owner/name", "cfg"), {"num_proc": 3, "data_files": parsed}), given


def test_hf_arguments_each_say_what_they_are(monkeypatch):
    """Every flag add_hf_args adds has a help text; --data_files names the default files, and
    --num_proc defaults to half the CPUs (at least one)."""
    import argparse
    for cpus, procs in ((16, 8), (3, 1), (2, 1), (1, 1), (None, 1)):
        monkeypatch.setattr(os, "cpu_count", lambda: cpus)
        assert common.default_num_proc() == procs, cpus
    parser = argparse.ArgumentParser()
    common.add_hf_args(parser, "out", "owner/name", data_files="sample/*.parquet")
    text = " ".join(parser.format_help().split())
    for flag, says in (("dataset", "hub id, save_to_disk folder"), ("config", "the dataset's config"),
                       ("data_files", "data files inside the dataset"), ("text_column", "the column that"),
                       ("val_fraction", "share of the data for val"), ("seed", "seed of the held-out"),
                       ("num_proc", "processes for tokenizing"), ("out_dir", "where train.bin")):
        assert f"--{flag} {flag.upper()} {says}" in text, flag
    assert "(default: sample/*.parquet when --dataset is owner/name or a local snapshot of it)" in text
    parser = argparse.ArgumentParser()
    common.add_hf_args(parser, "out", "owner/name")  # no default data files: none named
    assert "'split=glob[,...]' --text_column TEXT_COLUMN" in " ".join(parser.format_help().split())
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    parser = argparse.ArgumentParser()
    common.add_hf_args(parser, "out", "owner/name", data_files="sample/*.parquet")
    assert vars(parser.parse_args([])) == {  # a fixed seed: the same documents held out on every machine
        "dataset": "owner/name", "config": None, "data_files": None, "default_dataset": "owner/name",
        "default_data_files": "sample/*.parquet", "text_column": "text", "val_fraction": 0.0005, "seed": 2357,
        "num_proc": 4, "out_dir": "out"}


def test_hf_empty_split_is_refused(tmp_path):
    from datasets import Dataset
    splits = {"train": Dataset.from_dict({"text": ["a", "b"]}), "val": Dataset.from_dict({"text": []})}
    with pytest.raises(DataError, match=r"^the val split is empty \(no documents\)$"):
        common.prepare_hf(splits, Tokenizer.gpt2(), tmp_path / "out", "text", 1)
    assert not (tmp_path / "out").exists()
    splits["val"] = Dataset.from_dict({"text": ["", ""]})  # documents, but no characters
    with pytest.raises(DataError, match="^the val split is empty$"):
        common.prepare_hf(splits, Tokenizer.char(list("ab")), tmp_path / "out", "text", 1)


def test_hf_char_tokenizer(tmp_path):
    from datasets import Dataset
    Dataset.from_dict({"text": DOCS}).to_parquet(str(tmp_path / "docs.parquet"))
    meta = custom_main([f"--input={tmp_path / 'docs.parquet'}", "--tokenizer=char", "--val_fraction=0.34",
                        f"--out_dir={tmp_path}"])
    assert meta["chars"] == sorted(set("".join(DOCS))) and meta["eot_token"] is None
    train, val = decoded(tmp_path)
    assert sorted(train + val) == sorted("".join(DOCS))


def test_tinystories_own_validation_split(tmp_path):
    (tmp_path / "ts").mkdir()
    for split, docs in [("train", DOCS), ("validation", ["Once upon a time.", "The end."])]:
        with open(tmp_path / "ts" / f"{split}.jsonl", "w", encoding="utf-8") as f:
            f.writelines(json.dumps({"text": d}) + "\n" for d in docs)
    tinystories_main([f"--dataset={tmp_path / 'ts'}", "--num_proc=1", f"--out_dir={tmp_path / 'out'}"])
    assert decoded(tmp_path / "out") == ("".join(EOT + d for d in DOCS),
                                         EOT + "Once upon a time." + EOT + "The end.")


def test_openwebtext_on_local_parquet(tmp_path):
    from datasets import Dataset
    docs = [f"web page {i}\n\nsome text." for i in range(20)]
    Dataset.from_dict({"text": docs}).to_parquet(str(tmp_path / "owt.parquet"))
    meta = owt_main([f"--dataset={tmp_path / 'owt.parquet'}", "--val_fraction=0.1",
                     f"--out_dir={tmp_path / 'out'}"])
    train, val = decoded(tmp_path / "out")
    assert (train.count(EOT), val.count(EOT)) == (18, 2) and meta["eot_token"] == 50256
    assert sorted((train + val).split(EOT)[1:]) == sorted(docs)


def documents_out(out_dir) -> tuple[list[str], list[str]]:
    """The documents of train.bin and val.bin, each checked to follow an <|endoftext|>."""
    train, val = decoded(out_dir)
    assert train.startswith(EOT) and val.startswith(EOT)
    return train.split(EOT)[1:], val.split(EOT)[1:]


def to_parquet(path: Path, columns: dict) -> None:
    from datasets import Dataset
    path.parent.mkdir(parents=True, exist_ok=True)
    Dataset.from_dict(columns).to_parquet(str(path))


def owt_snapshot(root: Path, docs: list[str]) -> Path:
    """A local copy of the hub repository Skylion007/openwebtext: two parquet shards under plain_text/, the
    old loading script (which would fail if run) and a raw subset tar."""
    snapshot = root / "openwebtext"  # the script's own name: datasets would try to run it as the dataset
    half = len(docs) // 2
    to_parquet(snapshot / "plain_text" / "train-00000-of-00002.parquet", {"text": docs[:half]})
    to_parquet(snapshot / "plain_text" / "train-00001-of-00002.parquet", {"text": docs[half:]})
    (snapshot / "openwebtext.py").write_text("raise RuntimeError('the loading script ran')\n")
    (snapshot / "subsets").mkdir()
    (snapshot / "subsets" / "urlsf_subset00.tar").write_bytes(b"not a parquet file " * 100)
    return snapshot


def test_openwebtext_local_snapshot_reads_only_plain_text(tmp_path):
    docs = [f"web page {i}\n\nsome text." for i in range(20)]
    snapshot = owt_snapshot(tmp_path, docs)
    assert owt.DATA_FILES == "plain_text/*.parquet" and owt.DATA_FILES in owt.__doc__
    meta = owt.main([f"--dataset={snapshot}", f"--out_dir={tmp_path / 'out'}"])  # the default val_fraction
    train_docs, val_docs = documents_out(tmp_path / "out")
    assert len(val_docs) == 1 and sorted(train_docs + val_docs) == sorted(docs)
    assert meta["train_tokens"] + meta["val_tokens"] == sum(len(Tokenizer.gpt2().encode_document(d))
                                                             for d in docs)


def recorded_hub_loads(monkeypatch) -> list:
    """Calls of datasets.load_dataset, recorded instead of made (no network needed); each returns a tiny
    dataset of two documents."""
    import datasets
    calls = []

    def fake(*args, **kwargs):
        calls.append((args, kwargs))
        return datasets.DatasetDict({"train": datasets.Dataset.from_dict({"text": ["one.", "two."],
                                                                          "token_count": [2, 2]})})
    monkeypatch.setattr(datasets, "load_dataset", fake)
    return calls


def test_openwebtext_hub_default(tmp_path, monkeypatch):
    calls = recorded_hub_loads(monkeypatch)
    owt.main([f"--out_dir={tmp_path}", "--num_proc=1", "--val_fraction=0.5"])
    hub_files = ["hf://datasets/Skylion007/openwebtext/plain_text/*.parquet"]
    assert calls == [(("parquet",), {"data_files": hub_files, "split": None, "num_proc": 1})]


FINEWEB_COLUMNS = ("text", "id", "dump", "url", "file_path", "language", "language_score", "token_count",
                   "score", "int_score")


def fineweb_rows(docs: list[str], dump: str) -> dict:
    """FineWeb-Edu's ten columns for docs (token_count: the GPT-2 count of the text)."""
    gpt2 = Tokenizer.gpt2()
    rows = {"text": docs, "id": [f"<urn:uuid:{dump}-{i}>" for i in range(len(docs))],
            "dump": [dump] * len(docs), "url": [f"https://example.com/{i}" for i in range(len(docs))],
            "file_path": [f"s3://commoncrawl/crawl-data/{dump}/{i}.warc.gz" for i in range(len(docs))],
            "language": ["en"] * len(docs), "language_score": [0.95] * len(docs),
            "token_count": [len(gpt2.encode(d, allow_eot=False)) for d in docs],
            "score": [3.1] * len(docs), "int_score": [3] * len(docs)}
    assert tuple(rows) == FINEWEB_COLUMNS
    return rows


def fineweb_snapshot(root: Path, first: list[str], second: list[str], big: list[str],
                     dump: list[str]) -> Path:
    """A local copy of the hub repository HuggingFaceFW/fineweb-edu: sample-10BT's two files (first, second),
    a sample-100BT file (big) and a CC-MAIN dump's file (dump)."""
    snapshot = root / "fineweb-edu"
    to_parquet(snapshot / "sample" / "10BT" / "000_00000.parquet", fineweb_rows(first, "CC-MAIN-2013-20"))
    to_parquet(snapshot / "sample" / "10BT" / "001_00000.parquet", fineweb_rows(second, "CC-MAIN-2013-20"))
    to_parquet(snapshot / "sample" / "100BT" / "000_00000.parquet", fineweb_rows(big, "CC-MAIN-2014-10"))
    to_parquet(snapshot / "data" / "CC-MAIN-2024-10" / "train-00000-of-00001.parquet",
               fineweb_rows(dump, "CC-MAIN-2024-10"))
    return snapshot


FIRST = [f"Lesson {i}: photosynthesis turns light into sugar." for i in range(6)]
SECOND = [f"Chapter {i}: the water cycle, evaporation and rain. {'More. ' * i}" for i in range(6)]
BIG = [f"Decoy of sample-100BT number {i}." for i in range(4)]
DUMP = [f"Decoy of a CC-MAIN dump number {i}." for i in range(3)]


def test_fineweb_edu_snapshot_val_is_first_documents(tmp_path):
    snapshot = fineweb_snapshot(tmp_path, FIRST, SECOND, BIG, DUMP)
    gpt2 = Tokenizer.gpt2()
    # val: the first documents up to the one that brings them to val_tokens, counted as stored
    sizes = [len(gpt2.encode_document(d)) for d in FIRST]
    val_tokens = sum(sizes[:3]) - 1
    meta = fineweb_edu.main([f"--dataset={snapshot}", f"--val_tokens={val_tokens}", "--num_proc=2",
                             f"--out_dir={tmp_path / 'out'}"])
    train_docs, val_docs = documents_out(tmp_path / "out")
    assert val_docs == FIRST[:3] and train_docs == FIRST[3:] + SECOND  # file order, nothing of the decoys
    assert meta["val_tokens"] == sum(sizes[:3])
    # the default 100M tokens is more than there is: val is at most half of the documents
    fineweb_edu.main([f"--dataset={snapshot}", "--num_proc=1", f"--out_dir={tmp_path / 'half'}"])
    assert documents_out(tmp_path / "half") == ((FIRST + SECOND)[6:], FIRST)


def test_fineweb_edu_rerun_reuses_the_tokenization(tmp_path, monkeypatch):
    snapshot = fineweb_snapshot(tmp_path, FIRST, SECOND, BIG, DUMP)
    args = [f"--dataset={snapshot}", "--val_tokens=50", "--num_proc=1", f"--out_dir={tmp_path / 'out'}"]
    fineweb_edu.main(args)
    before = files_in(tmp_path / "out")
    (tmp_path / "out" / "train.bin").unlink()  # as if interrupted while writing

    def no_tokenizing(self, text):
        raise AssertionError("tokenized again")
    monkeypatch.setattr(Tokenizer, "encode_document", no_tokenizing)
    fineweb_edu.main(args)  # the tokenized rows come from the datasets cache
    assert files_in(tmp_path / "out") == before


def test_fineweb_edu_other_config_and_counting_without_token_count(tmp_path):
    snapshot = fineweb_snapshot(tmp_path, FIRST, SECOND, BIG, DUMP)
    fineweb_edu.main([f"--dataset={snapshot}", "--config=sample-100BT", "--val_tokens=1",
                      f"--out_dir={tmp_path / 'out'}"])
    assert documents_out(tmp_path / "out") == (BIG[1:], BIG[:1])
    # two documents, no token_count column: tokenized to count, and both splits get one
    to_parquet(tmp_path / "two" / "docs.parquet", {"text": ["First page.", "Second page."]})
    fineweb_edu.main([f"--dataset={tmp_path / 'two' / 'docs.parquet'}", f"--out_dir={tmp_path / 'two'}"])
    assert documents_out(tmp_path / "two") == (["Second page."], ["First page."])
    with pytest.raises(DataError, match="unknown config 'sample-1BT'"):
        fineweb_edu.main([f"--dataset={snapshot}", "--config=sample-1BT", f"--out_dir={tmp_path}"])
    with pytest.raises(DataError, match=r"two holds no sample/10BT/\*\.parquet$"):
        fineweb_edu.main([f"--dataset={tmp_path / 'two'}", f"--out_dir={tmp_path}"])


def test_fineweb_edu_hub_default(tmp_path, monkeypatch):
    calls = recorded_hub_loads(monkeypatch)
    meta = fineweb_edu.main([f"--out_dir={tmp_path}", "--num_proc=1"])
    hub = "hf://datasets/HuggingFaceFW/fineweb-edu"
    assert calls == [(("parquet",), {"data_files": [f"{hub}/sample/10BT/*.parquet"], "split": None,
                                     "num_proc": 1})]
    assert documents_out(tmp_path) == (["two."], ["one."]) and meta["val_tokens"] == 3
    fineweb_edu.main([f"--out_dir={tmp_path}", "--config=sample-100BT", "--num_proc=1"])
    assert calls[1][1]["data_files"] == [f"{hub}/sample/100BT/*.parquet"]


def test_gpt2_fineweb_config_reads_what_the_preparer_writes():
    from configurator import configure
    from train import TrainConfig
    cfg = configure(TrainConfig, [str(ROOT / "config" / "train_gpt2_fineweb.py")])
    assert Path(fineweb_edu.HERE) == ROOT / "data" / cfg.dataset  # the preparer's default out_dir
    assert cfg.batch_size * cfg.block_size * cfg.gradient_accumulation_steps == 524_288 == 2 ** 19
    assert (cfg.max_iters, cfg.lr_decay_iters, cfg.warmup_iters) == (19_073, 19_073, 715)
    assert (cfg.learning_rate, cfg.min_lr, cfg.weight_decay) == (6e-4, 6e-5, 0.1)
    assert (cfg.eval_interval, cfg.eval_hellaswag, cfg.out_dir) == (250, True, "out-gpt2-fineweb")
    # one pass over sample-10BT's ~10B tokens
    assert 9.9e9 < cfg.max_iters * 524_288 < 1.01e10


WIKI = [" = Alpha = \n", "", " Alpha is a letter . \n", "", " = = History = = \n", "", " Old . \n", "",
        " = Beta = \n", "", " Beta follows . \n", ""]


def test_wikitext_articles():
    got = list(articles([""] + WIKI))
    assert got == ["".join([""] + WIKI[:8]), "".join(WIKI[8:])]  # sections stay in their article
    assert "".join(got) == "".join(WIKI)


def test_wikitext_prepare(tmp_path):
    from datasets import Dataset, DatasetDict
    val_rows = [" = Gamma = \n", "", " G . \n"]
    DatasetDict({"train": Dataset.from_dict({"text": WIKI}),
                 "validation": Dataset.from_dict({"text": val_rows})}).save_to_disk(str(tmp_path / "wt"))
    meta = wikitext_main([f"--dataset={tmp_path / 'wt'}", f"--out_dir={tmp_path / 'out'}"])
    train, val = decoded(tmp_path / "out")
    assert train == EOT + "".join(WIKI[:8]) + EOT + "".join(WIKI[8:])
    assert val == EOT + " = Gamma = \n G . \n"
    assert meta["val_tokens"] == len(Tokenizer.gpt2().encode_document(" = Gamma = \n G . \n"))


def test_hub_offline_error_is_clear(tmp_path):
    assert os.environ.get("HF_HUB_OFFLINE") == "1"  # conftest: tests never download
    with pytest.raises(DataError,
                       match="no local path and could not be loaded from the Hugging Face hub") as e:
        owt_main([f"--out_dir={tmp_path}"])
    assert "\n" not in str(e.value)
    assert not any(tmp_path.glob("*.bin")) and not (tmp_path / "meta.json").exists()


def _error_from(module: str) -> Exception:
    return type("Failure", (Exception,), {"__module__": module})("no route")


@pytest.mark.parametrize("error,network", [
    (ConnectionError("refused"), True), (TimeoutError("slow"), True),
    *[(_error_from(m), True) for m in ("httpx._exceptions", "httpx2", "httpcore._exceptions",
                                        "requests.exceptions", "urllib3.exceptions", "aiohttp.client")],
    (_error_from("datasets.exceptions"), False), (ValueError("bad value"), False)])
def test_network_errors_are_told_from_others(error, network):
    assert common._network_error(error) is network


@pytest.mark.parametrize("name,local", [("./x", True), ("/abs", True), ("~/x", True), ("a/b/c", True),
                                        ("x.json", True), ("x.JSONL", True), ("owner/name", False),
                                        ("name", False), (".hidden", True)])
def test_a_missing_local_path_is_told_from_a_hub_id(name, local):
    assert common._looks_local(name) is local


def test_a_folder_is_a_snapshot_when_every_glob_matches(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "train-0.parquet").write_bytes(b"x")
    globs = "train=data/train-*.parquet,validation=data/val-*.parquet"
    assert not common._is_snapshot(str(tmp_path), globs)
    (tmp_path / "data" / "val-0.parquet").write_bytes(b"x")
    assert common._is_snapshot(str(tmp_path), globs) and common._is_snapshot(str(tmp_path), "data/*.parquet")
    assert not common._is_snapshot(str(tmp_path / "data" / "val-0.parquet"), "*")  # a file, not a folder


def test_a_folder_without_txt_files_is_a_hf_source(tmp_path):
    (tmp_path / "shard.parquet").write_bytes(b"x")
    assert common.is_hf_source(str(tmp_path))
    (tmp_path / "notes.txt").write_text("hi")
    assert not common.is_hf_source(str(tmp_path))


def test_the_prepare_hint_names_the_dataset_script(tmp_path):
    custom = f"run python data/custom/prepare.py --input=... --out_dir={tmp_path}"
    assert common._prepare_hint(tmp_path) == custom
    (tmp_path / "prepare.py").write_text("")
    assert common._prepare_hint(tmp_path) == f"run python {tmp_path / 'prepare.py'}"


def test_read_text_names_a_file_that_is_not_utf8(tmp_path):
    (tmp_path / "latin1.txt").write_bytes("café".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1.txt is not UTF-8 text \(.*codec can't decode"):
        common.read_text(tmp_path / "latin1.txt")


def test_download_copies_a_url_to_the_path_and_says_so(tmp_path, capsys):
    src = tmp_path / "src.txt"
    src.write_bytes(b"x" * (3 << 20))  # over one read block
    dest = common.download(src.as_uri(), tmp_path / "sub" / "dest.txt")
    assert dest.read_bytes() == src.read_bytes()
    assert capsys.readouterr().out == f"downloading {src.as_uri()} to {dest}\n"
    assert common.download("file:///nonexistent", dest) == dest  # there already: not downloaded again


def test_a_text_file_preparer_downloads_when_no_input_is_given(tmp_path, monkeypatch, capsys):
    """prepare_text_file: --help shows the preparer's description and the --input default; without --input it
    downloads the url into its folder; --val_fraction reaches the split."""
    with pytest.raises(SystemExit):
        common.prepare_text_file(["--help"], "Prepares a thing.", tmp_path, "https://x/input.txt",
                                 Tokenizer.from_text)
    help_text = "".join(capsys.readouterr().out.split())  # argparse wraps long lines, paths too
    assert "Preparesathing." in help_text and f"(default:{tmp_path}/input.txt,downloaded" in help_text
    with pytest.raises(SystemExit):  # the description's own line breaks are kept
        common.prepare_text_file(["--help"], "Line one.\nLine two.", tmp_path, "", Tokenizer.from_text)
    assert "\nLine one.\nLine two.\n" in capsys.readouterr().out
    fetched = []

    def fake_download(url, path):
        fetched.append(url)
        Path(path).write_text("abcdefghij" * 100)
        return Path(path)
    monkeypatch.setattr(common, "download", fake_download)
    meta = common.prepare_text_file(["--val_fraction=0.3"], "", tmp_path, "https://x/input.txt",
                                    Tokenizer.from_text)
    assert fetched == ["https://x/input.txt"] and meta["val_tokens"] == 300 and meta["train_tokens"] == 700


def test_train_val_splits_takes_the_datasets_own_or_holds_out_a_fraction():
    import datasets
    docs = datasets.Dataset.from_dict({"text": [f"doc {i}" for i in range(10)]})
    other = datasets.Dataset.from_dict({"text": ["x", "y"]})
    own = common.train_val_splits(datasets.DatasetDict(train=docs, validation=other), 0.2, 0)
    assert list(own["val"]["text"]) == ["x", "y"] and len(own["train"]) == 10
    for dd in (datasets.DatasetDict(train=docs), datasets.DatasetDict(only=docs),
               datasets.DatasetDict(test=other, train=docs), docs):  # train not first: still train
        split = common.train_val_splits(dd, 0.2, 0)
        assert (len(split["train"]), len(split["val"])) == (8, 2)
        assert sorted([*split["train"]["text"], *split["val"]["text"]]) == sorted(docs["text"])
    with pytest.raises(DataError, match="no 'train' split among a, b"):
        common.train_val_splits(datasets.DatasetDict(a=docs, b=other), 0.2, 0)
    for bad in (0.0, 1.0):
        with pytest.raises(DataError, match=f"val_fraction must be between 0 and 1, not {bad}"):
            common.train_val_splits(docs, bad, 0)
    with pytest.raises(DataError, match="2 documents are too few to hold out 2 for val"):
        common.train_val_splits(other, 0.9, 0)
