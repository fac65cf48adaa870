# A small GPT trained from scratch on TinyStories (GPT-2 BPE), sized for one GPU:
#   python data/tinystories/prepare.py
#   python train.py config/train_tinystories.py
#   python sample.py --out_dir=out-tinystories --start="Once upon a time" --stop_at_eot=True --num_samples=3
# Size: the TinyStories paper (Eldan & Li 2023) reports fluent, coherent stories from models below 10M
# parameters. With GPT-2's 50,257 tokens (padded to 50,304) the token embedding alone is 19.3M parameters at
# width 384, so this is 6 layers x 384 wide: 10.6M parameters in the blocks, 30.0M in all
# (GPT.get_num_params). Nothing here was trained to completion in this repository: no loss to report yet.
# bench.py times the step:
#   python bench.py --n_layer=6 --n_head=6 --n_embd=384 --block_size=512 --batch_size=32 --vocab_size=50304

out_dir = "out-tinystories"
eval_interval = 1000
eval_iters = 100
log_interval = 10
wandb_log = False
wandb_project = "tinystories"
wandb_run_name = "gpt-30M"

dataset = "tinystories"
# 32 sequences x 512 tokens x 4 micro-steps = 65,536 tokens per iteration; 20,000 iterations = 1.31B tokens
# (meta.json's train_tokens tells how many passes over the data that is). Most stories are shorter than 512
# tokens, so a window usually spans several, separated by <|endoftext|>. Out of memory? Halve batch_size and
# double gradient_accumulation_steps: the same tokens per iteration.
batch_size = 32
block_size = 512
gradient_accumulation_steps = 4

n_layer = 6
n_head = 6
n_embd = 384
dropout = 0.0  # over a billion tokens of fresh-ish text: no dropout

learning_rate = 1e-3  # small models take a higher peak than GPT-2 124M's 6e-4
max_iters = 20000
lr_decay_iters = 20000
min_lr = 1e-4
warmup_iters = 1000
weight_decay = 1e-1
