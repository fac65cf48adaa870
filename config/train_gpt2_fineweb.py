# GPT-2 124M from scratch on FineWeb-Edu (sample-10BT), the "let's reproduce GPT-2" way: one pass over ~10B
# tokens in 19,073 steps of 524,288 tokens, with HellaSwag scored at every eval.
#   python data/fineweb_edu/prepare.py                  # ~10B tokens: ~20 GB train.bin, plus the caches
#   python data/hellaswag/prepare.py
#   torchrun --standalone --nproc_per_node=8 train.py config/train_gpt2_fineweb.py   # one node of 8 GPUs
#   python train.py config/train_gpt2_fineweb.py                                     # one GPU, 8x slower
# Reference figures, others' and not ours (nothing here was trained to completion in this repository):
# Karpathy's build-nanogpt and llm.c reproductions of GPT-2 124M on FineWeb(-Edu) 10B tokens with this recipe
# report HellaSwag about 0.30 at the end, versus 0.294 for OpenAI's GPT-2 124M, and a run of the order of
# an hour or two on one node of 8 A100 GPUs. Expect a trajectory of that kind, not those exact numbers.

out_dir = "out-gpt2-fineweb"
dataset = "fineweb_edu"
wandb_log = False
wandb_project = "fineweb"
wandb_run_name = "gpt2-124M"

# 64 sequences x 1024 tokens x 8 micro-steps = 524,288 (2**19) tokens per step. gradient_accumulation_steps
# counts micro-steps over all processes: 1 per GPU on 8 GPUs, 8 on one (same batch). Out of memory? Halve
# batch_size and double gradient_accumulation_steps: the same tokens per step.
batch_size = 64
block_size = 1024
gradient_accumulation_steps = 8

# 19,073 steps x 524,288 tokens = ~10B tokens: one pass over sample-10BT
max_iters = 19073
lr_decay_iters = 19073
warmup_iters = 715
learning_rate = 6e-4
min_lr = 6e-5
weight_decay = 1e-1

eval_interval = 250
eval_iters = 20
log_interval = 10
eval_hellaswag = True  # needs data/hellaswag/hellaswag_val.jsonl: python data/hellaswag/prepare.py
# samples as training goes, as the reproduction prints them
eval_samples = 4
eval_sample_prompt = "Hello, I'm a language model,"
eval_sample_tokens = 32
