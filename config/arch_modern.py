# The small-model recipe of nanochat and the modded-nanogpt speedrun, on top of any training config:
#   python train.py config/train_shakespeare_char.py config/arch_modern.py
# Rotary positions, RMSNorm, a ReLU^2 MLP (4x wide), QK-norm (each head's queries and keys RMS-normalized,
# which keeps attention logits in range at high learning rates), no biases, an untied output layer, and logits
# softcapped to (-15, 15). No HF class computes ReLU^2 or the softcap, so eval.py --mode=export refuses it.
pos_embedding = "rope"
rope_theta = 10000.0
norm = "rmsnorm"
norm_eps = 1e-5
mlp = "relu2"
qk_norm = True
bias = False
tie_embeddings = False
logit_softcap = 15.0
