# The CPU speedrun with GPT-2's architecture: Tiny Shakespeare characters to val loss <= 1.88 on a CPU.
#   python data/shakespeare_char/prepare.py && python train.py config/train_shakespeare_char_cpu_gpt2.py
#   python bench.py --mode=speedrun    # times this beside config/train_shakespeare_char_cpu.py (faster: the
#                                      # architecture of config/arch_modern.py) and the reference CPU recipe
# What won for GPT-2, measured on 2 cores (README, Performance): a small model is the compute-optimal one at
# this budget (1 layer beat 2, 3 and 4 layers and a 192-wide layer to 1.88), and Muon for the hidden matrices
# reached in 800 steps what AdamW did not in 2000. dtype 'auto' trains it under bf16 autocast where the CPU
# has native bf16 (~1.2x faster than fp32 here), and torch.compile's 10-20 s of compilation outweighs its
# faster steps in a run this short.

out_dir = "out-shakespeare-char-gpt2"
eval_interval = 800  # evaluate at the start and the end only: evals cost wall time
eval_iters = 50
log_interval = 100
always_save_checkpoint = False

dataset = "shakespeare_char"
gradient_accumulation_steps = 1
batch_size = 12
block_size = 64

n_layer = 1
n_head = 4
n_embd = 128
dropout = 0.0

optimizer = "muon"
learning_rate = 8e-3
max_iters = 800
lr_decay_iters = 800
min_lr = 8e-4
beta2 = 0.99
warmup_iters = 30

device = "cpu"
compile = False
