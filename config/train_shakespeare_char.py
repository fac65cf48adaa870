# A baby GPT on Tiny Shakespeare characters, sized for one GPU (a few minutes on an A100-class card).
# python data/shakespeare_char/prepare.py && python train.py config/train_shakespeare_char.py

out_dir = "out-shakespeare-char"
eval_interval = 250  # small data: evaluate often, it overfits
eval_iters = 200
log_interval = 10
always_save_checkpoint = False  # keep ckpt.pt at the best val loss; the end of training still saves

wandb_log = False
wandb_project = "shakespeare-char"
wandb_run_name = "mini-gpt"

dataset = "shakespeare_char"
gradient_accumulation_steps = 1
batch_size = 64
block_size = 256  # context of 256 characters

n_layer = 6
n_head = 6
n_embd = 384
dropout = 0.2

learning_rate = 1e-3  # a small model can take a high learning rate
max_iters = 5000
lr_decay_iters = 5000  # usually max_iters
min_lr = 1e-4  # learning_rate / 10
beta2 = 0.99  # a bit larger than GPT-2's 0.95: few tokens per iteration
warmup_iters = 100
