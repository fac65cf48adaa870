# Finetune OpenAI's GPT-2 XL on Tiny Shakespeare (GPT-2 BPE), then sample from the best checkpoint:
#   python data/shakespeare/prepare.py
#   python train.py config/finetune_shakespeare.py
#   python sample.py --out_dir=out-shakespeare --ckpt=best.pt --start="ROMEO:" \
#       --num_samples=3 --max_new_tokens=200
# init_from='gpt2-xl' loads the weights through HF transformers (downloaded once, then cached): 1,557,611,200
# parameters. Full finetuning with AdamW in fp32 master weights holds 16 bytes per parameter (weights,
# gradients, two Adam moments), about 25 GB before activations: a large GPU. For smaller ones use gpt2,
# gpt2-medium or gpt2-large, or a shorter --block_size.

out_dir = "out-shakespeare"
eval_interval = 5
eval_iters = 40
log_interval = 1
always_save_checkpoint = False  # ckpt.pt and best.pt at improvements; the last iteration still writes ckpt.pt
wandb_log = False
wandb_project = "shakespeare"
wandb_run_name = "ft-gpt2-xl"

dataset = "shakespeare"
init_from = "gpt2-xl"

# 1 sequence x 32 micro-steps x 1024 tokens = 32,768 tokens per iteration. data/shakespeare's train.bin holds
# 304,223 tokens (measured, see data/shakespeare/prepare.py): 20 iterations draw 655,360 tokens, about 2.2
# times that.
batch_size = 1
gradient_accumulation_steps = 32
max_iters = 20

# finetune at a small constant learning rate
learning_rate = 3e-5
decay_lr = False
