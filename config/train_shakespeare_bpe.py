# A small GPT trained from scratch on Tiny Shakespeare with GPT-2's BPE (compare
# config/finetune_shakespeare.py, which starts from GPT-2's weights, and config/train_shakespeare_char.py,
# which reads characters):
#   python data/shakespeare/prepare.py
#   python train.py config/train_shakespeare_bpe.py
#   python sample.py --out_dir=out-shakespeare-bpe --start="ROMEO:" --num_samples=3 --max_new_tokens=200
# 304,223 training tokens (measured, data/shakespeare/prepare.py) are few for a 50,257-token vocabulary: the
# embedding is most of this model's 16.0M parameters (12.9M), and it overfits within a few epochs, so it
# evaluates often and keeps the best checkpoint. Not trained to completion in this repository: no loss to
# report yet.

out_dir = "out-shakespeare-bpe"
eval_interval = 100
eval_iters = 50
log_interval = 10
always_save_checkpoint = False
wandb_log = False
wandb_project = "shakespeare"
wandb_run_name = "bpe-scratch"

dataset = "shakespeare"
# 32 sequences x 128 tokens = 4,096 tokens per iteration; 1,500 iterations = 6.1M tokens, about 20 passes
batch_size = 32
block_size = 128
gradient_accumulation_steps = 1

n_layer = 4
n_head = 4
n_embd = 256
dropout = 0.2

learning_rate = 1e-3
max_iters = 1500
lr_decay_iters = 1500
min_lr = 1e-4
warmup_iters = 100
beta2 = 0.99
