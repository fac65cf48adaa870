# GPT-2 124M from scratch on OpenWebText, on one node of 8 GPUs:
#   python data/openwebtext/prepare.py
#   torchrun --standalone --nproc_per_node=8 train.py config/train_gpt2.py
# The model is TrainConfig's default shape (12 layers, 12 heads, 768 wide, 1024 context). nanoGPT's README
# reports that its equivalent run takes about 4 days on 8 A100 40GB GPUs and reaches a loss of about 2.85.

# True to log to Weights & Biases (needs `pip install wandb` and a login); metrics.jsonl always
wandb_log = False
wandb_project = "owt"
wandb_run_name = "gpt2-124M"

# 12 sequences x 1024 tokens x 40 micro-steps = 491,520 tokens (~0.5M) per iteration.
# gradient_accumulation_steps counts micro-steps over all processes: 5 per GPU on 8 GPUs, 40 on one (same
# batch, 8x slower).
batch_size = 12
block_size = 1024
gradient_accumulation_steps = 5 * 8

# 600,000 iterations = 295 billion tokens
max_iters = 600000
lr_decay_iters = 600000

eval_interval = 1000
eval_iters = 200
log_interval = 10

weight_decay = 1e-1
