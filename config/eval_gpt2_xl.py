# Baseline: OpenAI's gpt2-xl (1558M parameters) evaluated on OpenWebText without training (eval_only).
#   python data/openwebtext/prepare.py && python train.py config/eval_gpt2_xl.py
# nanoGPT's README reports train loss 2.56 and val loss 2.54 for gpt2-xl on its own preparation of
# OpenWebText. Ours holds out documents by another selection method and puts <|endoftext|> before each
# document (nanoGPT: after), so expect losses close to these, not identical.
batch_size = 8
eval_iters = 500  # 500 x 8 x 1024 = 4,096,000 tokens per split
eval_only = True
wandb_log = False
init_from = "gpt2-xl"
