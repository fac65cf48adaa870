# Llama's architecture, on top of any training config:
#   python train.py config/train_shakespeare_char.py config/arch_llama.py
# Rotary positions instead of learned ones, RMSNorm instead of LayerNorm, a SwiGLU MLP (8/3 x n_embd wide, so
# its three matrices hold what GELU's two 4x ones do), no biases, and an output layer of its own. The model
# computes exactly what HF's LlamaForCausalLM does (tests/test_arch.py), and eval.py --mode=export writes one.
pos_embedding = "rope"
rope_theta = 10000.0
norm = "rmsnorm"
norm_eps = 1e-5
mlp = "swiglu"
bias = False
tie_embeddings = False
