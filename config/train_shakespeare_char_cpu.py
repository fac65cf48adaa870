# The CPU speedrun: Tiny Shakespeare characters to val loss <= 1.88 in the least wall time on a laptop-class
# CPU.
#   python data/shakespeare_char/prepare.py && python train.py config/train_shakespeare_char_cpu.py
#   python bench.py --mode=speedrun    # times this beside GPT-2's speedrun and the reference CPU recipe
# What won, measured on 2 cores (docs/speedrun.md): config/arch_modern.py's architecture (its keys, below)
# reaches 1.88 in 500 steps where GPT-2's best (config/train_shakespeare_char_cpu_gpt2.py) takes 800, at ~15%
# more time a step: 0.75x its wall time. A small model is the compute-optimal one at this budget (1 layer, 128
# wide), and Muon for the hidden matrices beats AdamW; with QK-norm and the softcap the best peak learning
# rate is half GPT-2's, with no warmup. dtype 'auto' trains it under bf16 autocast where the CPU has native
# bf16, and torch.compile's 10-20 s of compilation outweighs its faster steps in a run this short.

out_dir = "out-shakespeare-char"
eval_interval = 500  # evaluate at the start and the end only: evals cost wall time
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

# config/arch_modern.py's keys
pos_embedding = "rope"
rope_theta = 10000.0
norm = "rmsnorm"
norm_eps = 1e-5
mlp = "relu2"
qk_norm = True
bias = False
tie_embeddings = False
logit_softcap = 15.0

optimizer = "muon"
learning_rate = 4e-3
max_iters = 500
lr_decay_iters = 500
min_lr = 4e-4
beta2 = 0.99
warmup_iters = 0

device = "cpu"
compile = False
